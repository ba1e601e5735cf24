"""PEFT's `get_peft_model` for TALL: fresh trainable stages (and any PEFT tuner on the LLM) on three components."""

from __future__ import annotations

from typing import Any

import torch

from ..utils.loading import ComponentSpec
from .config import tuner_to_dict


def get_tall_model(
    lr_hr: ComponentSpec,
    llm: ComponentSpec,
    hr_lr: ComponentSpec,
    peft_config: Any = None,
    *,
    lr_hr_revision: str | None = None,
    llm_revision: str | None = None,
    hr_lr_revision: str | None = None,
    dtype: torch.dtype | None = None,
    **config_overrides,
):
    """A trainable [`TallForConditionalGeneration`] on the LR->HR translator, LLM and HR->LR translator (hub ids, folders or loaded
    models): the components frozen, the alignment adapters and custom transformers fresh, and `peft_config` (any PEFT
    tuner config, e.g. `LoraConfig`, its `target_modules` named inside the LLM) injected into the LLM.
    `config_overrides` are `TallConfig` fields (`loss_mode`, ...).

    ```python
    >>> model = get_tall_model(lr_hr, llm, hr_lr, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    >>> model.print_trainable_parameters()
    >>> save_checkpoint(model, "tall-adapters", adapters_only=True)  # a PEFT adapter folder (+ config.json)
    ```
    """
    from ..models.tall.modeling_tall import TallForConditionalGeneration

    return TallForConditionalGeneration.from_components(
        lr_hr,
        llm,
        hr_lr,
        lr_hr_revision=lr_hr_revision,
        llm_revision=llm_revision,
        hr_lr_revision=hr_lr_revision,
        dtype=dtype,
        lora=tuner_to_dict(peft_config),
        **config_overrides,
    )


__all__ = ["get_tall_model"]

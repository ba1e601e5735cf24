"""PEFT's `get_peft_model` for TALL: fresh trainable modules (and optional LoRA) on three loaded components."""

from __future__ import annotations

import os
from typing import Any

import torch

from .config import TallAdapterConfig


def get_tall_model(
    lr_hr: str | os.PathLike | Any,
    llm: str | os.PathLike | Any,
    hr_lr: str | os.PathLike | Any,
    adapter_config: TallAdapterConfig | None = None,
    *,
    lr_hr_revision: str | None = None,
    llm_revision: str | None = None,
    hr_lr_revision: str | None = None,
    dtype: torch.dtype | None = None,
):
    """A trainable [`TallForCausalLM`] on the LR->HR translator, LLM and HR->LR translator (hub ids, folders or loaded
    models): the components frozen, the alignment adapters and custom transformers fresh, and LoRA on the LLM when
    `adapter_config.lora` is set (its `target_modules` name modules of the LLM, e.g. `["q_proj", "v_proj"]`).

    ```python
    >>> model = get_tall_model(lr_hr, llm, hr_lr, TallAdapterConfig(lora=LoraConfig(r=8, target_modules=["q_proj"])))
    >>> model.print_trainable_parameters()
    >>> model.save_pretrained("tall-adapters", adapters_only=True)  # adapter_config.json + adapter_model.safetensors
    ```
    """
    from ..models.tall.modeling_tall import TallForCausalLM

    adapter_config = adapter_config or TallAdapterConfig()
    return TallForCausalLM.from_components(
        lr_hr,
        llm,
        hr_lr,
        lr_hr_revision=lr_hr_revision,
        llm_revision=llm_revision,
        hr_lr_revision=hr_lr_revision,
        dtype=dtype,
        **adapter_config.model_config,
        lora=adapter_config.lora,
    )


__all__ = ["get_tall_model"]

"""The PEFT side of an adapters-only checkpoint: file names, and a model's adapters as one `peft.PeftConfig`.

A composite model's config (`config.json`) is the single source of truth: it records the frozen components'
provenance and every architecture field. The adapters-only folder adds PEFT's own artefact, written and read with
PEFT's functions: `adapter_config.json` is a real `PeftConfig` (the tuner on the LLM, if any, with its
`target_modules` rooted at the LLM; otherwise PEFT's target-less LoRA) whose `modules_to_save` are the model's
trainable stages, and `adapter_model.safetensors` holds `get_peft_model_state_dict`'s weights under PEFT's
`base_model.model.` prefix. `PeftConfig.from_pretrained` and `PeftModel.from_pretrained(model, folder)` load it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

# PEFT's file names, as transformers' PEFT integration names them (peft is imported only where a PEFT function runs:
# a checkpoint's remote code loads without it).
from transformers.utils import ADAPTER_CONFIG_NAME
from transformers.utils import ADAPTER_SAFE_WEIGHTS_NAME as ADAPTER_WEIGHTS_NAME
from transformers.utils import ADAPTER_WEIGHTS_NAME as PICKLED_ADAPTER_WEIGHTS_NAME

# Where `PeftModel` keeps the model it wraps: PEFT's adapter files name every weight from there.
PEFT_PREFIX = "base_model.model."
ADAPTER_NAME = "default"


def tuner_to_dict(tuner: Any) -> dict | None:
    """A PEFT tuner config (`LoraConfig`, `IA3Config`, ... or its dict) as a JSON-safe dict."""
    if tuner is None:
        return None
    if not isinstance(tuner, dict):
        tuner = tuner.to_dict()
    return json.loads(json.dumps(tuner, default=lambda value: sorted(value) if isinstance(value, set) else str(value)))


def tuner_from_dict(tuner: dict):
    """The PEFT config (of the type its `peft_type` names) a dict describes."""
    from peft import PeftConfig

    return PeftConfig.from_peft_type(**tuner)


def rooted_target_modules(targets: str | Iterable[str] | None, root: str) -> str | None:
    """PEFT `target_modules` named inside the module `root` (a list of name suffixes, or a regex matched against the
    whole name), as one regex over the enclosing model's module names that matches the same modules and no other."""
    if targets is None:
        return None
    prefix = re.escape(root) + r"\."
    if isinstance(targets, str):
        return f"{prefix}(?:{targets})"
    return f"{prefix}(?:.*\\.)?(?:{'|'.join(re.escape(target) for target in sorted(targets))})"


def build_peft_config(
    tuner: dict | None, tuner_root: str | None, modules_to_save: list[str], base_model_name_or_path: str | None
):
    """The `PeftConfig` of a composite model's adapters: `tuner` (on the module `tuner_root`) or PEFT's target-less
    LoRA, with `modules_to_save` the model's trainable stages."""
    from peft import LoraConfig
    from peft.utils.constants import DUMMY_TARGET_MODULES

    if tuner is None:
        config = LoraConfig(target_modules=DUMMY_TARGET_MODULES)
    else:
        config = tuner_from_dict(tuner)
        config.target_modules = rooted_target_modules(config.target_modules, tuner_root)
    config.modules_to_save = list(modules_to_save)
    config.base_model_name_or_path = base_model_name_or_path
    return config


__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "PEFT_PREFIX",
    "PICKLED_ADAPTER_WEIGHTS_NAME",
    "build_peft_config",
    "rooted_target_modules",
    "tuner_from_dict",
    "tuner_to_dict",
]

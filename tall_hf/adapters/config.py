"""PEFT's file names for adapters-only checkpoints, and PEFT tuner configs as the JSON a model config stores.

A composed model's config (`config.json`) is the single source of truth: it records the frozen components'
provenance and every architecture field. The adapters-only folder adds PEFT's own artefact, written and read by PEFT:
`adapter_config.json` (the model's `adapter_peft_config()`) and `adapter_model.safetensors`.
"""

from __future__ import annotations

import json
from typing import Any

# PEFT's file names, as transformers' PEFT integration names them (peft is imported only where a PEFT function runs:
# a checkpoint's remote code loads without it).
from transformers.utils import ADAPTER_CONFIG_NAME
from transformers.utils import ADAPTER_SAFE_WEIGHTS_NAME as ADAPTER_WEIGHTS_NAME
from transformers.utils import ADAPTER_WEIGHTS_NAME as PICKLED_ADAPTER_WEIGHTS_NAME

# Where `PeftModel` keeps the model it wraps: PEFT's adapter files name every weight from there.
PEFT_PREFIX = "base_model.model."


def tuner_to_dict(tuner: Any) -> dict | None:
    """A PEFT tuner config (`LoraConfig`, `IA3Config`, ... or its dict) as a JSON-safe dict."""
    if tuner is None:
        return None
    if not isinstance(tuner, dict):
        tuner = tuner.to_dict()
    return json.loads(json.dumps(tuner, default=lambda value: sorted(value) if isinstance(value, set) else str(value)))


__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "PEFT_PREFIX",
    "PICKLED_ADAPTER_WEIGHTS_NAME",
    "tuner_to_dict",
]

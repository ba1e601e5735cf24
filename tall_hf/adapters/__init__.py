"""The trainable part of a composed model as a PEFT adapter on its frozen components, and the checkpoints of both
kinds (full, adapters-only) with their extras: saved, loaded and uploaded with transformers' and PEFT's own calls."""

from .checkpoint import PickledCheckpointError, checkpoint_kind
from .config import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME
from .saving import load_checkpoint, peft_model_of, push_checkpoint, save_adapters, save_checkpoint, save_extras
from .tall import get_tall_model

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "PickledCheckpointError",
    "checkpoint_kind",
    "get_tall_model",
    "load_checkpoint",
    "peft_model_of",
    "push_checkpoint",
    "save_adapters",
    "save_checkpoint",
    "save_extras",
]

"""Adapters on PEFT's primitives: the trainable part of a composite model as a PEFT adapter on its frozen components."""

from .checkpoint import PickledCheckpointError, checkpoint_kind
from .config import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, build_peft_config
from .mixin import AdapterMixin
from .tall import get_tall_model

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "AdapterMixin",
    "PickledCheckpointError",
    "build_peft_config",
    "checkpoint_kind",
    "get_tall_model",
]

"""PEFT-style adapters: the trainable part of a composite model as a small checkpoint on top of its components."""

from .checkpoint import PickledCheckpointError, checkpoint_kind
from .config import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, AdapterConfig, TallAdapterConfig
from .mixin import AdapterMixin
from .tall import get_tall_model

__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "AdapterConfig",
    "AdapterMixin",
    "PickledCheckpointError",
    "TallAdapterConfig",
    "checkpoint_kind",
    "get_tall_model",
]

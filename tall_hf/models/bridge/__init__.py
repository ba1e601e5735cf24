"""The multilingual encoder-fusion bridge: configuration, model and processor. Its training data lives in
`tall_hf.data` (`prefix_lm`, `task_data`) and its training in `tall_hf.training.bridge`."""

import importlib
import warnings

from .configuration_bridge import BridgeConfig
from .modeling_bridge import BridgeCausalLMOutput, BridgeEncoderOutput, BridgeForCausalLM, BridgePreTrainedModel
from .processing_bridge import BridgeProcessor

# Names this package exported before its data and training moved, and where they live now.
_MOVED = {
    "BRIDGE_OBJECTIVES": "tall_hf.training.bridge",
    "bridge_training_pairs": "tall_hf.training.bridge",
    "create_bridge_trainer": "tall_hf.training.bridge",
    "PrefixLMCollator": "tall_hf.data.prefix_lm",
    "prefix_lm_pairs": "tall_hf.data.prefix_lm",
    "tokenize_prefix_lm": "tall_hf.data.prefix_lm",
    "load_data_file": "tall_hf.data.task_data",
    "supervised_pairs": "tall_hf.data.task_data",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"`tall_hf.models.bridge.{name}` moved to `{_MOVED[name]}.{name}`; the old path will be removed.",
        FutureWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(_MOVED[name]), name)


__all__ = [
    "BridgeCausalLMOutput",
    "BridgeConfig",
    "BridgeEncoderOutput",
    "BridgeForCausalLM",
    "BridgePreTrainedModel",
    "BridgeProcessor",
]

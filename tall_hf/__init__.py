"""tall_hf: English-centric LLMs made useful in low-resource languages (TALL and multilingual encoder fusion).

The package imports lazily: `import tall_hf` (and `tall-hf --help`) loads neither torch nor transformers. Importing
`tall_hf.models` (which any model or processor does) registers TALL and the bridge with transformers' Auto classes;
the first use of a name exported here also registers the `tall-next-word` pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BridgeCausalLMOutput": "tall_hf.models.bridge",
    "BridgeConfig": "tall_hf.models.bridge",
    "BridgeForCausalLM": "tall_hf.models.bridge",
    "BridgeProcessor": "tall_hf.models.bridge",
    "TallCausalLMOutput": "tall_hf.models.tall",
    "TallConfig": "tall_hf.models.tall",
    "TallForCausalLM": "tall_hf.models.tall",
    "TallForConditionalGeneration": "tall_hf.models.tall",
    "TallModel": "tall_hf.models.tall",
    "TallPredictor": "tall_hf.generation",
    "TallProcessor": "tall_hf.models.tall",
    "get_tall_model": "tall_hf.adapters",
}

__all__ = [
    "BridgeCausalLMOutput",
    "BridgeConfig",
    "BridgeForCausalLM",
    "BridgeProcessor",
    "TallCausalLMOutput",
    "TallConfig",
    "TallForCausalLM",
    "TallForConditionalGeneration",
    "TallModel",
    "TallPredictor",
    "TallProcessor",
    "__version__",
    "get_tall_model",
]

if TYPE_CHECKING:
    from .adapters import get_tall_model
    from .generation import TallPredictor
    from .models.bridge import BridgeCausalLMOutput, BridgeConfig, BridgeForCausalLM, BridgeProcessor
    from .models.tall import TallConfig, TallForConditionalGeneration, TallModel, TallProcessor
    from .models.tall.modeling_tall import TallCausalLMOutput, TallForCausalLM


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tall_hf' has no attribute {name!r}")
    importlib.import_module("tall_hf.generation")  # registers the pipeline and the Auto classes first
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

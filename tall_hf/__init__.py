"""tall_hf: English-centric LLMs made useful in low-resource languages (TALL and multilingual encoder fusion)."""

from .adapters import TallAdapterConfig, get_tall_model
from .generation import TallPredictor, register_pipeline
from .models.auto import register_auto_classes
from .models.bridge import BridgeCausalLMOutput, BridgeConfig, BridgeForCausalLM, BridgeProcessor
from .models.tall import TallCausalLMOutput, TallConfig, TallForCausalLM, TallProcessor

__version__ = "0.1.0"

register_auto_classes()
register_pipeline()

__all__ = [
    "BridgeCausalLMOutput",
    "BridgeConfig",
    "BridgeForCausalLM",
    "BridgeProcessor",
    "TallAdapterConfig",
    "TallCausalLMOutput",
    "TallConfig",
    "TallForCausalLM",
    "TallPredictor",
    "TallProcessor",
    "__version__",
    "get_tall_model",
]

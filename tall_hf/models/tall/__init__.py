from typing import Any

from . import modeling_tall
from .configuration_tall import TallConfig
from .modeling_tall import (
    TallEncoder,
    TallEncoderOutput,
    TallForConditionalGeneration,
    TallModel,
    TallModelOutput,
    TallPreTrainedModel,
    TallSeq2SeqLMOutput,
)
from .processing_tall import TallProcessor


def __getattr__(name: str) -> Any:
    """Deprecated aliases (`TallForCausalLM`, `TallCausalLMOutput`) with a `FutureWarning`."""
    return getattr(modeling_tall, name)


__all__ = [
    "TallConfig",
    "TallEncoder",
    "TallEncoderOutput",
    "TallForConditionalGeneration",
    "TallModel",
    "TallModelOutput",
    "TallPreTrainedModel",
    "TallProcessor",
    "TallSeq2SeqLMOutput",
]

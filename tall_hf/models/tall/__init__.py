from .configuration_tall import TallConfig
from .modeling_tall import TallCausalLMOutput, TallEncoderOutput, TallForCausalLM, TallPreTrainedModel
from .processing_tall import TallProcessor

__all__ = [
    "TallCausalLMOutput",
    "TallConfig",
    "TallEncoderOutput",
    "TallForCausalLM",
    "TallPreTrainedModel",
    "TallProcessor",
]

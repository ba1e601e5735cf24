from .configuration_bridge import BridgeConfig
from .modeling_bridge import BridgeCausalLMOutput, BridgeEncoderOutput, BridgeForCausalLM, BridgePreTrainedModel
from .prefix_lm import PrefixLMCollator, prefix_lm_pairs, tokenize_prefix_lm
from .processing_bridge import BridgeProcessor

__all__ = [
    "BridgeCausalLMOutput",
    "BridgeConfig",
    "BridgeEncoderOutput",
    "BridgeForCausalLM",
    "BridgePreTrainedModel",
    "BridgeProcessor",
    "PrefixLMCollator",
    "prefix_lm_pairs",
    "tokenize_prefix_lm",
]

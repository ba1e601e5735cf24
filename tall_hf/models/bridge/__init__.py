from .configuration_bridge import BridgeConfig
from .modeling_bridge import BridgeCausalLMOutput, BridgeEncoderOutput, BridgeForCausalLM, BridgePreTrainedModel
from .prefix_lm import PrefixLMCollator, prefix_lm_pairs, tokenize_prefix_lm
from .processing_bridge import BridgeProcessor
from .task_data import load_data_file, supervised_pairs
from .trainer import BRIDGE_OBJECTIVES, bridge_training_pairs, create_bridge_trainer

__all__ = [
    "BRIDGE_OBJECTIVES",
    "BridgeCausalLMOutput",
    "BridgeConfig",
    "BridgeEncoderOutput",
    "BridgeForCausalLM",
    "BridgePreTrainedModel",
    "BridgeProcessor",
    "PrefixLMCollator",
    "bridge_training_pairs",
    "create_bridge_trainer",
    "load_data_file",
    "prefix_lm_pairs",
    "supervised_pairs",
    "tokenize_prefix_lm",
]

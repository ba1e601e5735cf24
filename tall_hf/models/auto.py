"""Registration with transformers' Auto classes, so `AutoModel.from_pretrained` loads the package's checkpoints."""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoProcessor

from .bridge import BridgeConfig, BridgeForCausalLM, BridgeProcessor
from .tall import TallConfig, TallForConditionalGeneration, TallModel, TallProcessor


def register_auto_classes() -> None:
    """Map each config of the package to its model and processor in the Auto classes (idempotent). TALL is an
    encoder-decoder: `AutoModel` gives its base ([`TallModel`]), `AutoModelForSeq2SeqLM` the model with its LM head;
    the bridge is a causal LM."""
    AutoConfig.register(TallConfig.model_type, TallConfig, exist_ok=True)
    AutoModel.register(TallConfig, TallModel, exist_ok=True)
    AutoModelForSeq2SeqLM.register(TallConfig, TallForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(TallConfig, TallProcessor, exist_ok=True)
    AutoConfig.register(BridgeConfig.model_type, BridgeConfig, exist_ok=True)
    AutoModel.register(BridgeConfig, BridgeForCausalLM, exist_ok=True)
    AutoModelForCausalLM.register(BridgeConfig, BridgeForCausalLM, exist_ok=True)
    AutoProcessor.register(BridgeConfig, BridgeProcessor, exist_ok=True)

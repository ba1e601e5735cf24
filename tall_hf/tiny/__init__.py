"""Tiny components with random weights (real Marian, Qwen2/Llama/Bloom/GPT-2, mT5 and tokenizer code, small configs,
tokenizers trained on the package's corpus): what `--tiny_components` and the demo run offline, and what the tests
and benchmarks build on (`tall_hf.testing` re-exports them)."""

from .bridge_components import build_tiny_bridge_components
from .tall_components import TINY_LLM_CONFIGS, build_tiny_components

__all__ = ["TINY_LLM_CONFIGS", "build_tiny_bridge_components", "build_tiny_components"]

"""Tiny components with random weights (real Marian, Qwen2/Llama/Bloom/GPT-2, mT5 and tokenizer code, small configs,
tokenizers trained on the package's corpus): what `--tiny_components` of the command line and examples builds
(`TinyComponentsArguments`), what the demo runs offline, and what the tests and benchmarks build on (`tall_hf.testing`
re-exports them). `building` holds the builders the known-answer worlds (`tall_hf.worlds`) share with them. Only the
worlds, the demos, the command line and `testing` import this package."""

from .arguments import TinyComponentsArguments, tiny_model_names
from .bridge_components import build_tiny_bridge_components
from .building import TINY_LLM_CONFIGS
from .tall_components import build_tiny_components

__all__ = [
    "TINY_LLM_CONFIGS",
    "TinyComponentsArguments",
    "build_tiny_bridge_components",
    "build_tiny_components",
    "tiny_model_names",
]

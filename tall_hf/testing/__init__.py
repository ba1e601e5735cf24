"""Helpers of the tests and benchmarks: the tiny offline components (from `tall_hf.tiny`) and the paper's reference
generation algorithm (`tall_hf.testing.reference`). Production code does not import this package."""

from ..tiny import TINY_LLM_CONFIGS, build_tiny_bridge_components, build_tiny_components

__all__ = ["TINY_LLM_CONFIGS", "build_tiny_bridge_components", "build_tiny_components"]

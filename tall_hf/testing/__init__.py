"""Tiny offline components for tests, benchmarks and the demo."""

from .tiny_bridge_components import build_tiny_bridge_components
from .tiny_components import TINY_LLM_CONFIGS, build_tiny_components

__all__ = ["TINY_LLM_CONFIGS", "build_tiny_bridge_components", "build_tiny_components"]

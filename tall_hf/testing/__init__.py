"""Tiny offline components for tests, benchmarks and the demo."""

from .tiny_components import TINY_LLM_CONFIGS, build_tiny_components

__all__ = ["TINY_LLM_CONFIGS", "build_tiny_components"]

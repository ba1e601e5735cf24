"""Fast inference with TALL: cached next-word prediction and multi-word continuation."""

from .predictor import DecodingOptions, TallPredictor

__all__ = ["DecodingOptions", "TallPredictor"]

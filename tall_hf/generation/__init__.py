"""Fast inference with TALL: cached next-word prediction and multi-word continuation."""

from .pipeline import TallNextWordPipeline, register_pipeline
from .predictor import DecodingOptions, TallPredictor

__all__ = ["DecodingOptions", "TallNextWordPipeline", "TallPredictor", "register_pipeline"]

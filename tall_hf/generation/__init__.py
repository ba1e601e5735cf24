"""Fast inference with TALL: cached next-word prediction and multi-word continuation.

Importing this package registers the `tall-next-word` pipeline (and, through the models, the Auto classes).
"""

from .pipeline import TallNextWordPipeline, register_pipeline
from .predictor import DecodingOptions, TallPredictor

register_pipeline()

__all__ = ["DecodingOptions", "TallNextWordPipeline", "TallPredictor", "register_pipeline"]

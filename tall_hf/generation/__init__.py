"""Inference with TALL over `generate`: next-word prediction and multi-word continuation.

Importing this package registers the `tall-next-word` pipeline (and, through the models, the Auto classes).
"""

from .pipeline import TallNextWordPipeline, register_pipeline
from .predictor import DecodingOptions, TallPredictor
from .word_boundary import PerRowSampler, WordBoundaryCriteria, split_words, word_start_mask

register_pipeline()

__all__ = [
    "DecodingOptions",
    "PerRowSampler",
    "TallNextWordPipeline",
    "TallPredictor",
    "WordBoundaryCriteria",
    "register_pipeline",
    "split_words",
    "word_start_mask",
]

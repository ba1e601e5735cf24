"""Inference with TALL over `generate`: next-word prediction and multi-word continuation.

Importing this package registers the `tall-next-word` pipeline (and, through the models, the Auto classes).
"""

from .decoding import SAMPLING, DecodingOptions
from .pipeline import TallNextWordPipeline, register_pipeline
from .predictor import TallPredictor
from .word_boundary import PerRowSampler, WordBoundaryCriteria, split_words, word_start_mask

register_pipeline()

__all__ = [
    "SAMPLING",
    "DecodingOptions",
    "PerRowSampler",
    "TallNextWordPipeline",
    "TallPredictor",
    "WordBoundaryCriteria",
    "register_pipeline",
    "split_words",
    "word_start_mask",
]

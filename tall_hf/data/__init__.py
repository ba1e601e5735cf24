"""From raw low-resource text to TALL's three tokenized streams."""

from .collator import TallDataCollator
from .preparation import PreparationArguments, clean_sentences, prepare_tall_dataset, translate_shards
from .translation import translate

__all__ = [
    "PreparationArguments",
    "TallDataCollator",
    "clean_sentences",
    "prepare_tall_dataset",
    "translate",
    "translate_shards",
]

"""From raw low-resource text to TALL's three tokenized streams."""

from .collator import TallDataCollator
from .preparation import PreparationArguments, clean_sentences, prepare_tall_dataset, translate_shards
from .translation import batch_encoder_outputs, lr_hr_translator, save_translator, translate

__all__ = [
    "PreparationArguments",
    "TallDataCollator",
    "batch_encoder_outputs",
    "clean_sentences",
    "lr_hr_translator",
    "prepare_tall_dataset",
    "save_translator",
    "translate",
    "translate_shards",
]

"""Training TALL with `transformers.Trainer`, and the optional adapter pre-training."""

from .metrics import TallMetrics, preprocess_logits_for_metrics
from .trainer import create_tall_trainer, tall_training_arguments, train_tall

__all__ = [
    "TallMetrics",
    "create_tall_trainer",
    "preprocess_logits_for_metrics",
    "tall_training_arguments",
    "train_tall",
]

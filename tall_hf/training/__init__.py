"""Training TALL with `transformers.Trainer`, and the optional adapter pre-training."""

from .adapter_pretraining import AdapterAutoencoder, pretrain_alignment_adapters
from .metrics import TallMetrics, preprocess_logits_for_metrics
from .recipes import tall_training_arguments
from .trainer import SaveProcessorCallback, create_tall_trainer, train_tall

__all__ = [
    "AdapterAutoencoder",
    "SaveProcessorCallback",
    "TallMetrics",
    "create_tall_trainer",
    "preprocess_logits_for_metrics",
    "pretrain_alignment_adapters",
    "tall_training_arguments",
    "train_tall",
]

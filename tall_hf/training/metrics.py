"""Evaluation metrics of TALL training: loss, perplexity and last-token accuracy, computed from small per-position
summaries (argmax id and gold-token negative log-likelihood) instead of full-vocabulary logits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from transformers import EvalPrediction

from ..modules.losses import IGNORE_INDEX


def preprocess_logits_for_metrics(
    logits: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Trainer` hook: reduce each batch's `(batch, length, vocab)` logits to `(argmax ids, gold-token NLL)`, both
    `(batch, length)`, so evaluation never stores the vocabulary dimension."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    predictions = logits.argmax(dim=-1)
    nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    return predictions, nll


@dataclass
class TallMetrics:
    """`compute_metrics` for `Trainer`: `last_token_accuracy` (argmax at each row's last labelled position),
    `token_accuracy` (over every labelled position) and `perplexity` of the training objective of `loss_mode`
    (the last token's for `last_token`, every labelled token's otherwise)."""

    loss_mode: str

    def __call__(self, eval_prediction: EvalPrediction) -> dict[str, float]:
        predictions, nll = eval_prediction.predictions
        labels = np.asarray(eval_prediction.label_ids)
        predictions, nll = np.asarray(predictions), np.asarray(nll, dtype=np.float64)
        valid = labels != IGNORE_INDEX
        rows = np.arange(labels.shape[0])
        last = valid.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
        hits = predictions == labels
        if self.loss_mode == "last_token":
            mean_nll = nll[rows, last].mean()
        else:
            mean_nll = nll[valid].sum() / max(int(valid.sum()), 1)
        return {
            "last_token_accuracy": float(hits[rows, last].mean()),
            "token_accuracy": float(hits[valid].mean()),
            "perplexity": float(np.exp(mean_nll)),
        }


__all__ = ["TallMetrics", "preprocess_logits_for_metrics"]

"""Reduced logits for training: the LM head runs only where the loss reads (like transformers' `logits_to_keep`)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .losses import IGNORE_INDEX, last_label_positions

# Loss modes whose loss reads a few target positions only: training computes their logits and no others.
REDUCED_LOGITS_MODES = ("last_token", "last_word")


def loss_positions(labels: torch.Tensor, loss_mode: str) -> torch.Tensor:
    """Boolean `(batch, length)` mask of the target positions the loss of `loss_mode` reads: each row's last labelled
    position (`last_token`) or every labelled one (`last_word`, `all_tokens`)."""
    if loss_mode != "last_token":
        return labels.ne(IGNORE_INDEX)
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[torch.arange(labels.shape[0], device=labels.device), last_label_positions(labels)] = True
    return keep


def kept_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `(kept positions, vocab)` logits against the labels at `keep`: the same value as the
    loss of the full `(batch, length, vocab)` logits, since the loss reads no other position. 0 (with zero gradients)
    when nothing is kept."""
    total = F.cross_entropy(logits.float(), labels[keep], reduction="sum")
    return total / keep.sum().clamp(min=1)


__all__ = ["REDUCED_LOGITS_MODES", "kept_cross_entropy", "loss_positions"]

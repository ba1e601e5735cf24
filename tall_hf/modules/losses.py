"""Losses on the target stream: the paper's last-non-pad-token loss and the per-token one."""

from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE_INDEX = -100


def last_label_positions(labels: torch.Tensor) -> torch.Tensor:
    """Index of the last position whose label is not `IGNORE_INDEX`, per row (left or right padding)."""
    valid = labels.ne(IGNORE_INDEX)
    if not bool(valid.any(dim=-1).all()):
        empty_rows = (~valid.any(dim=-1)).nonzero().flatten().tolist()
        raise ValueError(f"Target rows {empty_rows} have no label: every target sentence needs at least one token.")
    positions = torch.arange(labels.shape[-1], device=labels.device)
    return (valid * (positions + 1)).argmax(dim=-1)


def check_label_shape(target: torch.Tensor, labels: torch.Tensor) -> None:
    """`labels` must have one entry per target position of `target` (the target stream `(batch, positions)` or its
    logits `(batch, positions, vocab)`): a `ValueError` naming both shapes otherwise."""
    positions = target.shape[:2]
    if labels.shape != positions:
        raise ValueError(
            f"labels have shape {tuple(labels.shape)} but the target stream has shape {tuple(positions)} "
            "(batch, positions): pass one label per decoder_input_ids position (IGNORE_INDEX -100 where no loss)."
        )


def last_token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at each row's last labelled position only, averaged over the batch."""
    check_label_shape(logits, labels)
    rows = torch.arange(labels.shape[0], device=labels.device)
    last = last_label_positions(labels)
    return F.cross_entropy(logits[rows, last].float(), labels[rows, last])


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every labelled position; 0 (with zero gradients) when no position is labelled."""
    check_label_shape(logits, labels)
    total = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    return total / labels.ne(IGNORE_INDEX).sum().clamp(min=1)

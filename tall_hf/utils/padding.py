"""Right padding of token-id rows, shared by the processor, the collator and the predictor."""

from __future__ import annotations

import torch


def pad_rows(rows: list[list[int]], value: int, multiple_of: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad `rows` with `value` (to a multiple of `multiple_of` if given); returns the ids and the mask."""
    length = max(len(row) for row in rows)
    if multiple_of:
        length = -(-length // multiple_of) * multiple_of
    ids = torch.full((len(rows), length), value, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, : len(row)] = 1
    return ids, mask

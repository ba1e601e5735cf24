"""Dimension alignment adapter: maps hidden states of one model's width to another's."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


class AlignmentAdapter(nn.Module):
    """Linear(in -> f*out) -> LayerNorm -> act -> Dropout -> Linear(-> out) -> LayerNorm, padding zeroed.

    TALL's stages 2 and 5; `hidden_factor` and `dropout` come from `TallConfig`. With `hidden_factor=2` and GELU this
    is the paper's adapter: for a 1024-wide translator and a 1024-wide LLM it holds 4,203,520 parameters.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden_factor: int,
        dropout: float,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        hidden = hidden_factor * out_features
        self.in_features = in_features
        self.out_features = out_features
        self.up = nn.Linear(in_features, hidden)
        self.up_norm = nn.LayerNorm(hidden)
        self.act = ACT2FN[activation]
        self.dropout = nn.Dropout(dropout)
        self.down = nn.Linear(hidden, out_features)
        self.down_norm = nn.LayerNorm(out_features)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.dropout(self.act(self.up_norm(self.up(hidden_states))))
        hidden = self.down_norm(self.down(hidden))
        if attention_mask is not None:
            hidden = hidden * attention_mask.unsqueeze(-1).to(hidden.dtype)
        return hidden

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}"

"""Batches of TALL's three streams: each padded with its own tokenizer's pad id, labels built for the loss mode."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from ..models.tall.configuration_tall import LOSS_MODES
from ..models.tall.processing_tall import TallProcessor
from ..utils.padding import pad_rows

REQUIRED_FEATURES = ("input_ids", "bridge_input_ids", "target_ids", "last_word_length")


@dataclass
class TallDataCollator:
    """Collates rows of `prepare_tall_dataset` into model inputs.

    Source and bridge streams are right-padded with the source and LLM tokenizers' pad ids; the target stream is
    shifted right behind the decoder start token (teacher forcing) and padded with the target tokenizer's pad id;
    `labels` follow `loss_mode` (default: the processor's) with `-100` on padding; rows with an `llm_states` column
    (`tall_hf.training.frozen_states`) also give `llm_hidden_states`, padded with zeros like the bridge stream. The result equals what
    `TallProcessor(source, bridge, target)` gives for the same sentences. Text columns are ignored, so a `Trainer`
    using it needs `remove_unused_columns=False` (its default would drop `target_ids`).
    """

    processor: TallProcessor
    loss_mode: str | None = None
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        self.loss_mode = self.loss_mode or self.processor.loss_mode
        if self.loss_mode not in LOSS_MODES:
            raise ValueError(f"loss_mode must be one of {LOSS_MODES}, got {self.loss_mode!r}.")

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("Empty batch: no rows to collate.")
        missing = [name for name in REQUIRED_FEATURES if name not in features[0]]
        if missing:
            raise KeyError(
                f"Rows lack {missing}: pass rows of `prepare_tall_dataset` (with a Trainer, set "
                "remove_unused_columns=False so it keeps them)."
            )
        processor, multiple = self.processor, self.pad_to_multiple_of
        targets = [list(row["target_ids"]) for row in features]
        if any(not ids for ids in targets):
            raise ValueError("A row has an empty target stream; prepare_tall_dataset never produces one.")
        input_ids, attention_mask = pad_rows(
            [row["input_ids"] for row in features], _pad_id(processor, "source"), multiple
        )
        bridge_ids, bridge_mask = pad_rows(
            [row["bridge_input_ids"] for row in features], _pad_id(processor, "llm"), multiple
        )
        last_word_lengths = [row["last_word_length"] for row in features]
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "bridge_input_ids": bridge_ids,
            "bridge_attention_mask": bridge_mask,
            **processor.teacher_forcing(targets, last_word_lengths, self.loss_mode, multiple),
        }
        if "llm_states" in features[0]:  # stages 1-4 precomputed (`tall_hf.training.frozen_states`)
            batch["llm_hidden_states"] = _pad_states([row["llm_states"] for row in features], bridge_ids.shape[1])
        return batch


def _pad_states(rows: list, length: int) -> torch.Tensor:
    """Rows of `(tokens, width)` states right-padded with zeros to `(batch, length, width)`."""
    states = pad_sequence([torch.as_tensor(row, dtype=torch.float32) for row in rows], batch_first=True)
    return nn.functional.pad(states, (0, 0, 0, length - states.shape[1]))


def _pad_id(processor: TallProcessor, stream: str) -> int:
    return getattr(processor, f"{stream}_tokenizer").pad_token_id


__all__ = ["TallDataCollator"]

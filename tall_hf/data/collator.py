"""Batches of TALL's three streams: each padded with its own tokenizer's pad id, labels built for the loss mode."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.tall.configuration_tall import LOSS_MODES
from ..models.tall.processing_tall import TallProcessor
from ..modules.losses import IGNORE_INDEX

REQUIRED_FEATURES = ("input_ids", "bridge_input_ids", "target_ids", "last_word_length")


def target_labels(target_ids: list[int], last_word_length: int, loss_mode: str) -> list[int]:
    """Unshifted labels of one target sentence: every token (`last_token`, `all_tokens`; the model's `last_token`
    loss reads the last one) or only the last word's tokens (`last_word`), the rest `IGNORE_INDEX`."""
    if loss_mode == "last_word":
        keep = max(1, min(last_word_length, len(target_ids)))
        return [IGNORE_INDEX] * (len(target_ids) - keep) + list(target_ids[-keep:])
    return list(target_ids)


def pad_rows(rows: list[list[int]], value: int, multiple_of: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad `rows` with `value`; returns the ids and the attention mask."""
    length = max(len(row) for row in rows)
    if multiple_of:
        length = -(-length // multiple_of) * multiple_of
    ids = torch.full((len(rows), length), value, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, : len(row)] = 1
    return ids, mask


@dataclass
class TallDataCollator:
    """Collates rows of `prepare_tall_dataset` into model inputs.

    Source and bridge streams are right-padded with the source and LLM tokenizers' pad ids; the target stream is
    shifted right behind the decoder start token (teacher forcing) and padded with the target tokenizer's pad id;
    `labels` follow `loss_mode` (default: the processor's) with `-100` on padding. The result equals what
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
        start = processor.decoder_start_token_id
        targets = [list(row["target_ids"]) for row in features]
        if any(not ids for ids in targets):
            raise ValueError("A row has an empty target stream; prepare_tall_dataset never produces one.")
        input_ids, attention_mask = pad_rows(
            [row["input_ids"] for row in features], _pad_id(processor, "source"), multiple
        )
        bridge_ids, bridge_mask = pad_rows(
            [row["bridge_input_ids"] for row in features], _pad_id(processor, "llm"), multiple
        )
        decoder_ids, decoder_mask = pad_rows(
            [[start] + ids[:-1] for ids in targets], _pad_id(processor, "target"), multiple
        )
        labels = [
            target_labels(ids, row["last_word_length"], self.loss_mode)
            for ids, row in zip(targets, features, strict=True)
        ]
        label_ids, _ = pad_rows(labels, IGNORE_INDEX, multiple)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "bridge_input_ids": bridge_ids,
            "bridge_attention_mask": bridge_mask,
            "decoder_input_ids": decoder_ids,
            "decoder_attention_mask": decoder_mask,
            "labels": label_ids,
        }


def _pad_id(processor: TallProcessor, stream: str) -> int:
    return getattr(processor, f"{stream}_tokenizer").pad_token_id


__all__ = ["TallDataCollator", "pad_rows", "target_labels"]

"""Batched translation with a seq2seq translator (`generate`), shared by data preparation and inference.

Sentences are sorted by length (longest first) and cut into batches by a token budget, so a batch pads little and its
beams stop at about the same step; the translations come back in input order."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers import BatchEncoding, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

from ..utils.progress import advance_phase

logger = logging.get_logger(__name__)


def position_limit(config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase | None = None) -> int | None:
    """How many tokens a model reads: the smaller of its position table and the tokenizer's `model_max_length`."""
    limits = [getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)]
    if tokenizer is not None and tokenizer.model_max_length < 10**9:  # tokenizers without a limit use a huge value
        limits.append(tokenizer.model_max_length)
    limits = [limit for limit in limits if limit]
    return min(limits) if limits else None


def keep_ends(rows: list[list[int]], max_length: int | None) -> tuple[list[list[int]], int]:
    """Cut every token row over `max_length` to its last `max_length` tokens (the end of a prefix is what a
    next-word model needs); returns the rows and how many were cut."""
    if max_length is None:
        return rows, 0
    cut = sum(len(row) > max_length for row in rows)
    return ([row[-max_length:] for row in rows] if cut else rows), cut


def tokenize_keeping_ends(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int | None
) -> tuple[BatchEncoding, int]:
    """Tokenize and pad `texts` with `keep_ends`; returns the tensors and how many rows were cut."""
    rows, cut = keep_ends(tokenizer(texts)["input_ids"], max_length)
    return tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt"), cut


def length_batches(lengths: list[int], max_sentences: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices of `lengths` sorted longest first, cut into batches of at most `max_sentences` whose padded size
    (sentences x longest length) stays within `max_tokens` (a longer single sentence gets a batch of its own)."""
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batch and (len(batch) == max_sentences or (len(batch) + 1) * lengths[batch[0]] > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


@torch.inference_mode()
def translate(
    texts: list[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    batch_size: int = 64,
    max_batch_tokens: int = 8192,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    advance_progress: bool = False,
) -> list[str]:
    """Translate `texts` on the model's device, in input order (`advance_progress`: the translation is the work of the
    phase the caller runs in, whose bar advances with every batch: `tall_hf.utils.progress`).

    Batches hold sentences of similar length, at most `batch_size` of them and at most `max_batch_tokens` padded
    source tokens times beams. Generation settings default to the translator's own `generation_config` (e.g.
    Marian's beam size); `num_beams` and `max_new_tokens` override them. A text longer than the translator reads (its
    position table or its tokenizer's limit, whichever is smaller) is translated from its last tokens, with one
    warning that counts them.
    """
    if batch_size < 1 or max_batch_tokens < 1:
        raise ValueError(f"batch_size and max_batch_tokens must be positive, got {batch_size} and {max_batch_tokens}.")
    num_beams = num_beams or model.generation_config.num_beams or 1
    generate_kwargs = {"num_beams": num_beams}
    if max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = max_new_tokens
    limit = position_limit(model.config, tokenizer)
    was_training = model.training
    model.eval()
    source_ids, cut = keep_ends(tokenizer(texts)["input_ids"] if texts else [], limit)
    outputs = [""] * len(texts)
    for batch in length_batches([len(ids) for ids in source_ids], batch_size, max(max_batch_tokens // num_beams, 1)):
        inputs = tokenizer.pad({"input_ids": [source_ids[i] for i in batch]}, return_tensors="pt").to(model.device)
        generated = model.generate(**inputs, **generate_kwargs)
        for index, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
            outputs[index] = text.strip()
        if advance_progress:
            advance_phase(len(batch))
    model.train(was_training)
    if cut:
        logger.warning(
            f"Translation: {cut} of {len(texts)} texts were longer than the translator reads ({limit} tokens); "
            "each was translated from its last tokens."
        )
    return outputs

"""Batched translation with a seq2seq translator (`generate`), shared by data preparation and inference."""

from __future__ import annotations

import torch
from transformers import BatchEncoding, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

logger = logging.get_logger(__name__)


def position_limit(config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase | None = None) -> int | None:
    """How many tokens a model reads: the smaller of its position table and the tokenizer's `model_max_length`."""
    limits = [getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)]
    if tokenizer is not None and tokenizer.model_max_length < 10**9:  # tokenizers without a limit use a huge value
        limits.append(tokenizer.model_max_length)
    limits = [limit for limit in limits if limit]
    return min(limits) if limits else None


def tokenize_keeping_ends(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int | None
) -> tuple[BatchEncoding, int]:
    """Tokenize and pad `texts`, cutting any row over `max_length` tokens to its last `max_length` (the end of a
    prefix is what a next-word model needs); returns the tensors and how many rows were cut."""
    rows = tokenizer(texts)["input_ids"]
    cut = sum(max_length is not None and len(row) > max_length for row in rows)
    if cut:
        rows = [row[-max_length:] if len(row) > max_length else row for row in rows]
    encoded = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
    return encoded, cut


@torch.inference_mode()
def translate(
    texts: list[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    batch_size: int = 32,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
) -> list[str]:
    """Translate `texts` in batches on the model's device; generation settings default to the translator's own
    `generation_config` (e.g. Marian's beam size). A text longer than the translator reads (its position table or
    its tokenizer's limit, whichever is smaller) is translated from its last tokens, with one warning that counts them.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    generate_kwargs = {}
    if num_beams is not None:
        generate_kwargs["num_beams"] = num_beams
    if max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = max_new_tokens
    limit = position_limit(model.config, tokenizer)
    was_training = model.training
    model.eval()
    outputs: list[str] = []
    cut = 0
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        inputs, chunk_cut = tokenize_keeping_ends(tokenizer, chunk, limit)
        cut += chunk_cut
        generated = model.generate(**inputs.to(model.device), **generate_kwargs)
        outputs.extend(text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True))
    model.train(was_training)
    if cut:
        logger.warning(
            f"Translation: {cut} of {len(texts)} texts were longer than the translator reads ({limit} tokens); "
            "each was translated from its last tokens."
        )
    return outputs

"""Batched translation with a seq2seq translator (`generate`), shared by data preparation and inference."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

logger = logging.get_logger(__name__)


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
    `generation_config` (e.g. Marian's beam size)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    generate_kwargs = {}
    if num_beams is not None:
        generate_kwargs["num_beams"] = num_beams
    if max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = max_new_tokens
    was_training = model.training
    model.eval()
    outputs: list[str] = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        inputs = tokenizer(chunk, padding=True, truncation=True, return_tensors="pt").to(model.device)
        generated = model.generate(**inputs, **generate_kwargs)
        outputs.extend(text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True))
    model.train(was_training)
    return outputs

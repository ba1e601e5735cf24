"""The bridge's prefix-LM training data: English text split into (prefix, continuation) pairs for the prefix-LM objective.

The encoder reads the prefix; the LLM, after the soft prompt, is trained to continue it. The split is made once,
seeded, at a word boundary; tokenization is done once with `Dataset.map`, and the collator only pads.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset
from transformers import BatchEncoding
from transformers.utils import logging

from ..models.bridge.processing_bridge import BridgeProcessor
from ..utils.text import words as split_words
from .task_data import load_data_file
from .text_files import read_sentences

logger = logging.get_logger(__name__)


def split_prefix_continuation(words: list[str], rng: random.Random, min_fraction: float, max_fraction: float) -> int:
    """A split point k (1 <= k < len(words)): the prefix is `words[:k]`, drawn in [min_fraction, max_fraction]."""
    low = max(1, round(len(words) * min_fraction))
    high = min(len(words) - 1, max(low, round(len(words) * max_fraction)))
    return rng.randint(low, high)


def prefix_lm_pairs(
    texts: Iterable[str] | str | os.PathLike,
    *,
    min_words: int = 4,
    min_fraction: float = 0.25,
    max_fraction: float = 0.75,
    seed: int = 0,
    text_column: str = "text",
) -> Dataset:
    """A `Dataset` with `prefix` and `continuation` columns from texts, or a data file: a text file (one text a line)
    or a `.jsonl`/`.json`/`.csv` file whose `text_column` holds the texts.

    Each text of at least `min_words` words is split once at a word boundary drawn (seeded) so that the prefix holds
    between `min_fraction` and `max_fraction` of its words; shorter texts are skipped.
    """
    if not 0 < min_fraction <= max_fraction < 1:
        raise ValueError(f"Need 0 < min_fraction <= max_fraction < 1, got {min_fraction} and {max_fraction}.")
    if min_words < 2:
        raise ValueError(f"A prefix and a continuation need at least two words: min_words={min_words}.")
    if isinstance(texts, (str, os.PathLike)):
        if Path(texts).suffix.lower() in (".txt", ".text", ""):
            texts = read_sentences(texts)
        else:
            data = load_data_file(texts)
            if text_column not in data.column_names:
                raise ValueError(f"{str(texts)!r} has no column {text_column!r}; it has {data.column_names}.")
            texts = [text for text in data[text_column] if text]
    rng = random.Random(seed)
    prefixes, continuations, skipped = [], [], 0
    for text in texts:
        words = split_words(text)
        if len(words) < min_words:
            skipped += 1
            continue
        split = split_prefix_continuation(words, rng, min_fraction, max_fraction)
        prefixes.append(" ".join(words[:split]))
        continuations.append(" ".join(words[split:]))
    if skipped:
        logger.info(f"Skipped {skipped} texts shorter than {min_words} words.")
    if not prefixes:
        raise ValueError(f"No text has at least {min_words} words: nothing to train on.")
    return Dataset.from_dict({"prefix": prefixes, "continuation": continuations})


def tokenize_prefix_lm(
    pairs: Dataset, processor: BridgeProcessor, *, max_length: int | None = 128, add_eos: bool = True
) -> Dataset:
    """Tokenize `prefix` (encoder) and `continuation` (LLM) once; the result has `input_ids` and `llm_input_ids`.
    Serves both objectives: prefix-LM pairs (`prefix_lm_pairs`) and task examples (`supervised_pairs`)."""
    missing = {"prefix", "continuation"} - set(pairs.column_names)
    if missing:
        raise ValueError(f"The data set lacks the column(s) {sorted(missing)}; build it with `prefix_lm_pairs`.")

    def tokenize(batch: dict) -> dict:
        return processor.tokenize(batch["prefix"], batch["continuation"], add_eos=add_eos, max_length=max_length)

    return pairs.map(tokenize, batched=True, remove_columns=pairs.column_names, desc="Tokenizing prefix-LM pairs")


@dataclass
class PrefixLMCollator:
    """Pads tokenized (prefix, continuation) examples of either objective into the bridge's inputs (`labels` cover
    only the continuation: the rest of the text, or the label string)."""

    processor: BridgeProcessor

    def __call__(self, features: list[dict]) -> BatchEncoding:
        return self.processor.pad([{k: f[k] for k in ("input_ids", "llm_input_ids")} for f in features])


__all__ = ["PrefixLMCollator", "prefix_lm_pairs", "tokenize_prefix_lm"]

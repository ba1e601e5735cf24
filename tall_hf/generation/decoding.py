"""How a word is decoded: greedy, or sampled with the paper's temperature / top-k / top-p, within a token budget.

The one home of these settings: `TallPredictor`, the pipeline, the evaluation's approaches and its command-line
arguments read them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


@dataclass(frozen=True)
class DecodingOptions:
    """How each token of a word is chosen: greedy, or sampled after the paper's temperature / top-k / top-p; at most
    `max_word_tokens` new tokens a word."""

    do_sample: bool = False
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    max_word_tokens: int = 8

    def __post_init__(self) -> None:
        if self.max_word_tokens < 1:
            raise ValueError(f"max_word_tokens must be at least 1, got {self.max_word_tokens}.")

    def warpers(self) -> list:
        """The paper's sampling warpers, in `generate`'s order."""
        return [TemperatureLogitsWarper(self.temperature), TopKLogitsWarper(self.top_k), TopPLogitsWarper(self.top_p)]


# The paper's sampling settings (`generate` keyword arguments), as `DecodingOptions` defines them.
SAMPLING = {name: getattr(DecodingOptions, name) for name in ("temperature", "top_k", "top_p")}


def continue_word_by_word(
    texts: list[str], num_words: int, next_words: Callable[[list[int], list[str]], list[str]]
) -> list[str]:
    """Each text's next `num_words` words (the continuation only), one word at a time: `next_words(rows, texts)` gives
    the next word of the texts of `rows` (their indices), each appended to its text for the next word; a text whose
    next word is `""` ends there, with fewer words."""
    texts = list(texts)
    continuations: list[list[str]] = [[] for _ in texts]
    active = list(range(len(texts)))
    for _ in range(num_words):
        still_active = []
        for index, word in zip(active, next_words(active, [texts[i] for i in active]), strict=True):
            if word:
                texts[index] = f"{texts[index]} {word}"
                continuations[index].append(word)
                still_active.append(index)
        active = still_active
        if not active:
            break
    return [" ".join(words) for words in continuations]


__all__ = ["SAMPLING", "DecodingOptions", "continue_word_by_word"]

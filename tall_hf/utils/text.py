"""Text normalisation of the paper's evaluation: punctuation removed, whitespace collapsed, last word split off."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def remove_punctuation(text: str) -> str:
    """Drop every Unicode punctuation character (Hebrew geresh, gershayim and maqaf included)."""
    return "".join(char for char in text if not unicodedata.category(char).startswith("P"))


def normalize_text(text: str) -> str:
    """Punctuation removed and whitespace collapsed to single spaces."""
    return _SPACES.sub(" ", remove_punctuation(text)).strip()


def split_last_word(sentence: str) -> tuple[str, str]:
    """`("the prefix", "last")` for a sentence of at least two words; a clear `ValueError` otherwise."""
    words = sentence.split()
    if len(words) < 2:
        problem = "is empty" if not words else f"has one word ({words[0]!r})"
        raise ValueError(
            f"Sentence {sentence!r} {problem}: last-word prediction needs at least two words, "
            "a prefix to read and a word to predict."
        )
    return " ".join(words[:-1]), words[-1]

"""Text normalisation of the paper's evaluation: invisible characters and punctuation removed, whitespace collapsed,
last word split off. Training, evaluation and prediction all split words with `words`."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
# Invisible code points outside the format (`Cf`) and control (`Cc`) categories: the combining grapheme joiner, the
# Hangul fillers, the Mongolian free variation selectors and the variation selectors.
_OTHER_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u3164\uffa0\u180b\u180c\u180d\u180f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    return category == "Cf" or (category == "Cc" and not char.isspace()) or char in _OTHER_INVISIBLE


def remove_invisible(text: str) -> str:
    """Drop invisible code points: format characters (Unicode category `Cf`: the right-to-left and left-to-right
    marks, embedding and isolate controls, zero-width joiners and spaces, the byte order mark, the soft hyphen),
    control characters other than whitespace, and the other invisible fillers and selectors."""
    return "".join(char for char in text if not _invisible(char))


def words(text: str) -> list[str]:
    """The words of `text` once invisible code points are removed (a line of marks only has none)."""
    return remove_invisible(text).split()


def remove_punctuation(text: str) -> str:
    """Drop every Unicode punctuation character (Hebrew geresh, gershayim and maqaf included)."""
    return "".join(char for char in text if not unicodedata.category(char).startswith("P"))


def normalize_text(text: str) -> str:
    """Invisible code points and punctuation removed, whitespace collapsed to single spaces."""
    return _SPACES.sub(" ", remove_punctuation(remove_invisible(text))).strip()


def split_last_word(sentence: str) -> tuple[str, str]:
    """`("the prefix", "last")` for a sentence of at least two words (invisible code points removed); a clear
    `ValueError` otherwise."""
    found = words(sentence)
    if len(found) < 2:
        problem = "is empty" if not found else f"has one word ({found[0]!r})"
        raise ValueError(
            f"Sentence {sentence!r} {problem}: last-word prediction needs at least two words, "
            "a prefix to read and a word to predict."
        )
    return " ".join(found[:-1]), found[-1]

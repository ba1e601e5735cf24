"""The last-word prediction task: sentences split into the prefix a model reads and the gold word it must predict."""

from __future__ import annotations

from dataclasses import dataclass

from ..data.text_files import read_sentences  # noqa: F401 (the task's test files are read with it)
from ..utils.text import split_last_word, words


@dataclass(frozen=True)
class LastWordExample:
    """One sentence of the task: `prefix` (the truncated sentence) is read, `gold` (its last word) is predicted."""

    sentence: str
    prefix: str
    gold: str

    @classmethod
    def from_sentence(cls, sentence: str) -> LastWordExample:
        """Split `sentence` at its last word (invisible code points removed); a sentence of fewer than two words is a `ValueError` naming it."""
        prefix, gold = split_last_word(sentence)
        return cls(" ".join(words(sentence)), prefix, gold)


def make_examples(sentences: list[str]) -> list[LastWordExample]:
    """`LastWordExample`s of `sentences`; the error for a too-short sentence says which one it is."""
    examples = []
    for index, sentence in enumerate(sentences):
        try:
            examples.append(LastWordExample.from_sentence(sentence))
        except ValueError as error:
            raise ValueError(f"Sentence {index}: {error}") from None
    return examples

"""The HR language of a world: the LR text with every letter replaced by a letter of a script absent from it."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Candidate target alphabets, tried in order: the first with no letter in the LR text and enough letters wins;
# failing that, the letters of all of them that the LR text does not use are pooled.
TARGET_SCRIPTS: dict[str, str] = {
    "latin": "abcdefghijklmnopqrstuvwxyzàáâãäåæçèéêëìíîïñòóôõöøùúûüýþÿ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψω",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщъыьэюяёђѓєѕіїјљњћќўџ",
    "armenian": "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ",
    "georgian": "აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ",
}


def is_letter(char: str) -> bool:
    return unicodedata.category(char).startswith("L")


@dataclass(frozen=True)
class LetterMap:
    """A bijection from the letters of an LR alphabet onto letters of another script; every other character (spaces,
    digits, punctuation) is kept. `to_hr` and `to_lr` are inverse on any text over the LR alphabet."""

    mapping: dict[str, str]

    def __post_init__(self) -> None:
        if len(set(self.mapping.values())) != len(self.mapping):
            raise ValueError("A letter map must be one to one.")
        if set(self.mapping) & set(self.mapping.values()):
            raise ValueError("A letter map's target letters must not be letters of its source alphabet.")

    @classmethod
    def for_texts(cls, texts: Iterable[str]) -> LetterMap:
        """The map of the letters of `texts` (in code point order) onto the first suitable target script."""
        letters = sorted({char for text in texts for char in text if is_letter(char)})
        used = set(letters)
        for alphabet in TARGET_SCRIPTS.values():
            if len(alphabet) >= len(letters) and not used & set(alphabet):
                return cls(dict(zip(letters, alphabet, strict=False)))
        pool = [char for alphabet in TARGET_SCRIPTS.values() for char in alphabet if char not in used]
        if len(pool) < len(letters):
            raise ValueError(f"The LR text has {len(letters)} letters; too many to map onto {len(pool)} free ones.")
        return cls(dict(zip(letters, pool, strict=False)))

    @property
    def inverse(self) -> dict[str, str]:
        return {target: source for source, target in self.mapping.items()}

    def to_hr(self, text: str) -> str:
        return text.translate(str.maketrans(self.mapping))

    def to_lr(self, text: str) -> str:
        return text.translate(str.maketrans(self.inverse))

    def last_word_ambiguous(self, sentence: str) -> bool:
        """Never: the map is one to one, so the HR sentence says every LR word."""
        return False

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.mapping, handle, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LetterMap:
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle))

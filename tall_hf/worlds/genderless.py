"""A lossy HR language: the LR text without grammatical gender, then letter-mapped onto another script.

Hebrew marks the gender of a person in the pronoun (`הוא` / `היא`) and in every past-tense verb, adjective, participle
and profession that agrees with it (`הוא הלך` / `היא הלכה`). The genderless language drops that distinction, as
Turkish or Finnish do: each feminine form of `GENDER_PAIRS` takes its masculine partner's form, so `היא הלכה` and
`הוא הלך` have one HR form. The map is a known function (`to_hr`), not a bijection: translating back, the HR sentence
alone says which LR form a word takes only when something unmerged in it (a first name) marks the gender.

`last_word_ambiguous` decides that per sentence: the sentence's gender variant (every word of a gender pair and every
first name swapped for its partner) is an LR sentence of the same kind; when it has the same HR form and another last
word, no translation of the HR sentence can be right on both. The generator's `agree` sentences name nobody, so on the
generated text the test is exact; on other text it knows only the generator's lexicon.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from .hebrew_generator import GENDER_PAIRS, NAME_PARTNERS
from .letter_map import LetterMap

HR_LANGUAGES = ("genderless", "letter_map")
# Share of the generated sentences of the genderless world that are of the generator's `agree` kind.
GENDERLESS_AGREEMENT_SHARE = 0.4
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class GenderlessMap:
    """LR -> HR without gender: `GENDER_PAIRS`' feminine forms merged into their masculine ones, then `letter_map`."""

    letter_map: LetterMap
    gender_pairs: tuple[tuple[str, str], ...] = tuple(GENDER_PAIRS)
    name_partners: tuple[tuple[str, str], ...] = tuple(NAME_PARTNERS)

    def __post_init__(self) -> None:
        masculine = {pair[0] for pair in self.gender_pairs}
        if masculine & {pair[1] for pair in self.gender_pairs}:
            raise ValueError("A word cannot be both a masculine and a feminine form: the merge would chain.")

    @classmethod
    def for_texts(cls, texts: Iterable[str]) -> GenderlessMap:
        return cls(LetterMap.for_texts(texts))

    @cached_property
    def merged(self) -> dict[str, str]:
        """Feminine LR form -> the masculine form whose HR form it takes."""
        return {feminine: masculine for masculine, feminine in self.gender_pairs}

    @cached_property
    def partners(self) -> dict[str, str]:
        """Every gendered word and first name -> its other-gender partner."""
        pairs = [*self.gender_pairs, *self.name_partners]
        return {**dict(pairs), **{feminine: masculine for masculine, feminine in pairs}}

    def to_hr(self, text: str) -> str:
        return self.letter_map.to_hr(_WORD.sub(lambda word: self.merged.get(word[0], word[0]), text))

    def gender_variant(self, text: str) -> str:
        """`text` with every gendered word and first name swapped for its partner."""
        return _WORD.sub(lambda word: self.partners.get(word[0], word[0]), text)

    def last_word_ambiguous(self, sentence: str) -> bool:
        """Whether the HR form of `sentence` is also that of an LR sentence with another last word."""
        variant = self.gender_variant(sentence)
        return variant.split()[-1] != sentence.split()[-1] and self.to_hr(variant) == self.to_hr(sentence)

    def save(self, path: str | os.PathLike) -> None:
        content = {"letter_map": self.letter_map.mapping, "gender_pairs": self.gender_pairs}
        content["name_partners"] = self.name_partners
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(content, handle, ensure_ascii=False, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GenderlessMap:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
        pairs = {key: tuple(tuple(pair) for pair in content[key]) for key in ("gender_pairs", "name_partners")}
        return cls(LetterMap(content["letter_map"]), **pairs)


def hr_map_for(language: str, texts: list[str]) -> LetterMap | GenderlessMap:
    """The LR -> HR map of `language` (one of `HR_LANGUAGES`) over the letters of `texts`."""
    if language == "genderless":
        return GenderlessMap.for_texts(texts)
    if language == "letter_map":
        return LetterMap.for_texts(texts)
    raise ValueError(f"Unknown HR language {language!r}; choose one of {HR_LANGUAGES}.")

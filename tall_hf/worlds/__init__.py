"""Known-answer worlds: LR text, an HR language derived from it, trained translators and an HR-only LLM, and what is
known about them (`world.json`)."""

from .build import PRESETS, SPLITS, World, WorldSettings, build_world, hr_ceiling
from .hebrew_generator import HebrewSentenceGenerator
from .letter_map import LetterMap

__all__ = [
    "PRESETS",
    "SPLITS",
    "HebrewSentenceGenerator",
    "LetterMap",
    "World",
    "WorldSettings",
    "build_world",
    "hr_ceiling",
]

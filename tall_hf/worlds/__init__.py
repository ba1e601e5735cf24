"""Known-answer worlds: LR text, an HR language derived from it, trained translators and an HR-only LLM, and what is
known about them (`world.json`)."""

from .bounds import pivot_bound_result, world_bounds
from .build import PRESETS, SPLITS, World, WorldSettings, build_world, hr_ceiling
from .genderless import HR_LANGUAGES, GenderlessMap
from .hebrew_generator import HebrewSentenceGenerator
from .letter_map import LetterMap

__all__ = [
    "HR_LANGUAGES",
    "PRESETS",
    "SPLITS",
    "GenderlessMap",
    "HebrewSentenceGenerator",
    "LetterMap",
    "World",
    "WorldSettings",
    "build_world",
    "hr_ceiling",
    "pivot_bound_result",
    "world_bounds",
]

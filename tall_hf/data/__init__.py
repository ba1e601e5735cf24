"""From raw low-resource text to TALL's three tokenized streams."""

from .translation import translate

__all__ = ["translate"]

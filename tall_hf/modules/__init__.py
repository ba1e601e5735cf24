"""Building blocks shared by the package's models."""

from .alignment import AlignmentAdapter

__all__ = ["AlignmentAdapter"]

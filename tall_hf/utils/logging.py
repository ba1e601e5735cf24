"""Console logging of the package's own loggers (`tall_hf.*`) for the command line and the example scripts."""

from __future__ import annotations

import logging
import sys

_FORMAT = "[%(name)s] %(levelname)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a message comes (pytest, notebooks and redirections replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _) -> None:
        pass


def set_verbosity(level: int) -> None:
    """Show the package's messages at `level` and above (progress, filter counts, cache hits, resumes) on standard
    error; transformers' own loggers keep their verbosity."""
    package = logging.getLogger("tall_hf")
    package.setLevel(level)
    if not package.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        package.addHandler(handler)
        package.propagate = False

"""Console logging of the package's own loggers (`tall_hf.*`) for the command line and the example scripts."""

from __future__ import annotations

import logging

_FORMAT = "[%(name)s] %(levelname)s: %(message)s"


def set_verbosity(level: int) -> None:
    """Show the package's messages at `level` and above (filter counts, cache hits, resumes) on standard error."""
    package = logging.getLogger("tall_hf")
    package.setLevel(level)
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        package.addHandler(handler)
        package.propagate = False

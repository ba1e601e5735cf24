"""Console logging of the package's own loggers (`tall_hf.*`) for the command line and the example scripts."""

from __future__ import annotations

import logging
import os
import sys

# `tall-hf --verbose` sets it (child processes inherit it); `is_verbose()` reads it from anywhere.
VERBOSE_ENV = "TALL_HF_VERBOSE"
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


def is_verbose() -> bool:
    """Whether `tall-hf --verbose` (or `TALL_HF_VERBOSE=1`) asked for everything: the package's DEBUG messages, the
    libraries' INFO messages and their progress bars (model loading, generation batches, dataset maps), tracebacks."""
    return os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")


def is_quiet() -> bool:
    """Whether `tall-hf` runs without `--verbose`: one progress bar per phase, the libraries' own bars and log lines
    off. (The Python API, where `TALL_HF_VERBOSE` is unset, leaves the libraries' output as they set it.)"""
    return os.environ.get(VERBOSE_ENV, "").strip() == "0"


def set_verbose(verbose: bool) -> None:
    """Set `is_verbose()` for this process and the processes it starts, with the console output that goes with it:
    quiet keeps the package's INFO messages, the libraries' warnings and one progress bar per phase of a run."""
    import datasets
    from transformers.utils import logging as transformers_logging

    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    set_verbosity(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        transformers_logging.set_verbosity_info()
        transformers_logging.enable_progress_bar()  # huggingface_hub's bars too
        datasets.enable_progress_bars()
    else:
        transformers_logging.set_verbosity_warning()
        transformers_logging.disable_progress_bar()
        datasets.disable_progress_bars()

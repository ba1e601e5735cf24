"""Reading text files of one sentence per line with `datasets` (its `text` builder), with errors that name the file
(and the line)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError


@contextmanager
def _progress_bars_off() -> Iterator[None]:
    """No `Generating train split` bar for a file read in milliseconds; the caller's setting is restored."""
    if datasets.utils.are_progress_bars_disabled():
        yield
        return
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        datasets.utils.enable_progress_bars()


def read_text_lines(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """The first `limit` lines (all by default) of a UTF-8 text file, without their line ends (nor a leading BOM).

    Read with `datasets.load_dataset("text", ...)`: one row per line, a blank line an empty row, so line-aligned
    callers (`tall-hf predict --file` answers line for line) keep their alignment; lines end where Python's text mode
    ends them (`\\n`, `\\r\\n` or `\\r`). The builder's Arrow cache goes to a temporary folder removed at once (the rows
    are kept in memory): nothing is written beside the data or into the datasets cache.

    A missing file is a `FileNotFoundError` and text that is not UTF-8 a `ValueError`, both naming the file; the
    second also names the line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No text file at {path!r} (expected one sentence per line).")
    if os.path.getsize(path) == 0:  # the builder has no rows to make a split of
        return []
    with tempfile.TemporaryDirectory(prefix="tall_hf-text-") as cache_dir, _progress_bars_off():
        try:
            dataset = datasets.load_dataset(
                "text",
                data_files=path,
                split="train",
                cache_dir=cache_dir,
                keep_in_memory=True,
                encoding="utf-8-sig",
                features=datasets.Features({"text": datasets.Value("string")}),
            )
        except DatasetGenerationError as error:
            if isinstance(error.__cause__, UnicodeDecodeError):
                raise ValueError(_not_utf8_message(path)) from None
            raise ValueError(f"Cannot read {path!r} as text: {error.__cause__ or error}") from error
    return dataset[:limit]["text"]


def _not_utf8_message(path: str) -> str:
    """Where the file stops being UTF-8: its line, and the byte within that line."""
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = error.start - (data.rfind(b"\n", 0, error.start) + 1)
        return f"{path!r}, line {line}, is not UTF-8 text ({error.reason} at byte {byte}): save the file as UTF-8."
    return f"{path!r} is not UTF-8 text: save the file as UTF-8."


def read_sentences(path: str | os.PathLike, max_samples: int | None = None) -> list[str]:
    """The non-blank lines of a UTF-8 text file (one sentence per line), stripped, the first `max_samples` of them if
    given."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be positive, got {max_samples}.")
    sentences = [line.strip() for line in read_text_lines(path) if line.strip()]
    return sentences[:max_samples]

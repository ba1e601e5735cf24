"""Reading text files of one sentence per line, with errors that name the file (and the line)."""

from __future__ import annotations

import os
from itertools import islice


def read_text_lines(path: str | os.PathLike, limit: int | None = None) -> list[str]:
    """The first `limit` lines (all by default) of a UTF-8 text file, without their line ends.

    A missing file is a `FileNotFoundError` and text that is not UTF-8 a `ValueError`, both naming the file; the
    second also names the line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No text file at {path!r} (expected one sentence per line).")
    lines: list[str] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(islice(handle, limit), 1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path!r}, line {number}, is not UTF-8 text ({error.reason} at byte {error.start}): save the "
                    "file as UTF-8."
                ) from None
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines


def read_sentences(path: str | os.PathLike, max_samples: int | None = None) -> list[str]:
    """The non-blank lines of a UTF-8 text file (one sentence per line), stripped, the first `max_samples` of them if
    given."""
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be positive, got {max_samples}.")
    sentences = [line.strip() for line in read_text_lines(path) if line.strip()]
    return sentences[:max_samples]

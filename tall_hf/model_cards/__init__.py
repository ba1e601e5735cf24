"""Jinja2 templates of the model cards written beside checkpoints (package data, so installed copies have them), by
file name."""

from __future__ import annotations

from pathlib import Path

TEMPLATES: dict[str, str] = {
    path.name: path.read_text(encoding="utf-8") for path in sorted(Path(__file__).parent.glob("*.j2"))
}

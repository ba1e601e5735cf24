"""Jinja2 templates of the model cards written beside checkpoints (package data, so installed copies have them), by
file name. A checkpoint's copy of this module holds them as text (see `tall_hf.hub.remote_code`): remote code carries
no package data."""

from __future__ import annotations

from pathlib import Path

TEMPLATES: dict[str, str] = {
    path.name: path.read_text(encoding="utf-8") for path in sorted(Path(__file__).parent.glob("*.j2"))
}

"""Jinja2 templates of the model cards written beside checkpoints (package data, so installed copies have them)."""

"""Trainer arguments for training one component of a world in a throwaway folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import TrainingArguments


@contextmanager
def scratch_training_arguments(
    folder: Path, seed: int, training: dict, arguments_class: type[TrainingArguments] = TrainingArguments
) -> Iterator[TrainingArguments]:
    """`arguments_class` with `training` (a world setting's dict) for the component saved to `folder`: CPU, no
    checkpoints, no reports; its output folder beside `folder` is removed afterwards."""
    scratch = folder.parent / f".{folder.name}-trainer"
    try:
        yield arguments_class(
            output_dir=str(scratch),
            seed=seed,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
            logging_steps=50,
            **training,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

"""Checks of how a training script was launched: processes asked for versus processes that train together."""

from __future__ import annotations

import os

from transformers import TrainingArguments
from transformers.utils import logging

logger = logging.get_logger(__name__)

CPU_LAUNCH = "accelerate launch --config_file examples/accelerate/cpu.yaml SCRIPT ... --use_cpu"


def warn_on_process_mismatch(training_args: TrainingArguments) -> str | None:
    """Warn (and return the message) when the launcher asked for more processes than train together.

    `accelerate launch --cpu --num_processes 2` (or any launch without a multi-process distributed type) starts the
    script once: it then sets `MASTER_ADDR` but not `WORLD_SIZE`. A multi-process launch on a machine without
    accelerator and without `--use_cpu` sets `WORLD_SIZE` but leaves each process training alone.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    message = None
    if "ACCELERATE_USE_CPU" in os.environ and "MASTER_ADDR" in os.environ and "WORLD_SIZE" not in os.environ:
        message = (
            "`accelerate launch` was asked for more than one process but started this script once (no WORLD_SIZE): "
            f"`--cpu` and launches without a multi-process type run one process. On CPU use `{CPU_LAUNCH}`."
        )
    elif world_size > training_args.world_size:
        message = (
            f"{world_size} processes were launched but each trains alone (a group of {training_args.world_size}): "
            f"without an accelerator pass --use_cpu, e.g. `{CPU_LAUNCH}`."
        )
    if message:
        logger.warning(message)
    return message

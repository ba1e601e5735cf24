"""Checkpoints that count only once complete: a run killed mid-save never resumes from a half-written folder.

`Trainer` writes `checkpoint-N/` file by file. `CommitCheckpointCallback` runs after everything else has saved into
it and writes a commit record there with an atomic rename; `last_complete_checkpoint` returns the newest committed
checkpoint whose files still have the sizes the record lists (a damaged one is skipped for the one before it).
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from ..utils.folders import current_umask

logger = logging.get_logger(__name__)

COMMIT_FILE = "checkpoint_complete.json"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def write_json_atomically(path: str | os.PathLike, payload: dict) -> None:
    """Write `payload` to `path` through a temporary file in the same folder and `os.replace`; the file gets the
    mode the umask allows (`tempfile` makes it 0600)."""
    folder = os.path.dirname(os.fspath(path))
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".tmp-", suffix=".json", delete=False) as handle:
        try:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.chmod(handle.name, 0o666 & ~current_umask())
        except BaseException:  # e.g. a full disk: no temporary file is left behind
            handle.close()
            os.remove(handle.name)
            raise
    os.replace(handle.name, path)


class CommitCheckpointCallback(TrainerCallback):
    """Commits each checkpoint once written; add it after every callback that saves into checkpoints."""

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if not state.is_world_process_zero:
            return
        folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
        if not os.path.isdir(folder):
            return
        files = {name: _size(os.path.join(folder, name)) for name in sorted(os.listdir(folder)) if name != COMMIT_FILE}
        write_json_atomically(os.path.join(folder, COMMIT_FILE), {"global_step": state.global_step, "files": files})


def _size(path: str) -> int:
    """A file's size in bytes, or a folder's (its files' sizes summed, at any depth)."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why `folder` is not a complete checkpoint (no commit record, a file it names missing or of another size than
    committed), or `None` when it is one."""
    try:
        with open(os.path.join(folder, COMMIT_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return "it was not completely written (no commit record)"
    files = record.get("files", [])
    sizes = files if isinstance(files, dict) else dict.fromkeys(files)  # older records list names only
    for name, size in sizes.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            return f"{name} is missing"
        if size is not None and _size(path) != size:
            return f"{name} has {_size(path)} bytes, {size} when committed"
    return None


def is_complete_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds a commit record whose files are all present, with the sizes it recorded."""
    return checkpoint_problem(folder) is None


def checkpoint_step(folder: str | os.PathLike) -> int | None:
    """The training step a committed checkpoint was saved at (from its commit record)."""
    try:
        with open(os.path.join(folder, COMMIT_FILE), encoding="utf-8") as handle:
            return int(json.load(handle)["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest committed `checkpoint-N` folder in `output_dir` whose files verify (None if there is none): a
    damaged one is skipped, with a warning, for the one before it."""
    if not os.path.isdir(output_dir):
        return None
    steps = sorted(
        (int(match.group(1)), name) for name in os.listdir(output_dir) if (match := _CHECKPOINT.match(name))
    )
    for _, name in reversed(steps):
        folder = os.path.join(output_dir, name)
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        logger.warning(f"Ignoring {folder}: {problem}.")
    return None


def finished_run(output_dir: str | os.PathLike) -> int | None:
    """The final step of a training run that completed in `output_dir` (its final model saved, then its
    `trainer_state.json`), or `None` if none did."""
    try:
        with open(os.path.join(output_dir, TRAINER_STATE_NAME), encoding="utf-8") as handle:
            return int(json.load(handle)["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

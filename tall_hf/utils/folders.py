"""Folders that one run owns at a time and that appear whole: the lock, staging and atomic-save helpers shared by
every writer of the package (training and evaluation output folders, world and tiny-component builds, translation
caches, model and processor saves).

- `hold_lock(path, ...)`: an exclusive lock file (`fcntl.flock`, so a run that dies releases it) that records its
  owner's pid, host and command. A second run refuses at once with a one-line error naming the owner
  ([`FolderInUseError`]) or, for builds and caches, waits for it and then reuses what it wrote. A lock file left by
  a dead process of this host holds no `flock` and is taken over; one of another host is refused (its process cannot
  be checked from here).
- `staged_folder(target)`: a temporary folder beside `target` to write into; when the block ends without error its
  entries replace `target`'s (`os.replace` each: a symbolic link in `target` is replaced, never written through),
  so an interrupted save leaves the previous contents whole.
- `save_pretrained_atomically(obj, save_directory, **kwargs)`: `obj.save_pretrained` through `staged_folder`.
- `main_process_first()`: under `accelerate launch`, the main process runs the block (a build) before the others,
  which then find its result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from transformers.utils import logging

logger = logging.get_logger(__name__)

LOCK_NAME = ".tall_hf.lock"
_HELD: dict[str, list] = {}  # lock path -> [open file, depth]: a process may take its own lock again


class FolderInUseError(OSError):
    """Another live run holds the lock of a folder this run would write."""


def _owner_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]) if sys.argv else "",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "another process"
    command = f", `{owner['command']}`" if owner.get("command") else ""
    return f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('started')}{command}"


def _read_owner(handle) -> dict[str, Any]:
    handle.seek(0)
    try:
        return json.loads(handle.read() or "{}")
    except ValueError:
        return {}


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike, what: str, *, wait: bool = False, hint: str = "") -> Iterator[None]:
    """Hold the lock file `path` (created if needed, removed at the end) for the block.

    `what` names the locked thing in messages ("the output folder X"). Held by another live process: with `wait`,
    log who holds it and block until it is released; otherwise raise a [`FolderInUseError`] naming the owner, with
    `hint` (what to do) at the end.
    """
    import fcntl  # POSIX: imported here so that saving (and a checkpoint's copy of this module) works everywhere

    path = os.path.abspath(path)
    if path in _HELD:
        _HELD[path][1] += 1
        try:
            yield
        finally:
            _HELD[path][1] -= 1
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(handle)
            if not wait:
                handle.close()
                raise FolderInUseError(
                    f"{what} is in use by another run ({_describe(owner)}; lock file {path}). {hint}".strip()
                ) from None
            logger.warning(f"{what} is being written by another run ({_describe(owner)}); waiting for it.")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            same_file = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:  # its holder removed it while this process waited: lock the new one
            same_file = False
        if same_file:
            break
        handle.close()
    previous = _read_owner(handle)
    if previous.get("host") not in (None, socket.gethostname()):  # its flock may not reach this host: keep off
        handle.close()
        raise FolderInUseError(
            f"{what} is locked by a run on another host ({_describe(previous)}; lock file {path}), which cannot be "
            f"checked from here: if that run is gone, delete the lock file. {hint}".strip()
        )
    if previous.get("pid") not in (None, os.getpid()):
        logger.warning(f"Taking over the lock of {what} left by {_describe(previous)}, which no longer runs.")
    handle.seek(0)
    handle.truncate()
    json.dump(_owner_record(), handle)
    handle.flush()
    _HELD[path] = [handle, 1]
    try:
        yield
    finally:
        del _HELD[path]
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        handle.close()


def lock_output_folder(folder: str | os.PathLike, flag: str = "--output_dir") -> contextlib.AbstractContextManager:
    """The lock of a run's output folder, taken by the main process only (the other processes of one
    `accelerate launch` share the folder with it); a second run refuses at once."""
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return contextlib.nullcontext()
    return hold_lock(
        os.path.join(folder, LOCK_NAME),
        f"The output folder {folder}",
        hint=f"Wait for that run to finish or pass another {flag}.",
    )


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """The main process runs the block before the others of an `accelerate launch` (a no-op in a single process).

    The main process of the whole launch, not of each machine: `save_pretrained` writes weights on global rank 0
    only, so a build by another rank would lack them."""
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def replace_entries(staging: Path, target: Path, stale: Callable[[str], bool] | None = None) -> None:
    """Move every entry of `staging` into `target` with `os.replace` (a file or link in `target` is replaced, a
    folder swapped), the entries `stale(name)` marks (weights) last; then remove `target`'s files that `stale` marks
    and `staging` did not bring."""
    target.mkdir(parents=True, exist_ok=True)
    names = sorted((entry.name for entry in staging.iterdir()), key=lambda name: (bool(stale and stale(name)), name))
    for name in names:
        source, destination = staging / name, target / name
        if source.is_dir() and destination.is_dir() and not destination.is_symlink():
            aside = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=target))
            destination.rename(aside / name)
            source.rename(destination)
            shutil.rmtree(aside, ignore_errors=True)
            continue
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        elif source.is_dir() and (destination.is_symlink() or destination.exists()):
            destination.unlink()
        os.replace(source, destination)
    if stale is not None:
        for entry in target.iterdir():
            if entry.name not in names and stale(entry.name) and not entry.is_dir():
                entry.unlink()


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_to_umask(folder: Path) -> None:
    """Give `folder` and everything in it the permissions the process umask allows (`tempfile` makes folders 0700 and
    some writers files 0600), adding bits only: a saved checkpoint is as readable as any file the user writes."""
    mask = current_umask()
    for root, _folders, files in os.walk(folder):
        for path, default in [(root, 0o777)] + [(os.path.join(root, name), 0o666) for name in files]:
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | (default & ~mask))


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike, stale: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """A fresh folder beside `target` to write into; when the block ends without error its entries replace
    `target`'s (`replace_entries`, `stale` as there). An error or a kill leaves `target` as it was."""
    target = Path(os.path.realpath(target))
    if target.is_file():
        raise ValueError(f"{target} is a file, not a folder.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
    try:
        yield staging
        open_to_umask(staging)
        if not target.exists():
            staging.rename(target)
        else:
            replace_entries(staging, target, stale)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_pretrained_atomically(obj: Any, save_directory: str | os.PathLike, **kwargs) -> None:
    """`obj.save_pretrained(save_directory, **kwargs)` (a model, processor or tokenizer) written beside the folder
    first and swapped in (`staged_folder`): an interrupted save leaves the previous files whole."""
    with staged_folder(save_directory) as staging:
        obj.save_pretrained(staging, **kwargs)


__all__ = [
    "LOCK_NAME",
    "FolderInUseError",
    "hold_lock",
    "lock_output_folder",
    "main_process_first",
    "replace_entries",
    "save_pretrained_atomically",
    "staged_folder",
]

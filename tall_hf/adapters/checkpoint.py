"""What a checkpoint folder or hub repository holds: full weights, adapters only, or pickled weights (refused)."""

from __future__ import annotations

import os
from typing import Literal

from transformers.utils import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    cached_file,
)

from .config import ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, PICKLED_ADAPTER_WEIGHTS_NAME

DOWNLOAD_KWARGS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")
# Every file whose presence decides how `from_pretrained` reads a checkpoint: a push replaces all of them.
WEIGHT_FILES = (
    SAFE_WEIGHTS_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    PICKLED_ADAPTER_WEIGHTS_NAME,
)


def is_weight_file(name: str) -> bool:
    """Whether a file name is one of the weight files that decide how a checkpoint loads (shards included)."""
    return name in WEIGHT_FILES or (name.startswith("model-") and name.endswith(".safetensors"))


class PickledCheckpointError(OSError):
    """A checkpoint holds its weights only in pickle files, which tall_hf never unpickles."""


def find_file(name_or_path: str | os.PathLike, filename: str, **download_kwargs) -> str | None:
    """The local path of `filename` in a folder or hub repository (downloaded if needed), or `None` if absent."""
    return cached_file(
        str(name_or_path),
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **download_kwargs,
    )


def checkpoint_kind(name_or_path: str | os.PathLike, **download_kwargs) -> Literal["full", "adapters"]:
    """`"full"` when safetensors weights of the whole model are present, else `"adapters"` for an adapters-only
    checkpoint; raise a [`PickledCheckpointError`] when the only weights are pickled, an `OSError` when none."""
    if any(find_file(name_or_path, name, **download_kwargs) for name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)):
        return "full"
    if find_file(name_or_path, ADAPTER_CONFIG_NAME, **download_kwargs):
        if find_file(name_or_path, ADAPTER_WEIGHTS_NAME, **download_kwargs):
            return "adapters"
        if find_file(name_or_path, PICKLED_ADAPTER_WEIGHTS_NAME, **download_kwargs):
            raise _pickled_error(name_or_path, PICKLED_ADAPTER_WEIGHTS_NAME, ADAPTER_WEIGHTS_NAME)
        raise OSError(f"{name_or_path} has an {ADAPTER_CONFIG_NAME} but no {ADAPTER_WEIGHTS_NAME}.")
    for name in (WEIGHTS_NAME, WEIGHTS_INDEX_NAME):
        if find_file(name_or_path, name, **download_kwargs):
            raise _pickled_error(name_or_path, name, SAFE_WEIGHTS_NAME)
    if not os.path.isdir(name_or_path) and find_file(name_or_path, "config.json", **download_kwargs) is None:
        raise OSError(
            f"Could not find {name_or_path}: it is not a local folder, and the hub has no such repository or could "
            "not be reached (offline, the repository must be in the local hub cache)."
        )
    raise OSError(
        f"{name_or_path} holds no weights: expected {SAFE_WEIGHTS_NAME} (a full checkpoint) or {ADAPTER_CONFIG_NAME} + "
        f"{ADAPTER_WEIGHTS_NAME} (an adapters-only checkpoint)."
    )


def _pickled_error(name_or_path, found: str, expected: str) -> PickledCheckpointError:
    return PickledCheckpointError(
        f"{name_or_path} holds its weights only as {found}, a pickle file that could run arbitrary code when loaded; "
        f"tall_hf reads safetensors only. Convert it where you trust the source (load the state dict there and write it "
        f"with `safetensors.torch.save_file` as {expected}) and load the converted checkpoint."
    )


__all__ = ["PickledCheckpointError", "WEIGHT_FILES", "checkpoint_kind", "find_file", "is_weight_file"]

"""Content identities of components, for cache keys: a folder updated in place gets a new key."""

from __future__ import annotations

import hashlib
import os

from huggingface_hub import try_to_load_from_cache

_FOLDER_HASHES: dict[tuple, str] = {}
_CHUNK = 1 << 22


def component_fingerprint(name_or_path: str | os.PathLike, revision: str | None = None) -> str:
    """A local folder: the SHA-256 of its files' contents (memoised per process on their sizes and modification
    times). A hub id: the commit the local cache resolves `revision` to, else the revision itself."""
    path = os.fspath(name_or_path)
    if os.path.isdir(path):
        files = sorted((entry for entry in os.scandir(path) if entry.is_file()), key=lambda entry: entry.name)
        stats = tuple((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in files)
        key = (os.path.abspath(path), stats)
        if key not in _FOLDER_HASHES:
            digest = hashlib.sha256()
            for entry in files:
                digest.update(entry.name.encode() + b"\0")
                with open(entry.path, "rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
            _FOLDER_HASHES[key] = digest.hexdigest()
        return _FOLDER_HASHES[key]
    cached = try_to_load_from_cache(path, "config.json", revision=revision)
    if isinstance(cached, str):  # .../snapshots/<commit>/config.json
        return f"{path}@{os.path.basename(os.path.dirname(cached))}"
    return f"{path}@{revision or 'main'}"

"""Uploading a saved checkpoint folder to the hub in exactly one commit (`HfApi.create_commit`).

`HfApi.upload_folder` is not used: with `hf_xet` installed it streams large folders in several commits, and a
checkpoint must never be visible half-replaced."""

from __future__ import annotations

import os
from collections.abc import Callable

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from transformers.utils import logging

logger = logging.get_logger(__name__)


def create_hub_repo(
    repo_id: str, *, token: bool | str | None = None, private: bool | None = None
) -> tuple[HfApi, str]:
    """Create the model repository if needed; returns the API client and the full `namespace/name` id."""
    api = HfApi(token=token)
    return api, api.create_repo(repo_id, private=private, exist_ok=True).repo_id


def folder_files(folder: str | os.PathLike) -> list[str]:
    """Every file under `folder`, as sorted POSIX paths relative to it."""
    files = []
    for root, _, names in os.walk(folder):
        for name in names:
            files.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(files)


def upload_checkpoint(
    api: HfApi,
    repo_id: str,
    folder: str | os.PathLike,
    *,
    commit_message: str,
    commit_description: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    replaces: Callable[[str], bool] = lambda name: False,
):
    """Commit every file of `folder` to `repo_id`; files already there for which `replaces(name)` holds and that the
    folder lacks are deleted in the same commit (e.g. weight files of another checkpoint kind)."""
    files = folder_files(folder)
    operations: list = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=os.path.join(folder, name)) for name in files
    ]
    try:
        existing = api.list_repo_files(repo_id, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
        existing = []
    stale = [name for name in existing if name not in files and replaces(name)]
    if stale:
        logger.info(f"Deleting {stale} from {repo_id}: the new upload replaces them.")
    operations += [CommitOperationDelete(path_in_repo=name) for name in stale]
    return api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message,
        commit_description=commit_description,
        revision=revision,
        create_pr=create_pr,
    )


__all__ = ["create_hub_repo", "folder_files", "upload_checkpoint"]

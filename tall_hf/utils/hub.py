"""Loading components by hub id or local folder, with errors that say what to do."""

from __future__ import annotations

import os
from typing import Any

from transformers.utils import logging

logger = logging.get_logger(__name__)


def load_pretrained(auto_class: Any, name_or_path: str | os.PathLike, *, role: str, revision: str | None = None, **kwargs):
    """`auto_class.from_pretrained(name_or_path)`; an `OSError` names the component and the local-folder way out."""
    name_or_path = str(name_or_path)
    try:
        return auto_class.from_pretrained(name_or_path, revision=revision, **kwargs)
    except OSError as err:
        if os.path.isdir(name_or_path):
            hint = f"the folder exists but does not hold a loadable {role}"
        else:
            hint = (
                "if the hub is unreachable, download it where you have network "
                f"(`hf download {name_or_path} --local-dir DIR`) and pass the local folder DIR instead, "
                "or set HF_HUB_OFFLINE=1 to use your local cache"
            )
        raise OSError(f"Could not load the {role} {name_or_path!r} ({auto_class.__name__}): {hint}. Cause: {err}") from err

"""Loading components by hub id or local folder, failing fast with errors that say what to do."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import torch
from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import logging

logger = logging.get_logger(__name__)

ComponentSpec = str | os.PathLike | PretrainedConfig | PreTrainedModel


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint opens within `timeout` seconds."""
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def looks_like_path(name: str) -> bool:
    """Whether `name` can only be a file-system path: absolute, relative to `.`/`..`/`~`, or more than the one slash
    of a hub id `owner/name`."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def load_pretrained(
    auto_class: Any,
    name_or_path: str | os.PathLike,
    *,
    role: str,
    revision: str | None = None,
    load: Callable[..., Any] | None = None,
    **kwargs,
):
    """`auto_class.from_pretrained(name_or_path)` (or `load(name_or_path)`) for a hub id or a local folder.

    With the hub unreachable, a hub id is served from the local cache or fails at once (instead of after minutes of
    retries) with an `OSError` naming the component and how to use a local folder.
    """
    name_or_path = str(name_or_path)
    is_folder = os.path.isdir(name_or_path)
    if not is_folder and not constants.HF_HUB_OFFLINE and not hub_reachable():
        cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
        if not isinstance(cached, str):
            raise OSError(
                f"Could not load the {role} {name_or_path!r}: the hub ({constants.ENDPOINT}) is unreachable and it is "
                f"not in your local cache. Download it where you have network (`hf download {name_or_path} "
                "--local-dir DIR`) and pass the local folder DIR instead."
            )
        logger.warning(f"The hub is unreachable: loading {name_or_path!r} from the local cache.")
        name_or_path, is_folder = os.path.dirname(cached), True
    try:
        return (load or auto_class.from_pretrained)(name_or_path, revision=revision, **kwargs)
    except (TypeError, StrictDataclassError) as err:  # a config.json value of the wrong type or out of range
        raise ValueError(
            f"The {role} {name_or_path!r} has an invalid config.json ({err}): fix the field named here (was the file "
            "edited by hand?), or save or download the model again."
        ) from err
    except (OSError, ValueError) as err:
        if is_folder:
            hint = f"the folder exists but does not hold a loadable {role}"
        elif looks_like_path(name_or_path):
            hint = f"there is no folder at {os.path.abspath(name_or_path)}"
        elif constants.HF_HUB_OFFLINE:
            hint = (
                "it is not a local folder and is not in your hub cache (HF_HUB_OFFLINE=1 is set, so nothing is "
                f"downloaded); download it where you have network (`hf download {name_or_path} --local-dir DIR`) "
                "and pass the local folder DIR instead"
            )
        else:
            hint = (
                "it is not a local folder, and the hub is unreachable or does not have it in your cache; "
                f"download it where you have network (`hf download {name_or_path} --local-dir DIR`) and pass the "
                "local folder DIR instead, or set HF_HUB_OFFLINE=1 to use your local cache"
            )
        raise OSError(
            f"Could not load the {role} {name_or_path!r} ({auto_class.__name__}): {hint}. Cause: {err}"
        ) from err


def resolve_component(
    spec: ComponentSpec, auto_class: Any, role: str, revision: str | None = None, **load_kwargs
) -> tuple[PreTrainedModel | None, PretrainedConfig, str | None]:
    """`(model, config, name_or_path)` of a component given as a hub id or folder (loaded with `auto_class`), a config
    (no model: it is built with fresh weights) or a loaded model (used as it is)."""
    if isinstance(spec, PreTrainedModel):
        return spec, spec.config, getattr(spec.config, "_name_or_path", "") or None
    if isinstance(spec, PretrainedConfig):
        return None, spec, None
    if isinstance(spec, (str, os.PathLike)):
        model = load_pretrained(auto_class, spec, role=role, revision=revision, **load_kwargs)
        location = os.path.abspath(spec) if os.path.isdir(spec) else str(spec)  # valid from any working directory
        return model, model.config, location
    raise TypeError(f"The {role} must be a hub id, a local folder, a config or a model, got {type(spec).__name__}.")


def load_naming_file(load: Callable[..., Any], name_or_path: str | os.PathLike, *args, **kwargs) -> Any:
    """`load(name_or_path, ...)`, a damaged safetensors file raising an `OSError` that names the checkpoint."""
    try:
        return load(name_or_path, *args, **kwargs)
    except SafetensorError as error:
        raise OSError(
            f"The safetensors weights of {name_or_path} are damaged ({error}): the file is truncated or was not "
            "written completely; save or download it again."
        ) from error


def check_finite(state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Raise a `ValueError` naming `source` and the tensors that hold NaN or infinite values."""
    broken = [
        name
        for name, tensor in state_dict.items()
        if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all())
    ]
    if broken:
        shown = ", ".join(broken[:5]) + (f" and {len(broken) - 5} more" if len(broken) > 5 else "")
        raise ValueError(f"{source} holds non-finite weights (NaN or infinity) in {shown}: the file is corrupted.")

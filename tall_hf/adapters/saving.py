"""Saving, loading and uploading a composed model's two checkpoint kinds with transformers' and PEFT's own calls.

- full: `model.save_pretrained(dir)` (transformers'), every weight in `model.safetensors`;
- adapters-only: a PEFT adapter folder written by `PeftModel.save_pretrained` (`adapter_config.json`, whose
  `modules_to_save` are the trainable stages and whose tuner, if any, is the one on the LLM; `adapter_model.safetensors`)
  beside the model's `config.json`, which records where the frozen components come from. PEFT loads it onto a model
  assembled from those components: `PeftModel.from_pretrained(Model.from_components(...), dir)`.

[`save_checkpoint`] writes either kind atomically with the extras a shared checkpoint carries (the processor, a
`README.md` model card and the model's code for `trust_remote_code=True`); [`load_checkpoint`] reads either kind
(safetensors only); [`push_checkpoint`] uploads one in a single commit. The Trainer callback and the CLI call them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from huggingface_hub import is_offline_mode
from transformers.utils import CONFIG_NAME, SAFE_WEIGHTS_NAME, logging

from ..data.translation import save_translator
from ..hub.model_card import ModelCardInfo, render_model_card
from ..hub.push import create_hub_repo, upload_checkpoint
from ..hub.remote_code import save_remote_code
from ..models.modeling_composite import ADAPTER_NAME, ComposedPreTrainedModel
from ..utils.folders import staged_folder
from ..utils.loading import check_finite, load_naming_file
from .checkpoint import DOWNLOAD_KWARGS, checkpoint_kind, find_file, is_weight_file
from .config import ADAPTER_WEIGHTS_NAME

logger = logging.get_logger(__name__)

# Config entries that are bookkeeping, not architecture (ignored when comparing what two configs build).
_BOOKKEEPING_FIELDS = {
    "_name_or_path",
    "name_or_path",
    "architectures",
    "transformers_version",
    "dtype",
    "torch_dtype",
    "model_type",
    "components",
    "lora",
}
_DISPATCHING_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


@contextmanager
def peft_model_of(model: ComposedPreTrainedModel) -> Iterator[Any]:
    """`model` wrapped in a `peft.PeftModel` of its `adapter_peft_config()` for the block (each trainable stage in a
    `ModulesToSaveWrapper`); afterwards the model holds its own stages and trainable flags again.

    A tuner the model already holds (`config.lora`) is kept as it is: the wrapping config targets no module, and the
    `PeftModel` then carries the real config (what `save_pretrained` writes and `from_pretrained` rebuilds)."""
    from peft import PeftModel
    from peft.utils.constants import DUMMY_TARGET_MODULES

    trains = {name: parameter.requires_grad for name, parameter in model.named_parameters()}
    config = model.adapter_peft_config()
    wrapping = model.adapter_peft_config()
    wrapping.target_modules = DUMMY_TARGET_MODULES
    peft_model = PeftModel(model, wrapping, adapter_name=ADAPTER_NAME)
    peft_model.peft_config[ADAPTER_NAME] = config
    try:
        yield peft_model
    finally:
        for name in config.modules_to_save:
            model.set_submodule(name, model.get_submodule(name).original_module)
        model.__dict__.pop("peft_config", None)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(trains[name])


def save_adapters(
    model: ComposedPreTrainedModel, save_directory: str | os.PathLike, repo_id: str | None = None
) -> None:
    """An adapters-only checkpoint: PEFT's adapter folder (`PeftModel.save_pretrained`) and the model's
    `config.json` (the components' provenance) and generation config."""
    missing = [role for role, provenance in model.config.components.items() if not provenance.get("name_or_path")]
    if missing:
        raise ValueError(
            f"An adapters-only checkpoint fetches its components at load time, but {missing} were built from a "
            f"config, not loaded from a hub id or folder; save a full checkpoint instead."
        )
    with peft_model_of(model) as peft_model:
        peft_model.peft_config[ADAPTER_NAME].base_model_name_or_path = repo_id
        peft_model.save_pretrained(save_directory, save_embedding_layers=False)  # the LLM's embeddings stay frozen
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(save_directory)
    if model.can_generate():
        model.generation_config.save_pretrained(save_directory)


def save_checkpoint(
    model: ComposedPreTrainedModel,
    save_directory: str | os.PathLike,
    *,
    adapters_only: bool = False,
    processor: Any = None,
    model_card: ModelCardInfo | bool | None = None,
    repo_id: str | None = None,
    **kwargs,
) -> None:
    """Write a full (default) or adapters-only checkpoint with its extras, swapped in whole (an interrupted save
    leaves the previous checkpoint as it was; weight files of the other kind go). A full TALL checkpoint also holds
    its LR->HR translator's decoder side (`translator/`, `save_translator`), as a trained one does, so it translates
    offline from anywhere.

    Args:
        adapters_only: [`save_adapters`] instead of `model.save_pretrained` (every weight).
        processor: saved beside the model, so `AutoProcessor.from_pretrained(save_directory)` loads it.
        model_card: card metadata ([`ModelCardInfo`]); `False` writes no card.
        repo_id: the hub id the checkpoint is meant for (the card's usage snippet, PEFT's `base_model_name_or_path`).
        kwargs: passed to `model.save_pretrained` for a full checkpoint (`max_shard_size`, `state_dict`, ...).
    """
    with staged_folder(save_directory, stale=is_weight_file) as staging:
        if adapters_only:
            if kwargs:
                raise TypeError(f"{sorted(kwargs)} apply to full checkpoints only.")
            save_adapters(model, staging, repo_id=repo_id)
        else:
            model.save_pretrained(staging, **kwargs)
            if hasattr(model, "lr_encoder"):
                _save_reachable_translator(model, staging)
        save_extras(
            model,
            staging,
            processor=processor,
            model_card=model_card,
            repo_id=repo_id,
            name=str(save_directory),
            adapters_only=adapters_only,
        )


def _save_reachable_translator(model: ComposedPreTrainedModel, save_directory: str | os.PathLike) -> None:
    """`save_translator`, unless the model has no translator to save (built from configs) or it cannot be read: the
    checkpoint is complete without it (its config names the translator), so that is logged, not raised."""
    try:
        save_translator(model, save_directory)
    except (ValueError, OSError) as error:
        logger.warning(f"Saved without translator/ (the LR->HR decoder side): {error}")


def save_extras(
    model: ComposedPreTrainedModel,
    save_directory: str | os.PathLike,
    processor: Any = None,
    *,
    model_card: ModelCardInfo | bool | None = None,
    repo_id: str | None = None,
    name: str | None = None,
    adapters_only: bool = False,
) -> None:
    """Beside a saved model: the package's code of the model, its config and processor (one self-contained file
    each, recorded in `config.json`'s `auto_map`, so `trust_remote_code=True` loads the folder without tall_hf
    installed), a `README.md` model card (unless `model_card=False`) and the processor, if given."""
    classes = {
        "AutoConfig": type(model.config),
        "AutoModel": type(model.base_model),
        **{name: type(model) for name in model.auto_classes},
    }
    if processor is not None:
        classes["AutoProcessor"] = type(processor)
    model.config.auto_map = save_remote_code(save_directory, classes)
    model.config.save_pretrained(save_directory)
    if model_card is not False:
        info = model_card if isinstance(model_card, ModelCardInfo) else ModelCardInfo()
        card = render_model_card(
            model, info, repo_id=repo_id, name=repo_id or name or str(save_directory), adapters_only=adapters_only
        )
        card.save(os.path.join(save_directory, "README.md"))
    if processor is None:
        return
    processor.auto_map = {"AutoProcessor": model.config.auto_map["AutoProcessor"]}  # routes AutoProcessor
    processor.save_pretrained(save_directory)


def push_checkpoint(
    model: ComposedPreTrainedModel,
    repo_id: str,
    *,
    adapters_only: bool = False,
    processor: Any = None,
    model_card: ModelCardInfo | bool | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
):
    """Upload a full or adapters-only checkpoint (with processor and model card) to the hub in one commit.

    Weight files of the other kind already in the repository are deleted in the same commit, so the repository
    always loads as what was pushed last. Returns huggingface_hub's `CommitInfo`.
    """
    api, repo_id = create_hub_repo(repo_id, token=token, private=private)
    with tempfile.TemporaryDirectory() as work_dir:
        save_checkpoint(
            model,
            work_dir,
            adapters_only=adapters_only,
            processor=processor,
            model_card=model_card,
            repo_id=repo_id,
            **({} if adapters_only else {"max_shard_size": max_shard_size}),
        )
        kind = "adapters-only checkpoint" if adapters_only else "checkpoint"
        return upload_checkpoint(
            api,
            repo_id,
            work_dir,
            commit_message=commit_message or f"Upload {type(model).__name__} {kind}",
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
            replaces=is_weight_file,
        )


def load_checkpoint(
    model_class: type[ComposedPreTrainedModel],
    name_or_path: str | os.PathLike,
    *,
    component_paths: dict[str, Any] | None = None,
    **kwargs,
):
    """A full or adapters-only checkpoint of `model_class` from a folder or a hub id (safetensors only).

    A full one is `model_class.from_pretrained(name_or_path, **kwargs)`. An adapters-only one is PEFT's
    `PeftModel.from_pretrained` onto the model assembled from the components its config records
    (`component_paths` replaces a role's location, e.g. `{"llm": "/models/qwen"}`), returned as the plain model: the
    trained stages in place of the fresh ones, a tuner (`config.lora`) unmerged in the LLM, exactly as saved. A
    checkpoint with only pickled weights raises a [`PickledCheckpointError`].
    """
    download_kwargs = {name: kwargs[name] for name in DOWNLOAD_KWARGS if name in kwargs}
    if is_offline_mode():
        download_kwargs["local_files_only"] = True
    if checkpoint_kind(name_or_path, **download_kwargs) == "full":
        if component_paths is not None:
            raise ValueError("`component_paths` applies to adapters-only checkpoints; this one holds every weight.")
        if kwargs.get("config") is None and not find_file(name_or_path, CONFIG_NAME, **download_kwargs):
            raise OSError(
                f"{name_or_path} has model weights but no {CONFIG_NAME}: a saved model needs the config it was saved "
                "with (save_pretrained writes both)."
            )
        loaded = load_naming_file(model_class.from_pretrained, name_or_path, use_safetensors=True, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) on request
        check_finite(model.state_dict(), f"{name_or_path} ({SAFE_WEIGHTS_NAME})")
        return loaded
    from peft import PeftConfig, PeftModel

    supported = {"dtype", "torch_dtype", "device_map"}
    unsupported = sorted(set(kwargs) - set(DOWNLOAD_KWARGS) - supported)
    if unsupported:
        raise TypeError(f"Options {unsupported} are not supported when loading an adapters-only checkpoint.")
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
    device = kwargs.get("device_map")
    if device is not None and (not isinstance(device, (str, int, torch.device)) or device in _DISPATCHING_MAPS):
        raise TypeError(
            f"device_map={device!r}: an adapters-only checkpoint loads onto one device (e.g. 'cuda:0'); "
            "spreading it over several is not supported."
        )
    saved_config = model_class.config_class.from_pretrained(name_or_path, **download_kwargs)
    base = model_class.from_components(
        **_component_specs(saved_config.components, component_paths),
        **({"dtype": dtype} if dtype not in (None, "auto") else {}),
        **saved_config.own_fields(),
    )
    drift = _component_drift(saved_config, base.config)
    if drift:
        logger.warning(
            f"The components loaded for {name_or_path} differ from those it was saved with ({'; '.join(drift)}); the "
            "adapters fit their shapes, but outputs may differ from the trained model's."
        )
    base.config.name_or_path = str(name_or_path)
    peft_config = PeftConfig.from_pretrained(str(name_or_path), **download_kwargs)
    # Stage names of an earlier layout, as full paths (PEFT matches `modules_to_save` by name suffix).
    peft_config.modules_to_save = [
        base.current_key(f"{name}.").removesuffix(".") for name in peft_config.modules_to_save or []
    ]
    peft_model = load_naming_file(  # a damaged adapter file is named in the error
        lambda _: PeftModel.from_pretrained(base, str(name_or_path), config=peft_config, **download_kwargs),
        f"{name_or_path}/{ADAPTER_WEIGHTS_NAME}",
    )
    model = peft_model.get_base_model()
    for name in peft_model.peft_config[ADAPTER_NAME].modules_to_save:  # the trained stages replace the fresh ones
        model.set_submodule(name, model.get_submodule(name).modules_to_save[ADAPTER_NAME])
    model.__dict__.pop("peft_config", None)
    model.mark_adapters_trainable()
    return (model if device is None else model.to(device)).eval()


def _component_specs(components: dict, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`{role: spec, f"{role}_revision": revision}` for `from_components` from a config's recorded provenance;
    `overrides` replace a role's location (e.g. a local copy of a hub component), in which case no revision is
    passed."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(components))
    if unknown:
        raise ValueError(f"Unknown component roles {unknown}; this checkpoint has {sorted(components)}.")
    specs: dict[str, Any] = {}
    for role, provenance in components.items():
        if role in overrides:
            specs[role], specs[f"{role}_revision"] = overrides[role], None
            continue
        if not provenance.get("name_or_path"):
            raise ValueError(
                f"The checkpoint does not record where its {role!r} component comes from; pass it with "
                f"`component_paths={{{role!r}: <hub id or folder>}}`."
            )
        specs[role], specs[f"{role}_revision"] = provenance["name_or_path"], provenance.get("revision")
    return specs


def _architecture(value: Any) -> Any:
    """A config value without bookkeeping entries (at any depth), for comparing what two configs build."""
    if isinstance(value, dict):
        return {key: _architecture(item) for key, item in value.items() if key not in _BOOKKEEPING_FIELDS}
    return value


def _component_drift(saved: Any, built: Any) -> list[str]:
    """Per component role, the config fields in which the loaded component differs from the saved one."""
    drift = []
    for role in built.components:
        saved_config = getattr(saved, f"{role}_config", None)
        if saved_config is None:
            continue
        before = _architecture(saved_config.to_dict())
        after = _architecture(getattr(built, f"{role}_config").to_dict())
        fields = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
        if fields:
            drift.append(f"{role}: {', '.join(fields[:8])}{', ...' if len(fields) > 8 else ''}")
    return drift


__all__ = ["load_checkpoint", "peft_model_of", "push_checkpoint", "save_adapters", "save_checkpoint", "save_extras"]

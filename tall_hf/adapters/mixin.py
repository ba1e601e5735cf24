"""Adapters on PEFT's primitives for composite models whose frozen components live on the hub.

[`AdapterMixin`] gives a `PreTrainedModel` built from frozen components two checkpoint kinds, both loadable with
`AutoModel.from_pretrained` (after importing the package's models):

- full: `model.save_pretrained(dir)`, every weight in `model.safetensors`, for offline use;
- adapters-only: `model.save_pretrained(dir, adapters_only=True)`, a PEFT adapter folder (`adapter_config.json`, a
  real `peft.PeftConfig` whose `modules_to_save` are the trainable stages and whose tuner, if any, is the one on the
  LLM; `adapter_model.safetensors`, written with `get_peft_model_state_dict`) beside the model's `config.json`, which
  records where the components come from. Loading rebuilds the model from its components and applies the adapter
  with `set_peft_model_state_dict`; PEFT itself loads the folder too:
  `PeftModel.from_pretrained(Model.from_components(...), dir)`.

Both hold `config.json` (so the Auto classes route to the model class), a `README.md` model card and, when given,
the processor. `push_to_hub` uploads either kind in one commit. Weights are read from safetensors only.

A model class opts in with class attributes and three conventions:

- `adapter_modules`: names of its trainable modules; `frozen_modules`: its components; `lora_target`: the
  attribute holding the frozen LLM that a PEFT tuner may adapt; `model_card_template`: a template file name in
  `tall_hf/model_cards/`.
- its config has `components` (`{role: {"name_or_path", "revision"}}`), one sub-config `f"{role}_config"` per role
  and a `lora` field (a PEFT tuner config as a dict, or `None`);
- the model has `from_components(**{role: spec, f"{role}_revision": rev}, dtype=..., **config_fields)` and calls
  `self.init_lora()` at the end of `__init__` (after freezing its components).

```python
>>> class BridgeForCausalLM(AdapterMixin, BridgePreTrainedModel):
...     adapter_modules = ("fusion", "projection")
...     model_card_template = "bridge_model_card.md.j2"
>>> model.save_pretrained("bridge-adapters", adapters_only=True, processor=processor)
>>> model = AutoModel.from_pretrained("bridge-adapters")
```
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from collections.abc import Iterable
from typing import Any

import torch
from huggingface_hub import is_offline_mode
from safetensors.torch import load_file, save_file
from transformers.utils import CONFIG_NAME, SAFE_WEIGHTS_NAME, logging

from ..hub.model_card import ModelCardInfo, render_model_card
from ..hub.push import create_hub_repo, upload_checkpoint
from ..hub.remote_code import save_remote_code
from ..utils.folders import staged_folder
from ..utils.hub import check_finite, load_naming_file
from .checkpoint import DOWNLOAD_KWARGS, checkpoint_kind, find_file, is_weight_file
from .config import ADAPTER_NAME, ADAPTER_WEIGHTS_NAME, PEFT_PREFIX, build_peft_config, tuner_from_dict

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
# Keyword arguments of `from_pretrained` that an adapters-only load consumes or that only matter to a full load.
_IGNORED_ON_ADAPTER_LOAD = {
    "config",
    "adapter_kwargs",
    "_from_auto",
    "_from_pipeline",
    "trust_remote_code",
    "use_safetensors",
}

_DISPATCHING_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


class AdapterMixin:
    """Adapters-only and full checkpoints, LoRA on the frozen LLM, model cards and `push_to_hub` (see the module
    docstring for what a model class provides)."""

    adapter_modules: tuple[str, ...] = ()
    frozen_modules: tuple[str, ...] = ()
    # Component role -> the keyword of `__init__` that takes that component's loaded model.
    component_arguments: dict[str, str] = {}
    # The Auto classes a checkpoint's `auto_map` routes to this class (its config and processor come too).
    auto_classes: tuple[str, ...] = ("AutoModel", "AutoModelForCausalLM")
    lora_target: str | None = "llm"
    # The card's hub pipeline tag: only one whose transformers pipeline runs the model (none: no such pipeline).
    card_pipeline_tag: str | None = None
    model_card_template: str | None = None
    # Deterministic tables inside trainable modules (fixed sinusoids), rebuilt at construction and never saved.
    adapter_fixed_weights: tuple[str, ...] = ("embed_positions.weight",)

    # Weight names of earlier checkpoints (regex -> replacement), as registered with transformers' checkpoint
    # conversion mapping: an adapters-only checkpoint's weights are renamed the same way.
    legacy_key_mapping: dict[str, str] = {}

    @classmethod
    def current_key(cls, key: str) -> str:
        """A weight name of this or an earlier checkpoint layout, in today's layout."""
        for pattern, replacement in cls.legacy_key_mapping.items():
            key = re.sub(pattern, replacement, key)
        return key

    # ------------------------------------------------------------------ frozen components
    @classmethod
    def assemble(
        cls,
        components: dict[str, tuple[Any, Any, str | None]],
        revisions: dict[str, str | None],
        *,
        dtype: torch.dtype | None = None,
        **config_fields,
    ):
        """The model from resolved components (`{role: (loaded model or None, config, name_or_path)}`, as
        `utils.hub.resolve_component` gives them): its config from the components' configs
        (`config_class.from_component_configs`) with their provenance recorded in `components`, pretrained weights
        in the frozen stages (the model's `__init__` takes each loaded model by `component_arguments[role]`), fresh
        ones in the trainable stages."""
        provenance = {
            role: {"name_or_path": name, "revision": revisions.get(role)} for role, (_, _, name) in components.items()
        }
        config = cls.config_class.from_component_configs(
            **{f"{role}_config": config for role, (_, config, _) in components.items()},
            components=provenance,
            **config_fields,
        )
        model = cls(config, **{cls.component_arguments[role]: loaded for role, (loaded, _, _) in components.items()})
        return model if dtype is None else model.to(dtype)

    def freeze_components(self) -> None:
        """Freeze the pretrained components (`frozen_modules`); the adapter modules train."""
        for name in self.frozen_modules:
            self.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True):
        """Train mode for the adapter modules; the frozen components always run deterministically (eval mode)."""
        super().train(mode)
        for name in self.frozen_modules:
            self.get_submodule(name).eval()
        self.lora_train(mode)
        return self

    # ------------------------------------------------------------------ parameter report
    def parameter_stages(self) -> list[tuple[str, Iterable[torch.nn.Parameter]]]:
        """`(stage, parameters)` in `forward` order; a model may split a module (e.g. an LLM's embeddings)."""
        return [
            (name.rsplit(".", 1)[-1], self.get_submodule(name).parameters())
            for name in (*self.frozen_modules, *self.adapter_modules)
        ]

    def parameter_report(self) -> list[dict]:
        """Per stage: total and trainable parameters, and whether the stage is one of the adapter modules."""
        trainable_stages = {name.rsplit(".", 1)[-1] for name in self.adapter_modules}
        rows = []
        for stage, parameters in self.parameter_stages():
            params = list(parameters)
            rows.append(
                {
                    "stage": stage,
                    "total": sum(p.numel() for p in params),
                    "trainable": sum(p.numel() for p in params if p.requires_grad),
                    "trains": stage in trainable_stages,
                }
            )
        return rows

    def parameter_table(self) -> str:
        """The parameter report as a Markdown table (a tied tensor counted once in the total)."""
        lines = ["| stage | total | trainable |", "| --- | ---: | ---: |"]
        lines += [f"| {row['stage']} | {row['total']:,} | {row['trainable']:,} |" for row in self.parameter_report()]
        trainable, total = self.get_nb_trainable_parameters()
        lines.append(f"| **total (tied weights counted once)** | **{total:,}** | **{trainable:,}** |")
        return "\n".join(lines)

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, total) parameter counts, a tied tensor counted once."""
        return self.num_parameters(only_trainable=True), self.num_parameters()

    def print_trainable_parameters(self) -> None:
        """PEFT's one-line summary: trainable params, all params and the trainable share."""
        trainable, total = self.get_nb_trainable_parameters()
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}"
        )

    # ------------------------------------------------------------------ LoRA on the frozen LLM
    def init_lora(self) -> None:
        """Inject the PEFT tuner of `config.lora` (LoRA or any other) into the frozen LLM (`lora_target`); only its
        weights train."""
        lora = getattr(self.config, "lora", None)
        if lora is None:
            return
        if self.lora_target is None:
            raise ValueError(f"{type(self).__name__} has no LLM to put LoRA on, but its config sets `lora`.")
        from peft import inject_adapter_in_model

        inject_adapter_in_model(tuner_from_dict(lora), self.get_submodule(self.lora_target), adapter_name=ADAPTER_NAME)

    def lora_train(self, mode: bool = True) -> None:
        """LoRA dropout follows `mode` even inside a frozen LLM that always runs in eval mode."""
        for module in self.modules():
            dropout = getattr(module, "lora_dropout", None)
            if isinstance(dropout, torch.nn.ModuleDict):
                dropout.train(mode)

    # ------------------------------------------------------------------ what the adapters are
    def _fixed_adapter_keys(self) -> set[str]:
        return {
            f"{module}.{name}"
            for module in self.adapter_modules
            for name, _ in self.get_submodule(module).named_parameters()
            if name.endswith(self.adapter_fixed_weights)
        }

    def mark_adapters_trainable(self) -> None:
        """Exactly the adapter weights train: the trainable modules (fixed tables excepted) and the PEFT tuner's
        (found by the tuner type's own parameter prefix, as PEFT marks them). Loading weights with transformers makes
        every floating-point parameter trainable; this restores the split."""
        tuner_prefix = None
        if getattr(self.config, "lora", None) is not None:
            from peft.mapping import PEFT_TYPE_TO_PREFIX_MAPPING

            tuner_prefix = PEFT_TYPE_TO_PREFIX_MAPPING[tuner_from_dict(self.config.lora).peft_type]
        fixed = self._fixed_adapter_keys()
        for name, parameter in self.named_parameters():
            in_tuner = tuner_prefix is not None and _inside(name, self.lora_target) and tuner_prefix in name
            in_adapters = any(_inside(name, module) for module in self.adapter_modules)
            parameter.requires_grad_((in_adapters and name not in fixed) or in_tuner)

    def adapter_peft_config(self, base_model_name_or_path: str | None = None):
        """This model's adapters as one `peft.PeftConfig`: the tuner on the LLM (`config.lora`) or PEFT's
        target-less LoRA, with the trainable stages (those with weights) as `modules_to_save`."""
        stages = [name for name in self.adapter_modules if any(True for _ in self.get_submodule(name).parameters())]
        return build_peft_config(getattr(self.config, "lora", None), self.lora_target, stages, base_model_name_or_path)

    def _peft_view(self, peft_config):
        """A view of this model as PEFT sees an adapted model: the same submodules, but each trainable stage in a
        `ModulesToSaveWrapper` (a copy of the stage, so this model's own modules stay untouched)."""
        from peft.utils import ModulesToSaveWrapper

        trains = {name: p.requires_grad for name, p in self.named_parameters()}
        view = _shallow_copy(self)
        for name in peft_config.modules_to_save:
            parent_name, _, child = name.rpartition(".")
            parent = view
            for part in parent_name.split(".") if parent_name else ():
                parent._modules[part] = _shallow_copy(parent._modules[part])
                parent = parent._modules[part]
            parent._modules[child] = ModulesToSaveWrapper(parent._modules[child], ADAPTER_NAME)
        view.peft_config = {ADAPTER_NAME: peft_config}
        for name, parameter in self.named_parameters():  # the wrappers froze the originals
            parameter.requires_grad_(trains[name])
        return view

    def peft_adapter_state_dict(self, prefixed: bool = True) -> dict[str, torch.Tensor]:
        """The weights of the adapters-only checkpoint, as `get_peft_model_state_dict` names them (under PEFT's
        `base_model.model.` prefix unless `prefixed=False`): the trainable stages' whole state (their fixed
        sinusoidal tables included, as PEFT saves `modules_to_save`) and the tuner's weights."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self._peft_view(self.adapter_peft_config()), adapter_name=ADAPTER_NAME)
        return {(PEFT_PREFIX if prefixed else "") + key: value for key, value in state.items()}

    # ------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        adapters_only: bool = False,
        processor: Any = None,
        model_card: ModelCardInfo | bool | None = None,
        repo_id: str | None = None,
        is_main_process: bool = True,
        state_dict: dict[str, torch.Tensor] | None = None,
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """Write a full (default) or adapters-only checkpoint, the processor (if given) and a `README.md` model card.

        Args:
            adapters_only: write `adapter_config.json` + `adapter_model.safetensors` (the trainable weights) instead of
                every weight; the frozen components are fetched from their recorded provenance at load time.
            processor: saved beside the model, so `AutoProcessor.from_pretrained(save_directory)` loads it.
            model_card: card metadata ([`ModelCardInfo`]); `False` writes no card.
            repo_id: the hub id the checkpoint is meant for (shown in the card's usage snippet; `push_to_hub` sets it).
            push_to_hub: also upload the folder to `repo_id` (or the folder's name) with [`push_to_hub`].
            kwargs: passed to `PreTrainedModel.save_pretrained` for a full checkpoint (`max_shard_size`, ...).
        """
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory} is a file, not a folder.")
        if not self.should_save_on_this_rank(is_main_process):
            return
        if push_to_hub:
            api, repo_id = create_hub_repo(
                repo_id or os.path.basename(os.path.abspath(save_directory)), token=kwargs.pop("token", None)
            )
        # Written beside the folder and swapped in: an interrupted save leaves the previous checkpoint whole, and
        # weight files of the other kind (or old shards) go only once the new ones are in place.
        with staged_folder(save_directory, stale=is_weight_file) as staging:
            self.save_remote_code(staging, processor)
            if adapters_only:
                self._save_adapters(staging, state_dict=state_dict, repo_id=repo_id)
            else:
                super().save_pretrained(staging, state_dict=state_dict, **kwargs)
            if processor is not None:
                self.save_processor(processor, staging, adapters_only=adapters_only)
            if model_card is not False:
                info = model_card if isinstance(model_card, ModelCardInfo) else ModelCardInfo()
                card = render_model_card(
                    self, info, repo_id=repo_id, name=repo_id or str(save_directory), adapters_only=adapters_only
                )
                card.save(os.path.join(staging, "README.md"))
        if push_to_hub:
            upload_checkpoint(
                api, repo_id, save_directory, commit_message=f"Upload {type(self).__name__}", replaces=is_weight_file
            )

    def save_remote_code(self, save_directory: str | os.PathLike, processor: Any = None) -> None:
        """Copy the package's code of this model, its config and processor into the checkpoint and record it in
        `config.auto_map`, so that `trust_remote_code=True` loads the checkpoint without tall_hf installed."""
        classes = {
            "AutoConfig": type(self.config),
            "AutoModel": type(self.base_model),
            **{name: type(self) for name in self.auto_classes},
        }
        if processor is not None:
            classes["AutoProcessor"] = type(processor)
        self.config.auto_map = save_remote_code(save_directory, classes)
        if processor is not None:  # `processor_config.json` routes AutoProcessor
            processor.auto_map = {"AutoProcessor": self.config.auto_map["AutoProcessor"]}

    def save_processor(self, processor: Any, save_directory: str | os.PathLike, adapters_only: bool) -> None:
        """Save the processor beside the model (a model may save more with a full checkpoint)."""
        processor.save_pretrained(save_directory)

    def _save_adapters(self, save_directory: str | os.PathLike, *, state_dict=None, repo_id: str | None) -> None:
        if state_dict is not None:
            raise ValueError("`state_dict` applies to full checkpoints; adapters-only ones take the model's own.")
        missing = [role for role, provenance in self.config.components.items() if not provenance.get("name_or_path")]
        if missing:
            raise ValueError(
                f"An adapters-only checkpoint fetches its components at load time, but {missing} were built from a "
                f"config, not loaded from a hub id or folder; save a full checkpoint instead."
            )
        weights = {key: tensor.detach().contiguous().cpu() for key, tensor in self.peft_adapter_state_dict().items()}
        save_file(weights, os.path.join(save_directory, ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
        peft_config = self.adapter_peft_config(base_model_name_or_path=repo_id)
        peft_config.inference_mode = True
        peft_config.save_pretrained(save_directory)
        config = self.config
        config.architectures = [type(self).__name__]
        config.save_pretrained(save_directory)
        if self.can_generate():
            self.generation_config.save_pretrained(save_directory)

    def push_to_hub(
        self,
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
            self.save_pretrained(
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
                commit_message=commit_message or f"Upload {type(self).__name__} {kind}",
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
                replaces=is_weight_file,
            )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *model_args,
        component_paths: dict[str, Any] | None = None,
        **kwargs,
    ):
        """Load a full or adapters-only checkpoint from a folder or a hub id (safetensors only).

        For an adapters-only checkpoint the components come from the recorded provenance; `component_paths` replaces
        a role's location (`{"llm": "/models/qwen"}`, e.g. a local copy when the hub is unreachable). A checkpoint
        with only pickled weights raises a [`PickledCheckpointError`] instead of being unpickled.
        """
        download_kwargs = {name: kwargs[name] for name in DOWNLOAD_KWARGS if name in kwargs}
        if is_offline_mode():
            download_kwargs["local_files_only"] = True
        if checkpoint_kind(pretrained_model_name_or_path, **download_kwargs) == "full":
            if component_paths is not None:
                raise ValueError(
                    "`component_paths` applies to adapters-only checkpoints; this one holds every weight."
                )
            kwargs.pop("adapter_kwargs", None)
            kwargs["use_safetensors"] = True
            if kwargs.get("config") is None and not find_file(
                pretrained_model_name_or_path, CONFIG_NAME, **download_kwargs
            ):
                raise OSError(
                    f"{pretrained_model_name_or_path} has model weights but no {CONFIG_NAME}: a saved model needs the "
                    "config it was saved with (save_pretrained writes both)."
                )
            loaded = load_naming_file(super().from_pretrained, pretrained_model_name_or_path, *model_args, **kwargs)
            model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, loading_info) on request
            check_finite(model.state_dict(), f"{pretrained_model_name_or_path} ({SAFE_WEIGHTS_NAME})")
            model.mark_adapters_trainable()
            return loaded
        if model_args:
            raise TypeError(
                "An adapters-only checkpoint is rebuilt from its components: pass no positional arguments."
            )
        supported = {"dtype", "torch_dtype", "device_map"}
        unsupported = sorted(set(kwargs) - set(DOWNLOAD_KWARGS) - _IGNORED_ON_ADAPTER_LOAD - supported)
        if unsupported:
            raise TypeError(f"Options {unsupported} are not supported when loading an adapters-only checkpoint.")
        dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
        device = kwargs.get("device_map")
        if device is not None and (not isinstance(device, (str, int, torch.device)) or device in _DISPATCHING_MAPS):
            raise TypeError(
                f"device_map={device!r}: an adapters-only checkpoint loads onto one device (e.g. 'cuda:0'); "
                "spreading it over several is not supported."
            )
        saved_config = kwargs.get("config")
        if not isinstance(saved_config, cls.config_class):
            saved_config = cls.config_class.from_pretrained(pretrained_model_name_or_path, **download_kwargs)
        model = cls.from_components(
            **_component_specs(saved_config.components, component_paths),
            **({"dtype": dtype} if dtype not in (None, "auto") else {}),
            **_own_fields(saved_config),
        )
        model.load_adapters(pretrained_model_name_or_path, **download_kwargs)
        model.mark_adapters_trainable()
        drift = _component_drift(saved_config, model.config)
        if drift:
            logger.warning(
                f"The components loaded for {pretrained_model_name_or_path} differ from those it was saved with "
                f"({'; '.join(drift)}); the adapters fit their shapes, but outputs may differ from the trained model's."
            )
        model.config.name_or_path = str(pretrained_model_name_or_path)
        return (model if device is None else model.to(device)).eval()

    def load_adapters(self, name_or_path: str | os.PathLike, **download_kwargs) -> None:
        """Load the PEFT adapter weights (`adapter_model.safetensors`) of a folder or hub repository onto this model,
        as `PeftModel.from_pretrained(model, path)` would: keys and shapes must match exactly."""
        path = find_file(name_or_path, ADAPTER_WEIGHTS_NAME, **download_kwargs)
        if path is None:
            checkpoint_kind(name_or_path, **download_kwargs)  # raises the pickled/missing error
            raise OSError(f"{name_or_path} holds no {ADAPTER_WEIGHTS_NAME}.")
        self.load_adapter_state_dict(load_naming_file(load_file, path), source=str(name_or_path))

    def load_adapter_state_dict(self, state_dict: dict[str, torch.Tensor], source: str = "the state dict") -> None:
        """Apply PEFT adapter weights (named as `peft_adapter_state_dict` names them) with
        `set_peft_model_state_dict`; raise a `ValueError` naming every missing, unexpected or differently shaped
        tensor (e.g. adapters trained against components of another size)."""
        from peft import set_peft_model_state_dict

        state_dict = {
            PEFT_PREFIX + self.current_key(key.removeprefix(PEFT_PREFIX)): v for key, v in state_dict.items()
        }
        expected = self.peft_adapter_state_dict()
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        mismatched = [
            f"{key.removeprefix(PEFT_PREFIX)}: checkpoint {tuple(state_dict[key].shape)} vs model "
            f"{tuple(expected[key].shape)}"
            for key in sorted(set(expected) & set(state_dict))
            if state_dict[key].shape != expected[key].shape
        ]
        if missing or unexpected or mismatched:
            problems = []
            if mismatched:
                problems.append(f"{len(mismatched)} tensors of another shape:\n  " + "\n  ".join(mismatched))
            if missing:
                problems.append(f"{len(missing)} tensors missing from the checkpoint: {', '.join(missing)}")
            if unexpected:
                problems.append(f"{len(unexpected)} tensors the model does not have: {', '.join(unexpected)}")
            raise ValueError(
                f"The adapter weights in {source} do not fit this {type(self).__name__} (were they trained against "
                f"other components?):\n" + "\n".join(problems)
            )
        peft_config = self.adapter_peft_config()
        view = self._peft_view(peft_config)
        set_peft_model_state_dict(
            view, {key.removeprefix(PEFT_PREFIX): value for key, value in state_dict.items()}, ADAPTER_NAME
        )
        for name in peft_config.modules_to_save:  # the trained stages replace this model's own
            self.set_submodule(name, view.get_submodule(name).modules_to_save[ADAPTER_NAME])
        self.mark_adapters_trainable()


def _inside(name: str, module: str) -> bool:
    """Whether the parameter or module `name` is `module` or inside it."""
    return name == module or name.startswith(module + ".")


def _shallow_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of `module` sharing its submodules, whose own submodule table can be changed without touching it."""
    view = copy.copy(module)
    view._modules = dict(module._modules)
    return view


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


def _own_fields(config: Any) -> dict[str, Any]:
    """The fields a config class declares itself (not its components' configs nor their provenance): what
    `from_components` needs, beside the components, to rebuild the saved architecture."""
    components = {f"{role}_config" for role in config.components} | {"components"}
    return {name: getattr(config, name) for name in type(config).__annotations__ if name not in components}


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


__all__ = ["AdapterMixin"]

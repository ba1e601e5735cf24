"""Adapter configs: what a small checkpoint of trainable parts needs to be rebuilt on its frozen components.

PEFT's `adapter_config.json` records the base model a tuner was trained against; a composite model has several
frozen components, so this one records each of them (hub id or folder, and revision), the model's own config fields
that are not derived from the components, the optional LoRA on the LLM, and the library version that wrote it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from transformers.utils import cached_file

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
PICKLED_ADAPTER_WEIGHTS_NAME = "adapter_model.bin"


def lora_to_dict(lora: Any) -> dict | None:
    """A `peft.LoraConfig` (or its dict) as a JSON-safe dict; sets become sorted lists, enums their values."""
    if lora is None:
        return None
    if not isinstance(lora, dict):
        lora = lora.to_dict()
    return json.loads(json.dumps(lora, default=lambda value: sorted(value) if isinstance(value, set) else str(value)))


def lora_from_dict(lora: dict):
    """The `peft.LoraConfig` (or other PEFT tuner config) a dict describes."""
    from peft import LoraConfig

    return LoraConfig.from_peft_type(**lora)


@dataclass
class AdapterConfig:
    """The record of an adapters-only checkpoint (`adapter_config.json`) of a composite model.

    Args:
        model_type: the model's `config.model_type` (`"tall"`, ...).
        components: provenance of every frozen component, `{role: {"name_or_path": ..., "revision": ...}}`; an
            adapters-only checkpoint fetches them from there at load time.
        model_config: the model config's fields that differ from what its config class derives from the components
            alone (e.g. `loss_mode`, `adapter_dropout`, a hand-set `source_transformer_config`). Passed as
            overrides when the model is rebuilt, so the trainable modules get exactly their trained shapes.
        lora: the `peft.LoraConfig` (as a dict) injected into the frozen LLM, if any; its weights are saved with the
            adapters.
        adapter_modules: the names of the model's trainable modules, whose weights `adapter_model.safetensors` holds.
        base_model_name_or_path: where the model's `config.json` lives: the checkpoint's own hub id when pushed.
            transformers' PEFT integration follows this field when `AutoModel.from_pretrained` is given a hub id of a
            repository with an `adapter_config.json`, so it must point back at the repository itself.
        library_name, library_version: the package (and version) that wrote the checkpoint.
    """

    model_type: str = ""
    components: dict[str, dict[str, str | None]] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    lora: dict | None = None
    adapter_modules: list[str] = field(default_factory=list)
    base_model_name_or_path: str | None = None
    library_name: str = "tall_hf"
    library_version: str | None = None

    def __post_init__(self) -> None:
        self.lora = lora_to_dict(self.lora)
        self.adapter_modules = list(self.adapter_modules)
        if self.library_version is None:
            from .. import __version__

            self.library_version = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write `adapter_config.json` into `save_directory`; returns its path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, ADAPTER_CONFIG_NAME)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json_string())
        return path

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **download_kwargs) -> AdapterConfig:
        """Read `adapter_config.json` from a folder or a hub repository (`revision`, `token`, ... as in transformers)."""
        path = cached_file(str(name_or_path), ADAPTER_CONFIG_NAME, **download_kwargs)
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
        expected = cls().model_type
        if expected and values.get("model_type") != expected:
            raise ValueError(
                f"{path} describes adapters of a {values.get('model_type')!r} model, not of a {expected!r} model."
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path} has fields this version of tall_hf does not know: {unknown}.")
        return cls(**values)

    def component_specs(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """`{role: spec, f"{role}_revision": revision}` for a model's `from_components`; `overrides` replace a
        role's recorded location (e.g. a local copy of a hub component), in which case no revision is passed."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.components))
        if unknown:
            raise ValueError(f"Unknown component roles {unknown}; this checkpoint has {sorted(self.components)}.")
        specs: dict[str, Any] = {}
        for role, provenance in self.components.items():
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


@dataclass
class TallAdapterConfig(AdapterConfig):
    """The adapter config of [`TallForCausalLM`]: as input to [`get_tall_model`], the TALL config fields and LoRA to
    train with; as written by `save_pretrained(..., adapters_only=True)`, also the three components' provenance.

    ```python
    >>> from peft import LoraConfig
    >>> from tall_hf.adapters import TallAdapterConfig, get_tall_model
    >>> adapter_config = TallAdapterConfig(
    ...     model_config={"loss_mode": "last_word"}, lora=LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    ... )
    >>> model = get_tall_model(
    ...     "Helsinki-NLP/opus-mt-tc-big-he-en", "Qwen/Qwen2.5-0.5B", "Helsinki-NLP/opus-mt-en-he", adapter_config
    ... )
    >>> model.print_trainable_parameters()
    ```
    """

    model_type: str = "tall"


__all__ = [
    "ADAPTER_CONFIG_NAME",
    "ADAPTER_WEIGHTS_NAME",
    "AdapterConfig",
    "TallAdapterConfig",
    "lora_from_dict",
    "lora_to_dict",
]

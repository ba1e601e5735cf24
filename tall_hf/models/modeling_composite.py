"""The base of a model composed of frozen pretrained components and small trainable parts (TALL, the bridge).

[`ComposedPreTrainedModel`] is a plain `PreTrainedModel`: it keeps transformers' `save_pretrained`,
`from_pretrained` and `push_to_hub` as they are. What it adds is what a composite needs:

- assembly from components and their provenance (`assemble`, recorded in `config.components`);
- freezing: the components (`frozen_modules`) never train and always run in eval mode; the trainable stages
  (`adapter_modules`) do, except the fixed tables inside them (`adapter_fixed_weights`, e.g. sinusoids);
- the parameter report (`parameter_report`, `parameter_table`, `print_trainable_parameters`);
- an optional PEFT tuner (`config.lora`) injected into the frozen LLM (`lora_target`) with PEFT's
  `inject_adapter_in_model`, as transformers' `add_adapter` does;
- `adapter_peft_config()`: the trainable part as one `peft.PeftConfig` (the tuner, or PEFT's target-less LoRA, with the
  trainable stages as `modules_to_save`), so that `peft.get_peft_model` wraps the model and a `PeftModel` saves and
  loads the adapters-only checkpoint (see `tall_hf.adapters`).

Module names are paths inside the model (`"model.encoder.llm"`). peft is imported only where a PEFT function runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming
from transformers.utils import logging

logger = logging.get_logger(__name__)

# peft is imported only where a PEFT function runs, inside `try`: transformers' check of a checkpoint's remote code
# skips those imports, so the model loads with `trust_remote_code=True` where peft is not installed.
PEFT_MISSING = "This needs peft (`pip install peft`): a PEFT tuner or an adapters-only checkpoint."
# The adapter name PEFT uses by default: the one tuner and the `modules_to_save` copies are registered under it.
ADAPTER_NAME = "default"


def _inside(name: str, module: str) -> bool:
    """Whether the parameter or module `name` is `module` or inside it."""
    return name == module or name.startswith(module + ".")


def rooted_target_modules(targets: str | Iterable[str] | None, root: str) -> str | None:
    """PEFT `target_modules` named inside the module `root` (a list of name suffixes, or a regex matched against the
    whole name), as one regex over the enclosing model's module names that matches the same modules and no other."""
    if targets is None:
        return None
    prefix = re.escape(root) + r"\."
    if isinstance(targets, str):
        return f"{prefix}(?:{targets})"
    return f"{prefix}(?:.*\\.)?(?:{'|'.join(re.escape(target) for target in sorted(targets))})"


def register_legacy_key_mapping(model_type: str, mapping: dict[str, str]) -> None:
    """Register weight renamings (regex -> replacement) of a model type's earlier checkpoints with transformers'
    checkpoint conversion mapping: `from_pretrained` reads such checkpoints (and `save_pretrained` keeps writing
    that original layout, transformers' `save_original_format`)."""
    renamings = [WeightRenaming(source, target) for source, target in mapping.items()]
    register_checkpoint_conversion_mapping(model_type, renamings, overwrite=True)


def _rename_legacy_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """A `load_state_dict` pre-hook: weights named in an earlier layout (`_checkpoint_conversion_mapping`) get
    today's names (`Trainer` resumes with a plain `load_state_dict` of the saved, original-layout weights)."""
    for key in [key for key in state_dict if key.startswith(prefix)]:
        current = prefix + module.current_key(key.removeprefix(prefix))
        if current != key:
            state_dict[current] = state_dict.pop(key)


def tuner_from_dict(tuner: dict):
    """The PEFT config (of the type its `peft_type` names) a dict describes."""
    try:
        from peft import PeftConfig
    except ImportError as error:
        raise ImportError(PEFT_MISSING) from error

    return PeftConfig.from_peft_type(**tuner)


class ComposedPreTrainedModel(PreTrainedModel):
    """A `PreTrainedModel` of frozen components and trainable stages (see the module docstring).

    A subclass sets `frozen_modules` and `adapter_modules` (paths), `component_arguments` (role -> the keyword of
    `__init__` that takes that component's loaded model), `lora_target` (the path of the LLM a tuner may adapt), and
    calls `self.freeze_components()` and `self.init_lora()` at the end of `__init__`. Its config is a
    [`ComposedConfig`]."""

    frozen_modules: tuple[str, ...] = ()
    adapter_modules: tuple[str, ...] = ()
    component_arguments: dict[str, str] = {}
    lora_target: str | None = "llm"
    # Deterministic tables inside trainable modules (fixed sinusoids), rebuilt at construction; they never train.
    adapter_fixed_weights: tuple[str, ...] = ("embed_positions.weight",)
    # The Auto classes a checkpoint's `auto_map` routes to this class (`AutoModel` goes to `base_model`'s class).
    auto_classes: tuple[str, ...] = ("AutoModelForCausalLM",)
    # The model card (`tall_hf/model_cards/`) and its hub pipeline tag (one whose transformers pipeline runs the model).
    model_card_template: str | None = None
    card_pipeline_tag: str | None = None
    # Weight names of earlier checkpoints (regex -> replacement), as registered with transformers' checkpoint
    # conversion mapping; PEFT's `PeftModel.from_pretrained` renames an adapter file's weights with it too.
    _checkpoint_conversion_mapping: dict[str, str] = {}

    def __init__(self, config, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        if self._checkpoint_conversion_mapping:
            self.register_load_state_dict_pre_hook(_rename_legacy_keys)

    @classmethod
    def current_key(cls, key: str) -> str:
        """A weight name of this or an earlier checkpoint layout, in today's layout."""
        for pattern, replacement in cls._checkpoint_conversion_mapping.items():
            key = re.sub(pattern, replacement, key)
        return key

    # ------------------------------------------------------------------ components
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
        `utils.loading.resolve_component` gives them): its config from the components' configs
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
        """The pretrained components (`frozen_modules`, a PEFT tuner inside them excepted) and the fixed tables of the
        trainable stages get `requires_grad=False`. Weights loaded by `from_pretrained` arrive trainable; the
        `eval()` it ends with (and every `train()`) freezes them again."""
        tuner_prefix = self._tuner_prefix()
        fixed = self._fixed_adapter_keys()
        for name, parameter in self.named_parameters():
            in_tuner = tuner_prefix is not None and tuner_prefix in name
            frozen = any(_inside(name, module) for module in self.frozen_modules) and not in_tuner
            if frozen or name in fixed:
                parameter.requires_grad_(False)

    def mark_adapters_trainable(self) -> None:
        """Exactly the adapters train: the trainable stages (their fixed tables excepted) and a `config.lora`
        tuner's weights."""
        tuner_prefix = self._tuner_prefix()
        for name, parameter in self.named_parameters():
            in_tuner = tuner_prefix is not None and tuner_prefix in name
            parameter.requires_grad_(in_tuner or any(_inside(name, module) for module in self.adapter_modules))
        self.freeze_components()

    def train(self, mode: bool = True):
        """Train mode for the trainable stages; the frozen components always run deterministically (eval mode) and
        never train."""
        super().train(mode)
        for name in self.frozen_modules:
            self.get_submodule(name).eval()
        self.freeze_components()
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
        """Per stage: total and trainable parameters, and whether the stage is one of the trainable stages."""
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
        """(trainable, total) parameter counts, a tied tensor counted once (PEFT's name)."""
        return self.num_parameters(only_trainable=True), self.num_parameters()

    def print_trainable_parameters(self) -> None:
        """PEFT's one-line summary: trainable params, all params and the trainable share."""
        trainable, total = self.get_nb_trainable_parameters()
        print(
            f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {100 * trainable / total:.4f}"
        )

    # ------------------------------------------------------------------ a PEFT tuner on the frozen LLM
    def init_lora(self) -> None:
        """Inject the PEFT tuner of `config.lora` (LoRA or any other) into the frozen LLM (`lora_target`); only its
        weights train there."""
        lora = getattr(self.config, "lora", None)
        if lora is None:
            return
        if self.lora_target is None:
            raise ValueError(f"{type(self).__name__} has no LLM to put LoRA on, but its config sets `lora`.")
        try:
            from peft import inject_adapter_in_model
        except ImportError as error:
            raise ImportError(PEFT_MISSING) from error

        inject_adapter_in_model(tuner_from_dict(lora), self.get_submodule(self.lora_target), adapter_name=ADAPTER_NAME)

    def lora_train(self, mode: bool = True) -> None:
        """LoRA dropout follows `mode` even inside a frozen LLM that always runs in eval mode."""
        for module in self.modules():
            dropout = getattr(module, "lora_dropout", None)
            if isinstance(dropout, torch.nn.ModuleDict):
                dropout.train(mode)

    def _tuner_prefix(self) -> str | None:
        """The parameter-name prefix of the `config.lora` tuner's weights (`lora_` for LoRA), as PEFT marks them."""
        lora = getattr(self.config, "lora", None)
        if lora is None:
            return None
        try:
            from peft.mapping import PEFT_TYPE_TO_PREFIX_MAPPING
        except ImportError as error:
            raise ImportError(PEFT_MISSING) from error

        return PEFT_TYPE_TO_PREFIX_MAPPING[tuner_from_dict(lora).peft_type]

    def _fixed_adapter_keys(self) -> set[str]:
        return {
            f"{module}.{name}"
            for module in self.adapter_modules
            for name, _ in self.get_submodule(module).named_parameters()
            if name.endswith(self.adapter_fixed_weights)
        }

    def adapter_peft_config(self, base_model_name_or_path: str | None = None):
        """This model's trainable part as one `peft.PeftConfig`: the tuner on the LLM (`config.lora`, its targets
        rooted at `lora_target`) or PEFT's target-less LoRA, with the trainable stages that hold weights as
        `modules_to_save`."""
        try:
            from peft import LoraConfig
            from peft.utils.constants import DUMMY_TARGET_MODULES
        except ImportError as error:
            raise ImportError(PEFT_MISSING) from error

        lora = getattr(self.config, "lora", None)
        if lora is None:
            config = LoraConfig(target_modules=DUMMY_TARGET_MODULES)
        else:
            config = tuner_from_dict(lora)
            config.target_modules = rooted_target_modules(config.target_modules, self.lora_target)
        config.modules_to_save = [
            name for name in self.adapter_modules if any(True for _ in self.get_submodule(name).parameters())
        ]
        config.base_model_name_or_path = base_model_name_or_path
        return config


__all__ = [
    "ADAPTER_NAME",
    "ComposedPreTrainedModel",
    "register_legacy_key_mapping",
    "rooted_target_modules",
    "tuner_from_dict",
]

"""The config skeleton of a model composed of frozen pretrained components and small trainable parts."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PretrainedConfig


@strict
class ComposedConfig(PretrainedConfig):
    r"""
    What every composed model's config holds beside its components' configs (`f"{role}_config"`, one per role of
    `component_roles`, declared by the subclass as `sub_configs_defaults`).

    Args:
        components: provenance of the frozen parts, `{role: {"name_or_path": ..., "revision": ...}}`.
        lora: a PEFT tuner config as a dict (`LoraConfig`, `IA3Config`, ...) injected into the frozen LLM, its
            `target_modules` named inside the LLM (e.g. `["q_proj", "v_proj"]`). `None`: no tuner.
        initializer_range: standard deviation of the trainable parts' initial weights.
    """

    # The roles of the frozen components, in the order `from_component_configs` takes them (a subclass sets them).
    component_roles = ()

    components: dict | None = None
    lora: dict | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.components = {role: dict((self.components or {}).get(role, {})) for role in self.component_roles}

    @classmethod
    def from_component_configs(cls, *configs: PretrainedConfig, **kwargs) -> ComposedConfig:
        """Build the config from its components' configs (in the order of `component_roles`, or as
        `f"{role}_config"` keywords) and further fields."""
        names = [f"{role}_config" for role in cls.component_roles]
        kwargs.update(zip(names, configs, strict=False))
        return cls(**{name: kwargs.pop(name).to_dict() for name in names}, **kwargs)

    def own_fields(self) -> dict:
        """The fields this config declares beyond transformers' (not its components' configs nor their provenance):
        what rebuilds the same architecture from other copies of the components."""
        skipped = {f"{role}_config" for role in self.component_roles} | {"components"}
        names = [
            name
            for klass in reversed(type(self).__mro__)
            if isinstance(klass, type) and issubclass(klass, ComposedConfig)
            for name in klass.__dict__.get("__annotations__", {})
        ]
        return {name: getattr(self, name) for name in dict.fromkeys(names) if name not in skipped}


__all__ = ["ComposedConfig"]

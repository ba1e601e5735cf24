"""Model cards for checkpoints of the package's models, rendered from the Jinja2 templates in `tall_hf/model_cards/`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..model_cards import TEMPLATES

DEFAULT_TEMPLATE = "tall_model_card.md.j2"
# Where each component of TALL sits among the seven stages, for the card's component table.
STAGE_LABELS = {"lr_hr": "1 (encoder)", "llm": "4 (LLM)", "hr_lr": "7 (decoder, LM head)"}


@dataclass
class ModelCardInfo:
    """What a model card says beyond what the model itself knows.

    Args:
        language: languages of the model's input and output (e.g. `["he", "en"]`), for the front matter.
        license: the checkpoint's license id (mind the components' own licenses).
        datasets: hub ids of the training data.
        tags: extra tags (the library's and the model type's are always added).
        eval_results: `huggingface_hub.EvalResult`s, written as the front matter's `model-index`.
        model_name: the name used in `model-index` (defaults to the repository id).
        description: a paragraph on what this checkpoint is for.
        training: training setup to list (hyperparameters, data, hardware), e.g. from `TrainingArguments`.
        limitations: known limitations of this checkpoint, in addition to those of the method.
    """

    language: str | list[str] | None = None
    license: str | None = None
    datasets: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    eval_results: list[EvalResult] = field(default_factory=list)
    model_name: str | None = None
    description: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    limitations: list[str] = field(default_factory=list)


def is_hub_id(name_or_path: str | None) -> bool:
    """Whether a component location is a hub repository id (and not a local folder)."""
    if not name_or_path or os.path.exists(name_or_path):
        return False
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return False
    return True


def card_template(name: str) -> str:
    """The text of a card template shipped in the package (`tall_hf/model_cards/NAME`)."""
    if name not in TEMPLATES:
        raise ValueError(f"No model card template {name!r}; the package has {sorted(TEMPLATES)}.")
    return TEMPLATES[name]


def render_model_card(
    model: Any,
    info: ModelCardInfo | None = None,
    *,
    repo_id: str | None = None,
    name: str | None = None,
    adapters_only: bool = False,
    template: str | None = None,
) -> ModelCard:
    """Render the card of a model derived from [`ComposedPreTrainedModel`]: front matter (language, license, library, the
    components as `base_model`, tags, datasets, model-index), usage, components, parameters, training, limitations.
    `repo_id` is the hub id the checkpoint is for; `name` what the usage snippet loads (defaults to `repo_id`).

    Components given as local folders are not valid `base_model` entries on the hub: they are listed under the
    front matter's `tall_hf.components` (as every component is) and in the card's text only.
    """
    from .. import __version__

    info = info or ModelCardInfo()
    config = model.config
    components = [
        {
            "role": role,
            "name_or_path": provenance.get("name_or_path"),
            "revision": provenance.get("revision"),
            "model_type": getattr(config, f"{role}_config").model_type,
            "on_hub": is_hub_id(provenance.get("name_or_path")),
        }
        for role, provenance in config.components.items()
    ]
    base_models = [component["name_or_path"] for component in components if component["on_hub"]]
    card_data = ModelCardData(
        language=info.language,
        license=info.license,
        library_name="tall_hf",
        base_model=base_models or None,
        base_model_relation="adapter" if adapters_only and base_models else None,
        tags=list(dict.fromkeys(["tall_hf", config.model_type, *info.tags])),
        datasets=info.datasets or None,
        eval_results=info.eval_results or None,
        model_name=(info.model_name or repo_id or config.model_type) if info.eval_results else None,
        pipeline_tag=model.card_pipeline_tag,
        tall_hf={
            "checkpoint": "adapters-only" if adapters_only else "full",
            "components": {
                c["role"]: {"name_or_path": c["name_or_path"], "revision": c["revision"]} for c in components
            },
        },
    )
    context = {
        "model_class": type(model).__name__,
        "name": name or repo_id or "path/to/checkpoint",
        "repo_id": name or repo_id or "path/to/checkpoint",
        "stages": STAGE_LABELS,
        "adapters_only": adapters_only,
        "components": components,
        "adapter_modules": [
            module.rsplit(".", 1)[-1]
            for module in model.adapter_modules
            if any(True for _ in model.get_submodule(module).parameters())
        ],
        "config": config,
        "lora": getattr(config, "lora", None),
        "parameter_table": model.parameter_table() if hasattr(model, "parameter_table") else None,
        "info": info,
        "version": __version__,
    }
    name = template or model.model_card_template or DEFAULT_TEMPLATE
    return ModelCard.from_template(card_data, template_str=card_template(name), **context)


__all__ = ["ModelCardInfo", "card_template", "is_hub_id", "render_model_card"]

"""`--tiny_components DIR`: the command line's offline smoke runs build tiny components and use them in place of the
three hub models. The training and evaluation jobs never see the difference: they get the folders as model names."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers.utils import logging

from .tall_components import TINY_LLM_CONFIGS, build_tiny_components

logger = logging.get_logger(__name__)

MODEL_FIELDS = {"lr_hr": "lr_hr_model", "llm": "llm_model", "hr_lr": "hr_lr_model"}
TINY_NOTE = (
    "Built from tiny components with random weights (--tiny_components): accuracies near 0 are expected; this run "
    "checks the pipeline, not the method."
)


@dataclass
class TinyComponentsArguments:
    """Tiny random-weight components in place of the three models (offline smoke runs and tests)."""

    tiny_components: str | None = field(
        default=None,
        metadata={"help": "Build tiny random-weight components in this folder and use them (offline smoke runs)."},
    )
    tiny_llm: str = field(
        default="qwen2", metadata={"help": "LLM family of the tiny components.", "choices": tuple(TINY_LLM_CONFIGS)}
    )

    def fill(self, args) -> None:
        """With `--tiny_components`, build them (once) and set `args.lr_hr_model`, `llm_model` and `hr_lr_model` to
        their folders; model names given beside them are refused."""
        if self.tiny_components is None:
            return
        if any(getattr(args, name) for name in MODEL_FIELDS.values()):
            raise ValueError("--tiny_components builds all three components: do not combine it with model names.")
        paths = build_tiny_components(self.tiny_components, llm=self.tiny_llm)
        for role, name in MODEL_FIELDS.items():
            setattr(args, name, paths[role])
        logger.warning(TINY_NOTE)


def tiny_model_names(paths: dict[str, str]) -> dict[str, str]:
    """`--lr_hr_model`, `--llm_model`, `--hr_lr_model` values (as keyword arguments) of tiny component `paths`."""
    return {name: paths[role] for role, name in MODEL_FIELDS.items()}


__all__ = ["MODEL_FIELDS", "TINY_NOTE", "TinyComponentsArguments", "tiny_model_names"]

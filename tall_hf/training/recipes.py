"""TALL's training recipes in one place: the model options (`TallConfig` fields), optimisation settings
(`TrainingArguments` fields) and data options (`TallDataArguments` fields: what TALL learns from) each recipe sets.
`tall-hf train` (`parser_training_defaults`), `tall_training_arguments`, the evaluation's TALL (`with_recipe_defaults`)
and the demo all read them from here.

- `paper`: the TALL paper's recipe: custom transformer 1 replaces the LLM's input, both custom transformers start
  random, the loss is taken at the last piece of the last word only; AdamW at 1e-4, cosine, 100 warm-up steps.
- `fast`: stage 3 starts as a pass-through of the LLM's own embeddings (a gate at 0), custom
  transformer 2 as the HR->LR translator's encoder, the paper's last-token loss, a 10x higher learning rate with a
  5% warm-up. It reaches the ceiling of the generated worlds but learns almost nothing on real text (Wikipedia), where
  most gold last words are ones the LLM could not have predicted.
- `auto` (the default): `fast` or `teacher`, chosen at the start of a run (`choose_recipe`) by how often the frozen
  pipeline (the teacher) already writes the gold last word of the training sentences: often on generated text, where
  `fast` wins, rarely on real text, where `teacher` does. The choice and its reason are logged and written to the
  run's `recipe.json` (a resumed run reads it back).
- `teacher` (for real text): `fast`'s model with the loss on every piece of the last word, trained on what the
  frozen pipeline itself predicts at every word boundary of the training sentences (`tall_hf.training.teacher`: the
  LLM's next HR word, translated back with the LR prefix forced, as TALL's LR decoder reads it), the source side
  (stages 1-3, a pass-through of the LLM's own embeddings at the start) kept as it starts, so the LLM's states of each
  training row are computed once (`tall_hf.training.frozen_states`), batch 32, at most 60 epochs: training stops
  early once the eval loss has not improved for 4 evaluations (every 500 steps; `early_stopping_patience`), or
  after 14 minutes of training (`max_train_minutes`, for larger components), and the checkpoint of the best eval loss
  is restored. It learns on Wikipedia, where most gold last words are ones the LLM could not have predicted and
  `fast` learns almost nothing. On a Wikipedia world the eval loss is lowest after about 22 epochs, and the test
  accuracy gains nothing after it (benchmarks/README.md, "`tall-hf train` by its defaults").

How they (and variants between them) compare on known-answer worlds: `benchmarks/recipes.py`, its figures in
`benchmarks/README.md` ("Training recipes", "On real text").
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .time_limit import TallTrainingArguments

# Settings every recipe shares: evaluation and checkpoints by steps, the best checkpoint by eval loss restored.
COMMON_TRAINING = {
    "eval_strategy": "steps",
    "save_strategy": "steps",
    "eval_steps": 100,
    "save_steps": 100,
    "logging_steps": 25,
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "metric_for_best_model": "eval_loss",
    "greater_is_better": False,
    "num_train_epochs": 5,
    "remove_unused_columns": False,
    "report_to": "none",
    # A resumed run goes on as the interrupted one would have: early stopping's count of evaluations without
    # improvement comes back with the checkpoint (the time limit's minutes come back whatever this says).
    "restore_callback_states_from_checkpoint": True,
}


@dataclass(frozen=True)
class TallRecipe:
    """A recipe: `model` holds `TallConfig` fields, `training` holds `TrainingArguments` fields, `data` holds the
    `TallDataArguments` fields of `RECIPE_DATA_FIELDS` (what TALL learns from)."""

    model: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    # Steps of adapter B's pre-training on reading the LLM's predictions (`pretrain_next_token_reader`; 0: none).
    next_token_reader_steps: int = 0
    # Trainable stages (`TRAINABLE_STAGES` names) kept as they start (`freeze_stages`).
    frozen_stages: tuple[str, ...] = ()


# Stages 1-3 (what the LLM reads): the gated pass-through keeps the LLM reading its own embeddings while they stay as
# they start.
SOURCE_SIDE = ("encoder_fusion", "source_alignment", "source_transformer")
# `fast`'s settings, which `teacher` builds on.
_FAST_MODEL = {"loss_mode": "last_token", "source_residual": True, "target_transformer_init": "translator"}
_FAST_TRAINING = {
    "learning_rate": 1e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,  # a share of the steps
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
}

TALL_RECIPES: dict[str, TallRecipe] = {
    "paper": TallRecipe(
        model={"loss_mode": "last_token", "source_residual": False, "target_transformer_init": "random"},
        training={
            "learning_rate": 1e-4,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 100,
            "weight_decay": 0.01,
            "max_grad_norm": 1.0,
        },
    ),
    "fast": TallRecipe(model=_FAST_MODEL, training=_FAST_TRAINING),
    "teacher": TallRecipe(
        model={**_FAST_MODEL, "loss_mode": "last_word"},
        training={
            **_FAST_TRAINING,
            "per_device_train_batch_size": 32,
            "num_train_epochs": 60,
            "max_train_minutes": 14,
            "early_stopping_patience": 4,
            "eval_steps": 500,
            "save_steps": 500,
        },
        data={"teacher_labels": True, "teacher_forced_prefix": True, "word_boundaries": True},
        frozen_stages=SOURCE_SIDE,
    ),
}
# `auto`: a recipe of `TALL_RECIPES` chosen at run time (`choose_recipe`); its settings are the chosen recipe's.
AUTO_RECIPE = "auto"
RECIPE_NAMES = (*TALL_RECIPES, AUTO_RECIPE)
DEFAULT_RECIPE = AUTO_RECIPE
# `auto` reads the teacher's words on the first this many training sentences, and picks `fast` (gold labels) when at
# least `AUTO_THRESHOLD` of them are the gold word, else `teacher`. Measured (benchmarks/README.md, "On real text"):
# the generated lossy world's training sentences far above it, Wikipedia's far below.
AUTO_SENTENCES = 500
AUTO_THRESHOLD = 0.25
# ... unless the pipeline writes a word for fewer than this share of them (e.g. untrained components): too few
# teacher labels, so `fast`.
AUTO_MIN_ANSWERED = 0.1
RECIPE_MODEL_FIELDS = ("loss_mode", "source_residual", "target_transformer_init")
RECIPE_DATA_FIELDS = ("teacher_labels", "teacher_forced_prefix", "word_boundaries")


def freeze_stages(model, stages: tuple[str, ...] | list[str]) -> None:
    """Keep the named trainable stages of `model` as they start: no gradient, so the optimizer leaves them alone and,
    with every stage before the LLM frozen, no backward pass runs through the LLM."""
    for stage in stages:
        module = getattr(model, stage, None)
        if module is None:
            raise ValueError(f"TALL has no stage {stage!r} to freeze.")
        module.requires_grad_(False)


def get_recipe(name: str) -> TallRecipe:
    """The recipe called `name` (`auto` has no settings of its own: an empty recipe); a `ValueError` lists the known
    ones."""
    if name == AUTO_RECIPE:
        return TallRecipe()
    if name not in TALL_RECIPES:
        raise ValueError(f"Unknown TALL recipe {name!r}; choose one of {sorted(RECIPE_NAMES)}.")
    return TALL_RECIPES[name]


def choose_recipe(gold: float, answered: float = 1.0) -> tuple[str, str]:
    """`auto`'s choice, `(recipe, reason)`, from how the frozen pipeline (the teacher) does on the training sentences
    (`tall_hf.training.teacher.teacher_agreement`): `gold`, the share whose gold last word it writes; `answered`, the
    share it writes any word for."""
    if gold >= AUTO_THRESHOLD:
        return "fast", (
            f"the frozen pipeline writes the gold last word of {gold:.1%} of the training sentences (at least "
            f"{AUTO_THRESHOLD:.0%}): the gold words are labels TALL can learn from the LLM"
        )
    if answered < AUTO_MIN_ANSWERED:
        return "fast", (
            f"the frozen pipeline writes a word for only {answered:.1%} of the training sentences (under "
            f"{AUTO_MIN_ANSWERED:.0%}): too few to learn from its own words"
        )
    return "teacher", (
        f"the frozen pipeline writes the gold last word of only {gold:.1%} of the training sentences (under "
        f"{AUTO_THRESHOLD:.0%}) and a word for {answered:.1%}: most gold words are ones the LLM cannot predict, so "
        "TALL learns from the pipeline's own words"
    )


def training_defaults(recipe: str = DEFAULT_RECIPE) -> dict:
    """`TrainingArguments` fields of a recipe, with the settings all recipes share; for `auto`, only the shared
    settings no recipe changes (the chosen recipe's fill the rest: `with_recipe_defaults`)."""
    if recipe == AUTO_RECIPE:
        changed = {name for candidate in TALL_RECIPES.values() for name in candidate.training}
        return {name: value for name, value in COMMON_TRAINING.items() if name not in changed}
    return {**COMMON_TRAINING, **get_recipe(recipe).training}


def recipe_field(description: str):
    """A dataclass field naming a recipe (default: `DEFAULT_RECIPE`), for `HfArgumentParser` (`choices` checked)."""
    return field(default=DEFAULT_RECIPE, metadata={"help": description, "choices": RECIPE_NAMES})


# The default recipe's `training_defaults`, as a constant for callers that spread it into `TrainingArguments`.
TRAINING_DEFAULTS = training_defaults(DEFAULT_RECIPE)


def parser_training_defaults(argv: list[str]) -> dict:
    """The training defaults of the recipe that command-line `argv` asks for (`--recipe NAME`, else the default),
    for `HfArgumentParser.set_defaults`: any flag given still wins."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--recipe", default=DEFAULT_RECIPE, choices=RECIPE_NAMES)
    return training_defaults(parser.parse_known_args(argv)[0].recipe)


def tall_training_arguments(output_dir: str | os.PathLike, recipe: str = "fast", **overrides) -> TallTrainingArguments:
    """`TallTrainingArguments` of a TALL recipe (`fast` by default: the Python API trains the model it is given, and
    only `run_training`, which reads the text first, resolves `auto`; `"paper"` for the paper's): AdamW, cosine
    schedule, evaluation and checkpoints by steps, best checkpoint by eval loss restored at the end. Any field can be
    overridden."""
    return TallTrainingArguments(output_dir=str(output_dir), **{**training_defaults(recipe), **overrides})


def chosen_training_arguments(args: TrainingArguments, recipe: str) -> TrainingArguments:
    """`args` of a run with recipe `auto`, with the training settings of the recipe it chose wherever `args` holds
    what `auto`'s own defaults give (a flag given at that very value counts as not given). Fields `args` lacks are
    left out (plain `TrainingArguments` have no `max_train_minutes`: no time limit)."""
    reference = TallTrainingArguments(output_dir=args.output_dir, **training_defaults(AUTO_RECIPE))
    overrides = {
        name: value
        for name, value in training_defaults(recipe).items()
        if name in _field_names(args) and getattr(args, name) == getattr(reference, name)
    }
    return dataclasses.replace(args, **overrides)


def _field_names(args: TrainingArguments) -> set[str]:
    return {field.name for field in dataclasses.fields(args)}


_LIBRARY_DEFAULTS = {field.name: field.default for field in dataclasses.fields(TallTrainingArguments)}


def with_recipe_defaults(base: TrainingArguments, defaults: dict, output_dir: str) -> TrainingArguments:
    """A copy of `base` writing to `output_dir`, with `defaults` for every field `base` left at the library default
    (how the evaluation applies a recipe to the `TrainingArguments` it was given; fields `base` lacks left out)."""
    overrides = {
        name: value
        for name, value in defaults.items()
        if name in _field_names(base) and getattr(base, name) == _LIBRARY_DEFAULTS[name]
    }
    return dataclasses.replace(base, output_dir=output_dir, **overrides)


__all__ = [
    "AUTO_MIN_ANSWERED",
    "AUTO_RECIPE",
    "AUTO_SENTENCES",
    "AUTO_THRESHOLD",
    "COMMON_TRAINING",
    "DEFAULT_RECIPE",
    "RECIPE_DATA_FIELDS",
    "RECIPE_NAMES",
    "RECIPE_MODEL_FIELDS",
    "SOURCE_SIDE",
    "TALL_RECIPES",
    "TRAINING_DEFAULTS",
    "TallRecipe",
    "choose_recipe",
    "chosen_training_arguments",
    "freeze_stages",
    "get_recipe",
    "parser_training_defaults",
    "recipe_field",
    "tall_training_arguments",
    "training_defaults",
    "with_recipe_defaults",
]

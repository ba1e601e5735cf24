"""The training job behind `tall-hf train` and `examples/train_tall.py`: components, data, Trainer, resume."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from accelerate import PartialState
from datasets import Dataset
from transformers import IntervalStrategy, Trainer, TrainingArguments, set_seed
from transformers.utils import logging

from ..data import PreparationArguments, prepare_tall_dataset
from ..data.preparation import NoSentenceLeftError, word_boundary_prefixes
from ..data.text_files import read_sentences
from ..models.tall import TallForConditionalGeneration, TallProcessor
from ..models.tall.configuration_tall import LOSS_MODES, TARGET_TRANSFORMER_INITS, TallConfig
from ..modules.fusion import FUSION_METHODS
from ..utils.folders import lock_output_folder
from ..utils.launch import warn_on_process_mismatch
from .adapter_pretraining import NEXT_TOKEN_READER, pretrain_next_token_reader
from .checkpointing import checkpoint_step, finished_run, last_complete_checkpoint
from .recipes import (
    AUTO_RECIPE,
    AUTO_SENTENCES,
    RECIPE_DATA_FIELDS,
    RECIPE_MODEL_FIELDS,
    choose_recipe,
    chosen_training_arguments,
    freeze_stages,
    get_recipe,
    recipe_field,
)
from .teacher import TEACHER_DATA, teacher_agreement, with_teacher_labels
from .trainer import train_tall

logger = logging.get_logger(__name__)

# Where a run with recipe `auto` records the recipe it chose, and why.
CHOSEN_RECIPE_FILE = "recipe.json"


@dataclass
class TallModelArguments:
    """Which components TALL is built from, and its trainable parts."""

    lr_hr_model: str | None = field(default=None, metadata={"help": "LR->HR translator: hub id or folder."})
    llm_model: str | None = field(default=None, metadata={"help": "The frozen LLM: hub id or folder."})
    hr_lr_model: str | None = field(default=None, metadata={"help": "HR->LR translator: hub id or folder."})
    lr_hr_revision: str | None = field(default=None, metadata={"help": "Revision of the LR->HR translator."})
    llm_revision: str | None = field(default=None, metadata={"help": "Revision of the LLM."})
    hr_lr_revision: str | None = field(default=None, metadata={"help": "Revision of the HR->LR translator."})
    recipe: str = recipe_field(
        "TALL recipe (tall_hf.training.recipes): its model options and training defaults; 'paper' is the paper's. "
        "Options given below win."
    )
    loss_mode: str | None = field(
        default=None, metadata={"help": f"One of {LOSS_MODES} (default: the recipe's).", "choices": LOSS_MODES}
    )
    source_residual: bool | None = field(
        default=None,
        metadata={
            "help": "Stage 3 adds to the LLM's own embeddings through a gate starting at 0 (default: recipe's)."
        },
    )
    target_transformer_init: str | None = field(
        default=None,
        metadata={
            "help": "Custom transformer 2 starts 'random' or as the HR->LR 'translator' encoder (default: recipe's).",
            "choices": TARGET_TRANSFORMER_INITS,
        },
    )
    encoder_fusion: str = field(
        default=TallConfig.encoder_fusion,
        metadata={"help": "How stage 1 fuses the LR encoder's layers.", "choices": tuple(FUSION_METHODS)},
    )
    adapter_dropout: float = field(
        default=TallConfig.adapter_dropout, metadata={"help": "Dropout inside the alignment adapters."}
    )
    transformer_dropout: float | None = field(
        default=None, metadata={"help": "Dropout of the custom transformers (default: the translators' own)."}
    )
    next_token_reader_steps: int | None = field(
        default=None,
        metadata={
            "help": "Steps of adapter B's pre-training on reading the LLM's predictions before TALL trains (0: none; "
            "default: the recipe's). Resumable; skipped when TALL resumes from a checkpoint."
        },
    )
    frozen_stages: list[str] | None = field(
        default=None,
        metadata={
            "help": "Trainable stages kept as they start, e.g. encoder_fusion source_alignment source_transformer "
            "(default: the recipe's)."
        },
    )

    def model_options(self) -> dict:
        """The recipe's `TallConfig` options, with those given here in their place."""
        options = dict(get_recipe(self.recipe).model)
        options.update({name: getattr(self, name) for name in RECIPE_MODEL_FIELDS if getattr(self, name) is not None})
        return options

    def components(self) -> dict[str, str]:
        """`{"lr_hr", "llm", "hr_lr"}` hub ids or folders."""
        missing = [name for name in ("lr_hr_model", "llm_model", "hr_lr_model") if not getattr(self, name)]
        if missing:
            raise ValueError(f"Pass --{' --'.join(missing)} (hub ids or folders).")
        return {"lr_hr": self.lr_hr_model, "llm": self.llm_model, "hr_lr": self.hr_lr_model}

    def revisions(self) -> dict[str, str | None]:
        return {
            "lr_hr_revision": self.lr_hr_revision,
            "llm_revision": self.llm_revision,
            "hr_lr_revision": self.hr_lr_revision,
        }


@dataclass
class TallDataArguments:
    """The low-resource text TALL learns from."""

    train_file: str = field(metadata={"help": "Text file of LR sentences, one a line."})
    validation_file: str | None = field(default=None, metadata={"help": "Held-out sentences, one a line."})
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "Without --validation_file, hold out this share (percent) of the prepared training data; with "
            "word boundaries, of the training sentences before they are cut into prefixes."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on the first N sentences (non-blank lines) of the file only."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep at most N validation sentences."})
    word_boundaries: bool | None = field(
        default=None,
        metadata={
            "help": "Every sentence also cut after each of its words (from --min_words on), each cut a last-word "
            "example of its own (default: the recipe's)."
        },
    )
    teacher_labels: bool | None = field(
        default=None,
        metadata={
            "help": "Train on the word the frozen components predict (translate, LLM, translate back) in place of "
            "the gold last word (tall_hf.training.teacher; default: the recipe's)."
        },
    )
    teacher_forced_prefix: bool | None = field(
        default=None,
        metadata={
            "help": "The teacher's back-translation starts with the LR prefix itself, as TALL's LR decoder reads it "
            "(default: the recipe's)."
        },
    )

    def recipe_options(self, recipe: str) -> dict:
        """The recipe's data options (`RECIPE_DATA_FIELDS`), with those given here in their place."""
        options = {name: False for name in RECIPE_DATA_FIELDS}
        options.update(get_recipe(recipe).data)
        options.update({name: getattr(self, name) for name in RECIPE_DATA_FIELDS if getattr(self, name) is not None})
        return options


def run_training(
    model_args: TallModelArguments,
    data_args: TallDataArguments,
    prep_args: PreparationArguments,
    training_args: TrainingArguments,
) -> Trainer | None:
    """Build TALL, prepare the data (cached), train with `Trainer` and save model + processor to `output_dir`.

    The run holds the lock of `output_dir` from the start: a second run on it refuses at once, naming this one.
    Values that would train or validate nothing are refused before any work. A run whose `output_dir` holds a
    complete checkpoint resumes from the newest one whose files verify, exactly where it stopped; a run that already
    finished there is left as it is (nothing is trained or written; returns `None`).
    """
    check_run_values(data_args, training_args)
    with lock_output_folder(training_args.output_dir):
        return _run_training(model_args, data_args, prep_args, training_args)


def check_run_values(data_args: TallDataArguments, training_args: TrainingArguments) -> None:
    """Refuse, naming the flag, values that would train or validate nothing."""
    if training_args.max_steps == 0 or (training_args.max_steps < 0 and training_args.num_train_epochs <= 0):
        flag = (
            "--max_steps 0" if training_args.max_steps == 0 else f"--num_train_epochs {training_args.num_train_epochs}"
        )
        raise ValueError(f"{flag} trains nothing: pass a positive --max_steps or --num_train_epochs.")
    for name in ("max_train_samples", "max_eval_samples"):
        value = getattr(data_args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} {value} keeps no sentence: pass a positive number, or leave it out for all.")
    if not 0 <= data_args.validation_split_percentage < 100:
        raise ValueError(
            f"--validation_split_percentage {data_args.validation_split_percentage} must lie in [0, 100): the rest "
            "of the training file is what trains."
        )
    if (
        training_args.eval_strategy != "no"
        and data_args.validation_file is None
        and data_args.validation_split_percentage == 0
    ):
        raise ValueError(
            f"--eval_strategy {IntervalStrategy(training_args.eval_strategy).value} evaluates, but there is no "
            "validation data: pass --validation_file, a --validation_split_percentage above 0, or --eval_strategy no."
        )


def resume_point(training_args: TrainingArguments) -> tuple[str | None, int | None]:
    """The one resume decision of a run: `(checkpoint, None)` to resume from (`--resume_from_checkpoint` as given, the
    newest complete checkpoint for `True`, else the newest complete one in `output_dir` if any), or `(None, step)` when
    the run in `output_dir` already finished at `step` and nothing was asked to resume."""
    requested = training_args.resume_from_checkpoint
    if requested is None:
        final_step = finished_run(training_args.output_dir)
        if final_step is not None:
            return None, final_step
    if requested is not None and str(requested).lower() != "true":
        return requested, None
    checkpoint = last_complete_checkpoint(training_args.output_dir)
    if requested is not None and checkpoint is None:
        raise ValueError(f"No complete checkpoint to resume from in {training_args.output_dir}.")
    step = checkpoint_step(checkpoint) if checkpoint else None
    if step is not None and 0 < training_args.max_steps < step:  # at `max_steps` exactly, resuming saves it
        raise ValueError(
            f"--max_steps {training_args.max_steps} trains nothing: {checkpoint} is already at step {step}. Pass "
            "a larger --max_steps to train on, or a new --output_dir to start afresh."
        )
    return checkpoint, None


def _run_training(
    model_args: TallModelArguments,
    data_args: TallDataArguments,
    prep_args: PreparationArguments,
    training_args: TrainingArguments,
) -> Trainer | None:
    checkpoint, final_step = resume_point(training_args)
    if final_step is not None:
        logger.warning(
            f"Training in {training_args.output_dir} already finished (step {final_step}); leaving it as it is. "
            "Pass a new --output_dir to train again."
        )
        return None
    # The text first: a missing or non-UTF-8 file fails, naming itself, before any component loads.
    train_lines = read_sentences(data_args.train_file, data_args.max_train_samples)
    validation_lines = read_sentences(data_args.validation_file) if data_args.validation_file else None
    if model_args.recipe == AUTO_RECIPE:
        model_args, training_args = _chosen_recipe(model_args, training_args, train_lines)
    data_options = data_args.recipe_options(model_args.recipe)
    held_out = None  # sentences held out of --train_file for validation, before they are cut into prefixes
    if data_options["word_boundaries"] and validation_lines is None and data_args.validation_split_percentage > 0:
        train_lines, validation_lines = held_out_sentences(
            train_lines, data_args.validation_split_percentage, training_args.seed
        )
        held_out = f"{data_args.train_file} (the {data_args.validation_split_percentage:g}% held out)"
    if data_options["word_boundaries"]:
        train_lines = word_boundary_prefixes(train_lines, prep_args.min_words)
        if validation_lines is not None:
            validation_lines = word_boundary_prefixes(validation_lines, prep_args.min_words)
    set_seed(training_args.seed)
    warn_on_process_mismatch(training_args)
    paths = model_args.components()
    options = model_args.model_options()
    model = TallForConditionalGeneration.from_components(
        **paths,
        **model_args.revisions(),
        **options,
        encoder_fusion=model_args.encoder_fusion,
        adapter_dropout=model_args.adapter_dropout,
        transformer_dropout=model_args.transformer_dropout,
    )
    frozen = model_args.frozen_stages
    freeze_stages(model, get_recipe(model_args.recipe).frozen_stages if frozen is None else frozen)
    # The processor's labels follow the model's loss mode (its config is the one home of the setting).
    processor = TallProcessor.from_components(**paths, **model_args.revisions(), loss_mode=model.config.loss_mode)
    processor.check_compatible(model.config)  # every component's tokenizer, before any data is prepared
    logger.info("\n" + model.parameter_table())

    if prep_args.max_tokens is None:
        prep_args.max_tokens = model.config.max_stream_tokens
        logger.info(f"Dropping sentences with a stream over {prep_args.max_tokens} tokens (the position tables).")
    # The translator is the model's own LR->HR translator (its encoder is TALL's stage 1). Under `accelerate launch`
    # the processes share the translation shards and then read each other's from the cache.
    translator = {"translator": paths["lr_hr"], "translator_revision": model_args.lr_hr_revision}
    train = _prepared("--train_file", data_args.train_file, train_lines, processor, prep_args, translator)
    validation = None
    if validation_lines is not None:
        flag, path = ("--train_file", held_out) if held_out else ("--validation_file", data_args.validation_file)
        validation = _prepared(flag, path, validation_lines, processor, prep_args, translator)
    elif data_args.validation_split_percentage > 0:
        split = train.train_test_split(
            test_size=data_args.validation_split_percentage / 100, seed=training_args.seed, shuffle=True
        )
        train, validation = split["train"], split["test"]
    if validation is not None and data_args.max_eval_samples is not None:
        validation = validation.select(range(min(data_args.max_eval_samples, len(validation))))
    if data_options["teacher_labels"]:
        teacher = {
            "components": paths,
            "output_dir": training_args.output_dir,
            "device": training_args.device,
            "forced_prefix": data_options["teacher_forced_prefix"],
        }
        train = with_teacher_labels(train, processor, **teacher)
        if validation is not None:
            validation = with_teacher_labels(validation, processor, **teacher, name=f"{TEACHER_DATA}_validation")
    logger.info(f"Training on {len(train)} sentences, evaluating on {len(validation) if validation else 0}.")

    if checkpoint and training_args.resume_from_checkpoint is None:
        logger.warning(f"Resuming from {checkpoint} (pass a new --output_dir to start afresh).")
    reader_steps = model_args.next_token_reader_steps
    if reader_steps is None:
        reader_steps = get_recipe(model_args.recipe).next_token_reader_steps
    if reader_steps and checkpoint is None:
        reader_args = dataclasses.replace(
            training_args,
            output_dir=os.path.join(training_args.output_dir, NEXT_TOKEN_READER),
            max_steps=reader_steps,
            save_steps=reader_steps,
            save_total_limit=1,
            eval_strategy="no",
            load_best_model_at_end=False,
        )
        pretrain_next_token_reader(model, processor, train, reader_args, paths["llm"])
    trainer = train_tall(
        model,
        processor,
        train,
        validation,
        training_args,
        resume_from_checkpoint=checkpoint,
    )
    logger.info(f"Saved TALL and its processor to {trainer.args.output_dir}.")
    return trainer


def held_out_sentences(lines: list[str], percentage: float, seed: int) -> tuple[list[str], list[str]]:
    """`(training, validation)` sentences: `percentage` % of `lines` held out (datasets' `train_test_split`, shuffled
    with `seed`). With every word boundary as an example, the split is over sentences before they are cut, so no
    validation prefix shares a sentence with a training prefix and the eval loss measures sentences never trained on.
    """
    split = Dataset.from_dict({"text": lines}).train_test_split(test_size=percentage / 100, seed=seed, shuffle=True)
    return list(split["train"]["text"]), list(split["test"]["text"])


def _chosen_recipe(
    model_args: TallModelArguments, training_args: TrainingArguments, train_lines: list[str]
) -> tuple[TallModelArguments, TrainingArguments]:
    """`auto` resolved: the recipe `choose_recipe` picks from how the teacher does on the first `AUTO_SENTENCES`
    training sentences (`teacher_agreement`), logged with its reason and written to `output_dir/recipe.json` (read
    back on resume), with its training settings (`chosen_training_arguments`)."""
    path = os.path.join(training_args.output_dir, CHOSEN_RECIPE_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            choice = json.load(file)
    else:
        teacher = teacher_agreement(train_lines[:AUTO_SENTENCES], model_args.components(), device=training_args.device)
        recipe, reason = choose_recipe(teacher["gold"], teacher["answered"])
        choice = {"requested": AUTO_RECIPE, "recipe": recipe, "reason": reason, "teacher": teacher}
        if PartialState().is_main_process:
            os.makedirs(training_args.output_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as file:
                json.dump(choice, file, indent=2)
    logger.info(f"Recipe auto: {choice['recipe']!r}, because {choice['reason']} (written to {path}).")
    recipe = choice["recipe"]
    return dataclasses.replace(model_args, recipe=recipe), chosen_training_arguments(training_args, recipe)


def _prepared(flag: str, path: str, lines: list[str], processor, prep_args: PreparationArguments, translator: dict):
    """`prepare_tall_dataset` of a file's lines; a file left with no sentence is named by its flag."""
    try:
        return prepare_tall_dataset(lines, processor, args=prep_args, **translator)
    except NoSentenceLeftError as error:
        raise ValueError(f"{flag} {path}: {error}") from None

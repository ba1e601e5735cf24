"""TALL training with plain `transformers.Trainer`: the model computes its own loss, the collator builds the labels of
the loss mode, evaluation reports loss, perplexity and last-token accuracy, and the processor is saved with every
checkpoint (the output folder loads with `AutoModelForSeq2SeqLM.from_pretrained` and
`TallProcessor.from_pretrained`)."""

from __future__ import annotations

import os

from datasets import Dataset
from transformers import (
    EarlyStoppingCallback,
    IntervalStrategy,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_pt_utils import metrics_format
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from ..adapters.saving import save_extras
from ..data.collator import TallDataCollator
from ..data.translation import save_translator
from ..models.tall.modeling_tall import TallForConditionalGeneration
from ..models.tall.processing_tall import TallProcessor
from ..utils.folders import lock_output_folder, save_pretrained_atomically
from ..utils.logging import is_quiet
from ..utils.progress import show_phase
from .checkpointing import CommitCheckpointCallback, last_complete_checkpoint
from .frozen_states import llm_states_fixed, with_llm_states
from .metrics import TallMetrics, preprocess_logits_for_metrics
from .recipes import tall_training_arguments
from .time_limit import TrainingTimeLimitCallback, early_stopping_patience, time_limit_minutes

logger = logging.get_logger(__name__)


class SaveProcessorCallback(TrainerCallback):
    """Saves the `TallProcessor` and the checkpoint's extras (model card, the model's code for `trust_remote_code`,
    `tall_hf.adapters.save_extras`) into every checkpoint folder, so each one loads as a complete TALL.

    (Passing the processor as `processing_class` would make `Trainer` align the model's special tokens with a single
    `processor.tokenizer`, which a three-tokenizer processor does not have.)"""

    def __init__(self, processor: TallProcessor) -> None:
        self.processor = processor

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            save_extras(kwargs["model"], folder)
            self.processor.save_pretrained(folder)


def create_tall_trainer(
    model: TallForConditionalGeneration,
    processor: TallProcessor,
    args: TrainingArguments,
    train_dataset: Dataset | None = None,
    eval_dataset: Dataset | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> Trainer:
    """A `transformers.Trainer` wired for TALL on datasets of `prepare_tall_dataset`.

    Only parameters with `requires_grad` reach the optimizer (Trainer's own rule), so the frozen translators and LLM
    never change. `remove_unused_columns` is turned off: the collator needs the `target_ids` and `last_word_length`
    columns, which are not arguments of `forward`.
    """
    processor.check_compatible(model.config)
    if args.remove_unused_columns:
        logger.info(
            "Setting remove_unused_columns=False: TallDataCollator reads columns that forward() does not take."
        )
        args.remove_unused_columns = False
    loss_mode = model.config.loss_mode
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=TallDataCollator(processor, loss_mode=loss_mode),
        compute_metrics=TallMetrics(loss_mode) if eval_dataset is not None else None,
        preprocess_logits_for_metrics=preprocess_logits_for_metrics if eval_dataset is not None else None,
        callbacks=[SaveProcessorCallback(processor), *(callbacks or []), CommitCheckpointCallback()],
    )
    return show_phase(trainer, "Training TALL")


def train_tall(
    model: TallForConditionalGeneration,
    processor: TallProcessor,
    train_dataset: Dataset,
    eval_dataset: Dataset | None = None,
    args: TrainingArguments | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: list[TrainerCallback] | None = None,
    cache_llm_states: bool = True,
) -> Trainer:
    """Train TALL, save the final (or best) model with its processor to `args.output_dir`, and return the trainer.

    Pass `args`, or only `output_dir` for `tall_training_arguments(output_dir)`. Training and evaluation metrics are
    written beside the model (`train_results.json`, `eval_results.json`) and are in `trainer.state.log_history`. The
    run holds the lock of `output_dir`: another run on it refuses at once (`tall_hf.utils.folders`).

    When nothing in stages 1-4 trains (a frozen source side), their output is computed once per row and cached beside
    the run (`tall_hf.training.frozen_states`), so each step runs stages 5-7 only; `cache_llm_states=False` runs all
    seven every step.

    With `args.max_train_minutes` (`TallTrainingArguments`), training ends once it has run that long
    (`TrainingTimeLimitCallback`), as it ends at `max_steps`; with `args.early_stopping_patience` and an evaluation,
    once `metric_for_best_model` has not improved for that many evaluations (`EarlyStoppingCallback`).
    """
    if args is None:
        if output_dir is None:
            raise ValueError("Pass `args` (TrainingArguments) or an `output_dir`.")
        args = tall_training_arguments(output_dir)
    if resume_from_checkpoint is True:  # the newest checkpoint that was completely written, not merely the newest
        resume_from_checkpoint = last_complete_checkpoint(args.output_dir)
        if resume_from_checkpoint is None:
            raise ValueError(f"No complete checkpoint to resume from in {args.output_dir}.")
    with lock_output_folder(args.output_dir):
        if cache_llm_states and llm_states_fixed(model):
            cache = {"model": model, "processor": processor, "cache_dir": args.output_dir, "device": args.device}
            train_dataset = with_llm_states(train_dataset, **cache)
            if eval_dataset is not None:
                eval_dataset = with_llm_states(eval_dataset, **cache)
        callbacks = list(callbacks or [])
        if time_limit_minutes(args) is not None:
            callbacks.append(TrainingTimeLimitCallback())
        patience = early_stopping_patience(args)
        if patience is not None and eval_dataset is not None and args.eval_strategy != IntervalStrategy.NO:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
        elif patience is not None:
            logger.info(f"No evaluation: early stopping (patience {patience}) is off.")
        trainer = create_tall_trainer(model, processor, args, train_dataset, eval_dataset, callbacks)
        result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        _log_early_stop(trainer)
        trainer.save_model()
        if trainer.is_world_process_zero():  # with its translator's decoder side: predicts offline from anywhere
            save_extras(model, trainer.args.output_dir)
            save_pretrained_atomically(processor, trainer.args.output_dir)
            save_translator(trainer.model, trainer.args.output_dir)
        _report_metrics(trainer, "train", result.metrics)
        trainer.save_state()
        if eval_dataset is not None:
            _report_metrics(trainer, "eval", trainer.evaluate())
    return trainer


def _log_early_stop(trainer: Trainer) -> None:
    """Say so when `EarlyStoppingCallback` ended the run (transformers does not)."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, EarlyStoppingCallback):
            patience = callback.early_stopping_patience
            if callback.early_stopping_patience_counter >= patience:
                logger.warning(
                    f"Stopped early after {trainer.state.global_step} of {trainer.state.max_steps} steps: "
                    f"{trainer.args.metric_for_best_model} did not improve for {patience} evaluations (best "
                    f"{trainer.state.best_metric:.4f}, {trainer.state.best_model_checkpoint})."
                )


def _report_metrics(trainer: Trainer, split: str, metrics: dict[str, float]) -> None:
    """Save `split`'s metrics beside the model; print them as Trainer does, or, from `tall-hf` without `--verbose`,
    log them in one line."""
    trainer.save_metrics(split, metrics)
    if is_quiet():
        logger.info(f"{split} metrics: {metrics_format(metrics)}")
    else:
        trainer.log_metrics(split, metrics)


__all__ = ["SaveProcessorCallback", "create_tall_trainer", "train_tall"]

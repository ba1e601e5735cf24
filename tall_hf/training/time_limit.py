"""How long TALL trains, beside `max_steps` and `num_train_epochs`, the way `Seq2SeqTrainingArguments` adds generation
settings to `TrainingArguments`: `TallTrainingArguments.max_train_minutes`, a limit on training time enforced by
`TrainingTimeLimitCallback`, and `early_stopping_patience`, transformers' `EarlyStoppingCallback` on
`metric_for_best_model` (`train_tall` adds both callbacks where they are set).

When the `Trainer` has trained for `max_train_minutes` (its `train()` call: steps, evaluations and checkpoints; not
the data preparation before it), the callback ends training as reaching `max_steps` would: a last evaluation and
checkpoint, then the best checkpoint restored if `load_best_model_at_end`. The run then counts as finished (its
`trainer_state.json` is written as at any end), and the minutes already trained survive a resume (the callback is an
`ExportableState`, read back from the checkpoint's `trainer_state.json`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from transformers import IntervalStrategy, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import SaveStrategy
from transformers.utils import logging

logger = logging.get_logger(__name__)


@dataclass
class TallTrainingArguments(TrainingArguments):
    """`TrainingArguments` with a limit on training time (`max_train_minutes`) and early stopping
    (`early_stopping_patience`)."""

    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training once the Trainer has trained this many minutes (evaluations and checkpoints "
            "included, counted across resumes), with a last evaluation and checkpoint and the best checkpoint "
            "restored as at the end; the run then counts as finished. 0: no limit. Default: the recipe's "
            "(tall_hf.training.recipes; none where it sets none)."
        },
    )

    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop training once metric_for_best_model has not improved for this many evaluations in a row "
            "(transformers' EarlyStoppingCallback; needs evaluation), the best checkpoint restored as at the end. "
            "0: never. Default: the recipe's (tall_hf.training.recipes; never where it sets none)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_train_minutes", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name} must be 0 (off) or positive, got {value}.")


def time_limit_minutes(args: TrainingArguments) -> float | None:
    """The training-time limit of `args` in minutes, `None` for none (0, unset, or plain `TrainingArguments`)."""
    return getattr(args, "max_train_minutes", None) or None


def early_stopping_patience(args: TrainingArguments) -> int | None:
    """The early-stopping patience of `args` in evaluations, `None` for none (0, unset, or plain
    `TrainingArguments`)."""
    return getattr(args, "early_stopping_patience", None) or None


class TrainingTimeLimitCallback(TrainerCallback, ExportableState):
    """Ends training once it has run `args.max_train_minutes` (`TallTrainingArguments`), counting the minutes of
    earlier calls of `train()` on the same run (`elapsed_seconds`, saved in each checkpoint's `trainer_state.json`)."""

    clock = staticmethod(time.monotonic)  # seconds; replaced in tests by a clock that needs no waiting

    def __init__(self) -> None:
        self.elapsed_seconds = 0.0  # trained before this call of `train()`
        self.stopped_at_step: int | None = None
        self._started: float | None = None

    def seconds_trained(self) -> float:
        """Seconds trained on this run so far, earlier calls of `train()` included."""
        now = 0.0 if self._started is None else self.clock() - self._started
        return self.elapsed_seconds + now

    def state(self) -> dict:
        return {
            "args": {},
            "attributes": {"elapsed_seconds": self.seconds_trained(), "stopped_at_step": self.stopped_at_step},
        }

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        # A resumed run's state holds the callback's state as the checkpoint saved it (restored here whether or not
        # `restore_callback_states_from_checkpoint` is set); a new run's holds this callback's own.
        saved = state.stateful_callbacks.get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[-1]
        if saved:
            self.elapsed_seconds = float(saved["attributes"].get("elapsed_seconds", 0.0))
        self._started = self.clock()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        minutes = time_limit_minutes(args)
        if minutes is None or control.should_training_stop or self.seconds_trained() < 60 * minutes:
            return control
        self.stopped_at_step = state.global_step
        control.should_training_stop = True
        # What `DefaultFlowCallback` does on reaching `max_steps`: evaluate and save the last step.
        if args.eval_strategy == IntervalStrategy.STEPS and state.global_step % state.eval_steps != 0:
            control.should_evaluate = True
        if args.save_strategy == SaveStrategy.STEPS:
            control.should_save = True
        logger.warning(
            f"Stopped by the time limit after {state.global_step} of {state.max_steps} steps: "
            f"{self.seconds_trained() / 60:.1f} minutes of training reached --max_train_minutes {minutes:g}."
        )
        return control


__all__ = ["TallTrainingArguments", "TrainingTimeLimitCallback", "early_stopping_patience", "time_limit_minutes"]

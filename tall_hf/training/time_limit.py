"""A limit on training time, the way `Seq2SeqTrainingArguments` adds generation settings to `TrainingArguments`:
`TallTrainingArguments.max_train_minutes`, enforced by `TrainingTimeLimitCallback`.

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
    """`TrainingArguments` with a limit on training time (`max_train_minutes`)."""

    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training once the Trainer has trained this many minutes (evaluations and checkpoints "
            "included, counted across resumes), with a last evaluation and checkpoint and the best checkpoint "
            "restored as at the end; the run then counts as finished. 0: no limit. Default: the recipe's "
            "(tall_hf.training.recipes; none where it sets none)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_train_minutes is not None and self.max_train_minutes < 0:
            raise ValueError(f"--max_train_minutes must be 0 (no limit) or positive, got {self.max_train_minutes}.")


def time_limit_minutes(args: TrainingArguments) -> float | None:
    """The training-time limit of `args` in minutes, `None` for none (0, unset, or plain `TrainingArguments`)."""
    minutes = getattr(args, "max_train_minutes", None)
    return minutes or None


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


__all__ = ["TallTrainingArguments", "TrainingTimeLimitCallback", "time_limit_minutes"]

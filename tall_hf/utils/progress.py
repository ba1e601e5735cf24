"""Progress on the console: one bar per phase of a run (translating, training X, evaluating X).

The libraries' own bars (a model load, a generation batch, a `datasets` map) are detail: `tall-hf` turns them off
unless `--verbose` (`tall_hf.utils.logging.set_verbose`). A phase's bar is shown either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tqdm.auto import tqdm
from transformers import PrinterCallback, ProgressCallback, Trainer
from transformers.trainer_utils import has_length

from .logging import is_quiet

_PHASE_BAR: ContextVar[tqdm | None] = ContextVar("tall_hf_phase_bar", default=None)


@contextmanager
def phase_progress(description: str, total: int) -> Iterator[None]:
    """A progress bar of `total` items for the phase run inside the block; the loops that do its work advance it with
    [`advance_phase`], however deep they are."""
    with tqdm(total=total, desc=description, dynamic_ncols=True) as bar:
        token = _PHASE_BAR.set(bar)
        try:
            yield
        finally:
            _PHASE_BAR.reset(token)


def advance_phase(count: int) -> None:
    """Advance the bar of the phase the caller runs in, if any, by `count` items."""
    bar = _PHASE_BAR.get()
    if bar is not None:
        bar.update(count)


class PhaseProgressCallback(ProgressCallback):
    """`Trainer`'s progress as one bar named after the phase: no bar of its own for the evaluations inside training,
    and no log lines on the console (they stay in `trainer.state.log_history` and `trainer_state.json`)."""

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.training_bar = tqdm(total=state.max_steps, desc=self.description, dynamic_ncols=True)
        self.current_step = 0

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        # A standalone evaluation gets its bar; those inside training are part of the training bar.
        if state.is_world_process_zero and self.training_bar is None and has_length(eval_dataloader):
            if self.prediction_bar is None:
                description = f"{self.description}: evaluating"
                self.prediction_bar = tqdm(total=len(eval_dataloader), desc=description, dynamic_ncols=True)
            self.prediction_bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def show_phase(trainer: Trainer, description: str) -> Trainer:
    """When `tall-hf` runs without `--verbose`, `trainer` shows one bar named `description` (a [`PhaseProgressCallback`])
    instead of Trainer's bar and log lines; otherwise (`--verbose`, or the Python API) it is left as it is."""
    if is_quiet():
        for callback in (ProgressCallback, PrinterCallback):
            trainer.remove_callback(callback)
        trainer.add_callback(PhaseProgressCallback(description))
    return trainer

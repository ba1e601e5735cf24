"""How long TALL trains (`tall_hf.training.time_limit`): the training-time limit (`--max_train_minutes`) ends a run as
`max_steps` would, the minutes trained survive a resume, a run it ended counts as finished; early stopping
(`--early_stopping_patience`) is transformers' `EarlyStoppingCallback`; the recipes set both. Clocks here are fakes:
nothing waits or depends on how fast the machine is."""

from __future__ import annotations

import itertools
import json
import logging

import pytest
import torch
from transformers import HfArgumentParser, TrainerCallback

from tall_hf import TallForConditionalGeneration
from tall_hf.cli import main
from tall_hf.data import PreparationArguments, prepare_tall_dataset
from tall_hf.resources import corpus_path
from tall_hf.training import tall_training_arguments, train_tall
from tall_hf.training.recipes import chosen_training_arguments, get_recipe, parser_training_defaults
from tall_hf.training.run import TallModelArguments
from tall_hf.training.time_limit import TallTrainingArguments, TrainingTimeLimitCallback, time_limit_minutes

LIMIT = TrainingTimeLimitCallback.__name__


class OneMinutePerStep(TrainerCallback):
    """A clock for `TrainingTimeLimitCallback.clock` that advances one minute at the end of every training step (it
    runs before the limit's callback, which `train_tall` adds after the callbacks it is given)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def on_step_end(self, args, state, control, **kwargs):
        self.now += 60.0


@pytest.fixture
def one_minute_per_step(monkeypatch) -> OneMinutePerStep:
    clock = OneMinutePerStep()
    monkeypatch.setattr(TrainingTimeLimitCallback, "clock", clock)
    return clock


@pytest.fixture(scope="module")
def prepared(tiny_paths, tiny_processor, hebrew_sentences, tmp_path_factory):
    args = PreparationArguments(
        cache_dir=str(tmp_path_factory.mktemp("prep")), translation_batch_size=64, num_beams=1, max_new_tokens=8
    )
    return prepare_tall_dataset(hebrew_sentences[:48], tiny_processor, tiny_paths["lr_hr"], args)


def quick_args(output_dir, **overrides):
    settings = {
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "warmup_steps": 0,
        "logging_steps": 1,
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 7,
        "save_total_limit": None,
    }
    return tall_training_arguments(output_dir, **{**settings, **overrides})


def saved_limit_state(folder) -> dict:
    return json.loads((folder / "trainer_state.json").read_text())["stateful_callbacks"][LIMIT]["attributes"]


def test_the_time_limit_ends_training_with_a_last_evaluation_checkpoint_and_the_best_model(
    tiny_paths, tiny_processor, prepared, tmp_path, one_minute_per_step, caplog
):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    args = quick_args(tmp_path, max_steps=12, eval_steps=2, save_steps=2, max_train_minutes=2.5)
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        trainer = train_tall(
            model, tiny_processor, prepared.select(range(40)), prepared.select(range(40, 48)), args,
            callbacks=[one_minute_per_step],
        )  # fmt: skip
    # After step 3 the clock reads 3 minutes, past 2.5: step 3 is evaluated and saved though neither falls due.
    assert trainer.state.global_step == 3
    assert [entry["step"] for entry in trainer.state.log_history if "eval_loss" in entry][:2] == [2, 3]
    assert sorted(path.name for path in tmp_path.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert saved_limit_state(tmp_path / "checkpoint-3") == {"elapsed_seconds": 180.0, "stopped_at_step": 3}
    assert trainer.state.best_model_checkpoint in {str(tmp_path / "checkpoint-2"), str(tmp_path / "checkpoint-3")}
    assert "Stopped by the time limit after 3 of 12 steps: 3.0 minutes of training" in caplog.text


def test_the_minutes_trained_survive_a_resume(tiny_paths, tiny_processor, prepared, tmp_path, one_minute_per_step):
    no_evaluation = {"eval_strategy": "no", "load_best_model_at_end": False, "save_steps": 2}
    torch.manual_seed(0)
    first = TallForConditionalGeneration.from_components(**tiny_paths)
    args = quick_args(tmp_path / "a", max_steps=4, max_train_minutes=10, **no_evaluation)
    train_tall(first, tiny_processor, prepared, args=args, callbacks=[one_minute_per_step])
    assert saved_limit_state(tmp_path / "a" / "checkpoint-4") == {"elapsed_seconds": 240.0, "stopped_at_step": None}

    torch.manual_seed(0)
    resumed = TallForConditionalGeneration.from_components(**tiny_paths)
    args = quick_args(tmp_path / "b", max_steps=20, max_train_minutes=6, **no_evaluation)
    trainer = train_tall(
        resumed, tiny_processor, prepared, args=args, resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-4"),
        callbacks=[one_minute_per_step],
    )  # fmt: skip
    # 4 minutes before the resume and 2 after it: a limit counted afresh would have let it run to step 10.
    assert trainer.state.global_step == 6
    assert saved_limit_state(tmp_path / "b" / "checkpoint-6") == {"elapsed_seconds": 360.0, "stopped_at_step": 6}


def test_a_run_the_time_limit_ended_counts_as_finished(tiny_paths, tmp_path, monkeypatch, capfd):
    # The clock jumps an hour after the training starts: the first step ends the run.
    ticks = itertools.chain([0.0], itertools.repeat(3600.0))
    monkeypatch.setattr(TrainingTimeLimitCallback, "clock", staticmethod(lambda: next(ticks)))
    output = tmp_path / "run"
    command = [
        "--lr_hr_model", tiny_paths["lr_hr"], "--llm_model", tiny_paths["llm"], "--hr_lr_model", tiny_paths["hr_lr"],
        "--train_file", corpus_path("hebrew"), "--max_train_samples", "48", "--cache_dir", str(tmp_path / "cache"),
        "--output_dir", str(output), "--validation_split_percentage", "0", "--eval_strategy", "no",
        "--load_best_model_at_end", "False", "--per_device_train_batch_size", "8", "--max_steps", "6",
        "--save_steps", "2", "--use_cpu", "--disable_tqdm", "True", "--max_train_minutes", "30",
    ]  # fmt: skip
    assert main(["train", *command]) == 0
    assert "Stopped by the time limit after 1 of 6 steps: 60.0 minutes" in capfd.readouterr().err
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 1
    files = {path: path.read_bytes() for path in output.rglob("*") if path.is_file()}
    assert output / "checkpoint-1" / "model.safetensors" in files
    assert main(["train", *command]) == 0
    assert "already finished (step 1); leaving it as it is" in capfd.readouterr().err
    assert {path: path.read_bytes() for path in output.rglob("*") if path.is_file()} == files


def test_early_stopping_ends_a_run_that_stops_improving(tiny_paths, tiny_processor, prepared, tmp_path, caplog):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    # Learning rate 0: every evaluation gives the first one's loss, so none improves on it.
    args = quick_args(tmp_path, max_steps=20, eval_steps=2, save_steps=2, learning_rate=0.0, early_stopping_patience=2)
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        trainer = train_tall(model, tiny_processor, prepared.select(range(40)), prepared.select(range(40, 48)), args)
    assert trainer.state.global_step == 6  # evaluated at 2 (the best), 4 and 6 (two without improvement)
    assert trainer.state.best_model_checkpoint == str(tmp_path / "checkpoint-2")
    assert "Stopped early after 6 of 20 steps: eval_loss did not improve for 2 evaluations" in caplog.text
    no_evaluation = quick_args(tmp_path / "b", max_steps=4, eval_strategy="no", load_best_model_at_end=False)
    no_evaluation.early_stopping_patience = 2
    assert train_tall(model, tiny_processor, prepared, args=no_evaluation).state.global_step == 4


def test_the_flags_parse_and_the_recipes_set_their_defaults(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--max_train_minutes" in out and "--early_stopping_patience" in out
    teacher = get_recipe("teacher").training["max_train_minutes"]
    assert teacher > 0 and "max_train_minutes" not in get_recipe("fast").training
    assert get_recipe("teacher").training["early_stopping_patience"] == 4

    def parse(*argv: str) -> TallTrainingArguments:
        argv = ["--output_dir", str(tmp_path), *argv]
        parser = HfArgumentParser((TallModelArguments, TallTrainingArguments))
        parser.set_defaults(**parser_training_defaults(argv))
        return parser.parse_args_into_dataclasses(argv)[1]

    assert parse("--recipe", "teacher").max_train_minutes == teacher
    assert parse("--recipe", "teacher", "--max_train_minutes", "7.5").max_train_minutes == 7.5
    # `auto` leaves it unset until it has chosen: `teacher` brings its limit, `fast` none; 0 given stays (no limit).
    assert time_limit_minutes(chosen_training_arguments(parse(), "teacher")) == teacher
    assert time_limit_minutes(chosen_training_arguments(parse(), "fast")) is None
    assert time_limit_minutes(chosen_training_arguments(parse("--max_train_minutes", "0"), "teacher")) is None
    assert chosen_training_arguments(parse(), "teacher").early_stopping_patience == 4
    assert chosen_training_arguments(parse("--early_stopping_patience", "0"), "teacher").early_stopping_patience == 0
    with pytest.raises(ValueError, match="max_train_minutes"):
        parse("--max_train_minutes", "-1")

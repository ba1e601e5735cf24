"""What real runs meet: a SIGKILL mid-run, half-written checkpoints, reruns (of a finished training run, of an
evaluation whose approach failed), translators updated in place, damaged caches, parameters that cannot learn."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, TrainingArguments

from tall_hf import BridgeForCausalLM, BridgeProcessor, TallForCausalLM
from tall_hf.cli import main
from tall_hf.data import PreparationArguments, prepare_tall_dataset
from tall_hf.evaluation import LastWordEvaluationArguments, run_last_word_evaluation
from tall_hf.evaluation.approaches import DirectApproach, NaiveApproach
from tall_hf.modules.fusion import FUSION_METHODS
from tall_hf.resources import corpus_path, read_corpus
from tall_hf.testing import build_tiny_bridge_components, build_tiny_components
from tall_hf.tiny import tiny_model_names
from tall_hf.training.checkpointing import COMMIT_FILE, last_complete_checkpoint, write_json_atomically

TRAIN_FLAGS = [
    "--max_train_samples", "96",
    "--validation_split_percentage", "0",
    "--eval_strategy", "no",
    "--load_best_model_at_end", "False",
    "--per_device_train_batch_size", "8",
    "--learning_rate", "1e-3",
    "--warmup_steps", "0",
    "--logging_steps", "1",
    "--save_total_limit", "3",
    "--use_cpu",
    "--seed", "0",
    "--disable_tqdm", "True",
]  # fmt: skip


def _train_command(paths: dict, output_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tall_hf.cli", "train",
        "--lr_hr_model", paths["lr_hr"], "--llm_model", paths["llm"], "--hr_lr_model", paths["hr_lr"],
        "--train_file", corpus_path("hebrew"), "--cache_dir", str(cache_dir), "--output_dir", str(output_dir),
        *TRAIN_FLAGS, *extra,
    ]  # fmt: skip


# `tall-hf train` whose Trainer SIGKILLs its own process after writing checkpoint-16 and its commit record (the
# callback is added after the package's own, so it runs last).
KILL_AFTER_CHECKPOINT_16 = """
import os, signal, sys
from transformers import TrainerCallback
import tall_hf.training.trainer as trainer_module
from tall_hf.cli import main

class KillAfterCheckpoint16(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 16:
            os.kill(os.getpid(), signal.SIGKILL)

create_tall_trainer = trainer_module.create_tall_trainer
def create_and_kill(*args, **kwargs):
    trainer = create_tall_trainer(*args, **kwargs)
    trainer.add_callback(KillAfterCheckpoint16())
    return trainer

trainer_module.create_tall_trainer = create_and_kill
sys.exit(main(sys.argv[1:]))
"""


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _trainable_weights(folder: Path) -> dict[str, torch.Tensor]:
    weights = load_file(folder / "model.safetensors")
    return {name: tensor for name, tensor in weights.items() if name.startswith(("source_", "target_"))}


def test_incomplete_checkpoints_are_never_picked_up(tmp_path):
    for step in (10, 20, 30):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"weights")
    write_json_atomically(tmp_path / "checkpoint-10" / COMMIT_FILE, {"files": ["model.safetensors"]})
    write_json_atomically(tmp_path / "checkpoint-20" / COMMIT_FILE, {"files": ["model.safetensors", "optimizer.pt"]})
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")  # 30: no record; 20: a file missing
    (tmp_path / "checkpoint-20" / "optimizer.pt").write_bytes(b"state")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert not [name for name in os.listdir(tmp_path / "checkpoint-20") if name.startswith(".tmp")]
    assert last_complete_checkpoint(tmp_path / "missing") is None


@pytest.mark.slow
def test_sigkill_mid_run_resumes_to_the_same_weights(tiny_paths, tmp_path):
    cache, straight, killed = tmp_path / "cache", tmp_path / "straight", tmp_path / "killed"
    steps = ["--max_steps", "48", "--save_steps", "8"]
    subprocess.run(_train_command(tiny_paths, straight, cache, *steps), env=_env(), check=True, capture_output=True)

    # The run kills itself at a known point (right after checkpoint-16's commit record), not when a poll happens to
    # see the checkpoint: the test does not depend on how fast the machine is.
    command = _train_command(tiny_paths, killed, cache, *steps)
    process = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_CHECKPOINT_16, *command[3:]], env=_env(), capture_output=True
    )
    assert process.returncode == -signal.SIGKILL
    assert (killed / "checkpoint-16" / COMMIT_FILE).exists()
    assert not (killed / "model.safetensors").exists(), "the run was killed before its end"
    # A checkpoint that a crash left half-written (no commit record) must be passed over.
    (killed / "checkpoint-999").mkdir()
    (killed / "checkpoint-999" / "model.safetensors").write_bytes(b"half-written")

    resumed = subprocess.run(
        _train_command(tiny_paths, killed, cache, *steps), env=_env(), capture_output=True, text=True, check=True
    )
    resumed_from = re.search(r"Resuming from \S*checkpoint-(\d+)", resumed.stderr)
    assert resumed_from and int(resumed_from.group(1)) == 16, resumed.stderr[-2000:]
    expected, actual = _trainable_weights(straight), _trainable_weights(killed)
    assert expected.keys() == actual.keys() and expected
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)


def _losses(folder: Path) -> list[float]:
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


@pytest.mark.slow
def test_two_processes_match_one_at_the_same_global_batch(tiny_paths, tmp_path):
    cache = tmp_path / "cache"
    # 8 sentences and a global batch of 8: every step sees all of them in both runs, whatever order each sampler
    # draws, so the per-step losses must agree (up to the order of floating-point sums).
    # Without dropout, whose masks come from each process's own random stream.
    common = ["--max_steps", "6", "--save_strategy", "no", "--max_train_samples", "8"]
    common += ["--adapter_dropout", "0", "--transformer_dropout", "0"]
    single = tmp_path / "single"
    subprocess.run(
        _train_command(tiny_paths, single, cache, *common, "--per_device_train_batch_size", "8"),
        env=_env(),
        check=True,
        capture_output=True,
    )
    double = tmp_path / "double"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command = _train_command(tiny_paths, double, cache, *common, "--per_device_train_batch_size", "4")
    result = subprocess.run(
        [
            *launch,
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--module",
            *command[2:],
        ],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _losses(single), _losses(double)
    assert len(one) == len(two) == 6
    torch.testing.assert_close(torch.tensor(two), torch.tensor(one), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_two_runs_with_one_seed_give_identical_results(tiny_paths, tmp_path):
    cache = tmp_path / "cache"
    steps = ["--max_steps", "6", "--save_strategy", "no"]
    for name in ("first", "second"):
        subprocess.run(
            _train_command(tiny_paths, tmp_path / name, cache, *steps), env=_env(), check=True, capture_output=True
        )
    first, second = _trainable_weights(tmp_path / "first"), _trainable_weights(tmp_path / "second")
    assert first and all(torch.equal(first[name], second[name]) for name in first)
    assert _losses(tmp_path / "first") == _losses(tmp_path / "second")


# ---------------------------------------------------------------------------------------- a rerun changes nothing
def test_a_finished_training_run_is_left_as_it_is(tiny_paths, tmp_path, capfd):
    output, cache = tmp_path / "run", tmp_path / "cache"
    command = _train_command(tiny_paths, output, cache, "--max_steps", "2", "--save_steps", "2")[4:]
    assert main(["train", *command]) == 0
    files = {path: path.read_bytes() for path in output.rglob("*") if path.is_file()}
    assert output / "checkpoint-2" / "model.safetensors" in files
    capfd.readouterr()
    assert main(["train", *command]) == 0
    assert "already finished (step 2); leaving it as it is" in capfd.readouterr().err
    assert {path: path.read_bytes() for path in output.rglob("*") if path.is_file()} == files


def _evaluation(tiny_cache, tmp_path, approaches):
    test_file = tmp_path / "test.txt"
    test_file.write_text("\n".join(read_corpus("hebrew")[:6]) + "\n", encoding="utf-8")
    args = LastWordEvaluationArguments(
        test_files=[str(test_file)],
        **tiny_model_names(build_tiny_components(tiny_cache)),
        approaches=approaches,
        bootstrap_resamples=50,
    )
    return args, TrainingArguments(output_dir=str(tmp_path / "evaluation"), use_cpu=True, report_to="none")


def test_a_failing_approach_keeps_the_others_and_a_rerun_reuses_finished_ones(tiny_cache, tmp_path, monkeypatch):
    args, training_args = _evaluation(tiny_cache, tmp_path, ["direct", "naive"])
    predictions = Path(training_args.output_dir) / "predictions"

    def broken(context):
        assert (predictions / "direct.jsonl").is_file(), "Direct's predictions are written as soon as it finishes"
        raise RuntimeError("naive broke")

    monkeypatch.setattr(NaiveApproach, "from_context", classmethod(lambda cls, context: broken(context)))
    with pytest.raises(RuntimeError, match=r"The approaches \['naive'\] failed"):
        run_last_word_evaluation(args, training_args)
    direct = (predictions / "direct.jsonl").read_text(encoding="utf-8")
    assert len(direct.splitlines()) == 6
    assert "naive failed: RuntimeError: naive broke" in (Path(training_args.output_dir) / "results.md").read_text()

    monkeypatch.undo()
    loaded = []
    original = DirectApproach.from_context.__func__
    monkeypatch.setattr(
        DirectApproach, "from_context", classmethod(lambda cls, context: loaded.append(cls) or original(cls, context))
    )
    report = run_last_word_evaluation(args, training_args)
    assert loaded == []  # Direct finished before: reused, not run again
    assert (predictions / "direct.jsonl").read_text(encoding="utf-8") == direct
    assert report.result("naive", "test").estimate.n == report.result("direct", "test").estimate.n == 6

    other_args, _ = _evaluation(tiny_cache, tmp_path, ["direct"])
    other_args.do_sample = True  # another evaluation: Direct runs again
    run_last_word_evaluation(other_args, training_args)
    assert loaded == [DirectApproach]


# ---------------------------------------------------------------------------------------- caches keyed on content
def test_a_translator_updated_in_place_is_translated_again(tiny_paths, tiny_processor, tmp_path, caplog):
    translator = Path(shutil.copytree(tiny_paths["lr_hr"], tmp_path / "translator"))
    args = PreparationArguments(cache_dir=str(tmp_path / "cache"), num_beams=1, max_new_tokens=6)
    texts = read_corpus("hebrew")[:16]
    first = prepare_tall_dataset(texts, tiny_processor, str(translator), args)
    assert len(list((tmp_path / "cache").glob("translation-*.arrow"))) == 1
    prepare_tall_dataset(texts, tiny_processor, str(translator), args)
    assert len(list((tmp_path / "cache").glob("translation-*.arrow"))) == 1  # same weights: served from the cache

    model = AutoModelForSeq2SeqLM.from_pretrained(translator)
    with torch.no_grad():
        model.get_decoder().layers[0].encoder_attn.out_proj.weight.mul_(-1)
    model.save_pretrained(translator)  # same path, new weights
    updated = prepare_tall_dataset(texts, tiny_processor, str(translator), args)
    assert len(list((tmp_path / "cache").glob("translation-*.arrow"))) == 2
    assert updated["translation"] != first["translation"]

    # A damaged cache file is named and translated again, not a crash.
    for shard in (tmp_path / "cache").glob("translation-*.arrow"):
        shard.write_bytes(shard.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        again = prepare_tall_dataset(texts, tiny_processor, str(translator), args)
    assert again["translation"] == updated["translation"]
    assert "are damaged" in caplog.text and "translating again" in caplog.text and ".arrow" in caplog.text


# ---------------------------------------------------------------------------------------- parameters that cannot learn
def _every_trainable_parameter_learns(model, batch) -> None:
    """Each trainable parameter, re-drawn at random (so no zero initialisation hides another's gradient), gets a
    non-zero gradient on one batch; a parameter that structurally cannot learn (e.g. a bias cancelled by a softmax)
    gets an exact zero whatever its value."""
    generator = torch.Generator().manual_seed(0)
    trainable = {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable
    with torch.no_grad():
        for parameter in trainable.values():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    model.eval()  # no dropout: the same gradients on every run
    model(**batch).loss.backward()
    dead = [name for name, parameter in trainable.items() if parameter.grad is None or not parameter.grad.any()]
    assert not dead, f"parameters with no gradient: {dead}"


@pytest.mark.parametrize("fusion", sorted(FUSION_METHODS))
def test_every_trainable_parameter_of_tall_learns(tiny_paths, tiny_processor, fusion):
    options = {"encoder_fusion_options": {"num_heads": 2}} if fusion == "token_softmax" else {}
    model = TallForCausalLM.from_components(**tiny_paths, encoder_fusion=fusion, loss_mode="all_tokens", **options)
    sentences = read_corpus("hebrew")[:4]
    prefixes = [sentence.rsplit(" ", 1)[0] for sentence in sentences]
    batch = tiny_processor(prefixes, read_corpus("english")[:4], sentences)
    _every_trainable_parameter_learns(model, batch)


@pytest.mark.parametrize("fusion", sorted(FUSION_METHODS))
def test_every_trainable_parameter_of_the_bridge_learns(tiny_cache, fusion):
    paths = build_tiny_bridge_components(tiny_cache, llm="qwen2")
    options = {"fusion_options": {"num_heads": 2}} if fusion == "token_softmax" else {}
    model = BridgeForCausalLM.from_components(**paths, fusion=fusion, **options)
    processor = BridgeProcessor.from_components(**paths)
    english = read_corpus("english")[:4]
    batch = processor([text.rsplit(" ", 1)[0] for text in english], [text.rsplit(" ", 1)[1] for text in english])
    _every_trainable_parameter_learns(model, batch)

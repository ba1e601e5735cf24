"""What real training meets: a SIGKILL mid-run, half-written checkpoints, reruns with a fixed seed, two processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tall_hf.resources import corpus_path
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

    process = subprocess.Popen(
        _train_command(tiny_paths, killed, cache, *steps),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint-16" / COMMIT_FILE).exists():
        assert process.poll() is None and time.monotonic() < deadline, "training ended before the kill"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists(), "the run was killed before its end"
    # A checkpoint that a crash left half-written (no commit record) must be passed over.
    (killed / "checkpoint-999").mkdir()
    (killed / "checkpoint-999" / "model.safetensors").write_bytes(b"half-written")

    resumed = subprocess.run(
        _train_command(tiny_paths, killed, cache, *steps), env=_env(), capture_output=True, text=True, check=True
    )
    resumed_from = re.search(r"Resuming from \S*checkpoint-(\d+)", resumed.stderr)
    assert resumed_from and 16 <= int(resumed_from.group(1)) < 48, resumed.stderr[-2000:]
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

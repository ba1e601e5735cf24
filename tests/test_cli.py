"""The `tall-hf` command line: the demo end to end, then predict with the model it trained."""

from __future__ import annotations

import io
import json

import pytest

from tall_hf.cli import main


@pytest.mark.parametrize(
    ("setup", "expected"),
    [(["--world_preset", "test", "--test_sentences", "40"], "| HR ceiling |"), (["--tiny"], "random weights")],
)
def test_demo_then_predict(tmp_path, capsys, monkeypatch, request, setup, expected):
    output = tmp_path / "demo"
    if "--world_preset" in setup:  # the session's test world (the `test_world` fixture), built once
        setup = [*setup, "--world_dir", str(request.getfixturevalue("test_world").path.parent)]
        capsys.readouterr()  # what building it through the Python API printed (when this test builds it first)
    assert main(["demo", "--output-dir", str(output), *setup, "--tall_steps", "6", "--baseline_steps", "2"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "| TALL |" in printed and "| Naive |" in printed and expected in printed
    # Standard output is the report alone (no Trainer log lines or metrics blocks), the table last but for its notes.
    assert printed.strip() == (output / "evaluation" / "results.md").read_text(encoding="utf-8").strip()
    # Progress at INFO on standard error, the package's only: transformers' own INFO lines stay off.
    assert (
        f"[tall_hf.demo] INFO: Training TALL (seed 0) for 6 steps into {output / 'tall' / 'seed-0'}." in captured.err
    )
    assert "[tall_hf.evaluation.runner] INFO: Preparing the tall approach." in captured.err
    assert "loading configuration file" not in captured.err and "Model config" not in captured.err
    for artefact in ("results.md", "results.csv", "results.json", "accuracy_curves.png", "predictions/tall.jsonl"):
        assert (output / "evaluation" / artefact).is_file(), artefact
    assert (output / "tall" / "seed-0" / "model.safetensors").is_file()

    assert main(["predict", "--model", str(output / "tall" / "seed-0"), "הילדים הלכו לבית", "אני אוהב לקרוא"]) == 0
    words = capsys.readouterr().out.splitlines()
    assert len(words) == 2 and all(" " not in word for word in words)

    monkeypatch.setattr("sys.stdin", io.StringIO("מחר נלך אל\n"))
    assert main(["predict", "--model", str(output / "tall" / "seed-0"), "--num_words", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1

    # Every trained row stands on the demo's three seeds; a rerun trains and evaluates nothing again.
    summary = json.loads((output / "evaluation" / "results.json").read_text(encoding="utf-8"))
    seeds = {row["approach"]: row["seeds"] for row in summary["results"]}
    assert seeds["TALL"] == seeds["Fine-tuned"] == 3 and seeds["Naive"] == 1
    assert {row["baseline"] for row in summary["comparisons"]} >= {"Naive", "Naive, LR prefix forced", "Soft prompt"}
    assert all(row["seeds"] == 3 for row in summary["comparisons"]) and summary["verdicts"]
    assert main(["demo", "--output-dir", str(output), *setup, "--tall_steps", "6", "--baseline_steps", "2"]) == 0
    rerun = capsys.readouterr()
    assert rerun.err.count("already finished (step 6); leaving it as it is") == 3
    assert rerun.err.count("Reusing the finished") == 3 + 4 * 3 and "Training Fine-tuned" not in rerun.err
    assert rerun.out == printed


def test_bad_commands_name_the_problem(capsys):
    assert main(["translate"]) == 2
    assert "unknown command 'translate'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "--model", "x", "--no_such_flag", "sentence"])
    assert "unknown options: --no_such_flag" in capsys.readouterr().err


def test_help_and_version_import_neither_torch_nor_transformers():
    import subprocess
    import sys

    import tall_hf

    probe = (
        "import sys; from tall_hf.cli import main; main(['--help']); main(['--version']); "
        "print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "usage: tall-hf" in out and f"tall-hf {tall_hf.__version__}" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_expected_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "missing"), "--file", str(tmp_path / "none.txt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tall-hf predict: error:") and "none.txt" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_verbose_flag_is_read_back_anywhere_and_brings_back_bars_and_tracebacks(tmp_path, monkeypatch):
    import datasets
    from transformers.utils import logging

    from tall_hf.utils.logging import is_verbose

    missing = ["--model", str(tmp_path / "missing"), "--file", str(tmp_path / "none.txt")]
    with pytest.raises(FileNotFoundError):
        main(["predict", "--verbose", *missing])
    assert is_verbose() and logging.is_progress_bar_enabled() and datasets.is_progress_bar_enabled()
    assert main(["predict", *missing]) == 1
    assert not is_verbose() and not logging.is_progress_bar_enabled() and not datasets.is_progress_bar_enabled()


def test_process_count_mismatch_warns(monkeypatch, tmp_path):
    from transformers import TrainingArguments

    from tall_hf.utils.launch import warn_on_process_mismatch

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    for name in ("WORLD_SIZE", "MASTER_ADDR", "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(name, raising=False)
    assert warn_on_process_mismatch(args) is None
    # `accelerate launch --cpu --num_processes 2`: one process, MASTER_ADDR set, no WORLD_SIZE.
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert "started this script once" in warn_on_process_mismatch(args)
    # Two processes launched that do not form a group.
    monkeypatch.delenv("ACCELERATE_USE_CPU")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "each trains alone" in warn_on_process_mismatch(args)

"""The `tall-hf` command line: the demo end to end, then predict with the model it trained."""

from __future__ import annotations

import io

import pytest

from tall_hf.cli import main


def test_demo_then_predict(tmp_path, capsys, monkeypatch):
    output = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(output), "--tall_steps", "6", "--baseline_steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert "| TALL |" in printed and "| Naive |" in printed and "random weights" in printed
    for artefact in ("results.md", "results.csv", "results.json", "accuracy_curves.png", "predictions/tall.jsonl"):
        assert (output / "evaluation" / artefact).is_file(), artefact
    assert (output / "tall" / "model.safetensors").is_file()

    assert main(["predict", "--model", str(output / "tall"), "הילדים הלכו לבית", "אני אוהב לקרוא"]) == 0
    words = capsys.readouterr().out.splitlines()
    assert len(words) == 2 and all(" " not in word for word in words)

    monkeypatch.setattr("sys.stdin", io.StringIO("מחר נלך אל\n"))
    assert main(["predict", "--model", str(output / "tall"), "--num_words", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_bad_commands_name_the_problem(capsys):
    assert main(["translate"]) == 2
    assert "unknown command 'translate'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "--model", "x", "--no_such_flag", "sentence"])
    assert "unknown options: --no_such_flag" in capsys.readouterr().err

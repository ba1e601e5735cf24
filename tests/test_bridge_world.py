"""The bridge's known-answer world (a small preset, seconds) and `tall-hf demo --bridge` on it."""

from __future__ import annotations

import json

import pytest
import torch

from tall_hf.cli import main
from tall_hf.worlds.bridge import (
    LABEL_WORDS,
    TOPIC_WORDS,
    BridgeWorld,
    build_bridge_world,
    language_rotations,
    sentence_topic,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> BridgeWorld:
    return build_bridge_world(tmp_path_factory.mktemp("bridge_world"), preset="test")


def test_topics_follow_from_the_text():
    assert sentence_topic("הכלב של דני כהן תמיד נובח") == 0
    assert sentence_topic("צבע התפוז שרותי לוי קנתה בשוק היה כתום") == 1
    assert sentence_topic("דני כהן גר כבר הרבה שנים בעיר חיפה") == 2
    assert sentence_topic("כל השכנים יודעים שהמקצוע של דני כהן הוא רופא") == 3
    assert sentence_topic("דני כהן ראה אתמול בפארק ספר") is None  # "ספר" is a book here, not a barber
    assert sentence_topic("הכלב של רופא מ חיפה") is None  # two topics


def test_world_facts_and_task(world):
    facts = world.facts
    assert facts["chance"] == 1 / len(TOPIC_WORDS) and facts["llm"]["trained_on"] == "HR text only"
    train, test = world.task("train"), world.task("test")
    assert set(train["language"]) == {"hr"} and len(train) == 4 * 20
    hr = [row for row in test if row["language"] == "hr"]
    lr = [row for row in test if row["language"] == "lr"]
    assert len(hr) == len(lr) == 4 * 10
    for hr_row, lr_row in zip(hr, lr, strict=True):
        assert hr_row["label"] == lr_row["label"] == sentence_topic(lr_row["text"])
        assert world.letter_map.to_lr(hr_row["text"]) == lr_row["text"]
    assert [sum(row["label"] == label for row in lr) for label in range(4)] == [10] * 4
    pretrain = set((world.path / "data" / "pretrain.txt").read_text(encoding="utf-8").splitlines())
    assert pretrain and not pretrain & {row["text"] for row in lr}  # test sentences are held out of all training
    llm_text = (world.path / "data" / "pretrain.hr.txt").read_text(encoding="utf-8")
    assert not set(llm_text) & set("".join(row["text"] for row in lr)) - set(" 0123456789.,")  # no LR letter
    assert world.label_words == [" " + world.letter_map.to_hr(word) for word in LABEL_WORDS]
    assert facts["labels"] == list(TOPIC_WORDS)
    assert build_bridge_world(world.path.parent, preset="test").path == world.path  # cached
    encoder = facts["encoder"]
    assert (encoder["kind"], encoder["translation_layers"], encoder["specialised_layers"]) == ("premise", 2, 1)
    assert encoder["encoder_layers"] == 3 and (encoder["kept_dims"], encoder["rotation_degrees"]) == (8, 35.0)
    probe = encoder["probe"]
    assert [len(probe[language]) for language in ("hr", "lr")] == [3, 3]
    assert all(0 <= accuracy <= 1 for language in ("hr", "lr") for accuracy in probe[language])
    # The probe reads the label from the HR encoder states: measured 0.625 at every layer (chance 0.25); half of that
    # gain over chance (0.44) fails.
    assert max(probe["hr"]) > 0.5, probe


def test_translation_encoder_world(tmp_path):
    translation = build_bridge_world(tmp_path, preset="test", encoder="translation")
    encoder = translation.facts["encoder"]
    assert encoder["kind"] == "translation" and encoder["encoder_layers"] == 2 and len(encoder["probe"]["lr"]) == 2
    assert "kept_dims" not in encoder
    with pytest.raises(ValueError, match="encoder"):
        build_bridge_world(tmp_path, preset="test", encoder="mystery")


def test_language_rotations_keep_a_subspace_and_set_the_languages_apart():
    maps = language_rotations(16, 6, 40.0, seed=0)
    hr, lr = maps.double()
    # Both maps are zero off one 6-dimensional subspace and rotations within it.
    for language_map in (hr, lr):
        singular = torch.linalg.svdvals(language_map)
        assert torch.allclose(singular[:6], torch.ones(6, dtype=torch.float64), atol=1e-5)
        assert singular[6:].abs().max() < 1e-5
    assert torch.allclose(hr @ hr.T, lr @ lr.T, atol=1e-5)
    # LR's coordinates are HR's turned by 40 degrees in every plane: a state h reads back cos(40) of itself.
    kept = hr @ hr.T
    relative = lr @ hr.T
    assert torch.trace(relative) / torch.trace(kept) == pytest.approx(torch.cos(torch.tensor(40.0).deg2rad()).item())
    assert torch.allclose(relative @ relative.T, kept, atol=1e-5)
    assert torch.equal(maps, language_rotations(16, 6, 40.0, seed=0))
    assert not torch.equal(maps, language_rotations(16, 6, 40.0, seed=1))
    assert torch.allclose(*language_rotations(16, 6, 0.0, seed=0), atol=1e-6)  # no rotation: one shared map
    for kept_dims in (0, 5, 18):
        with pytest.raises(ValueError, match="kept_dims"):
            language_rotations(16, kept_dims, 40.0, seed=0)


def test_bridge_demo_writes_tables_with_chance(world, tmp_path, capsys):
    output = tmp_path / "demo"
    (output / "components").mkdir(parents=True)
    (output / "components" / world.path.name).symlink_to(world.path)  # reuse the module's build
    argv = ["demo", "--bridge", "--output-dir", str(output), "--preset", "test", "--steps", "4", "--threads", "1"]
    argv += ["--training_seeds", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "LR (zero-shot)" in printed and "| token_softmax | generation |" in printed
    for table in ("results.json", "log_likelihood/results.json"):
        saved = json.loads((output / "evaluation" / table).read_text(encoding="utf-8"))
        assert saved["chance"] == 25.0
        rows = {(row["fusion"], row["language"]): row for row in saved["results"]}
        assert set(rows) == {(f, lang) for f in ("last", "global_softmax", "token_softmax") for lang in ("hr", "lr")}
        for row in rows.values():
            assert row["n"] == 40 and row["seeds"] == 2 and len(row["per_seed"]) == 2
            assert row["accuracy"] == pytest.approx(sum(row["per_seed"]) / 2, abs=1e-3)
        assert {row["fusion"] for row in saved["comparisons"]} == {"global_softmax", "token_softmax"}
        assert {row["verdict"] for row in saved["comparisons"]} == {"no verdict (2 seed(s); 3 needed)"}
    for seed in (0, 1):
        for fusion in ("global_softmax", "token_softmax"):
            assert (output / "bridge" / fusion / f"seed-{seed}" / "layer_weights.png").is_file()
        assert (output / "bridge" / "token_softmax" / f"seed-{seed}" / "layer_weights_by_language.png").is_file()
        assert (output / "bridge" / "last" / f"seed-{seed}" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_default_bridge_demo_shows_the_premise(tmp_path):
    """The acceptance run of issue 24 (minutes): on the default (premise) world the per-layer probe reads LR better
    on a middle layer than on a top layer, and both fusions beat `last` on LR with 5 seeds, by generation and by
    log-likelihood, every method above chance in every seed."""
    output = tmp_path / "demo"
    assert main(["demo", "--bridge", "--output-dir", str(output), "--threads", "1"]) == 0
    evaluation = output / "evaluation"
    saved = json.loads((evaluation / "results.json").read_text(encoding="utf-8"))
    encoder = saved["metadata"]["encoder"]
    probe, middle = encoder["probe"], encoder["translation_layers"]
    # Best translation layer against the weakest top layer on LR: measured 0.60 - 0.27 = 0.33.
    assert max(probe["lr"][:middle]) - min(probe["lr"][middle:]) > 0.17 and min(probe["hr"]) > 0.9
    # Measured against `last` on LR (benchmarks/README.md), 1 thread: by generation global_softmax +29.05 [+19.60,
    # +37.40], token_softmax +26.90 [+14.20, +39.85]; by log-likelihood +9.65 [+5.60, +14.10] and +11.25 [+1.55,
    # +21.30]. The lowest seed: `last` by generation, 27.00 (chance 25).
    for table, least in (("results.json", 13), ("log_likelihood/results.json", 4.5)):
        saved = json.loads((evaluation / table).read_text(encoding="utf-8"))
        for row in saved["results"]:
            if row["language"] == "lr":
                assert row["seeds"] == 5 and min(row["per_seed"]) > saved["chance"], (table, row)
        lr = {row["fusion"]: row for row in saved["comparisons"] if row["language"] == "lr"}
        assert set(lr) == {"global_softmax", "token_softmax"}
        for row in lr.values():
            assert row["seeds"] == 5 and row["ci_lower"] > 0 and row["difference"] > least, (table, row)

"""The bridge's two objectives (prefix-LM and supervised task data) through `Trainer` and `examples/train_bridge.py`,
and zero-shot evaluation by generation and by log-likelihood with bootstrap intervals, one table for all fusions."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from tall_hf.data.task_data import load_data_file, supervised_pairs
from tall_hf.evaluation.zero_shot import (
    NO_LABEL,
    ZeroShotReport,
    chance_accuracy,
    evaluate_zero_shot,
    generate_labels,
    label_log_likelihoods,
)
from tall_hf.modules.losses import IGNORE_INDEX
from tall_hf.resources import read_corpus
from tall_hf.training.bridge import bridge_training_pairs, create_bridge_trainer
from tall_hf.visualization.layer_weights import mean_layer_weights_by_language, save_layer_weight_plots

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train_bridge.py"
LABEL_WORDS = ["yes", "no"]


def task_dataset(size: int = 16) -> Dataset:
    """English lines of the shipped corpus with alternating labels, and their Hebrew translations (same labels)."""
    english, hebrew = read_corpus("english")[:size], read_corpus("hebrew")[:size]
    labels = [index % 2 for index in range(size)]
    return Dataset.from_dict(
        {
            "text": english + hebrew,
            "label": labels + labels,
            "language": ["en"] * size + ["he"] * size,
        }
    )


@pytest.fixture(scope="module")
def supervised_model(bridge_run_arguments, make_bridge, bridge_paths, bridge_processor, tmp_path_factory):
    """A global-softmax bridge trained with the supervised objective on 16 English examples (40 steps)."""
    model = make_bridge(bridge_paths, "global_softmax")
    english = task_dataset().filter(lambda row: row["language"] == "en")
    untrained = evaluate_zero_shot(model, bridge_processor, english, template="{text}", label_words=LABEL_WORDS)
    pairs = supervised_pairs(english, label_words=LABEL_WORDS)
    trainer = create_bridge_trainer(
        model, bridge_processor, pairs, bridge_run_arguments(tmp_path_factory.mktemp("supervised"), 40)
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return model.eval(), losses, untrained


# ---------------------------------------------------------------------------------------------- task data
def test_supervised_pairs_from_jsonl_and_csv_files(tmp_path):
    rows = [
        {"premise": "rain fell", "hypothesis": "it was wet", "label": 0},
        {"premise": "the sun shone", "hypothesis": "it rained", "label": 2},
        {"premise": "", "hypothesis": "", "label": 1},
    ]
    jsonl = tmp_path / "task.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    csv = tmp_path / "task.csv"
    csv.write_text("text,label\nrain fell,wet\nthe sun shone,dry\n", encoding="utf-8")
    template = "{premise} Question: {hypothesis} Answer:"
    pairs = supervised_pairs(jsonl, template=template, label_words=["True", "Neither", "False"])
    assert pairs["prefix"] == [
        "rain fell Question: it was wet Answer:",
        "the sun shone Question: it rained Answer:",
        "Question:  Answer:",
    ]
    assert pairs["continuation"] == ["True", "False", "Neither"]
    from_csv = supervised_pairs(csv)  # string labels are used as they are
    assert from_csv["prefix"] == ["rain fell", "the sun shone"] and from_csv["continuation"] == ["wet", "dry"]
    with pytest.raises(ValueError, match="label_words"):
        supervised_pairs(jsonl, template=template)
    with pytest.raises(ValueError, match="no label word"):
        supervised_pairs(jsonl, template=template, label_words=["True", "False"])
    with pytest.raises(ValueError, match="lacks the column"):
        supervised_pairs(jsonl, label_words=["a", "b", "c"])  # no `text` column and no template
    (tmp_path / "task.tsv").write_text("text\tlabel\n", encoding="utf-8")
    with pytest.raises(ValueError, match="extensions"):
        load_data_file(tmp_path / "task.tsv")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_data_file(tmp_path / "missing.jsonl")


def test_supervised_pairs_skip_rows_without_input_or_label():
    data = Dataset.from_dict({"text": ["rain fell", "  ", "sun", "snow"], "label": ["wet", "dry", " ", " cold "]})
    pairs = supervised_pairs(data)
    assert pairs["prefix"] == ["rain fell", "snow"]
    assert pairs["continuation"] == ["wet", " cold"]  # a leading space stays: the word as it stands inside text


def test_prefix_lm_reads_a_jsonl_text_column(tmp_path):
    lines = read_corpus("english")[:10]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"body": line}) for line in lines), encoding="utf-8")
    pairs = bridge_training_pairs(path, "prefix_lm", text_column="body", seed=1)
    assert pairs["prefix"] == bridge_training_pairs(lines, "prefix_lm", seed=1)["prefix"]
    with pytest.raises(ValueError, match="Unknown objective"):
        bridge_training_pairs(lines, "masked_lm")


def test_supervised_labels_cover_only_the_label_tokens(
    bridge_run_arguments, make_bridge, bridge_paths, bridge_processor, tmp_path
):
    pairs = supervised_pairs(Dataset.from_dict({"text": ["rain fell hard today"], "label": ["wet"]}))
    trainer = create_bridge_trainer(
        make_bridge(bridge_paths, "last"), bridge_processor, pairs, bridge_run_arguments(tmp_path, 1)
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    expected = bridge_processor.llm_token_ids(["wet"])[0]  # the label's tokens and the eos token
    assert batch["labels"][0].tolist() == expected
    output = trainer.model.eval()(**batch)
    labelled = output.labels.ne(IGNORE_INDEX).sum().item()
    assert labelled == len(expected)  # nothing of the input (soft prompt, end-of-encoding) is labelled


# ---------------------------------------------------------------------------------------------- training
def test_supervised_training_learns_the_labels(supervised_model):
    model, losses, untrained = supervised_model
    # Measured 8.18 -> 0.28 (0.03 x) over the 40 steps; half that drop would end at 0.52 x.
    assert losses[-1] < 0.25 * losses[0], losses
    assert untrained.accuracy < 0.8


@pytest.mark.parametrize("method", ["log_likelihood", "generation"])
def test_zero_shot_scoring_of_a_trained_bridge(supervised_model, bridge_processor, method):
    model, _, _ = supervised_model
    data = task_dataset()
    result = evaluate_zero_shot(
        model, bridge_processor, data, template="{text}", label_words=LABEL_WORDS, method=method
    )
    assert result.method == method and set(result.estimates) == {"en", "he"}
    english = result.estimates["en"]
    assert english.accuracy == result.per_language["en"] == 1.0 and english.n == 16  # the training set itself
    assert (english.lower, english.upper, english.confidence) == (1.0, 1.0, 0.95)  # every resample all right
    hits = [p == g for p, g in zip(result.predictions, data["label"], strict=True)]
    assert result.accuracy == sum(hits) / len(hits)
    if method == "generation":
        assert result.scores is None and len(result.generations) == len(data)
        for text, predicted in zip(result.generations, result.predictions, strict=True):
            assert predicted == (LABEL_WORDS.index(text) if text in LABEL_WORDS else NO_LABEL)
    else:
        assert result.scores.shape == (len(data), 2)


def test_generation_is_the_greedy_continuation(supervised_model, bridge_processor):
    model, _, _ = supervised_model
    prompts = read_corpus("english")[:3]
    texts = generate_labels(model, bridge_processor, prompts, max_new_tokens=3, batch_size=2)
    for prompt, text in zip(prompts, texts, strict=True):
        alone = model.generate(**bridge_processor([prompt]), max_new_tokens=3, do_sample=False)
        assert text == bridge_processor.decode(alone[0], skip_special_tokens=True).strip()
    scores = label_log_likelihoods(model, bridge_processor, prompts, LABEL_WORDS)
    assert scores.shape == (3, 2) and (scores < 0).all()


def test_report_table_for_every_fusion(make_bridge, supervised_model, bridge_paths, bridge_processor, tmp_path):
    trained, _, _ = supervised_model
    data = task_dataset(8)
    models = {"global_softmax": trained, "last": make_bridge(bridge_paths, "last").eval()}
    results = {
        (fusion, method): evaluate_zero_shot(
            model, bridge_processor, data, template="{text}", label_words=LABEL_WORDS, method=method
        )
        for fusion, model in models.items()
        for method in ("generation", "log_likelihood")
    }
    report = ZeroShotReport(results, chance=chance_accuracy(data["label"]), languages={"he": "he (zero-shot)"})
    paths = report.save(tmp_path)
    saved = json.loads(Path(paths["json"]).read_text(encoding="utf-8"))
    assert saved["chance"] == 50.0 and saved["unit"] == "percent"
    assert len(saved["results"]) == 2 * 2 * 2
    row = next(r for r in saved["results"] if r["fusion"] == "global_softmax" and r["language"] == "en")
    assert row["accuracy"] == 100.0 and {"ci_lower", "ci_upper", "scoring", "n"} <= set(row)
    markdown = Path(paths["markdown"]).read_text(encoding="utf-8")
    assert "he (zero-shot)" in markdown and "chance (the most frequent label) 50.00%" in markdown
    assert markdown.count("| global_softmax |") == 2 + 4  # two table rows, four comparisons with `last`
    comparisons = {(row["scoring"], row["language"]): row for row in saved["comparisons"]}
    assert len(comparisons) == 4 and {row["fusion"] for row in saved["comparisons"]} == {"global_softmax"}
    for row in comparisons.values():  # one training run each: the spread between runs is unknown, so no verdict
        assert row["seeds"] == 1 and row["verdict"] == "no verdict (1 seed(s); 3 needed)"
    trained_english = results[("global_softmax", "log_likelihood")].estimates["en"].accuracy
    baseline_english = results[("last", "log_likelihood")].estimates["en"].accuracy
    assert comparisons[("log_likelihood", "en")]["difference"] == round(100 * (trained_english - baseline_english), 4)
    assert chance_accuracy([0, 0, 0, 1]) == 0.75


def test_token_weights_averaged_per_language(make_bridge, bridge_paths, bridge_processor, tmp_path):
    model = make_bridge(bridge_paths, "token_softmax").eval()
    texts = {"en": read_corpus("english")[:5], "he": read_corpus("hebrew")[:5]}
    flat = texts["en"] + texts["he"]
    means = mean_layer_weights_by_language(model, bridge_processor, flat, ["en"] * 5 + ["he"] * 5, batch_size=3)
    assert set(means) == {"en", "he"}
    for language, sentences in texts.items():
        rows = [
            model.layer_weights(**bridge_processor.encoder_tokenizer([s], return_tensors="pt"))[0] for s in sentences
        ]
        torch.testing.assert_close(means[language], torch.cat(rows).mean(dim=0))
        torch.testing.assert_close(means[language].sum(), torch.tensor(1.0))
    paths = save_layer_weight_plots(model, bridge_processor, tmp_path, flat[0], texts_by_language=texts)
    assert {Path(p).name for p in paths} == {
        "layer_weights.png",
        "token_layer_weights.png",
        "layer_weights_by_language.png",
    }


# ---------------------------------------------------------------------------------------------- the example script
@pytest.mark.parametrize("objective", ["prefix_lm", "supervised"])
def test_example_script_trains_either_objective(tiny_cache, tmp_path, monkeypatch, objective):
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    data = task_dataset(8)
    data.filter(lambda row: row["language"] == "en").to_json(train)
    data.to_json(test)
    output = tmp_path / "out"
    argv = [
        str(EXAMPLE),
        "--tiny_components", str(tiny_cache),
        "--objective", objective,
        "--fusion", "token_softmax",
        "--fusion_options", '{"num_heads": 2}',
        "--train_file", str(train),
        "--test_file", str(test),
        "--label_words", "yes,no",
        "--output_dir", str(output),
        "--max_steps", "3",
        "--per_device_train_batch_size", "4",
        "--report_to", "none",
        "--save_strategy", "no",
        "--use_cpu",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    state = json.loads((output / "trainer_state.json").read_text(encoding="utf-8"))
    assert state["global_step"] == 3
    assert (output / "adapter_model.safetensors").is_file()
    table = json.loads((output / "zero_shot" / "results.json").read_text(encoding="utf-8"))
    assert {(row["scoring"], row["language"]) for row in table["results"]} == {
        (method, language) for method in ("generation", "log_likelihood") for language in ("en", "he")
    }
    assert table["chance"] == 50.0
    assert (output / "layer_weights_by_language.png").is_file()


def test_the_old_import_paths_of_the_moved_data_and_trainer_still_work():
    from tall_hf.training import bridge

    with pytest.warns(FutureWarning, match="moved to `tall_hf.training.bridge.create_bridge_trainer`"):
        from tall_hf.models.bridge import create_bridge_trainer
    assert create_bridge_trainer is bridge.create_bridge_trainer
    with pytest.warns(FutureWarning, match="tall_hf.data.task_data"):
        from tall_hf.models.bridge import supervised_pairs
    assert supervised_pairs is bridge.supervised_pairs

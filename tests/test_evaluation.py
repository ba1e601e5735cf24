"""Last-word evaluation: scoring, the shipped metric, the approaches, the report and the end-to-end runner."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import evaluate
import pytest
import torch
from peft import PromptTuningConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM, TrainingArguments

from tall_hf.evaluation import (
    APPROACHES,
    PAPER_HYPERPARAMETERS,
    ApproachContext,
    DirectApproach,
    LastWordApproach,
    LastWordEvaluationArguments,
    NaiveApproach,
    SoftPromptApproach,
    TallApproach,
    bootstrap_accuracy,
    evaluate_approach,
    last_word_accuracy_path,
    make_examples,
    recipe_training_arguments,
    run_last_word_evaluation,
    words_match,
)
from tall_hf.evaluation.report import ApproachResult, LastWordReport, PredictionRecord
from tall_hf.evaluation.scoring import bootstrap_seeded_accuracy, bootstrap_seeded_difference
from tall_hf.evaluation.zero_shot import ZeroShotReport, ZeroShotResult, bootstrap_difference
from tall_hf.generation.pivot import FORCED_PREFIX_NEW_TOKENS
from tall_hf.testing import build_tiny_components
from tall_hf.visualization.accuracy_curves import cumulative_accuracy, plot_accuracy_curves

SENTENCES = ["הילדים הלכו אל הגן.", "אני אוהב לקרוא ספרים", "the cat sat on the mat!", "היא שתתה כוס מים"]


class LookupApproach(LastWordApproach):
    """Answers from a fixed table of prefix -> word (an oracle when the table holds the gold words)."""

    name, display_name = "lookup", "Lookup"

    def __init__(self, answers: dict[str, str], default: str = "") -> None:
        self.answers, self.default = answers, default

    @classmethod
    def from_context(cls, context):
        raise NotImplementedError("built directly in the tests")

    def predict(self, prefixes, *, translations=None, **generation):
        return [self.answers.get(prefix, self.default) for prefix in prefixes]


# ---------------------------------------------------------------- scoring and the metric
@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("הגן", "הגן.", True),
        ('"הגן"', "הגן", True),
        ("  mat ", "mat!", True),
        ('צה"ל', "צהל", True),  # gershayim is punctuation
        ("Mat", "mat", False),  # exact match: case matters
        ("הגנים", "הגן", False),
        ("", "הגן", False),
        ("", "", False),  # an empty prediction is never right
        ("...", "!", False),
    ],
)
def test_words_match_hand_made_cases(prediction, reference, expected):
    assert words_match(prediction, reference) is expected


def test_metric_loads_offline_as_a_local_evaluate_module():
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by conftest before evaluate is imported
    metric = evaluate.load(last_word_accuracy_path())
    assert metric.name == "last_word_accuracy"
    scores = metric.compute(predictions=["הגן", "ספר", ""], references=["הגן.", "עט", ""])
    assert scores == {"accuracy": pytest.approx(1 / 3), "correct": 1, "total": 3}


def test_bootstrap_is_seeded_and_brackets_the_accuracy():
    correct = [True] * 30 + [False] * 70
    first, again = bootstrap_accuracy(correct, seed=3), bootstrap_accuracy(correct, seed=3)
    assert first == again
    assert first.accuracy == pytest.approx(0.3)
    assert first.lower < 0.3 < first.upper and first.n == 100
    wider = bootstrap_accuracy(correct, confidence=0.99, seed=3)
    assert wider.lower <= first.lower and wider.upper >= first.upper
    assert bootstrap_accuracy([True] * 5).lower == 1.0
    with pytest.raises(ValueError, match="zero predictions"):
        bootstrap_accuracy([])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_accuracy([True], confidence=95)


def _runs(accuracies: list[float], n: int = 400) -> list[list[bool]]:
    """One run per accuracy: its first `accuracy * n` sentences right."""
    return [[i < round(accuracy * n) for i in range(n)] for accuracy in accuracies]


def test_seeded_difference_holds_the_spread_between_training_runs():
    """Per-seed differences of +30, -30 and 0 points: each seed alone is a clear verdict over 400 sentences, but over
    seeds and sentences together the interval holds zero; a steady +10 over three seeds excludes it."""
    noisy, baseline = _runs([0.9, 0.5, 0.7]), _runs([0.6, 0.8, 0.7])
    for seed in range(2):
        alone = bootstrap_difference(noisy[seed], baseline[seed])
        assert alone["ci_lower"] > 0 or alone["ci_upper"] < 0
    spread = bootstrap_seeded_difference(noisy, baseline)
    assert spread["difference"] == pytest.approx(0.0) and spread["seeds"] == 3
    assert spread["ci_lower"] < -0.1 and spread["ci_upper"] > 0.1
    steady = bootstrap_seeded_difference(_runs([0.8, 0.7, 0.6]), _runs([0.7, 0.6, 0.5]))
    assert steady["difference"] == pytest.approx(0.1) and steady["ci_lower"] > 0.03
    estimate = bootstrap_seeded_accuracy(noisy)
    assert (estimate.seeds, estimate.n) == (3, 400) and estimate.accuracy == pytest.approx(0.7)
    assert estimate.lower < 0.55 and estimate.upper > 0.85  # the seeds' spread, not the sentences' (about +-0.045)
    with pytest.raises(ValueError, match="one shape"):
        bootstrap_seeded_difference(noisy, baseline[:2])


# ---------------------------------------------------------------- the task
def test_one_word_sentences_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match=r"Sentence 1: .*one word.*at least two words"):
        make_examples(["הילדים הלכו", "שלום"])


def test_examples_split_off_the_gold_word():
    example = make_examples(["  הילדים   הלכו אל הגן. "])[0]
    assert (example.prefix, example.gold, example.sentence) == ("הילדים הלכו אל", "הגן.", "הילדים הלכו אל הגן.")


def test_oracle_scores_100_and_constant_scores_0():
    examples = make_examples(SENTENCES)
    oracle = LookupApproach({example.prefix: example.gold.strip(".!") for example in examples})
    constant = LookupApproach({}, default="בית")
    assert evaluate_approach(oracle, examples).estimate.accuracy == 1.0
    result = evaluate_approach(constant, examples)
    assert result.estimate.accuracy == 0.0 and result.estimate.upper == 0.0
    assert [record.prediction for record in result.records] == ["בית"] * len(SENTENCES)


def test_an_approach_returning_the_wrong_count_is_an_error():
    class Short(LookupApproach):
        def predict(self, prefixes, **kwargs):
            return ["x"]

    with pytest.raises(RuntimeError, match="returned 1 predictions for 4 prefixes"):
        evaluate_approach(Short({}), make_examples(SENTENCES))


# ---------------------------------------------------------------- the approaches on the tiny components
@pytest.fixture(scope="module")
def tall_dir(tiny_paths, tiny_processor, tmp_path_factory):
    torch.manual_seed(0)
    from tall_hf import TallForConditionalGeneration

    folder = tmp_path_factory.mktemp("tall")
    TallForConditionalGeneration.from_components(**tiny_paths).save_pretrained(folder)
    tiny_processor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def context(tiny_paths, tall_dir, hebrew_sentences, tmp_path_factory):
    train_file = tmp_path_factory.mktemp("text") / "train.txt"
    train_file.write_text("\n".join(hebrew_sentences[:16]) + "\n", encoding="utf-8")
    args = TrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("out")),
        max_steps=1,
        per_device_train_batch_size=4,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
    )
    return ApproachContext(
        **tiny_paths,
        output_dir=args.output_dir,
        train_file=str(train_file),
        training_args=args,
        tall_model=tall_dir,
        device=torch.device("cpu"),
    )


@pytest.fixture(scope="module")
def prefixes(hebrew_sentences):
    return [example.prefix for example in make_examples(hebrew_sentences[100:124])]


def diverse_direct(context: ApproachContext) -> DirectApproach:
    """The tiny LLM with large random matrices and an untied output head: its greedy words vary from sentence to
    sentence (the tiny model as built mostly repeats its last input token), so padding bugs would show."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(context.llm)
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().clone())
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(std=0.5)
    return DirectApproach(model, context.llm_tokenizer)


@pytest.mark.parametrize("family", ["bloom", "gpt2"])
def test_left_padding_is_safe_for_other_llm_families(family, tiny_cache, prefixes, tmp_path):
    paths = build_tiny_components(tiny_cache, llm=family)
    approach = diverse_direct(ApproachContext(**paths, output_dir=str(tmp_path)))
    one, sixteen = approach.predict(prefixes, batch_size=1), approach.predict(prefixes, batch_size=16)
    assert len(set(one)) > 3
    assert one == sixteen


def test_registry_lists_the_approaches_in_table_order():
    assert list(APPROACHES) == [
        "direct", "fine_tuned", "naive", "naive_forced", "soft_prompt", "from_scratch", "tall"
    ]  # fmt: skip
    assert [cls.display_name for cls in APPROACHES.values()] == [
        "Direct", "Fine-tuned", "Naive", "Naive, LR prefix forced", "Soft prompt", "From scratch", "TALL"
    ]  # fmt: skip


def test_forced_prefix_naive_decodes_after_the_lr_prefix(context, prefixes, monkeypatch):
    """The back-translation's decoder starts with its start token and the LR prefix's tokens, and the word after
    the prefix is the prediction: whatever the HR sentence says, the prefix stays as given."""
    approach = APPROACHES["naive_forced"].from_context(context)
    model, tokenizer = context.hr_lr_translator
    calls = []
    generate = model.generate

    def recording(*args, **kwargs):
        calls.append(kwargs["decoder_input_ids"])
        output = generate(*args, **kwargs)
        assert output.shape[1] - kwargs["decoder_input_ids"].shape[1] <= FORCED_PREFIX_NEW_TOKENS  # the word's budget
        return output

    monkeypatch.setattr(model, "generate", recording)
    completed = [f"x{i}" for i in range(6)]
    words = approach.back_translated_words(prefixes[:6], completed, batch_size=4)
    assert len(words) == 6 and all(len(word.split()) <= 1 for word in words)
    forced = {tuple(row.tolist()) for call in calls for row in call}
    start = model.generation_config.decoder_start_token_id
    expected = tokenizer(text_target=prefixes[:6], add_special_tokens=False)["input_ids"]
    assert forced == {(start, *ids) for ids in expected}
    assert approach.back_translated_words(prefixes[:6], completed, batch_size=1) == words  # padding changes nothing


@pytest.mark.parametrize("name", list(APPROACHES))
def test_each_approach_returns_one_word_per_sentence(name, context, prefixes):
    approach = APPROACHES[name].from_context(context)
    for kwargs in ({}, {"do_sample": True, "seed": 0}):
        predictions = approach.predict(prefixes[:6], batch_size=4, **kwargs)
        assert len(predictions) == 6
        assert all(len(word.split()) <= 1 for word in predictions)


def test_soft_prompt_trains_30_vectors_and_saves_only_the_adapter(context):
    soft_prompt = APPROACHES["soft_prompt"].from_context(context)
    trainable = sum(p.numel() for p in soft_prompt.model.parameters() if p.requires_grad)
    assert trainable == 30 * soft_prompt.model.config.hidden_size
    saved = os.listdir(context.model_dir("soft_prompt"))
    assert "adapter_model.safetensors" in saved and "model.safetensors" not in saved


def test_tall_trains_with_the_job_of_tall_hf_train_when_no_model_is_given(context):
    """`run_training` with the context's recipe (here the paper's): its model options reach the saved config, and the
    folder is a complete `tall-hf train` output (model, processor with its translator, metrics)."""
    untrained = dataclasses.replace(context, tall_model=None, tall_recipe="paper")
    approach = TallApproach.from_context(untrained)
    folder = untrained.model_dir("tall")
    assert {"model.safetensors", "config.json", "train_results.json", "processor_config.json"} <= set(
        os.listdir(folder)
    )
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    assert (config["source_residual"], config["target_transformer_init"]) == (False, "random")
    with open(os.path.join(folder, "trainer_state.json"), encoding="utf-8") as handle:
        assert json.load(handle)["global_step"] == 1
    assert len(approach.predict(["הילדים הלכו אל"], batch_size=1)) == 1


def test_greedy_direct_is_identical_at_batch_size_1_and_16(context, prefixes):
    approach = diverse_direct(context)
    one, sixteen = approach.predict(prefixes, batch_size=1), approach.predict(prefixes, batch_size=16)
    assert len(set(one)) > 3, "the test model must give varied words for the comparison to mean anything"
    assert one == sixteen


def test_greedy_soft_prompt_is_identical_at_batch_size_1_and_16(context, prefixes):
    direct = diverse_direct(context)
    model = get_peft_model(direct.model, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=30))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.normal_()
    approach = SoftPromptApproach(model, context.llm_tokenizer)
    one, sixteen = approach.predict(prefixes, batch_size=1), approach.predict(prefixes, batch_size=16)
    assert len(set(one)) > 3
    assert one == sixteen

    # Unpadded, the approach generates exactly what PEFT's own `generate` does. Uncached: with transformers >= 5.24
    # (which renamed `past_key_values` to `cache`), PEFT 0.21's cached prompt-tuning path puts the prompt in again at
    # every step after the first, and its words differ from the uncached ones.
    class PeftGenerate(DirectApproach):
        def generate_new_tokens(self, inputs, **generate_kwargs):
            return super().generate_new_tokens(inputs, use_cache=False, **generate_kwargs)

    assert one[:4] == PeftGenerate(model, context.llm_tokenizer).predict(prefixes[:4], batch_size=1)


@pytest.mark.parametrize("approach_class", [NaiveApproach, TallApproach])
def test_greedy_translation_approaches_are_batch_size_invariant(approach_class, context, prefixes):
    approach = approach_class.from_context(context)
    if isinstance(approach, NaiveApproach):
        approach.llm = diverse_direct(context)
    translations = context.translate_to_hr(prefixes[:10], batch_size=16)
    one = approach.predict(prefixes[:10], translations=translations, batch_size=1)
    assert one == approach.predict(prefixes[:10], translations=translations, batch_size=16)


def test_sampling_is_reproducible_with_a_seed(context, prefixes):
    approach = diverse_direct(context)
    first = approach.predict(prefixes, batch_size=8, do_sample=True, seed=1)
    assert first == approach.predict(prefixes, batch_size=8, do_sample=True, seed=1)


def test_trained_approaches_need_training_text(context):
    bare = ApproachContext(context.lr_hr, context.llm, context.hr_lr, output_dir=context.output_dir)
    with pytest.raises(ValueError, match="--train_file"):
        APPROACHES["fine_tuned"].from_context(bare)


# ---------------------------------------------------------------- training recipes
def test_paper_hyperparameters_fill_library_defaults_but_user_values_win(tmp_path):
    base = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, report_to="none")
    fine_tuned = recipe_training_arguments("fine_tuned", base, str(tmp_path / "ft"))
    assert fine_tuned.learning_rate == 1e-3  # set by the user
    assert fine_tuned.weight_decay == 0.01 and fine_tuned.max_grad_norm == 1.0
    assert fine_tuned.output_dir == str(tmp_path / "ft")
    scratch = recipe_training_arguments("from_scratch", TrainingArguments(str(tmp_path)), str(tmp_path))
    assert scratch.learning_rate == 5e-4 and scratch.gradient_accumulation_steps == 8
    soft = recipe_training_arguments("soft_prompt", TrainingArguments(str(tmp_path)), str(tmp_path))
    assert soft.lr_scheduler_type.value == "cosine" and soft.warmup_steps == 100
    assert set(PAPER_HYPERPARAMETERS) == {"fine_tuned", "soft_prompt", "from_scratch"}
    with pytest.raises(ValueError, match="Unknown training recipe"):
        recipe_training_arguments("tall", base, str(tmp_path))


def test_the_tall_recipe_is_one_flag_away_and_keys_the_trained_tall(tmp_path):
    from transformers import HfArgumentParser

    from tall_hf.evaluation.runner import _approach_fingerprint

    argv = ["--test_files", "t.txt", "--llm_model", "x", "--train_file", "train.txt", "--tall_recipe", "paper"]
    args, training_args = HfArgumentParser(
        (LastWordEvaluationArguments, TrainingArguments)
    ).parse_args_into_dataclasses([*argv, "--output_dir", str(tmp_path), "--report_to", "none"])
    assert args.tall_recipe == "paper"
    keys = {
        (name, recipe): _approach_fingerprint(
            name, dataclasses.replace(args, tall_recipe=recipe), {}, {}, ["הילדים הלכו אל הגן"], training_args
        )
        for name in ("tall", "fine_tuned")
        for recipe in ("paper", "fast")
    }
    assert keys["tall", "paper"] != keys["tall", "fast"]  # a rerun with another recipe trains TALL again
    assert keys["fine_tuned", "paper"] == keys["fine_tuned", "fast"]  # and only TALL


# ---------------------------------------------------------------- report and runner
def test_cumulative_accuracy_and_plot(tmp_path):
    assert cumulative_accuracy([True, False, True, True]).tolist() == pytest.approx([100, 50, 200 / 3, 75])
    path = plot_accuracy_curves({"a": {"x": [True, False]}, "b": {"x": [False, False]}}, tmp_path / "c.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_runner_writes_table_predictions_and_plot(tiny_names, tall_dir, hebrew_sentences, tmp_path):
    files = []
    for name, lines in (("wiki", hebrew_sentences[:4]), ("news", hebrew_sentences[50:53])):
        files.append(tmp_path / f"{name}.txt")
        files[-1].write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    args = LastWordEvaluationArguments(
        test_files=[str(path) for path in files],
        **tiny_names,
        approaches=["direct", "naive", "tall"],
        tall_model=tall_dir,
        bootstrap_resamples=200,
    )
    out = tmp_path / "report"
    report = run_last_word_evaluation(args, TrainingArguments(output_dir=str(out), use_cpu=True, report_to="none"))
    markdown = (out / "results.md").read_text(encoding="utf-8")
    for row in ("| Direct |", "| Naive |", "| TALL |", "wiki (n=4)", "news (n=3)"):
        assert row in markdown
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert len(rows) == 6 and {row["dataset"] for row in rows} == {"wiki", "news"}
    assert all(float(row["ci_lower"]) <= float(row["accuracy"]) <= float(row["ci_upper"]) for row in rows)
    assert json.loads((out / "results.json").read_text())["metadata"]["decoding"] == "greedy"
    records = [json.loads(line) for line in (out / "predictions" / "naive.jsonl").open(encoding="utf-8")]
    assert len(records) == 7 and all(record["translation"] for record in records)
    assert set(records[0]) == {
        "dataset", "sentence", "truncated_sentence", "translation", "prediction", "gold_word", "correct"
    }  # fmt: skip
    direct = [json.loads(line) for line in (out / "predictions" / "direct.jsonl").open(encoding="utf-8")]
    assert all(record["translation"] is None for record in direct)
    assert (out / "accuracy_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert report.result("tall", "news").estimate.n == 3


def test_runner_skips_one_word_lines_and_counts_them(tiny_names, tmp_path, caplog):
    path = tmp_path / "bad.txt"
    path.write_text("הילדים הלכו הביתה\nשלום\n", encoding="utf-8")
    args = LastWordEvaluationArguments(test_files=[str(path)], **tiny_names, approaches=["direct"])
    with caplog.at_level("WARNING", logger="tall_hf"):
        report = run_last_word_evaluation(args, TrainingArguments(output_dir=str(tmp_path / "o"), report_to="none"))
    assert report.result("direct", "bad").estimate.n == 1
    assert "skipped 1 of 2 sentences with fewer than two words" in caplog.text and "bad.txt" in caplog.text
    path.write_text("שלום\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt' has no sentence of two words"):
        run_last_word_evaluation(args, TrainingArguments(output_dir=str(tmp_path / "p"), report_to="none"))


def test_arguments_are_validated(tmp_path):
    with pytest.raises(ValueError, match="Unknown approaches"):
        LastWordEvaluationArguments(test_files=["a.txt"], approaches=["oracle"])
    without_models = LastWordEvaluationArguments(test_files=["a.txt"], approaches=["direct"])
    with pytest.raises(ValueError, match="Give --lr_hr_model, --llm_model and --hr_lr_model"):
        run_last_word_evaluation(without_models, TrainingArguments(output_dir=str(tmp_path), report_to="none"))
    with pytest.raises(ValueError, match=r"\['fine_tuned', 'tall'\] train on LR text"):
        LastWordEvaluationArguments(test_files=["a.txt"], approaches=["fine_tuned", "tall"])
    given_tall = LastWordEvaluationArguments(test_files=["a.txt"], tall_model="t", train_file="b")
    assert given_tall.trained_approaches() == ["fine_tuned", "soft_prompt", "from_scratch"]
    with pytest.raises(ValueError, match="distinct names"):
        LastWordEvaluationArguments(test_files=["a/t.txt", "b/t.txt"])


def test_report_says_plainly_which_fusions_differ_from_last():
    """Three seeds per fusion: a steady +10 is `better`, a steady -10 `worse`, equal runs `no clear difference`; with
    one seed there is no verdict."""

    def runs(accuracies: list[float]) -> list[ZeroShotResult]:
        return [
            ZeroShotResult(
                accuracy=sum(correct) / len(correct),
                per_language={"lr": sum(correct) / len(correct)},
                predictions=[],
                estimates={"lr": bootstrap_accuracy(correct)},
                correct={"lr": correct},
            )
            for correct in _runs(accuracies)
        ]

    last = [0.7, 0.6, 0.5]
    report = ZeroShotReport(
        {
            ("last", "generation"): runs(last),
            ("a", "generation"): runs([0.8, 0.7, 0.6]),
            ("b", "generation"): runs([0.6, 0.5, 0.4]),
            ("last", "log_likelihood"): runs(last),
            ("a", "log_likelihood"): runs(last),
        },
        chance=0.25,
        languages={"lr": "LR (zero-shot)"},
    )
    assert report.verdict_summary() == [
        "LR (zero-shot), generation: better than last: a; worse than last: b.",
        "LR (zero-shot), log likelihood: no fusion differs clearly from last.",
    ]
    assert report.to_dict()["verdicts"] == report.verdict_summary()
    assert "LR (zero-shot), generation: better than last: a; worse than last: b." in report.to_markdown()
    single = ZeroShotReport({("last", "generation"): runs([0.7])[0], ("a", "generation"): runs([0.9])[0]}, chance=0.25)
    assert single.verdict_summary() == ["lr, generation: no verdict (fewer than 3 training seeds)."]


# ---------------------------------------------------------------- seeds in the TALL report
def _seeded(name: str, accuracies: list[float], kind: str, n: int = 400) -> ApproachResult:
    """A result of `name` with one run per accuracy (its first `accuracy * n` sentences right)."""
    runs = [
        [
            PredictionRecord("test", f"s{i}", f"s{i}", None, "w" if right else "", "w", right)
            for i, right in enumerate(run)
        ]
        for run in _runs(accuracies, n)
    ]
    outcomes = [[record.correct for record in run] for run in runs]
    estimate = bootstrap_seeded_accuracy(outcomes) if len(runs) > 1 else bootstrap_accuracy(outcomes[0])
    return ApproachResult(name, name.capitalize(), "test", runs[0], estimate, kind=kind, later_seeds=runs[1:])


def test_report_rows_carry_their_seeds_and_tall_is_compared_with_every_approach(tmp_path):
    """Trained rows are seed means with the seeds counted; TALL is compared with each approach (an untrained one's
    single run paired with every TALL seed), never with a bound; a verdict only where the interval excludes 0."""
    report = LastWordReport(
        [
            _seeded("naive", [0.4], "untrained"),
            _seeded("forced", [0.6], "untrained"),
            _seeded("fine_tuned", [0.1, 0.12, 0.08], "trained"),
            _seeded("tall", [0.6, 0.62, 0.58], "trained"),
            _seeded("ceiling", [0.7], "bound"),
        ],
        metadata={"training_seeds": [0, 1, 2]},
    )
    rows = {row["approach"]: row for row in report.summary_rows()}
    assert (rows["Tall"]["seeds"], rows["Naive"]["seeds"]) == (3, 1)
    assert rows["Tall"]["per_seed"] == [60.0, 62.0, 58.0] and rows["Tall"]["accuracy"] == pytest.approx(60.0)
    assert (
        rows["Tall"]["ci_lower"] < 58.0 and rows["Tall"]["kind"] == "trained" and rows["Naive"]["kind"] == "untrained"
    )
    comparisons = {row["baseline"]: row for row in report.comparisons()}
    assert set(comparisons) == {"Naive", "Forced", "Fine_tuned"}  # not the bound, not TALL itself
    fields = {"dataset", "approach", "baseline", "difference", "ci_lower", "ci_upper", "seeds", "verdict"}
    assert all(set(row) == fields and row["seeds"] == 3 for row in comparisons.values())
    assert comparisons["Naive"]["difference"] == pytest.approx(20.0) and comparisons["Naive"]["verdict"] == "better"
    assert (
        comparisons["Fine_tuned"]["verdict"] == "better" and comparisons["Forced"]["verdict"] == "no clear difference"
    )
    assert report.verdict_summary() == [
        "Tall on test: better than `Naive`, `Fine_tuned`; no clear difference from `Forced`."
    ]
    report.save(tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["comparisons"] == report.comparisons() and saved["verdicts"] == report.verdict_summary()
    assert {row["approach"]: row["seeds"] for row in saved["results"]}["Tall"] == 3
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| Tall | 3 | 60.00 [" in markdown and "| Naive | 1 | 40.00 [" in markdown
    assert "| Tall | test | 60.00 [" in markdown and "| approach | data set | seed 0 | seed 1 | seed 2 |" in markdown
    assert "| Tall vs Naive | test | 3 | +20.00 [" in markdown
    assert "No training, one run each (seeds 1): `Naive`, `Forced`." in markdown
    later = [json.loads(line)["correct"] for line in (tmp_path / "predictions" / "tall.seed-2.jsonl").open()]
    assert sum(later) == 232  # the third seed's own records


def test_no_verdict_from_fewer_than_three_seeds():
    """One TALL checkpoint (as `tall-hf evaluate` gets it) or a baseline with two seeds: the difference and its
    interval are reported, a verdict is not, however far apart the rows are."""
    single = LastWordReport([_seeded("tall", [0.9], "trained"), _seeded("naive", [0.1], "untrained")])
    (row,) = single.comparisons()
    assert row["seeds"] == 1 and row["ci_lower"] > 50 and row["verdict"] == "no verdict (1 seed(s); 3 needed)"
    assert single.verdict_summary() == ["Tall on test: no verdict (fewer than 3 training seeds) against `Naive`."]
    uneven = LastWordReport([_seeded("tall", [0.9, 0.9, 0.9], "trained"), _seeded("soft", [0.1, 0.1], "trained")])
    (row,) = uneven.comparisons()
    assert row["seeds"] == 2 and row["verdict"].startswith("no verdict")


def test_runner_takes_several_tall_checkpoints_as_seeds(tiny_names, tall_dir, hebrew_sentences, tmp_path, caplog):
    """`--tall_model A B`: two runs of TALL, their mean in the row, each run's predictions in its own file, no verdict
    from two seeds; a rerun reuses both runs."""
    path = tmp_path / "news.txt"
    path.write_text("\n".join(hebrew_sentences[50:54]) + "\n", encoding="utf-8")
    args = LastWordEvaluationArguments(
        test_files=[str(path)], **tiny_names, approaches=["direct", "tall"], tall_model=[tall_dir, tall_dir]
    )
    training_args = TrainingArguments(output_dir=str(tmp_path / "report"), use_cpu=True, report_to="none")
    report = run_last_word_evaluation(args, training_args)
    assert report.result("tall", "news").seeds == 2 and report.result("direct", "news").seeds == 1
    assert (tmp_path / "report" / "predictions" / "tall.seed-1.jsonl").is_file()
    (row,) = report.comparisons()
    assert (row["baseline"], row["seeds"]) == ("Direct", 2) and row["verdict"].startswith("no verdict")
    with caplog.at_level("WARNING", logger="tall_hf"):
        run_last_word_evaluation(args, training_args)
    assert caplog.text.count("Reusing the finished tall approach") == 2


def test_trained_baselines_train_once_per_seed_and_a_rerun_redoes_only_unfinished_seeds(
    tiny_names, hebrew_sentences, tmp_path, monkeypatch
):
    test_file, train_file = tmp_path / "test.txt", tmp_path / "train.txt"
    test_file.write_text("\n".join(hebrew_sentences[50:53]) + "\n", encoding="utf-8")
    train_file.write_text("\n".join(hebrew_sentences[:8]) + "\n", encoding="utf-8")
    args = LastWordEvaluationArguments(
        test_files=[str(test_file)],
        **tiny_names,
        approaches=["soft_prompt"],
        train_file=str(train_file),
        training_seeds=2,
    )
    training_args = TrainingArguments(
        output_dir=str(tmp_path / "evaluation"),
        max_steps=1,
        seed=0,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
    )
    seeds = []
    original = SoftPromptApproach.from_context.__func__

    def recording(cls, context):
        seeds.append(context.training_args.seed)
        if context.training_args.seed == 1 and len(seeds) == 2:
            raise RuntimeError("seed 1 broke")
        return original(cls, context)

    monkeypatch.setattr(SoftPromptApproach, "from_context", classmethod(recording))
    with pytest.raises(RuntimeError, match="soft_prompt"):
        run_last_word_evaluation(args, training_args)
    report = run_last_word_evaluation(args, training_args)
    assert seeds == [0, 1, 1]  # seed 0 finished in the first run and is reused; only seed 1 runs again
    models = tmp_path / "evaluation" / "models" / "soft_prompt"
    assert sorted(os.listdir(models)) == ["seed-0", "seed-1"]
    assert report.result("soft_prompt", "test").seeds == 2 and report.metadata["training_seeds"] == [0, 1]

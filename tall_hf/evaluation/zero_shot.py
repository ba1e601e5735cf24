"""Zero-shot classification with the bridge, as in the fusion paper: the encoder reads the input in any language, and
the frozen LLM either writes the label (greedy generation, exact match: the paper's scoring) or has each label word
scored by its log-likelihood after the soft prompt. Accuracy per language with bootstrap confidence intervals, and one
table (Markdown + JSON) for several fusion methods, each possibly trained with several seeds: its rows are means over
the seeds with intervals over seeds and sentences together, and a fusion is called better or worse than `last` only
when at least `MIN_VERDICT_SEEDS` seeds stand behind it and that interval excludes zero.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from .scoring import (
    MIN_VERDICT_SEEDS,
    AccuracyEstimate,
    bootstrap_accuracy,
    bootstrap_seeded_accuracy,
    bootstrap_seeded_difference,
    seeded_verdict,
)

XNLI_TEMPLATE = "{premise} Question: {hypothesis} True, False or Neither? Answer:"
XNLI_LABEL_WORDS = ("True", "Neither", "False")
"""XNLI's labels in id order: 0 entailment, 1 neutral, 2 contradiction."""

SCORING_METHODS = ("generation", "log_likelihood")
"""`generation`: greedy decoding, a hit when the text written equals the label word (the paper's scoring);
`log_likelihood`: the label word the LLM scores highest."""

NO_LABEL = -1
"""The prediction of a generation that is none of the label words."""


@dataclass
class ZeroShotResult:
    """Accuracy overall and per language (with bootstrap intervals), the predicted label ids (`NO_LABEL` where a
    generation named no label), and the label words' log-likelihoods or the generated texts."""

    accuracy: float
    per_language: dict[str, float]
    predictions: list[int] = field(repr=False)
    scores: torch.Tensor | None = field(default=None, repr=False)
    method: str = "log_likelihood"
    estimates: dict[str, AccuracyEstimate] = field(default_factory=dict, repr=False)
    generations: list[str] | None = field(default=None, repr=False)
    correct: dict[str, list[bool]] = field(default_factory=dict, repr=False)
    """Per language, whether each of its rows (in data set order) was classified right."""


def _encode_chunks(prompts: Sequence[str], batch_size: int, description: str):
    if not prompts:
        raise ValueError("No prompts to score.")
    for start in tqdm(range(0, len(prompts), batch_size), desc=description, leave=False):
        yield list(prompts[start : start + batch_size])


@torch.no_grad()
def label_log_likelihoods(
    model, processor, prompts: Sequence[str], label_words: Sequence[str], batch_size: int = 16
) -> torch.Tensor:
    """`(len(prompts), len(label_words))`: the LLM's log-likelihood of each label word (summed over its tokens)
    after the soft prompt of each prompt. Each prompt is encoded once and shared by its label words."""
    if len(label_words) < 2:
        raise ValueError(f"Zero-shot classification needs at least two label words, got {list(label_words)}.")
    model.eval()
    words = list(label_words)
    word_ids = processor.llm_token_ids(words, add_eos=False)
    scores = []
    for chunk in _encode_chunks(prompts, batch_size, "Zero-shot scoring"):
        batch = processor(chunk).to(model.device)
        encoded = model.encode(batch["input_ids"], batch["attention_mask"])
        encoded = type(encoded)(**{key: value.repeat_interleave(len(words), dim=0) for key, value in encoded.items()})
        words_batch = processor.pad({"llm_input_ids": word_ids * len(chunk)}).to(model.device)
        output = model(
            encoder_outputs=encoded,
            llm_input_ids=words_batch["llm_input_ids"],
            llm_attention_mask=words_batch["llm_attention_mask"],
            labels=words_batch["labels"],
        )
        log_probs = output.logits[:, :-1].float().log_softmax(dim=-1)
        targets = output.labels[:, 1:]
        picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        scores.append((picked * targets.ne(-100)).sum(dim=-1).view(len(chunk), len(words)).cpu())
    return torch.cat(scores)


@torch.no_grad()
def generate_labels(
    model, processor, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 16
) -> list[str]:
    """The text the bridge writes greedily after each prompt's soft prompt (special tokens dropped, stripped)."""
    model.eval()
    tokenizer = processor.llm_tokenizer
    texts = []
    for chunk in _encode_chunks(prompts, batch_size, "Zero-shot generation"):
        batch = processor(chunk).to(model.device)
        generated = model.generate(
            batch["input_ids"],
            batch["attention_mask"],
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts.extend(text.strip() for text in processor.batch_decode(generated, skip_special_tokens=True))
    return texts


def evaluate_zero_shot(
    model,
    processor,
    dataset: Dataset,
    *,
    template: str = XNLI_TEMPLATE,
    label_words: Sequence[str] = XNLI_LABEL_WORDS,
    label_column: str = "label",
    language_column: str = "language",
    method: str = "log_likelihood",
    max_new_tokens: int | None = None,
    batch_size: int = 16,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> ZeroShotResult:
    """Classify every row of `dataset` zero-shot and report accuracy overall and per language, with percentile
    bootstrap intervals (`bootstrap_accuracy`, resampling the rows of each language).

    Each row fills `template` from its columns (`premise`, `hypothesis` for XNLI; `"{text}"` for a plain text
    column); `label_words[i]` names label id `i`. `method` is `log_likelihood` (the best-scored label word) or
    `generation` (greedy decoding of at most `max_new_tokens`, default: the longest label word's tokens plus one; a
    hit when the stripped text equals the label word). Without a `language_column`, all rows count as `"all"`.
    """
    if method not in SCORING_METHODS:
        raise ValueError(f"Unknown scoring method {method!r}; choose one of {SCORING_METHODS}.")
    missing = {label_column} - set(dataset.column_names)
    if missing:
        raise ValueError(f"The data set lacks the column {sorted(missing)}; it has {dataset.column_names}.")
    try:
        prompts = [template.format(**row) for row in dataset]
    except KeyError as err:
        raise ValueError(f"The template needs the column {err}, which the data set lacks.") from err
    gold = list(dataset[label_column])
    out_of_range = sorted({label for label in gold if not 0 <= label < len(label_words)})
    if out_of_range:
        raise ValueError(f"Labels {out_of_range} have no label word: label_words={list(label_words)}.")
    languages = dataset[language_column] if language_column in dataset.column_names else ["all"] * len(gold)
    scores, generations = None, None
    if method == "log_likelihood":
        scores = label_log_likelihoods(model, processor, prompts, label_words, batch_size=batch_size)
        predictions = scores.argmax(dim=-1).tolist()
    else:
        if max_new_tokens is None:
            max_new_tokens = max(len(ids) for ids in processor.llm_token_ids(list(label_words), add_eos=False)) + 1
        generations = generate_labels(model, processor, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
        index = {word.strip(): label for label, word in enumerate(label_words)}
        predictions = [index.get(text, NO_LABEL) for text in generations]
    correct: dict[str, list[bool]] = defaultdict(list)
    for language, predicted, label in zip(languages, predictions, gold, strict=True):
        correct[language].append(predicted == label)
    estimates = {
        language: bootstrap_accuracy(hits, confidence=confidence, n_resamples=n_resamples, seed=seed)
        for language, hits in sorted(correct.items())
    }
    accuracy = sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold)
    return ZeroShotResult(
        accuracy=accuracy,
        per_language={language: estimate.accuracy for language, estimate in estimates.items()},
        predictions=predictions,
        scores=scores,
        method=method,
        estimates=estimates,
        generations=generations,
        correct=dict(correct),
    )


def bootstrap_difference(
    correct: Sequence[bool],
    baseline: Sequence[bool],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of `correct` minus that of `baseline` on the same rows, with a paired percentile bootstrap interval
    (the same resampled rows for both): `{"difference", "ci_lower", "ci_upper"}` as fractions."""
    first, second = np.asarray(correct, dtype=float), np.asarray(baseline, dtype=float)
    if first.shape != second.shape or first.size == 0:
        raise ValueError(
            f"A paired difference needs two equally long, non-empty outcomes: {first.size}, {second.size}."
        )
    rows = np.random.default_rng(seed).integers(0, first.size, size=(n_resamples, first.size))
    differences = first[rows].mean(axis=1) - second[rows].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.percentile(differences, [tail, 100 - tail])
    return {"difference": float(first.mean() - second.mean()), "ci_lower": float(lower), "ci_upper": float(upper)}


def chance_accuracy(labels: Sequence[int]) -> float:
    """The accuracy of always answering the most frequent label: the chance level of a classification set."""
    if not labels:
        raise ValueError("No labels: no chance level.")
    return Counter(labels).most_common(1)[0][1] / len(labels)


@dataclass
class ZeroShotReport:
    """One table of zero-shot results: a row per (fusion method, scoring method, language), with the chance level.

    `results` maps `(fusion, scoring method)` to a [`ZeroShotResult`], or to a list of them, one per training seed
    (the same test rows in the same order). `languages` may name each language's role (e.g.
    `{"hr": "HR (in-language)", "lr": "LR (zero-shot)"}`) for the Markdown table."""

    results: dict[tuple[str, str], ZeroShotResult | list[ZeroShotResult]]
    chance: float
    title: str = "Zero-shot classification"
    languages: dict[str, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def runs(self, key: tuple[str, str]) -> list[ZeroShotResult]:
        """The results of `(fusion, scoring method)`, one per training seed."""
        value = self.results[key]
        return list(value) if isinstance(value, list | tuple) else [value]

    def outcomes(self, key: tuple[str, str], language: str) -> list[list[bool]]:
        """`[seed][sentence]`: whether each run classified each test row of `language` right."""
        return [run.correct[language] for run in self.runs(key)]

    def estimate(self, key: tuple[str, str], language: str) -> AccuracyEstimate:
        """A single run's own sentence-bootstrap estimate; for several seeds, the mean over seeds with an interval
        over seeds and sentences together."""
        runs = self.runs(key)
        if len(runs) == 1:
            return runs[0].estimates[language]
        confidence = runs[0].estimates[language].confidence
        return bootstrap_seeded_accuracy(self.outcomes(key, language), confidence=confidence)

    def languages_of(self, key: tuple[str, str]) -> list[str]:
        return list(self.runs(key)[0].estimates)

    def rows(self) -> list[dict]:
        """Flat rows, accuracies and interval bounds in percent, with the seeds behind each and their accuracies."""
        rows = []
        for key in self.results:
            for language in self.languages_of(key):
                estimate = self.estimate(key, language)
                rows.append(
                    {
                        "fusion": key[0],
                        "scoring": key[1],
                        "language": language,
                        "accuracy": round(100 * estimate.accuracy, 4),
                        "ci_lower": round(100 * estimate.lower, 4),
                        "ci_upper": round(100 * estimate.upper, 4),
                        "n": estimate.n,
                        "seeds": len(self.runs(key)),
                        "per_seed": [round(100 * run.estimates[language].accuracy, 4) for run in self.runs(key)],
                    }
                )
        return rows

    def comparisons(self, baseline: str = "last") -> list[dict]:
        """Each other fusion against `baseline`, per scoring method and language: the accuracy difference in points
        (paired by seed and test row) with an interval over seeds and sentences, and the verdict: `better` / `worse`
        when at least `MIN_VERDICT_SEEDS` seeds stand behind both and the interval excludes zero."""
        rows = []
        for fusion, method in self.results:
            if fusion == baseline or (baseline, method) not in self.results:
                continue
            for language in self.languages_of((fusion, method)):
                if language not in self.languages_of((baseline, method)):
                    continue
                ours, theirs = self.outcomes((fusion, method), language), self.outcomes((baseline, method), language)
                if len(ours) != len(theirs):
                    raise ValueError(
                        f"{fusion} has {len(ours)} training seeds and {baseline} {len(theirs)}: a paired comparison "
                        "needs the same seeds."
                    )
                confidence = self.runs((fusion, method))[0].estimates[language].confidence
                difference = bootstrap_seeded_difference(ours, theirs, confidence=confidence)
                verdict = seeded_verdict(difference)
                seeds = difference.pop("seeds")
                rows.append(
                    {
                        "fusion": fusion,
                        "baseline": baseline,
                        "scoring": method,
                        "language": language,
                        **{key: round(100 * value, 4) for key, value in difference.items()},
                        "seeds": seeds,
                        "verdict": verdict,
                    }
                )
        return rows

    def verdict_summary(self, baseline: str = "last") -> list[str]:
        """One plain sentence per scoring method and language: which fusions are better or worse than `baseline`, or
        that none differs clearly from it (or that too few seeds stand behind the comparison for a verdict)."""
        grouped: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for row in self.comparisons(baseline):
            grouped[(row["scoring"], row["language"])][row["verdict"]].append(row["fusion"])
        lines = []
        for (method, language), verdicts in grouped.items():
            where = f"{self.languages.get(language, language)}, {method.replace('_', ' ')}"
            decided = [f"{v} than {baseline}: {', '.join(verdicts[v])}" for v in ("better", "worse") if verdicts[v]]
            if decided:
                lines.append(f"{where}: " + "; ".join(decided) + ".")
            elif "no clear difference" in verdicts:
                lines.append(f"{where}: no fusion differs clearly from {baseline}.")
            else:
                lines.append(f"{where}: no verdict (fewer than {MIN_VERDICT_SEEDS} training seeds).")
        return lines

    def to_markdown(self) -> str:
        """A row per fusion method and scoring, a column per language: accuracy % [95% CI]; then each fusion against
        `last` (difference in points, paired bootstrap interval)."""
        languages = list(dict.fromkeys(language for key in self.results for language in self.languages_of(key)))
        first = next(iter(self.results))
        confidence = self.runs(first)[0].estimates[self.languages_of(first)[0]].confidence
        header = ["fusion", "scoring", "seeds", *(self.languages.get(language, language) for language in languages)]
        lines = [
            f"{self.title}: accuracy (%), the mean over training seeds, with {100 * confidence:.0f}% bootstrap "
            f"confidence intervals (over seeds and test sentences); chance (the most frequent label) "
            f"{100 * self.chance:.2f}%.",
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join(["---"] * len(header)) + " |",
        ]
        for key in self.results:
            present = self.languages_of(key)
            cells = [self.estimate(key, lang).as_percent() if lang in present else "" for lang in languages]
            lines.append("| " + " | ".join([*key, str(len(self.runs(key))), *cells]) + " |")
        comparisons = self.comparisons()
        if comparisons:
            lines += ["", "| fusion vs last | scoring | language | seeds | difference (points) [CI] | verdict |"]
            lines.append("| --- | --- | --- | --- | --- | --- |")
            for row in comparisons:
                language = self.languages.get(row["language"], row["language"])
                interval = f"{row['difference']:+.2f} [{row['ci_lower']:+.2f}, {row['ci_upper']:+.2f}]"
                lines.append(
                    f"| {row['fusion']} | {row['scoring']} | {language} | {row['seeds']} | {interval} | "
                    f"{row['verdict']} |"
                )
            lines += ["", *self.verdict_summary()]
        lines.extend(["", *self.notes] if self.notes else [])
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "unit": "percent",
            "chance": round(100 * self.chance, 4),
            "chance_note": "accuracy of always answering the test set's most frequent label",
            "languages": self.languages,
            "results": self.rows(),
            "comparisons": self.comparisons(),
            "verdicts": self.verdict_summary(),
            "metadata": self.metadata,
            "notes": self.notes,
        }

    def save(self, output_dir: str | os.PathLike) -> dict[str, str]:
        """Write `results.md` and `results.json` under `output_dir`; returns `{artefact: path}`."""
        os.makedirs(output_dir, exist_ok=True)
        paths = {"markdown": os.path.join(output_dir, "results.md"), "json": os.path.join(output_dir, "results.json")}
        with open(paths["markdown"], "w", encoding="utf-8") as handle:
            handle.write(self.to_markdown())
        with open(paths["json"], "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2, ensure_ascii=False)
        return paths


__all__ = [
    "MIN_VERDICT_SEEDS",
    "NO_LABEL",
    "SCORING_METHODS",
    "XNLI_LABEL_WORDS",
    "XNLI_TEMPLATE",
    "ZeroShotReport",
    "ZeroShotResult",
    "bootstrap_difference",
    "chance_accuracy",
    "evaluate_zero_shot",
    "generate_labels",
    "label_log_likelihoods",
]

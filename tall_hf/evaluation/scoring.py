"""The paper's scoring of last-word prediction: exact word match after punctuation removal, with bootstrap CIs (over
sentences, or over training seeds and sentences together for a method trained several times)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils.text import normalize_text

METRIC_NAME = "last_word_accuracy"

MIN_VERDICT_SEEDS = 3
"""Training seeds a comparison needs before a report calls one method better or worse than another: with fewer, the
spread between training runs (which can exceed the difference between methods) is not measured."""


def last_word_accuracy_path() -> str:
    """Folder of the shipped `evaluate` metric: `evaluate.load(last_word_accuracy_path())` works offline."""
    return str(Path(__file__).resolve().parent / "metrics" / METRIC_NAME)


def words_match(prediction: str, reference: str) -> bool:
    """Exact match of the two words once punctuation is removed; an empty prediction is always wrong."""
    predicted = normalize_text(prediction)
    return bool(predicted) and predicted == normalize_text(reference)


@dataclass(frozen=True)
class AccuracyEstimate:
    """An accuracy in [0, 1] over `n` sentences with a percentile-bootstrap confidence interval."""

    accuracy: float
    lower: float
    upper: float
    n: int
    confidence: float
    seeds: int = 1

    def as_percent(self) -> str:
        """`"5.59 [4.10, 7.20]"`: accuracy and interval in percent, as in the paper's tables."""
        return f"{100 * self.accuracy:.2f} [{100 * self.lower:.2f}, {100 * self.upper:.2f}]"


def bootstrap_accuracy(
    correct: Sequence[bool], *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> AccuracyEstimate:
    """Accuracy of `correct` with a seeded percentile bootstrap interval (resampling sentences with replacement)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}.")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}.")
    outcomes = np.asarray(correct, dtype=float)
    if outcomes.size == 0:
        raise ValueError("Cannot estimate an accuracy from zero predictions.")
    rng = np.random.default_rng(seed)
    resampled = rng.choice(outcomes, size=(n_resamples, outcomes.size), replace=True).mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.percentile(resampled, [tail, 100 - tail])
    return AccuracyEstimate(float(outcomes.mean()), float(lower), float(upper), int(outcomes.size), confidence)


def _as_runs(outcomes) -> np.ndarray:
    """Outcomes as a `[runs, sentences]` float array (one run for a flat sequence)."""
    runs = np.asarray(outcomes, dtype=float)
    runs = runs[None, :] if runs.ndim == 1 else runs
    if runs.ndim != 2 or runs.size == 0:
        raise ValueError(f"Expected outcomes as [runs, sentences], non-empty; got shape {runs.shape}.")
    return runs


def bootstrap_runs(
    outcomes, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a `[runs, sentences]` array (e.g. training seeds x test sentences) with a two-level percentile
    bootstrap interval: each resample draws the runs with replacement, then the sentences with replacement (the same
    sentences for every run), so the interval holds the spread between training runs as well as the sampling of
    test sentences. Returns `(mean, lower, upper)`."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}.")
    runs = _as_runs(outcomes)
    rng = np.random.default_rng(seed)
    run_draws = rng.integers(0, runs.shape[0], size=(n_resamples, runs.shape[0]))
    sentence_draws = rng.integers(0, runs.shape[1], size=(n_resamples, runs.shape[1]))
    resampled = runs[run_draws[:, :, None], sentence_draws[:, None, :]].mean(axis=(1, 2))
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.percentile(resampled, [tail, 100 - tail])
    return float(runs.mean()), float(lower), float(upper)


def bootstrap_seeded_accuracy(
    outcomes, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> AccuracyEstimate:
    """Accuracy of a method trained with several seeds (`outcomes[seed][sentence]`): the mean over seeds with an
    interval over seeds and sentences together ([`bootstrap_runs`])."""
    runs = _as_runs(outcomes)
    mean, lower, upper = bootstrap_runs(runs, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return AccuracyEstimate(mean, lower, upper, int(runs.shape[1]), confidence, seeds=int(runs.shape[0]))


def bootstrap_seeded_difference(
    outcomes, baseline, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> dict:
    """Accuracy of `outcomes` minus `baseline` (both `[seeds, sentences]`, paired by seed index and sentence), with
    the interval of [`bootstrap_runs`]: `{"difference", "ci_lower", "ci_upper", "seeds"}` (fractions)."""
    first, second = _as_runs(outcomes), _as_runs(baseline)
    if first.shape != second.shape:
        raise ValueError(f"A paired difference needs outcomes of one shape: {first.shape} vs {second.shape}.")
    difference, lower, upper = bootstrap_runs(
        first - second, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return {"difference": difference, "ci_lower": lower, "ci_upper": upper, "seeds": int(first.shape[0])}


def seeded_verdict(difference: dict) -> str:
    """The plain verdict on a [`bootstrap_seeded_difference`]: `better` / `worse` when at least `MIN_VERDICT_SEEDS`
    training seeds stand behind it and its interval excludes zero, else `no clear difference` (or `no verdict` with
    too few seeds)."""
    if difference["seeds"] < MIN_VERDICT_SEEDS:
        return f"no verdict ({difference['seeds']} seed(s); {MIN_VERDICT_SEEDS} needed)"
    if difference["ci_lower"] > 0:
        return "better"
    if difference["ci_upper"] < 0:
        return "worse"
    return "no clear difference"

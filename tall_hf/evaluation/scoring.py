"""The paper's scoring of last-word prediction: exact word match after punctuation removal, with bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils.text import normalize_text

METRIC_NAME = "last_word_accuracy"


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

"""Cumulative accuracy against the number of sentences evaluated, one line per approach (the paper's accuracy
curves), one panel per data set."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def cumulative_accuracy(correct: Sequence[bool]) -> np.ndarray:
    """Accuracy in percent after each sentence: element `i` is the accuracy over the first `i + 1` sentences."""
    outcomes = np.asarray(correct, dtype=float)
    return 100 * np.cumsum(outcomes) / np.arange(1, outcomes.size + 1)


def plot_accuracy_curves(
    curves: Mapping[str, Mapping[str, Sequence[bool]]], path: str | os.PathLike, title: str | None = None
) -> str:
    """Draw `{data set: {approach: per-sentence correctness}}` as cumulative accuracy curves and save a PNG (the y axis
    spans twice the best final accuracy)."""
    if not curves or not any(curves.values()):
        raise ValueError("No results to plot: pass {data set: {approach: [correct, ...]}}.")
    # A bare `Figure` renders with Agg and leaves pyplot's global state (and the user's backend) alone.
    figure = Figure(figsize=(6 * len(curves), 4.5))
    axes = figure.subplots(1, len(curves), squeeze=False, sharey=True)
    final = 0.0
    for axis, (dataset, approaches) in zip(axes[0], curves.items(), strict=True):
        for approach, correct in approaches.items():
            accuracy = cumulative_accuracy(correct)
            final = max(final, float(accuracy[-1]))
            axis.plot(np.arange(1, accuracy.size + 1), accuracy, label=f"{approach} ({accuracy[-1]:.2f}%)")
        axis.set_title(dataset)
        axis.set_xlabel("sentences evaluated")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    axes[0][0].set_ylabel("cumulative accuracy (%)")
    # Zoomed on the final accuracies: the first few sentences swing between 0 and 100% and run off the top.
    top = max(1.0, 2 * final)
    axes[0][0].set_ylim(-0.02 * top, top)  # a line at 0% stays visible above the axis
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return str(path)

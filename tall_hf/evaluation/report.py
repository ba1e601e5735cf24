"""Results of a last-word evaluation: per-sentence predictions, a Table-1-shaped summary with bootstrap intervals,
and the files they are written to (Markdown, CSV, JSON, JSONL predictions, a PNG of accuracy curves)."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field

from ..visualization.accuracy_curves import plot_accuracy_curves
from .scoring import AccuracyEstimate


@dataclass(frozen=True)
class PredictionRecord:
    """One sentence as an approach saw and answered it."""

    dataset: str
    sentence: str
    truncated_sentence: str
    translation: str | None
    prediction: str
    gold_word: str
    correct: bool


@dataclass
class ApproachResult:
    """The predictions of one approach on one data set, with its accuracy estimate."""

    approach: str
    display_name: str
    dataset: str
    records: list[PredictionRecord]
    estimate: AccuracyEstimate

    @property
    def correct(self) -> list[bool]:
        return [record.correct for record in self.records]


@dataclass
class LastWordReport:
    """All results of one run; `save` writes every artefact and returns their paths."""

    results: list[ApproachResult]
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    title: str = "Last-word prediction"

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(result.dataset for result in self.results))

    @property
    def approaches(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((result.approach, result.display_name) for result in self.results))

    def result(self, approach: str, dataset: str) -> ApproachResult:
        for result in self.results:
            if result.approach == approach and result.dataset == dataset:
                return result
        raise KeyError(f"No result for approach {approach!r} on data set {dataset!r}.")

    def to_markdown(self) -> str:
        """Table 1 of the paper in shape: one row per approach, one column per data set, accuracy % [95% CI]."""
        confidence = self.results[0].estimate.confidence if self.results else 0.95
        header = ["approach", *(f"{dataset} (n={self._size(dataset)})" for dataset in self.datasets)]
        lines = [
            f"{self.title}: accuracy (%) with {100 * confidence:.0f}% bootstrap confidence intervals.",
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join(["---"] * len(header)) + " |",
        ]
        for name, display_name in self.approaches:
            cells = [self.result(name, dataset).estimate.as_percent() for dataset in self.datasets]
            lines.append("| " + " | ".join([display_name, *cells]) + " |")
        lines.extend(["", *self.notes] if self.notes else [])
        return "\n".join(lines) + "\n"

    def summary_rows(self) -> list[dict]:
        """One flat row per (data set, approach): accuracies and interval bounds in percent."""
        return [
            {
                "dataset": result.dataset,
                "approach": result.display_name,
                "accuracy": round(100 * result.estimate.accuracy, 4),
                "ci_lower": round(100 * result.estimate.lower, 4),
                "ci_upper": round(100 * result.estimate.upper, 4),
                "correct": sum(result.correct),
                "n": result.estimate.n,
            }
            for result in self.results
        ]

    def save(self, output_dir: str | os.PathLike) -> dict[str, str]:
        """Write `results.md`, `results.csv`, `results.json`, `predictions/<approach>.jsonl` and
        `accuracy_curves.png` under `output_dir`; returns `{artefact: path}`."""
        os.makedirs(os.path.join(output_dir, "predictions"), exist_ok=True)
        paths = {
            "markdown": os.path.join(output_dir, "results.md"),
            "csv": os.path.join(output_dir, "results.csv"),
            "json": os.path.join(output_dir, "results.json"),
            "plot": os.path.join(output_dir, "accuracy_curves.png"),
        }
        with open(paths["markdown"], "w", encoding="utf-8") as handle:
            handle.write(self.to_markdown())
        rows = self.summary_rows()
        with open(paths["csv"], "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with open(paths["json"], "w", encoding="utf-8") as handle:
            summary = {"title": self.title, "results": rows, "metadata": self.metadata, "notes": self.notes}
            json.dump(summary, handle, indent=2, ensure_ascii=False)
        for name, _ in self.approaches:
            path = os.path.join(output_dir, "predictions", f"{name}.jsonl")
            with open(path, "w", encoding="utf-8") as handle:
                for result in self.results:
                    if result.approach == name:
                        for record in result.records:
                            handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            paths[f"predictions/{name}"] = path
        curves = {
            dataset: {display: self.result(name, dataset).correct for name, display in self.approaches}
            for dataset in self.datasets
        }
        plot_accuracy_curves(curves, paths["plot"], title=self.title)
        return paths

    def _size(self, dataset: str) -> int:
        return next(result.estimate.n for result in self.results if result.dataset == dataset)

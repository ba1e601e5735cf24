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
    truncated: int = 0  # prefixes cut to what the approach's model reads
    unreadable: int = 0  # prefixes its tokenizer turned into no tokens (unanswered)

    @property
    def correct(self) -> list[bool]:
        return [record.correct for record in self.records]

    @property
    def unanswered(self) -> int:
        """Sentences with no predicted word (scored wrong)."""
        return sum(not record.prediction for record in self.records)

    def note(self) -> str | None:
        """A line on what this result could not read as it is, or `None` when it read everything."""
        if not (self.truncated or self.unanswered):
            return None
        return (
            f"{self.display_name} on {self.dataset}: {self.truncated} of {len(self.records)} prefixes cut to fit the "
            f"model, {self.unanswered} unanswered ({self.unreadable} of them unreadable by its tokenizer)."
        )


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
                "truncated": result.truncated,
                "unanswered": result.unanswered,
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
            results = [result for result in self.results if result.approach == name]
            paths[f"predictions/{name}"] = save_predictions(results, output_dir)
        curves = {
            dataset: {display: self.result(name, dataset).correct for name, display in self.approaches}
            for dataset in self.datasets
        }
        plot_accuracy_curves(curves, paths["plot"], title=self.title)
        return paths

    def _size(self, dataset: str) -> int:
        return next(result.estimate.n for result in self.results if result.dataset == dataset)


def predictions_path(output_dir: str | os.PathLike, approach: str) -> str:
    return os.path.join(output_dir, "predictions", f"{approach}.jsonl")


def save_predictions(results: list[ApproachResult], output_dir: str | os.PathLike) -> str:
    """Write one approach's records on every data set to `predictions/<approach>.jsonl`; returns the path."""
    path = predictions_path(output_dir, results[0].approach)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for result in results:
            for record in result.records:
                handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
    return path


def load_predictions(output_dir: str | os.PathLike, approach: str) -> dict[str, list[PredictionRecord]]:
    """`{dataset: records}` of `predictions/<approach>.jsonl`; a `ValueError` naming the file if it is damaged."""
    path = predictions_path(output_dir, approach)
    records: dict[str, list[PredictionRecord]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = PredictionRecord(**json.loads(line))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}, line {number}: not a prediction record ({error}).") from None
            records.setdefault(record.dataset, []).append(record)
    return records

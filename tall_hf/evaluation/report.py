"""Results of a last-word evaluation: per-sentence predictions, a Table-1-shaped summary with bootstrap intervals,
and the files they are written to (Markdown, CSV, JSON, JSONL predictions, a PNG of accuracy curves)."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..visualization.accuracy_curves import plot_accuracy_curves
from .scoring import (
    MIN_VERDICT_SEEDS,
    AccuracyEstimate,
    bootstrap_accuracy,
    bootstrap_seeded_accuracy,
    bootstrap_seeded_difference,
    seeded_verdict,
)


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
    """The predictions of one approach on one data set, with its accuracy estimate.

    A trained approach may hold several runs, one per training seed: `records` are the first seed's, `later_seeds`
    the others' (the same sentences in the same order), and `estimate` is then the mean over the seeds with an
    interval over seeds and sentences together. An untrained approach (or a bound) is one run."""

    approach: str
    display_name: str
    dataset: str
    records: list[PredictionRecord]
    estimate: AccuracyEstimate
    truncated: int = 0  # prefixes cut to what the approach's model reads
    unreadable: int = 0  # prefixes its tokenizer turned into no tokens (unanswered)
    kind: str = "untrained"  # "trained" (its runs are training seeds), "untrained", or "bound" (what a world allows)
    later_seeds: list[list[PredictionRecord]] = field(default_factory=list, repr=False)

    @classmethod
    def from_runs(
        cls, runs: list[ApproachResult], kind: str, *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
    ) -> ApproachResult:
        """One result from the single-run results of an approach on one data set (one per training seed, the same
        sentences): the first run's records, the later runs' as `later_seeds`, and for several runs the mean with an
        interval over seeds and sentences together ([`bootstrap_seeded_accuracy`])."""
        first, estimate = runs[0], runs[0].estimate
        if len(runs) > 1:
            outcomes = [run.correct for run in runs]
            estimate = bootstrap_seeded_accuracy(outcomes, confidence=confidence, n_resamples=n_resamples, seed=seed)
        return replace(first, estimate=estimate, kind=kind, later_seeds=[run.records for run in runs[1:]])

    @property
    def runs(self) -> list[list[PredictionRecord]]:
        """The records of every run (training seed), the first seed's first."""
        return [self.records, *self.later_seeds]

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def outcomes(self) -> list[list[bool]]:
        """`[seed][sentence]`: whether each run was right on each sentence."""
        return [[record.correct for record in run] for run in self.runs]

    @property
    def correct(self) -> list[bool]:
        """The first seed's per-sentence outcomes."""
        return self.outcomes[0]

    @property
    def unanswered(self) -> int:
        """Sentences with no predicted word (scored wrong), over every run."""
        return sum(not record.prediction for run in self.runs for record in run)

    def seed_estimates(self, **bootstrap) -> list[AccuracyEstimate]:
        """Each run's own accuracy with a sentence-bootstrap interval (`bootstrap`: `bootstrap_accuracy`'s options)."""
        return [bootstrap_accuracy(correct, **bootstrap) for correct in self.outcomes]

    def note(self) -> str | None:
        """A line on what this result could not read as it is, or `None` when it read everything."""
        if not (self.truncated or self.unanswered):
            return None
        n = len(self.records)
        cut = f"{self.display_name} on {self.dataset}: {self.truncated} of {n} prefixes cut to fit the model"
        if self.seeds == 1:
            return f"{cut}, {self.unanswered} unanswered ({self.unreadable} of them unreadable by its tokenizer)."
        return (
            f"{cut}, {self.unanswered} of its {self.seeds} x {n} answers (one per seed and sentence) unanswered "
            f"({self.unreadable} prefixes unreadable by its tokenizer)."
        )


@dataclass
class LastWordReport:
    """All results of one run; `save` writes every artefact and returns their paths.

    `reference` (TALL by default) is compared with every other approach on each data set (not with the bounds):
    the difference in accuracy paired by seed and sentence, with an interval over seeds and sentences together
    ([`bootstrap_seeded_difference`]). An untrained approach's one run is paired with each of the reference's seeds.
    The `seeds` of a comparison are the fewest training seeds of its trained sides; a verdict needs
    `MIN_VERDICT_SEEDS` ([`seeded_verdict`])."""

    results: list[ApproachResult]
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    title: str = "Last-word prediction"
    reference: str = "tall"

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

    def seeds(self, approach: str) -> int:
        """Runs behind the approach's rows (training seeds; 1 for an untrained approach)."""
        return next(result.seeds for result in self.results if result.approach == approach)

    def comparisons(self) -> list[dict]:
        """`reference` against each other approach, per data set: the difference in points with its interval, the
        seeds behind it and the verdict (`better` / `worse` / `no clear difference` / `no verdict (...)`)."""
        bootstrap = self._bootstrap()
        rows = []
        for ours in self.results:
            if ours.approach != self.reference:
                continue
            for theirs in self.results:
                if theirs.dataset != ours.dataset or theirs.kind == "bound" or theirs.approach == self.reference:
                    continue
                trained = [result.seeds for result in (ours, theirs) if result.kind == "trained"]
                seeds = min(trained) if trained else 1
                first, second = (
                    result.outcomes[:seeds] if result.seeds > 1 else result.outcomes * seeds
                    for result in (ours, theirs)
                )
                difference = bootstrap_seeded_difference(first, second, **bootstrap)
                rows.append(
                    {
                        "dataset": ours.dataset,
                        "approach": ours.display_name,
                        "baseline": theirs.display_name,
                        **{key: round(100 * difference[key], 4) for key in ("difference", "ci_lower", "ci_upper")},
                        "seeds": difference["seeds"],
                        "verdict": seeded_verdict(difference),
                    }
                )
        return rows

    def verdict_summary(self) -> list[str]:
        """One plain sentence per data set: the approaches `reference` is better or worse than, those it does not
        differ from clearly, and those too few seeds stand behind for a verdict."""
        grouped: dict[str, dict[str, list[str]]] = {}
        for row in self.comparisons():
            verdict = "no verdict" if row["verdict"].startswith("no verdict") else row["verdict"]
            grouped.setdefault(row["dataset"], {}).setdefault(verdict, []).append(row["baseline"])
        phrases = {
            "better": "better than",
            "worse": "worse than",
            "no clear difference": "no clear difference from",
            "no verdict": f"no verdict (fewer than {MIN_VERDICT_SEEDS} training seeds) against",
        }
        lines = []
        for dataset, verdicts in grouped.items():
            name = self.result(self.reference, dataset).display_name
            parts = [
                f"{phrase} {_listed(verdicts[verdict])}" for verdict, phrase in phrases.items() if verdict in verdicts
            ]
            lines.append(f"{name} on {dataset}: " + "; ".join(parts) + ".")
        return lines

    def to_markdown(self) -> str:
        """Table 1 of the paper in shape: one row per approach with the seeds behind it, one column per data set,
        accuracy % [95% CI]; then each trained approach's seeds, and the reference against every other approach."""
        confidence = self.results[0].estimate.confidence if self.results else 0.95
        header = ["approach", "seeds", *(f"{dataset} (n={self._size(dataset)})" for dataset in self.datasets)]
        lines = [
            f"{self.title}: accuracy (%) with {100 * confidence:.0f}% bootstrap confidence intervals; a trained "
            "approach's row is the mean over its training seeds, its interval over seeds and sentences together.",
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join(["---"] * len(header)) + " |",
        ]
        for name, display_name in self.approaches:
            cells = [self.result(name, dataset).estimate.as_percent() for dataset in self.datasets]
            lines.append("| " + " | ".join([display_name, str(self.seeds(name)), *cells]) + " |")
        untrained = [
            display for name, display in self.approaches if self.result(name, self.datasets[0]).kind == "untrained"
        ]
        if untrained:
            lines += ["", f"No training, one run each (seeds 1): {_listed(untrained)}."]
        seeded = [(name, display) for name, display in self.approaches if self.seeds(name) > 1]
        if seeded:
            lines += ["", "Each training seed on its own (accuracy % [CI over sentences]):", ""]
            width = max(self.seeds(name) for name, _ in seeded)
            seeds = self.metadata.get("training_seeds") or []
            labels = [f"seed {seeds[k]}" if len(seeds) >= width else f"run {k + 1}" for k in range(width)]
            lines.append("| approach | data set | " + " | ".join(labels) + " |")
            lines.append("| --- | --- |" + " --- |" * width)
            for name, display_name in seeded:
                for dataset in self.datasets:
                    estimates = self.result(name, dataset).seed_estimates(**self._bootstrap())
                    cells = [estimate.as_percent() for estimate in estimates]
                    lines.append("| " + " | ".join([display_name, dataset, *cells]) + " |")
        comparisons = self.comparisons()
        if comparisons:
            lines += ["", "| compared | data set | seeds | difference (points) [CI] | verdict |"]
            lines.append("| --- | --- | --- | --- | --- |")
            for row in comparisons:
                interval = f"{row['difference']:+.2f} [{row['ci_lower']:+.2f}, {row['ci_upper']:+.2f}]"
                lines.append(
                    f"| {row['approach']} vs {row['baseline']} | {row['dataset']} | {row['seeds']} | {interval} | "
                    f"{row['verdict']} |"
                )
            lines += ["", *self.verdict_summary()]
        lines.extend(["", *self.notes] if self.notes else [])
        return "\n".join(lines) + "\n"

    def summary_rows(self) -> list[dict]:
        """One flat row per (data set, approach): accuracies and interval bounds in percent, the seeds behind it and
        each seed's accuracy."""
        rows = []
        for result in self.results:
            counts = [sum(correct) for correct in result.outcomes]
            rows.append(
                {
                    "dataset": result.dataset,
                    "approach": result.display_name,
                    "kind": result.kind,
                    "seeds": result.seeds,
                    "accuracy": round(100 * result.estimate.accuracy, 4),
                    "ci_lower": round(100 * result.estimate.lower, 4),
                    "ci_upper": round(100 * result.estimate.upper, 4),
                    "per_seed": [round(100 * count / result.estimate.n, 4) for count in counts],
                    "correct": counts[0] if len(counts) == 1 else round(sum(counts) / len(counts), 4),
                    "n": result.estimate.n,
                    "truncated": result.truncated,
                    "unanswered": result.unanswered,
                }
            )
        return rows

    def save(self, output_dir: str | os.PathLike) -> dict[str, str]:
        """Write `results.md`, `results.csv`, `results.json` (rows, comparisons, verdicts),
        `predictions/<approach>.jsonl` (and `<approach>.seed-<k>.jsonl` for the later seeds) and `accuracy_curves.png`
        (a trained approach's curve is the mean over its seeds) under `output_dir`; returns `{artefact: path}`."""
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
            summary = {
                "title": self.title,
                "unit": "percent",
                "results": rows,
                "comparisons": self.comparisons(),
                "verdicts": self.verdict_summary(),
                "metadata": self.metadata,
                "notes": self.notes,
            }
            json.dump(summary, handle, indent=2, ensure_ascii=False)
        for name, _ in self.approaches:
            results = [result for result in self.results if result.approach == name]
            for run in range(results[0].seeds):
                views = [replace(result, records=result.runs[run], later_seeds=[]) for result in results]
                paths[f"predictions/{name}" + (f".seed-{run}" if run else "")] = save_predictions(
                    views, output_dir, run
                )
        curves = {
            dataset: {
                display: np.mean(self.result(name, dataset).outcomes, axis=0) for name, display in self.approaches
            }
            for dataset in self.datasets
        }
        plot_accuracy_curves(curves, paths["plot"], title=self.title)
        return paths

    def _bootstrap(self) -> dict:
        """The options of the seeded bootstrap: the report's confidence, resamples and seed (from its metadata)."""
        return {
            "confidence": self.results[0].estimate.confidence if self.results else 0.95,
            "n_resamples": self.metadata.get("bootstrap_resamples", 1000),
            "seed": self.metadata.get("bootstrap_seed", 0),
        }

    def _size(self, dataset: str) -> int:
        return next(result.estimate.n for result in self.results if result.dataset == dataset)


def _listed(names: list[str]) -> str:
    """Display names in a sentence, quoted (some hold commas): "`Naive`, `Naive, LR prefix forced`"."""
    return ", ".join(f"`{name}`" for name in names)


def predictions_path(output_dir: str | os.PathLike, approach: str, run: int = 0) -> str:
    """`predictions/<approach>.jsonl` for the first (or only) run, `predictions/<approach>.seed-<k>.jsonl` for the
    k-th later training seed."""
    return os.path.join(output_dir, "predictions", f"{approach}{f'.seed-{run}' if run else ''}.jsonl")


def save_predictions(results: list[ApproachResult], output_dir: str | os.PathLike, run: int = 0) -> str:
    """Write the `records` of one approach's results (one per data set) to [`predictions_path`] of run `run`; returns
    the path."""
    path = predictions_path(output_dir, results[0].approach, run)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for result in results:
            for record in result.records:
                handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
    return path


def load_predictions(output_dir: str | os.PathLike, approach: str, run: int = 0) -> dict[str, list[PredictionRecord]]:
    """`{dataset: records}` of [`predictions_path`]; a `ValueError` naming the file if it is damaged."""
    path = predictions_path(output_dir, approach, run)
    records: dict[str, list[PredictionRecord]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = PredictionRecord(**json.loads(line))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}, line {number}: not a prediction record ({error}).") from None
            records.setdefault(record.dataset, []).append(record)
    return records

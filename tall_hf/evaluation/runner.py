"""One call from arguments to the paper's Table 1: train the trained approaches, evaluate every approach on every
test file, and write the report (shared by `examples/evaluate_last_word.py` and the command line)."""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import evaluate
import torch
from datasets.fingerprint import Hasher
from transformers import TrainingArguments
from transformers.utils import logging

from ..data.fingerprint import component_fingerprint
from ..generation.decoding import SAMPLING
from ..training.checkpointing import write_json_atomically
from ..training.recipes import recipe_field
from ..utils.folders import lock_output_folder
from ..utils.progress import phase_progress
from ..utils.text import words
from .approaches import APPROACHES, TRAINED_APPROACHES, ApproachContext, LastWordApproach
from .report import (
    ApproachResult,
    LastWordReport,
    PredictionRecord,
    load_predictions,
    predictions_path,
    save_predictions,
)
from .scoring import (
    MIN_VERDICT_SEEDS,
    bootstrap_accuracy,
    last_word_accuracy_path,
    words_match,
)
from .task import LastWordExample, make_examples, read_sentences

logger = logging.get_logger(__name__)


@dataclass
class LastWordEvaluationArguments:
    """What to evaluate and on which text (the `TrainingArguments` beside them drive the trained approaches)."""

    test_files: list[str] = field(metadata={"help": "One or more text files, one LR sentence per line."})
    lr_hr_model: str | None = field(default=None, metadata={"help": "LR->HR translator (hub id or folder)."})
    llm_model: str | None = field(default=None, metadata={"help": "The (HR-centric) causal LLM."})
    hr_lr_model: str | None = field(default=None, metadata={"help": "HR->LR translator (hub id or folder)."})
    train_file: str | None = field(
        default=None, metadata={"help": "LR training text (one sentence per line) for the trained approaches."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training sentences."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Evaluate the first N sentences per file."})
    approaches: list[str] = field(
        default_factory=lambda: list(APPROACHES), metadata={"help": f"Any of {', '.join(APPROACHES)}."}
    )
    tall_model: list[str] | None = field(
        default=None,
        metadata={
            "help": "One or more trained TALL model folders, each one training seed of TALL (the report's rows are "
            "their mean); without it TALL is trained here on --train_file, --training_seeds times."
        },
    )
    training_seeds: int = field(
        default=1,
        metadata={
            "help": "Training runs of each approach trained here (seeds --seed, --seed + 1, ...): rows are means over "
            f"them, and TALL is called better or worse than another approach only with at least {MIN_VERDICT_SEEDS}."
        },
    )
    tall_recipe: str = recipe_field(
        "Recipe of the TALL trained here (tall_hf.training.recipes; 'paper' is the paper's), as `tall-hf train --recipe`."
    )
    eval_batch_size: int = field(default=16, metadata={"help": "Sentences per generation batch."})
    do_sample: bool = field(default=False, metadata={"help": "Sample (the paper) instead of greedy decoding."})
    temperature: float = field(default=SAMPLING["temperature"])
    top_k: int = field(default=SAMPLING["top_k"])
    top_p: float = field(default=SAMPLING["top_p"])
    sampling_seed: int = field(default=0, metadata={"help": "Seed set before each approach predicts a data set."})
    confidence: float = field(default=0.95, metadata={"help": "Level of the bootstrap confidence intervals."})
    bootstrap_resamples: int = field(default=1000)
    bootstrap_seed: int = field(default=0)

    def __post_init__(self) -> None:
        if isinstance(self.tall_model, str):
            self.tall_model = [self.tall_model]
        if self.training_seeds < 1:
            raise ValueError(f"--training_seeds must be at least 1, got {self.training_seeds}.")
        unknown = [name for name in self.approaches if name not in APPROACHES]
        if unknown:
            raise ValueError(f"Unknown approaches {unknown}; choose from {list(APPROACHES)}.")
        if not self.test_files:
            raise ValueError("Give at least one test file (--test_files).")
        for name in ("max_train_samples", "max_test_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(
                    f"--{name} {value} keeps no sentence: pass a positive number, or leave it out for all."
                )
        names = [Path(path).stem for path in self.test_files]
        if len(set(names)) != len(names):
            raise ValueError(f"Test files need distinct names (they label the table's columns), got {names}.")
        if self.trained_approaches() and self.train_file is None:
            raise ValueError(
                f"The approaches {self.trained_approaches()} train on LR text: give --train_file (or --tall_model "
                "for a trained TALL), or leave them out of --approaches."
            )

    def trained_approaches(self) -> list[str]:
        """The selected approaches that train here (TALL only without --tall_model)."""
        return [
            name for name in self.approaches if name in TRAINED_APPROACHES and not (name == "tall" and self.tall_model)
        ]

    def runs(self, name: str, training_args: TrainingArguments) -> list[tuple[TrainingArguments, str | None]]:
        """The runs of approach `name`, each `(training arguments, TALL model folder)`: one per training seed for an
        approach trained here, one per `--tall_model` folder for TALL, one for an untrained approach."""
        if name == "tall" and self.tall_model:
            return [(training_args, folder) for folder in self.tall_model]
        if name not in self.trained_approaches():
            return [(training_args, None)]
        seeds = [training_args.seed + offset for offset in range(self.training_seeds)]
        return [
            (training_args if seed == training_args.seed else replace(training_args, seed=seed), None)
            for seed in seeds
        ]

    def generation_kwargs(self) -> dict:
        return {
            "batch_size": self.eval_batch_size,
            "do_sample": self.do_sample,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "seed": self.sampling_seed,
        }


def run_last_word_evaluation(args: LastWordEvaluationArguments, training_args: TrainingArguments) -> LastWordReport:
    """Evaluate `args.approaches` on every test file and save the report under `training_args.output_dir`, whose lock
    the evaluation holds (another run on it refuses at once)."""
    with lock_output_folder(training_args.output_dir):
        return _run_last_word_evaluation(args, training_args)


def _run_last_word_evaluation(args: LastWordEvaluationArguments, training_args: TrainingArguments) -> LastWordReport:
    components = _components(args)
    test_sets = {Path(path).stem: _examples(path, args.max_test_samples) for path in args.test_files}
    context = ApproachContext(
        **components,
        output_dir=training_args.output_dir,
        train_file=args.train_file,
        max_train_samples=args.max_train_samples,
        training_args=training_args,
        tall_model=args.tall_model,
        tall_recipe=args.tall_recipe,
        device=training_args.device,
    )
    translations: dict[str, list[str]] = {}  # of the test prefixes, made once, when an approach first needs them
    metric = evaluate.load(last_word_accuracy_path())
    scoring = {"metric": metric, "confidence": args.confidence, "n_resamples": args.bootstrap_resamples}
    scoring["bootstrap_seed"] = args.bootstrap_seed
    results, failed = [], {}
    for name in args.approaches:
        runs = []
        try:
            for run, (run_training_args, tall_model) in enumerate(args.runs(name, training_args)):
                trained_here = name in args.trained_approaches()
                train_texts = context.train_texts if trained_here else None
                key = _approach_fingerprint(
                    name, args, components, test_sets, train_texts, run_training_args, tall_model=tall_model
                )
                finished = _finished_results(name, run, key, test_sets, training_args.output_dir, **scoring)
                if finished is not None:
                    logger.warning(
                        f"Reusing the finished {name} approach: {predictions_path(training_args.output_dir, name, run)}."
                    )
                    runs.append(finished)
                    continue
                logger.info(f"Preparing the {name} approach" + (f" (run {run + 1})." if run else "."))
                run_context = context
                if trained_here or tall_model:
                    run_context = replace(context, training_args=run_training_args, tall_model=tall_model)
                try:
                    approach = APPROACHES[name].from_context(run_context)
                    run_results = []
                    for dataset, examples in test_sets.items():
                        if approach.uses_translation and dataset not in translations:
                            prefixes = [example.prefix for example in examples]
                            with phase_progress(
                                f"Translating the {len(examples)} prefixes of {dataset} to HR", len(prefixes)
                            ):
                                translations[dataset] = context.translate_to_hr(prefixes, args.eval_batch_size)
                        logger.info(f"{approach.display_name} on {dataset} ({len(examples)} sentences).")
                        run_results.append(
                            evaluate_approach(
                                approach,
                                examples,
                                dataset=dataset,
                                translations=translations.get(dataset),
                                **scoring,
                                **args.generation_kwargs(),
                            )
                        )
                finally:
                    approach = None
                    gc.collect()
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                _save_finished(run_results, key, training_args.output_dir, run)
                runs.append(run_results)
        except Exception as error:  # one approach failing never loses the others' results (nor its finished runs)
            logger.exception(f"The {name} approach failed; going on with the others.")
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        kind = "trained" if name in TRAINED_APPROACHES else "untrained"
        bootstrap = {
            "confidence": args.confidence,
            "n_resamples": args.bootstrap_resamples,
            "seed": args.bootstrap_seed,
        }
        results.extend(
            ApproachResult.from_runs(list(per_run), kind, **bootstrap) for per_run in zip(*runs, strict=True)
        )
    report = LastWordReport(
        results,
        metadata=_metadata(args, components, training_args),
        title=f"Last-word prediction ({components['llm']})",
    )
    report.notes.extend(note for result in results if (note := result.note()))
    report.notes.extend(f"{name} failed: {message}" for name, message in failed.items())
    if not results:
        raise RuntimeError(f"Every approach failed: {failed}")
    paths = report.save(training_args.output_dir)
    logger.info(f"Report written: {paths}")
    if failed:
        raise RuntimeError(
            f"The approaches {list(failed)} failed (see the log); the others' results are in {paths['markdown']}, "
            "and rerunning the same command reuses them."
        )
    return report


def evaluate_approach(
    approach: LastWordApproach,
    examples: list[LastWordExample],
    *,
    dataset: str = "test",
    translations: list[str] | None = None,
    metric: evaluate.EvaluationModule | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    bootstrap_seed: int = 0,
    **generation,
) -> ApproachResult:
    """Predict the last word of every example with `approach` and score it with the shipped metric; `translations`
    (HR translations of the prefixes) are handed to approaches that use them, `generation` to `predict`."""
    prefixes = [example.prefix for example in examples]
    used = translations if approach.uses_translation else None
    with phase_progress(f"Evaluating {approach.display_name} on {dataset}", len(prefixes)):
        predictions = approach.predict(prefixes, translations=used, **generation)
    if len(predictions) != len(examples):
        raise RuntimeError(
            f"The {approach.name} approach returned {len(predictions)} predictions for {len(examples)} prefixes."
        )
    golds = [example.gold for example in examples]
    metric = metric or evaluate.load(last_word_accuracy_path())
    scores = metric.compute(predictions=predictions, references=golds)
    correct = [words_match(prediction, gold) for prediction, gold in zip(predictions, golds, strict=True)]
    if scores["correct"] != sum(correct):
        raise RuntimeError("The evaluate metric and the per-sentence scores disagree.")
    estimate = bootstrap_accuracy(correct, confidence=confidence, n_resamples=n_resamples, seed=bootstrap_seed)
    records = [
        PredictionRecord(dataset, e.sentence, e.prefix, used[i] if used else None, predictions[i], e.gold, correct[i])
        for i, e in enumerate(examples)
    ]
    counts = {"truncated": approach.truncated, "unreadable": approach.unreadable}
    return ApproachResult(approach.name, approach.display_name, dataset, records, estimate, **counts)


def _approach_fingerprint(
    name: str,
    args: LastWordEvaluationArguments,
    components: dict[str, str],
    test_sets: dict[str, list[LastWordExample]],
    train_texts: list[str] | None,
    training_args: TrainingArguments,
    tall_model: str | None = None,
) -> str:
    """What one run of an approach's predictions depends on: its name, the components' contents, the test sentences,
    decoding, and for an approach trained here its training text and arguments (seed included); for a TALL model
    given by folder, that folder's contents."""
    trained = name in args.trained_approaches()
    parts = [
        name,
        {role: component_fingerprint(path) for role, path in components.items()},
        {dataset: [example.sentence for example in examples] for dataset, examples in test_sets.items()},
        args.generation_kwargs(),
        [train_texts, training_args.to_dict(), args.tall_recipe if name == "tall" else None] if trained else None,
        component_fingerprint(tall_model) if name == "tall" and tall_model else None,
    ]
    return Hasher.hash(parts)


def _finished_results(
    name: str, run: int, key: str, test_sets: dict[str, list[LastWordExample]], output_dir: str, **scoring
) -> list[ApproachResult] | None:
    """The results of run `run` of `name` from an earlier run of this very evaluation, or `None` if it has none."""
    record_path = predictions_path(output_dir, name, run) + ".done.json"
    try:
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != key:
        logger.info(f"{record_path} is from a different evaluation; the {name} approach runs again.")
        return None
    try:
        records = load_predictions(output_dir, name, run)
    except (OSError, ValueError) as error:
        logger.warning(f"Cannot reuse the finished {name} approach ({error}); it runs again.")
        return None
    results = []
    for dataset in test_sets:
        correct = [r.correct for r in records.get(dataset, [])]
        if len(correct) != len(test_sets[dataset]):
            return None
        estimate = bootstrap_accuracy(
            correct,
            confidence=scoring["confidence"],
            n_resamples=scoring["n_resamples"],
            seed=scoring["bootstrap_seed"],
        )
        counts = record["counts"][dataset]
        results.append(
            ApproachResult(name, APPROACHES[name].display_name, dataset, records[dataset], estimate, **counts)
        )
    return results


def _save_finished(results: list[ApproachResult], key: str, output_dir: str, run: int) -> None:
    """Write the predictions of one run of an approach at once, then the record that marks them finished
    (atomically)."""
    path = save_predictions(results, output_dir, run)
    counts = {r.dataset: {"truncated": r.truncated, "unreadable": r.unreadable} for r in results}
    write_json_atomically(path + ".done.json", {"fingerprint": key, "counts": counts})


def _components(args: LastWordEvaluationArguments) -> dict[str, str]:
    if not all([args.lr_hr_model, args.llm_model, args.hr_lr_model]):
        raise ValueError("Give --lr_hr_model, --llm_model and --hr_lr_model (hub ids or folders).")
    return {"lr_hr": args.lr_hr_model, "llm": args.llm_model, "hr_lr": args.hr_lr_model}


def _examples(path: str, max_samples: int | None) -> list[LastWordExample]:
    sentences = read_sentences(path, max_samples)
    usable = [sentence for sentence in sentences if len(words(sentence)) >= 2]
    if not usable:
        raise ValueError(f"The test file {path!r} has no sentence of two words or more.")
    if len(usable) < len(sentences):
        logger.warning(
            f"{path}: skipped {len(sentences) - len(usable)} of {len(sentences)} sentences with fewer than two words "
            "(no prefix to read and word to predict)."
        )
    return make_examples(usable)


def _metadata(args: LastWordEvaluationArguments, components: dict, training_args: TrainingArguments) -> dict:
    return {
        "components": components,
        "test_files": {Path(path).stem: os.path.abspath(path) for path in args.test_files},
        "train_file": args.train_file,
        "approaches": args.approaches,
        "decoding": "sampling" if args.do_sample else "greedy",
        "generation": args.generation_kwargs(),
        "max_steps": training_args.max_steps,
        "training_seeds": [training_args.seed + offset for offset in range(args.training_seeds)],
        "tall_model": args.tall_model,
        "confidence": args.confidence,
        "bootstrap_resamples": args.bootstrap_resamples,
        "bootstrap_seed": args.bootstrap_seed,
    }

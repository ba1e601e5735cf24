"""`tall-hf demo`: the main job, offline, on a known-answer world the package builds (`tall_hf.worlds`).

Builds (or reuses) the world (by default the genderless one, whose HR language drops grammatical gender; `--hr_language
letter_map` for the lossless one), trains TALL on the world's LR training text (saved to `OUTPUT_DIR/tall/seed-<k>`)
and the trained baselines, each with `--training_seeds` seeds (a rerun reuses the seeds that finished), evaluates the
six approaches of the paper's Table 1 and Naive with the LR prefix forced on the world's held-out test sentences
(a trained approach's row is the mean over its seeds, with an interval over seeds and sentences; TALL is compared with
every other approach, and called better or worse only when at least `MIN_VERDICT_SEEDS` seeds stand behind the
comparison and its interval excludes zero), adds the `HR ceiling` row (the world's LLM on the HR form of the same sentences,
prompted as Direct prompts it) and the `Pivot bound` row (`tall_hf.worlds.bounds`), and writes the report and plot
under `OUTPUT_DIR/evaluation`. `--tiny` keeps the old smoke run on random tiny components.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments
from transformers.utils import logging

from .data import PreparationArguments
from .evaluation import LastWordEvaluationArguments, LastWordReport, run_last_word_evaluation
from .evaluation.report import ApproachResult
from .evaluation.scoring import MIN_VERDICT_SEEDS
from .resources import read_corpus
from .tiny import build_tiny_components
from .training.recipes import TRAINING_DEFAULTS
from .training.run import TallDataArguments, TallModelArguments, run_training
from .training.time_limit import TallTrainingArguments
from .worlds import HR_LANGUAGES, PRESETS, World, build_world
from .worlds.bounds import back_translations, hr_ceiling_result, pivot_bound_result

logger = logging.get_logger(__name__)

# TALL's training steps on the demo world (the benchmarks that mirror the demo train as many).
TALL_STEPS = 400
TINY_DISCLAIMER = (
    "--tiny: these components are tiny and have random weights: the accuracies above say nothing about TALL, only\n"
    "that the whole pipeline runs. Without --tiny the demo runs on a known-answer world with trained components."
)
REAL_MODELS_HINT = (
    "For the paper's setup, train on real checkpoints (GPU recommended), e.g.\n"
    "  tall-hf train --lr_hr_model Helsinki-NLP/opus-mt-tc-big-he-en --llm_model Qwen/Qwen2.5-0.5B \\\n"
    "      --hr_lr_model Helsinki-NLP/opus-mt-en-he --train_file news_he.txt --output_dir tall-qwen --bf16\n"
    "and see the README's quickstart."
)


@dataclass
class DemoArguments:
    """Which world the demo runs on, where it writes, and how long it trains."""

    output_dir: str = field(default="tall-demo", metadata={"help": "Folder for the world, models and the report."})
    world_dir: str | None = field(
        default=None, metadata={"help": "Where worlds are built and reused (default: OUTPUT_DIR/worlds)."}
    )
    lr_text: str | None = field(
        default=None,
        metadata={"help": "Build the world from this LR text file (default: generated Hebrew + the shipped sample)."},
    )
    world_preset: str | None = field(
        default=None,
        metadata={
            "help": "Size of the world (default: 'default' for the generated text, 'text' for --lr_text).",
            "choices": tuple(PRESETS),
        },
    )
    hr_language: str | None = field(
        default=None,
        metadata={
            "help": "HR language of the world: genderless (lossy: drops grammatical gender) or letter_map (lossless); "
            "default: the preset's (genderless for the default world).",
            "choices": HR_LANGUAGES,
        },
    )
    llm: str = field(default="qwen2", metadata={"help": "LLM family of the world (qwen2, llama, bloom, gpt2)."})
    tall_steps: int = field(default=TALL_STEPS, metadata={"help": "Training steps of TALL."})
    baseline_steps: int = field(default=150, metadata={"help": "Training steps of each trained baseline."})
    batch_size: int = field(default=16, metadata={"help": "Training batch size of TALL and the baselines."})
    test_sentences: int | None = field(
        default=None, metadata={"help": "Evaluate the first N test sentences (default: all of the world's)."}
    )
    tiny: bool = field(
        default=False,
        metadata={"help": "Smoke run on tiny random-weight components and the shipped sample instead of a world."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the world, the first training run and the sampling."})
    training_seeds: int = field(
        default=MIN_VERDICT_SEEDS,
        metadata={
            "help": "Training runs of TALL and of each trained baseline (seeds --seed, --seed + 1, ...): the rows are "
            f"their means, and a comparison needs at least {MIN_VERDICT_SEEDS} for a verdict."
        },
    )


@dataclass
class DemoSetup:
    """The components and text files one demo run uses."""

    components: dict[str, str]
    train_file: str
    validation_file: str | None
    test_file: str
    world: World | None = None


def run_demo(args: DemoArguments) -> LastWordReport:
    """Run the demo end to end and return its report (with the `HR ceiling` row on a world)."""
    if args.training_seeds < 1:
        raise ValueError(f"--training_seeds must be at least 1, got {args.training_seeds}.")
    output = Path(args.output_dir)
    setup = _tiny_setup(args, output) if args.tiny else _world_setup(args, output)
    common = {"use_cpu": True, "report_to": "none", "disable_tqdm": False}

    tall_dirs = []
    for seed in range(args.seed, args.seed + args.training_seeds):
        tall_dirs.append(tall_dir(output, seed))
        logger.info(f"Training TALL (seed {seed}) for {args.tall_steps} steps into {tall_dirs[-1]}.")
        train_demo_tall(
            setup.components,
            setup.train_file,
            setup.validation_file,
            tall_dirs[-1],
            cache_dir=output / "cache",
            steps=args.tall_steps,
            batch_size=args.batch_size,
            seed=seed,
            **common,
        )
    logger.info("Training the baselines and evaluating the approaches.")
    evaluation_args = LastWordEvaluationArguments(
        test_files=[setup.test_file],
        lr_hr_model=setup.components["lr_hr"],
        llm_model=setup.components["llm"],
        hr_lr_model=setup.components["hr_lr"],
        train_file=setup.train_file,
        tall_model=[str(folder) for folder in tall_dirs],
        training_seeds=args.training_seeds,
        max_test_samples=args.test_sentences,
    )
    training_args = TrainingArguments(
        output_dir=str(output / "evaluation"),
        max_steps=args.baseline_steps,
        per_device_train_batch_size=args.batch_size,
        save_strategy="no",
        seed=args.seed,
        **common,
    )
    report = run_last_word_evaluation(evaluation_args, training_args)
    if setup.world is None:
        report.notes.append(TINY_DISCLAIMER)
    else:
        report.title = f"Last-word prediction on the known-answer world ({setup.world.facts['llm']['family']} LLM)"
        report.results.extend(_bound_results(setup.world, evaluation_args, training_args.output_dir))
        report.notes.append(world_note(setup.world))
        report.notes.extend(ambiguity_notes(setup.world, report))
        report.metadata["world"] = world_summary(setup.world)
    report.save(training_args.output_dir)
    return report


def tall_dir(output_dir: str | Path, seed: int) -> Path:
    """Where the demo saves TALL trained with `seed`."""
    return Path(output_dir) / "tall" / f"seed-{seed}"


def train_demo_tall(
    components: dict[str, str],
    train_file: str,
    validation_file: str,
    output_dir: Path,
    *,
    cache_dir: Path,
    steps: int,
    batch_size: int,
    model_options: dict | None = None,
    **training,
) -> None:
    """TALL trained as `tall-hf train` trains it with the default recipe, for `steps` steps with an evaluation and a
    checkpoint at each third; `model_options` are `TallModelArguments` fields, `training` more `TrainingArguments`."""
    interval = max(steps // 3, 1)
    run_training(
        TallModelArguments(
            lr_hr_model=components["lr_hr"],
            llm_model=components["llm"],
            hr_lr_model=components["hr_lr"],
            **(model_options or {}),
        ),
        TallDataArguments(train_file=train_file, validation_file=validation_file),
        PreparationArguments(cache_dir=str(cache_dir)),
        TallTrainingArguments(
            output_dir=str(output_dir),
            **{
                **TRAINING_DEFAULTS,
                "max_steps": steps,
                "eval_steps": interval,
                "save_steps": interval,
                "per_device_train_batch_size": batch_size,
                "per_device_eval_batch_size": 64,
                **training,
            },
        ),
    )


def _world_setup(args: DemoArguments, output: Path) -> DemoSetup:
    world_dir = Path(args.world_dir) if args.world_dir else output / "worlds"
    logger.info(f"Building (or reusing) the known-answer world under {world_dir}.")
    world = build_world(
        world_dir,
        lr_text=args.lr_text,
        preset=args.world_preset,
        llm=args.llm,
        seed=args.seed,
        hr_language=args.hr_language,
    )
    return DemoSetup(
        components=world.components,
        train_file=world.split_file("train"),
        validation_file=world.split_file("validation"),
        test_file=world.split_file("test"),
        world=world,
    )


def _tiny_setup(args: DemoArguments, output: Path) -> DemoSetup:
    components = build_tiny_components(output / "components", llm=args.llm)
    sentences = read_corpus("hebrew")
    test_sentences = args.test_sentences or 80
    if not 0 < test_sentences < len(sentences) - 20:
        raise ValueError(f"test_sentences must leave training data: 0 < {test_sentences} < {len(sentences) - 20}.")
    data = output / "data"
    data.mkdir(parents=True, exist_ok=True)
    train_file, test_file = data / "train.txt", data / "test.txt"
    train_file.write_text("\n".join(sentences[:-test_sentences]) + "\n", encoding="utf-8")
    test_file.write_text("\n".join(sentences[-test_sentences:]) + "\n", encoding="utf-8")
    return DemoSetup(components, str(train_file), None, str(test_file))


def _bound_results(
    world: World, evaluation_args: LastWordEvaluationArguments, output_dir: str
) -> tuple[ApproachResult, ApproachResult]:
    """The `HR ceiling` row (the world LLM on the HR form of the evaluated test sentences, as the Direct approach
    prompts it) and the `Pivot bound` row (where it is right and the gold HR sentence translates back to the gold LR
    word)."""
    hr_sentences = world.sentences("test", hr=True)[: evaluation_args.max_test_samples]
    bootstrap = {
        "confidence": evaluation_args.confidence,
        "n_resamples": evaluation_args.bootstrap_resamples,
        "seed": evaluation_args.bootstrap_seed,
    }
    ceiling = hr_ceiling_result(
        world.components,
        hr_sentences,
        output_dir,
        dataset=Path(evaluation_args.test_files[0]).stem,
        confidence=bootstrap["confidence"],
        n_resamples=bootstrap["n_resamples"],
        bootstrap_seed=bootstrap["seed"],
        **evaluation_args.generation_kwargs(),
    )
    back = back_translations(world.components["hr_lr"], hr_sentences)
    lr_sentences = world.sentences("test")[: evaluation_args.max_test_samples]
    return ceiling, pivot_bound_result(ceiling, lr_sentences, back, **bootstrap)


def world_note(world: World) -> str:
    """What is known about the world, for the report."""
    facts = world.facts
    rates = {role: 100 * facts["translators"][role]["exact_sentence_rate"] for role in ("lr_hr", "hr_lr")}
    if facts["hr_language"] == "genderless":
        ambiguity = facts["ambiguity"]
        language = (
            "the HR language is the LR text without grammatical gender (he/she and every agreeing verb, adjective, "
            "participle and profession merged into one form), its letters mapped onto another script: the last word "
            f"of {ambiguity['ambiguous']} of the world's {ambiguity['n']} test sentences "
            f"({100 * ambiguity['share']:.1f}%) has two LR forms for one HR sentence. The Pivot bound row is where "
            "the LLM is right on the HR sentence and the gold HR sentence translates back to the gold LR word: the "
            "most an approach that returns through the HR sentence gets (Naive with a perfect first translation)"
        )
    else:
        language = "the HR language is the LR text with every letter mapped onto another script"
    return (
        f"Known-answer world ({world.path.name}): {language}; the {facts['llm']['family']} LLM ({facts['llm']['parameters']:,} parameters) was trained on "
        f"{facts['sentences']['pretrain']:,} HR sentences only and never saw the LR script. Translators exact on "
        f"held-out sentences: LR->HR {rates['lr_hr']:.1f}%, HR->LR {rates['hr_lr']:.1f}%. The HR ceiling row is "
        "the LLM on the HR form of the same test sentences: what an approach that passes through this LLM can reach. "
        "All models are small and trained in minutes on CPU: the figures say how the approaches compare on this "
        "world, not how they compare on real languages and checkpoints. The world was built on this machine with "
        f"{facts['torch_threads']} torch threads (torch {facts['versions']['torch']}, transformers "
        f"{facts['versions']['transformers']}): another machine or thread count builds other weights, so read each "
        "row against this table's own HR ceiling."
    )


def ambiguity_notes(world: World, report: LastWordReport) -> list[str]:
    """Each row's accuracy on the test sentences whose last word is ambiguous from HR and on the others (none in a
    lossless world); for a trained approach, the mean over its seeds."""
    test = world.sentences("test")
    ambiguous = [world.hr_map.last_word_ambiguous(sentence) for sentence in test]
    if not any(ambiguous):
        return []
    lines = []
    for result in report.results:  # every row's records follow the test sentences' order (the first n of them)
        split = {
            kind: [
                correct
                for outcomes in result.outcomes
                for correct, flag in zip(outcomes, ambiguous[: len(outcomes)], strict=True)
                if flag == wanted
            ]
            for kind, wanted in (("ambiguous", True), ("unambiguous", False))
        }
        shares = ", ".join(
            f"{kind} {100 * sum(correct) / len(correct):.1f}% (n={len(correct) // result.seeds})"
            for kind, correct in split.items()
            if correct
        )
        lines.append(f"{result.display_name} on {result.dataset}: {shares}")
    return ["Accuracy on the sentences whose last word is ambiguous from HR, and on the others:", *lines]


def world_summary(world: World) -> dict:
    """What `results.json` states about the world: its folder, HR language and the bounds measured at build time."""
    facts = world.facts
    keys = ("hr_language", "ceiling", "pivot_bound", "back_translation", "ambiguity", "translators", "seed")
    return {"path": str(world.path), **{key: facts[key] for key in keys if key in facts}}

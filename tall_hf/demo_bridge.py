"""`tall-hf demo --bridge`: the fusion paper's claim on a known-answer world, offline, in minutes.

Builds (or reuses) the bridge world (`tall_hf.worlds.bridge`: a bilingual encoder, by default the premise encoder
whose top layers are language-specific by construction; an LLM that knows only the HR language; a classification
task), trains one bridge per fusion method and training seed on HR task data only (the
supervised objective), and classifies the held-out test sentences in HR (the in-language ceiling) and in LR (zero-shot) by greedy
generation + exact match (the paper's scoring) and by label log-likelihood. Writes, under `OUTPUT_DIR`:

- `evaluation/results.{md,json}` (generation) and `evaluation/log_likelihood/results.{md,json}`: accuracy per fusion
  and language (the mean over training seeds, 95% bootstrap intervals over seeds and sentences), the chance level,
  and each fusion against `last` (paired by seed and sentence; a verdict only with at least `MIN_VERDICT_SEEDS`);
- `bridge/<fusion>/seed-<k>/`: the trained bridges (adapters only) with their layer-weight plots.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments
from transformers.utils import logging

from .adapters import save_checkpoint
from .data.task_data import supervised_pairs
from .evaluation.zero_shot import (
    MIN_VERDICT_SEEDS,
    SCORING_METHODS,
    ZeroShotReport,
    ZeroShotResult,
    evaluate_zero_shot,
)
from .models.bridge import BridgeForCausalLM, BridgeProcessor
from .modules.fusion import FUSION_METHODS
from .training.bridge import create_bridge_trainer
from .visualization.layer_weights import save_layer_weight_plots
from .worlds.bridge import BRIDGE_PRESETS, ENCODER_KINDS, BridgeWorld, build_bridge_world

logger = logging.get_logger(__name__)

LANGUAGE_ROLES = {"hr": "HR (in-language ceiling)", "lr": "LR (zero-shot)"}
PLOT_SENTENCES_PER_LANGUAGE = 50


@dataclass
class BridgeDemoArguments:
    """Where the bridge demo writes, and how its bridges train."""

    output_dir: str = field(default="tall-demo", metadata={"help": "Folder for the world, bridges and the tables."})
    llm: str = field(default="qwen2", metadata={"help": "LLM family of the world (qwen2, llama, bloom, gpt2)."})
    fusions: str = field(
        default="last,global_softmax,token_softmax", metadata={"help": "Comma-separated fusion methods to train."}
    )
    preset: str = field(default="default", metadata={"help": f"World size: {sorted(BRIDGE_PRESETS)}."})
    encoder: str = field(
        default="premise",
        metadata={
            "help": "The world's encoder: `premise` (the fusion paper's premise built in: language-specific top "
            "layers stacked on a translation encoder, whose output they rotate per language) or `translation` (the "
            "translation encoder as it is); see tall_hf.worlds.bridge and benchmarks/README.md.",
            "choices": ENCODER_KINDS,
        },
    )
    world: str | None = field(
        default=None, metadata={"help": "A bridge world already built (its folder) instead of building one."}
    )
    steps: int = field(default=300, metadata={"help": "Training steps of each bridge."})
    batch_size: int = field(default=32, metadata={"help": "Training batch size."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak learning rate (cosine, 5% warm-up)."})
    seed: int = field(default=0, metadata={"help": "Seed of the world and of the first training run."})
    training_seeds: int = field(
        default=5,
        metadata={
            "help": f"Training runs per fusion (seeds seed, seed+1, ...): verdicts need at least {MIN_VERDICT_SEEDS}."
        },
    )
    threads: int = field(default=2, metadata={"help": "torch threads (the demo is meant to run alone)."})


def run_bridge_demo(args: BridgeDemoArguments) -> dict[str, ZeroShotReport]:
    """Build the world, train a bridge per fusion on HR, evaluate HR and LR; returns `{scoring method: report}`."""
    fusions = [name.strip() for name in args.fusions.split(",") if name.strip()]
    unknown = sorted(set(fusions) - set(FUSION_METHODS))
    if unknown or not fusions:
        raise ValueError(f"Unknown fusion method(s) {unknown}; choose from {sorted(FUSION_METHODS)}.")
    if args.training_seeds < 1:
        raise ValueError(f"--training_seeds must be at least 1, got {args.training_seeds}.")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.world:
        world = BridgeWorld.load(args.world)
    else:
        world = build_bridge_world(
            os.path.join(args.output_dir, "components"),
            preset=args.preset,
            llm=args.llm,
            encoder=args.encoder,
            seed=args.seed,
        )
    facts = world.facts
    logger.info(f"Bridge world ready at {world.path} ({time.perf_counter() - start:.0f} s).")
    processor = BridgeProcessor.from_components(**world.components)
    train_pairs = supervised_pairs(world.task("train"), label_words=world.label_words)
    test = world.task("test")
    texts_by_language = {
        language: test.filter(lambda row, lang=language: row["language"] == lang)["text"][:PLOT_SENTENCES_PER_LANGUAGE]
        for language in LANGUAGE_ROLES
    }
    seeds = [args.seed + offset for offset in range(args.training_seeds)]
    results: dict[tuple[str, str], list[ZeroShotResult]] = {(f, m): [] for f in fusions for m in SCORING_METHODS}
    seconds = {}
    for fusion in fusions:
        fusion_start = time.perf_counter()
        for seed in seeds:
            folder = os.path.join(args.output_dir, "bridge", fusion, f"seed-{seed}")
            model = _train_bridge(args, world, processor, train_pairs, fusion, seed, folder)
            for method in SCORING_METHODS:
                results[(fusion, method)].append(
                    evaluate_zero_shot(
                        model,
                        processor,
                        test,
                        template="{text}",
                        label_words=world.label_words,
                        method=method,
                        batch_size=64,
                        seed=seed,
                    )
                )
            save_layer_weight_plots(model, processor, folder, texts_by_language["lr"][0], texts_by_language)
        seconds[fusion] = round(time.perf_counter() - fusion_start, 1)
        accuracies = ", ".join(
            f"{method} {language} "
            + "/".join(f"{100 * run.per_language[language]:.1f}" for run in results[(fusion, method)])
            + "%"
            for method in SCORING_METHODS
            for language in results[(fusion, method)][0].per_language
        )
        logger.info(
            f"Bridge demo: {fusion}, seeds {seeds}, trained and evaluated in {seconds[fusion]} s ({accuracies})."
        )

    metadata = {
        "world": str(world.path),
        "task": facts["task"],
        "label_words": world.label_words,
        "labels": facts["labels"],
        "test_sentences_per_language": facts["sentences"]["task_test_per_language"],
        "train_sentences_hr": facts["sentences"]["task_train"],
        "encoder": facts["encoder"],
        "training": {
            "objective": "supervised",
            "steps": args.steps,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "schedule": "cosine, 5% warm-up",
            "seeds": seeds,
        },
        "seconds_per_fusion": seconds,
        "seconds_total": round(time.perf_counter() - start, 1),
    }
    notes = [
        "Trained on HR task data only; LR is the zero-shot language (the encoder read it, the LLM never did).",
        f"Each fusion trained with {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); rows are means over the seeds, "
        "intervals resample seeds and sentences together.",
        f"Chance: {100 * facts['chance']:.2f}% ({facts['chance_note']}).",
    ]
    reports = {}
    for method in SCORING_METHODS:
        title = f"Bridge world, zero-shot classification ({method.replace('_', ' ')})"
        reports[method] = ZeroShotReport(
            {key: runs for key, runs in results.items() if key[1] == method},
            chance=facts["chance"],
            title=title,
            languages=LANGUAGE_ROLES,
            metadata=metadata,
            notes=notes,
        )
    evaluation = os.path.join(args.output_dir, "evaluation")
    reports["generation"].save(evaluation)
    reports["log_likelihood"].save(os.path.join(evaluation, "log_likelihood"))
    return reports


def _train_bridge(
    args: BridgeDemoArguments,
    world: BridgeWorld,
    processor: BridgeProcessor,
    train_pairs,
    fusion: str,
    seed: int,
    folder: str,
) -> BridgeForCausalLM:
    """One bridge of `fusion` trained with `seed` on the HR task pairs, saved (adapters only) under `folder`."""
    torch.manual_seed(seed)
    model = BridgeForCausalLM.from_components(**world.components, fusion=fusion)
    training_args = TrainingArguments(
        output_dir=folder,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=max(1, args.steps // 5),
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=seed,
    )
    create_bridge_trainer(model, processor, train_pairs, training_args).train()
    save_checkpoint(model.eval(), folder, adapters_only=True, processor=processor)
    return model


__all__ = ["BridgeDemoArguments", "run_bridge_demo"]

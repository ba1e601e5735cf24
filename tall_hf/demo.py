"""`tall-hf demo`: the main job, offline, on the built-in tiny setup and the Hebrew sample the package ships.

Builds the tiny components, trains TALL (saved to `OUTPUT_DIR/tall`) and the trained baselines briefly, evaluates all
six approaches of the paper's Table 1, and writes the report and plot under `OUTPUT_DIR/evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments
from transformers.utils import logging

from .data import PreparationArguments
from .evaluation import LastWordEvaluationArguments, LastWordReport, run_last_word_evaluation
from .resources import read_corpus
from .testing import build_tiny_components
from .training.run import TRAINING_DEFAULTS, TallDataArguments, TallModelArguments, run_training

logger = logging.get_logger(__name__)

DISCLAIMER = (
    "These components are tiny and have random weights: the accuracies above say nothing about TALL, only that\n"
    "the whole pipeline runs. For the paper's setup, train on real checkpoints (GPU recommended), e.g.\n"
    "  tall-hf train --lr_hr_model Helsinki-NLP/opus-mt-tc-big-he-en --llm_model Qwen/Qwen2.5-0.5B \\\n"
    "      --hr_lr_model Helsinki-NLP/opus-mt-en-he --train_file news_he.txt --output_dir tall-qwen --bf16\n"
    "and see the README's quickstart."
)


@dataclass
class DemoArguments:
    """Where the demo writes, and how long it trains."""

    output_dir: str = field(default="tall-demo", metadata={"help": "Folder for components, models and the report."})
    llm: str = field(default="qwen2", metadata={"help": "LLM family of the tiny setup (qwen2, llama, bloom, gpt2)."})
    tall_steps: int = field(default=150, metadata={"help": "Training steps of TALL."})
    baseline_steps: int = field(default=40, metadata={"help": "Training steps of each trained baseline."})
    test_sentences: int = field(default=80, metadata={"help": "Sentences held out of the sample for evaluation."})
    seed: int = field(default=0, metadata={"help": "Seed of every training run and of the sampling."})


def run_demo(args: DemoArguments) -> LastWordReport:
    """Run the demo end to end and return its report."""
    output = Path(args.output_dir)
    components = build_tiny_components(output / "components", llm=args.llm)
    sentences = read_corpus("hebrew")
    if not 0 < args.test_sentences < len(sentences) - 20:
        raise ValueError(
            f"test_sentences must leave training data: 0 < {args.test_sentences} < {len(sentences) - 20}."
        )
    data = output / "data"
    data.mkdir(parents=True, exist_ok=True)
    train_file, test_file = data / "train.txt", data / "sample_he.txt"
    train_file.write_text("\n".join(sentences[: -args.test_sentences]) + "\n", encoding="utf-8")
    test_file.write_text("\n".join(sentences[-args.test_sentences :]) + "\n", encoding="utf-8")
    common = {"use_cpu": True, "seed": args.seed, "report_to": "none", "disable_tqdm": False}

    logger.warning(f"Training TALL for {args.tall_steps} steps into {output / 'tall'}.")
    run_training(
        TallModelArguments(
            lr_hr_model=components["lr_hr"], llm_model=components["llm"], hr_lr_model=components["hr_lr"]
        ),
        TallDataArguments(train_file=str(train_file)),
        PreparationArguments(cache_dir=str(output / "cache")),
        TrainingArguments(
            output_dir=str(output / "tall"),
            **{
                **TRAINING_DEFAULTS,
                "max_steps": args.tall_steps,
                "eval_steps": max(args.tall_steps // 3, 1),
                "save_steps": max(args.tall_steps // 3, 1),
                "warmup_steps": args.tall_steps // 10,
                "learning_rate": 1e-3,
                "per_device_train_batch_size": 16,
                **common,
            },
        ),
    )
    logger.warning("Training the baselines and evaluating the six approaches.")
    report = run_last_word_evaluation(
        LastWordEvaluationArguments(
            test_files=[str(test_file)],
            tiny_components=str(output / "components"),
            tiny_llm=args.llm,
            train_file=str(train_file),
            tall_model=str(output / "tall"),
        ),
        TrainingArguments(
            output_dir=str(output / "evaluation"),
            max_steps=args.baseline_steps,
            per_device_train_batch_size=16,
            save_strategy="no",
            **common,
        ),
    )
    return report

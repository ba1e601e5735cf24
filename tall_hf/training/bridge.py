"""Training the bridge with `transformers.Trainer` (the job behind `examples/train_bridge.py`), with either objective:

- `prefix_lm` (LangBridge): unlabelled text, each line split into a prefix the encoder reads and a continuation the
  LLM learns to write;
- `supervised` (the fusion paper): task examples, the encoder reads the input, the LLM learns to write the label
  string (loss on the label tokens only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments, set_seed
from transformers.utils import logging

from ..data.prefix_lm import PrefixLMCollator, prefix_lm_pairs, tokenize_prefix_lm
from ..data.task_data import load_data_file, supervised_pairs
from ..models.bridge import BridgeForCausalLM, BridgeProcessor
from ..modules.fusion import FUSION_METHODS
from ..resources import corpus_path, read_corpus
from ..utils.progress import show_phase

logger = logging.get_logger(__name__)

BRIDGE_OBJECTIVES = ("prefix_lm", "supervised")


def bridge_training_pairs(
    data: Dataset | Sequence[str] | str | os.PathLike,
    objective: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    template: str | None = None,
    label_words: Sequence[str] | None = None,
    seed: int = 0,
) -> Dataset:
    """(`prefix`, `continuation`) pairs for `objective`: from texts or a text/jsonl/csv file (`prefix_lm`), or from
    a task `Dataset` or data file with an input and a label column (`supervised`)."""
    if objective == "prefix_lm":
        if isinstance(data, Dataset):
            data = data[text_column]
        return prefix_lm_pairs(data, seed=seed, text_column=text_column)
    if objective == "supervised":
        if not isinstance(data, (Dataset, str, os.PathLike)):
            raise TypeError("The supervised objective takes a Dataset or a data file, not a list of texts.")
        return supervised_pairs(
            data, text_column=text_column, label_column=label_column, template=template, label_words=label_words
        )
    raise ValueError(f"Unknown objective {objective!r}; choose one of {BRIDGE_OBJECTIVES}.")


def create_bridge_trainer(
    model: BridgeForCausalLM,
    processor: BridgeProcessor,
    pairs: Dataset,
    args: TrainingArguments,
    *,
    eval_pairs: Dataset | None = None,
    max_length: int | None = 128,
) -> Trainer:
    """A `Trainer` for the bridge on (`prefix`, `continuation`) pairs of either objective (tokenized once)."""
    with args.main_process_first(desc="tokenizing"):
        train_set = tokenize_prefix_lm(pairs, processor, max_length=max_length)
        eval_set = None if eval_pairs is None else tokenize_prefix_lm(eval_pairs, processor, max_length=max_length)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=PrefixLMCollator(processor),
    )
    return show_phase(trainer, f"Training the {model.config.fusion} bridge")


@dataclass
class BridgeArguments:
    """Which components the bridge joins, how it fuses the encoder's layers, and what it learns from."""

    encoder_model: str | None = field(
        default=None, metadata={"help": "Multilingual encoder: hub id or folder (mT5, XLM-R, NLLB/M2M100, Marian)."}
    )
    llm_model: str | None = field(default=None, metadata={"help": "Decoder-only LLM: hub id or folder."})
    fusion: str = field(
        default="token_softmax", metadata={"help": f"How the encoder layers are fused: {sorted(FUSION_METHODS)}."}
    )
    fusion_options: str | None = field(
        default=None, metadata={"help": "The fusion method's settings as JSON, e.g. '{\"num_heads\": 4}'."}
    )
    objective: str = field(
        default="prefix_lm",
        metadata={"help": f"Training objective: {BRIDGE_OBJECTIVES} (unlabelled text, or input + label string)."},
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training data: .txt (one text a line), .jsonl or .csv (default: the shipped English corpus)."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Column of the input text (jsonl/csv)."})
    label_column: str = field(default="label", metadata={"help": "Column of the label (supervised, test file)."})
    template: str | None = field(
        default=None, metadata={"help": "Input built from the columns, e.g. '{premise} Question: {hypothesis}'."}
    )
    label_words: str | None = field(
        default=None, metadata={"help": "Comma-separated label strings naming integer labels 0, 1, ..."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N examples."})
    max_length: int = field(default=128, metadata={"help": "Cut inputs and continuations at this many tokens."})
    full_checkpoint: bool = field(
        default=False, metadata={"help": "Save every weight instead of only the fusion and projection."}
    )

    def label_word_list(self) -> list[str] | None:
        return self.label_words.split(",") if self.label_words else None

    def components(self) -> dict[str, str]:
        """`{"encoder", "llm"}` hub ids or folders."""
        if not (self.encoder_model and self.llm_model):
            raise ValueError("Pass --encoder_model and --llm_model (hub ids or folders).")
        return {"encoder": self.encoder_model, "llm": self.llm_model}

    def training_data(self) -> Dataset | list[str] | str:
        """What `bridge_training_pairs` reads: the train file (cut to --max_train_samples) or the shipped corpus."""
        if self.train_file is None:
            if self.objective == "supervised":
                raise ValueError(
                    "The supervised objective needs --train_file (jsonl/csv with input and label columns)."
                )
            texts = read_corpus("english")
            return texts[: self.max_train_samples] if self.max_train_samples else texts
        if self.max_train_samples is None:
            return self.train_file
        data = load_data_file(self.train_file)
        return data.select(range(min(self.max_train_samples, len(data))))


def run_bridge_training(
    args: BridgeArguments, training_args: TrainingArguments
) -> tuple[BridgeForCausalLM, BridgeProcessor, Trainer]:
    """Build the bridge from its components, train it with `Trainer` on pairs of `args.objective`, and save it (the
    fusion and projection only, unless `args.full_checkpoint`) with its processor to `training_args.output_dir`."""
    set_seed(training_args.seed)
    components = args.components()
    processor = BridgeProcessor.from_components(**components)
    model = BridgeForCausalLM.from_components(
        **components,
        fusion=args.fusion,
        fusion_options=json.loads(args.fusion_options) if args.fusion_options else None,
        dtype=torch.bfloat16 if training_args.bf16 else None,
    )
    logger.info("Bridge parameters:\n" + model.parameter_table())
    pairs = bridge_training_pairs(
        args.training_data(),
        args.objective,
        text_column=args.text_column,
        label_column=args.label_column,
        template=args.template,
        label_words=args.label_word_list(),
        seed=training_args.seed,
    )
    source = args.train_file or corpus_path("english")
    logger.info(f"Training ({args.objective}) on {len(pairs)} prefix/continuation pairs ({source}).")
    trainer = create_bridge_trainer(model, processor, pairs, training_args, max_length=args.max_length)
    result = trainer.train()
    trainer.save_state()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        logger.info(f"Training loss: first logged {losses[0]:.4f}, last logged {losses[-1]:.4f}.")
    trainer.log_metrics("train", result.metrics)
    if trainer.is_world_process_zero():
        model.save_pretrained(training_args.output_dir, adapters_only=not args.full_checkpoint, processor=processor)
    return model, processor, trainer


__all__ = [
    "BRIDGE_OBJECTIVES",
    "BridgeArguments",
    "bridge_training_pairs",
    "create_bridge_trainer",
    "run_bridge_training",
]

"""Training the bridge with `transformers.Trainer`, with either objective:

- `prefix_lm` (LangBridge): unlabelled text, each line split into a prefix the encoder reads and a continuation the
  LLM learns to write;
- `supervised` (the fusion paper): task examples, the encoder reads the input, the LLM learns to write the label
  string (loss on the label tokens only).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from datasets import Dataset
from transformers import Trainer, TrainingArguments

from ...utils.progress import show_phase
from .modeling_bridge import BridgeForCausalLM
from .prefix_lm import PrefixLMCollator, prefix_lm_pairs, tokenize_prefix_lm
from .processing_bridge import BridgeProcessor
from .task_data import supervised_pairs

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


__all__ = ["BRIDGE_OBJECTIVES", "bridge_training_pairs", "create_bridge_trainer"]

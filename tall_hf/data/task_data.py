"""The bridge's supervised training data (the fusion paper's objective): an input text and its label string; the
encoder reads the input, the frozen LLM is trained to write the label (loss on the label tokens only).

Data files are read with `datasets.load_dataset` (`.jsonl`/`.json`, `.csv`, `.txt`); a task example becomes a
(`prefix`, `continuation`) pair, the same columns as the prefix-LM objective's, so both share one tokenization
(`tokenize_prefix_lm`) and one collator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, load_dataset
from transformers.utils import logging

logger = logging.get_logger(__name__)

DATA_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".txt": "text", ".text": "text"}
"""The `datasets` builder for each data file extension (a `.txt` file has one `text` column, one row a line)."""


def load_data_file(path: str | os.PathLike) -> Dataset:
    """A data file (`.jsonl`/`.json`, `.csv` or `.txt`) as a `Dataset`; a missing file or unknown extension is named."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Data file {str(path)!r} does not exist.")
    builder = DATA_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"Cannot read {str(path)!r}: use one of the extensions {sorted(DATA_BUILDERS)}.")
    return load_dataset(builder, data_files=str(path), split="train")


def label_strings(labels: Sequence, label_words: Sequence[str] | None) -> list[str]:
    """Label strings: integer labels name `label_words[label]`; string labels are used as they are."""
    strings = []
    for label in labels:
        if isinstance(label, str):
            strings.append(label)
        elif label_words is None:
            raise ValueError(f"Label {label!r} is not a string: pass `label_words` to name integer labels.")
        elif not 0 <= int(label) < len(label_words):
            raise ValueError(f"Label {label!r} has no label word: label_words={list(label_words)}.")
        else:
            strings.append(label_words[int(label)])
    return strings


def supervised_pairs(
    data: Dataset | str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str = "label",
    template: str | None = None,
    label_words: Sequence[str] | None = None,
) -> Dataset:
    """(`prefix`, `continuation`) pairs from task data: the prefix is the row's `text_column` (or `template` filled
    from its columns, e.g. `"{premise} Question: {hypothesis} Answer:"`), the continuation its label string.

    `data` is a `Dataset` or a data file (see `load_data_file`). Rows with an empty input or label are skipped and
    counted in the log.
    """
    if not isinstance(data, Dataset):
        data = load_data_file(data)
    needed = {label_column} | (set() if template else {text_column})
    missing = needed - set(data.column_names)
    if missing:
        raise ValueError(f"The task data lacks the column(s) {sorted(missing)}; it has {data.column_names}.")
    try:
        prompts = [template.format(**row) for row in data] if template else list(data[text_column])
    except KeyError as err:
        raise ValueError(f"The template needs the column {err}, which the task data lacks.") from err
    labels = label_strings(data[label_column], label_words)
    # A label keeps its leading space: " True" is the word as the LLM meets it inside text (one token, like "ĠTrue").
    kept = [(p.strip(), c.rstrip()) for p, c in zip(prompts, labels, strict=True) if p and p.strip() and c.strip()]
    if len(kept) < len(prompts):
        logger.info(f"Skipped {len(prompts) - len(kept)} task examples with an empty input or label.")
    if not kept:
        raise ValueError("No task example has both an input and a label: nothing to train on.")
    prefixes, continuations = zip(*kept, strict=True)
    return Dataset.from_dict({"prefix": list(prefixes), "continuation": list(continuations)})


__all__ = ["DATA_BUILDERS", "label_strings", "load_data_file", "supervised_pairs"]

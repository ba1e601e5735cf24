"""Zero-shot classification with the bridge (XNLI-style): the encoder reads premise and hypothesis in any language,
and the label is the one whose word the LLM scores highest after the soft prompt. Accuracy per language."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from datasets import Dataset
from tqdm.auto import tqdm

XNLI_TEMPLATE = "{premise} Question: {hypothesis} True, False or Neither? Answer:"
XNLI_LABEL_WORDS = ("True", "Neither", "False")
"""XNLI's labels in id order: 0 entailment, 1 neutral, 2 contradiction."""


@dataclass
class ZeroShotResult:
    """Accuracy overall and per language, with the predicted label ids and the label words' log-likelihoods."""

    accuracy: float
    per_language: dict[str, float]
    predictions: list[int] = field(repr=False)
    scores: torch.Tensor = field(repr=False)


@torch.no_grad()
def label_log_likelihoods(
    model, processor, prompts: Sequence[str], label_words: Sequence[str], batch_size: int = 16
) -> torch.Tensor:
    """`(len(prompts), len(label_words))`: the LLM's log-likelihood of each label word (summed over its tokens)
    after the soft prompt of each prompt. Each prompt is encoded once and shared by its label words."""
    if not prompts:
        raise ValueError("No prompts to score.")
    if len(label_words) < 2:
        raise ValueError(f"Zero-shot classification needs at least two label words, got {list(label_words)}.")
    model.eval()
    words = list(label_words)
    word_ids = processor.llm_token_ids(words, add_eos=False)
    scores = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="Zero-shot scoring", leave=False):
        chunk = list(prompts[start : start + batch_size])
        batch = processor(chunk).to(model.device)
        encoded = model.encode(batch["input_ids"], batch["attention_mask"])
        encoded = type(encoded)(**{key: value.repeat_interleave(len(words), dim=0) for key, value in encoded.items()})
        words_batch = processor.pad({"llm_input_ids": word_ids * len(chunk)}).to(model.device)
        output = model(
            encoder_outputs=encoded,
            llm_input_ids=words_batch["llm_input_ids"],
            llm_attention_mask=words_batch["llm_attention_mask"],
            labels=words_batch["labels"],
        )
        log_probs = output.logits[:, :-1].float().log_softmax(dim=-1)
        targets = output.labels[:, 1:]
        picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        scores.append((picked * targets.ne(-100)).sum(dim=-1).view(len(chunk), len(words)).cpu())
    return torch.cat(scores)


def evaluate_zero_shot(
    model,
    processor,
    dataset: Dataset,
    *,
    template: str = XNLI_TEMPLATE,
    label_words: Sequence[str] = XNLI_LABEL_WORDS,
    label_column: str = "label",
    language_column: str = "language",
    batch_size: int = 16,
) -> ZeroShotResult:
    """Classify every row of `dataset` zero-shot and report accuracy overall and per language.

    Each row fills `template` from its columns (`premise`, `hypothesis` for XNLI); `label_words[i]` names label id `i`.
    Without a `language_column`, all rows count as language `"all"`.
    """
    missing = {label_column} - set(dataset.column_names)
    if missing:
        raise ValueError(f"The data set lacks the column {sorted(missing)}; it has {dataset.column_names}.")
    try:
        prompts = [template.format(**row) for row in dataset]
    except KeyError as err:
        raise ValueError(f"The template needs the column {err}, which the data set lacks.") from err
    gold = list(dataset[label_column])
    out_of_range = sorted({label for label in gold if not 0 <= label < len(label_words)})
    if out_of_range:
        raise ValueError(f"Labels {out_of_range} have no label word: label_words={list(label_words)}.")
    languages = dataset[language_column] if language_column in dataset.column_names else ["all"] * len(gold)
    scores = label_log_likelihoods(model, processor, prompts, label_words, batch_size=batch_size)
    predictions = scores.argmax(dim=-1).tolist()
    correct: dict[str, list[bool]] = defaultdict(list)
    for language, predicted, label in zip(languages, predictions, gold, strict=True):
        correct[language].append(predicted == label)
    per_language = {language: sum(hits) / len(hits) for language, hits in sorted(correct.items())}
    accuracy = sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold)
    return ZeroShotResult(accuracy=accuracy, per_language=per_language, predictions=predictions, scores=scores)


__all__ = ["XNLI_LABEL_WORDS", "XNLI_TEMPLATE", "ZeroShotResult", "evaluate_zero_shot", "label_log_likelihoods"]

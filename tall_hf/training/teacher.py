"""Teacher labels from the frozen pipeline itself: the last word of each training sentence replaced by the word the
three frozen components predict for its prefix (the Naive approach: the prefix's HR translation, the LLM's next HR
word, the completed HR sentence translated back to LR, its last word; by default with the LR prefix forced as the
start of the back-translation, `ForcedPrefixNaiveApproach`); sentences where the LLM writes no word are left out.

Why: on real text the gold last word is one the LLM could not have predicted for most sentences (the ceiling is a few
percent), so a loss on gold words teaches TALL the frequent words, not how to read the LLM. The teacher's word is,
by construction, a function of what the LLM predicts: a consistent target that teaches stages 5-6 to carry the LLM's
prediction to the LR decoder. It needs nothing beyond the components and the LR text.
"""

from __future__ import annotations

import os

import torch
from accelerate import PartialState
from datasets import Dataset, load_from_disk
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
from transformers.utils import logging

from ..data.translation import translate
from ..generation.pivot import (
    NextWordLM,
    back_translated_last_words,
    forced_prefix_words,
    load_llm_tokenizer,
    pivot_words,
)
from ..models.tall.processing_tall import TallProcessor
from ..utils.loading import load_pretrained
from ..utils.text import normalize_text, split_last_word, words

logger = logging.get_logger(__name__)

TEACHER_DATA = "teacher_data"


def teacher_words(
    prefixes: list[str],
    translations: list[str],
    components: dict[str, str],
    batch_size: int = 32,
    device: torch.device | None = None,
    forced_prefix: bool = True,
) -> list[str]:
    """The Naive approach's greedy LR word after each prefix, from the given HR `translations` of the prefixes: the
    LLM's next HR word, the completed HR sentence translated back, its last word (`tall_hf.generation.pivot`); `""`
    where the LLM wrote no word (it ended the text, or continued the prefix's last word). With `forced_prefix`, the
    back-translation starts with the LR prefix itself (`forced_prefix_words`, the `naive_forced` approach), as TALL's
    LR decoder reads it: the word then agrees with what the LR prefix says and the HR side may have lost (gender, in
    the lossy generated world)."""
    device = device or torch.device("cpu")
    llm = load_pretrained(AutoModelForCausalLM, components["llm"], role="LLM").to(device)
    translator = load_pretrained(AutoModelForSeq2SeqLM, components["hr_lr"], role="HR->LR translator")
    translator = translator.to(device).eval()
    tokenizer = load_pretrained(AutoTokenizer, components["hr_lr"], role="HR->LR translator tokenizer")

    def back_translate(prefixes: list[str], completed: list[str], size: int) -> list[str]:
        if forced_prefix:
            return forced_prefix_words(translator, tokenizer, prefixes, completed, size)
        return back_translated_last_words(translator, tokenizer, completed, size)

    next_word = NextWordLM(llm, load_llm_tokenizer(components["llm"]))
    return pivot_words(prefixes, translations, next_word, back_translate, batch_size=batch_size)


def teacher_agreement(
    sentences: list[str],
    components: dict[str, str],
    batch_size: int = 32,
    device: torch.device | None = None,
) -> dict[str, float]:
    """How the teacher (`teacher_words`, LR prefix forced) does on `sentences` (those of at least two words):
    `answered`, the share it writes a word for, and `gold`, the share whose gold last word it writes (punctuation
    aside), with `sentences`, their number. `gold` is high where the LLM predicts the gold words (generated text: gold
    labels then teach TALL the pipeline's word and what the LR prefix adds), low where it predicts almost none (real
    text: only the teacher's words carry what the LLM reads); `answered` near 0 leaves nothing to label."""
    pairs = [split_last_word(sentence) for sentence in sentences if len(words(sentence)) >= 2]
    if not pairs:
        raise ValueError("No sentence of at least two words to measure the teacher on.")
    device = device or torch.device("cpu")
    prefixes = [prefix for prefix, _ in pairs]
    model = load_pretrained(AutoModelForSeq2SeqLM, components["lr_hr"], role="LR->HR translator").to(device)
    tokenizer = load_pretrained(AutoTokenizer, components["lr_hr"], role="LR->HR translator tokenizer")
    translations = translate(prefixes, model, tokenizer, batch_size=batch_size)
    predicted = teacher_words(prefixes, translations, components, batch_size, device, forced_prefix=True)
    gold = sum(
        bool(word) and normalize_text(word) == normalize_text(last)
        for word, (_, last) in zip(predicted, pairs, strict=True)
    )
    answered = sum(bool(word) for word in predicted)
    return {"gold": gold / len(pairs), "answered": answered / len(pairs), "sentences": len(pairs)}


def with_teacher_labels(
    dataset: Dataset,
    processor: TallProcessor,
    components: dict[str, str],
    output_dir: str | os.PathLike,
    batch_size: int = 32,
    device: torch.device | None = None,
    name: str = TEACHER_DATA,
    forced_prefix: bool = True,
) -> Dataset:
    """Rows of `prepare_tall_dataset` whose last word is the teacher's (rows without a teacher word dropped), saved
    as `output_dir/name` and read from there when it exists (labelling costs one LLM word and one back-translation
    per sentence; under `accelerate launch` the main process labels, the others read its result)."""
    path = os.path.join(output_dir, name)
    with PartialState().main_process_first():
        if os.path.isdir(path):
            logger.info(f"Teacher labels read from {path}.")
            return load_from_disk(path)
        return _label(dataset, processor, components, batch_size, device, path, forced_prefix)


def _label(dataset, processor, components, batch_size, device, path, forced_prefix) -> Dataset:
    words = teacher_words(dataset["prefix"], dataset["translation"], components, batch_size, device, forced_prefix)
    keep = [index for index, word in enumerate(words) if word]
    if not keep:
        raise ValueError(
            "The frozen pipeline wrote no LR word for any training sentence, so there are no teacher labels: check "
            "the components (or train on the gold last words, teacher_labels=False)."
        )
    gold = dataset["last_word"]
    agree = sum(words[index] == gold[index] for index in keep)
    logger.info(f"Teacher labels: {len(keep)} of {len(words)} sentences got a word; {agree} equal the gold last word.")
    labelled = dataset.select(keep).add_column("teacher_word", [words[index] for index in keep])

    def relabel(batch: dict[str, list]) -> dict[str, list]:
        sentences = [f"{prefix} {word}" for prefix, word in zip(batch["prefix"], batch["teacher_word"], strict=True)]
        target_ids = processor.target_token_ids(sentences)
        word_ids = processor.target_token_ids(batch["teacher_word"])
        return {
            "sentence": sentences,
            "last_word": batch["teacher_word"],
            "target_ids": target_ids,
            "last_word_length": [min(len(w), len(t)) for w, t in zip(word_ids, target_ids, strict=True)],
        }

    labelled = labelled.map(relabel, batched=True, remove_columns=["teacher_word"], keep_in_memory=True)
    labelled.save_to_disk(path)
    return labelled


__all__ = ["TEACHER_DATA", "teacher_agreement", "teacher_words", "with_teacher_labels"]

"""Translation cost of a 5-epoch TALL training run: per item in `__getitem__` (the reference) vs. batched once and
served from the datasets cache (tall_hf), with the same tiny translator, sentences and generation settings.

    python benchmarks/data_prep.py --num_sentences 32 --epochs 5

Both ways run here, alternating epoch by epoch; the last line is `ratio=X` (reference seconds / tall_hf seconds).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSeq2SeqLM
from transformers.utils import logging

from tall_hf import TallProcessor
from tall_hf.data import PreparationArguments, TallDataCollator, prepare_tall_dataset, translate
from tall_hf.data.preparation import clean_sentences
from tall_hf.resources import read_corpus
from tall_hf.testing import build_tiny_components

logger = logging.get_logger("tall_hf.benchmarks.data_prep")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hebrew" / "svlm_wiki_50k.txt"


class PerItemTranslationDataset(torch.utils.data.Dataset):
    """The reference's pattern: every `__getitem__` translates its sentence again, so every epoch pays again."""

    def __init__(self, sentences: list[str], prefixes: list[str], processor: TallProcessor, translator) -> None:
        self.sentences, self.prefixes, self.processor, self.translator = sentences, prefixes, processor, translator

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        translation = translate([self.prefixes[index]], self.translator, self.processor.source_tokenizer, batch_size=1)
        return self.processor([self.prefixes[index]], translation, [self.sentences[index]])


class CallCounter:
    """Counts the translator's `generate` calls and the sentences it translates."""

    def __init__(self, model) -> None:
        self.generate, self.calls, self.sentences = model.generate, 0, 0
        model.generate = self

    def __call__(self, **inputs):
        self.calls += 1
        self.sentences += inputs["input_ids"].shape[0]
        return self.generate(**inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="Hebrew text file (falls back to the shipped corpus)"
    )
    parser.add_argument("--num_sentences", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=8, help="training batch size")
    parser.add_argument("--translation_batch_size", type=int, default=64)
    parser.add_argument("--components_dir", default=os.path.join(tempfile.gettempdir(), "tall_hf_tiny"))
    options = parser.parse_args()

    paths = build_tiny_components(options.components_dir)
    processor = TallProcessor.from_components(**paths)
    translator = AutoModelForSeq2SeqLM.from_pretrained(paths["lr_hr"])
    counter = CallCounter(translator)
    lines = Path(options.data).read_text(encoding="utf-8").splitlines() if Path(options.data).is_file() else None
    lines = (lines or read_corpus("hebrew"))[: options.num_sentences]
    cleaned = clean_sentences(lines)
    print(f"{len(cleaned.sentences)} sentences, {options.epochs} epochs, tiny translator {paths['lr_hr']}")

    reference = PerItemTranslationDataset(cleaned.sentences, cleaned.prefixes, processor, translator)
    collator = TallDataCollator(processor)
    seconds = {"reference": 0.0, "tall_hf": 0.0}
    calls = {"reference": 0, "tall_hf": 0}
    with tempfile.TemporaryDirectory() as cache_dir:
        args = PreparationArguments(cache_dir=cache_dir, translation_batch_size=options.translation_batch_size)
        # The two ways alternate epoch by epoch, so a change in machine load affects both alike.
        for _ in range(options.epochs):
            start, before = time.perf_counter(), counter.calls
            for _batch in DataLoader(reference, batch_size=options.batch_size, shuffle=True, collate_fn=list):
                pass
            seconds["reference"] += time.perf_counter() - start
            calls["reference"] += counter.calls - before

            # Each epoch asks for the prepared data again: the first call translates, the others read the cache.
            start, before = time.perf_counter(), counter.calls
            dataset = prepare_tall_dataset(lines, processor, translator, args)
            for _batch in DataLoader(dataset, batch_size=options.batch_size, shuffle=True, collate_fn=collator):
                pass
            seconds["tall_hf"] += time.perf_counter() - start
            calls["tall_hf"] += counter.calls - before
    print(f"reference (translate in __getitem__): {seconds['reference']:.2f} s, {calls['reference']} generate calls")
    print(f"tall_hf (batched once, then cached):   {seconds['tall_hf']:.2f} s, {calls['tall_hf']} generate calls")
    reference_seconds, package_seconds = seconds["reference"], seconds["tall_hf"]
    print(f"ratio={reference_seconds / package_seconds:.1f}")


if __name__ == "__main__":
    main()

"""From raw low-resource text to a cached `datasets.Dataset` of TALL's three tokenized streams.

`prepare_tall_dataset` runs the paper's recipe: normalise (punctuation removed, whitespace collapsed), drop duplicates,
keep sentences of `min_words`-`max_words` words, split off the last word, translate the truncated sentences with the
LR->HR translator and tokenize the three streams. Translation, the only costly step, runs in shards: each shard is a
`Dataset.map` with an explicit fingerprint (input data + translator identity + generation settings) and its own cache
file, so preparing the same data again, or resuming a killed preparation, never translates a finished shard again.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow
from accelerate import PartialState
from datasets import Dataset, concatenate_datasets
from datasets.fingerprint import Hasher
from transformers import AutoModelForSeq2SeqLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging

from ..models.tall.processing_tall import TallProcessor, check_tokenizer_fits
from ..utils.folders import hold_lock
from ..utils.loading import load_pretrained
from ..utils.progress import advance_phase, phase_progress
from ..utils.text import normalize_text
from .fingerprint import component_fingerprint
from .text_files import read_text_lines
from .translation import translate

logger = logging.get_logger(__name__)

DataSource = str | os.PathLike | Iterable[str] | Dataset
TranslatorSpec = str | os.PathLike | PreTrainedModel
FILTER_REASONS = ("empty", "too_short", "too_long", "duplicate")
_PREPARATION_VERSION = 2


class NoSentenceLeftError(ValueError):
    """Every line of the input was filtered out (empty, too short, too long or a duplicate)."""


@dataclass
class PreparationArguments:
    """Settings of `prepare_tall_dataset`; usable as a dataclass of `HfArgumentParser`."""

    text_column: str = field(default="text", metadata={"help": "Column holding the sentences of a `datasets` input."})
    min_words: int = field(default=5, metadata={"help": "Shortest sentence kept, in words (at least 2)."})
    max_words: int = field(default=30, metadata={"help": "Longest sentence kept, in words."})
    deduplicate: bool = field(default=True, metadata={"help": "Drop repeated sentences (after normalisation)."})
    max_tokens: int | None = field(
        default=None, metadata={"help": "Drop sentences whose source, bridge or target stream is longer than this."}
    )
    translation_batch_size: int = field(default=64, metadata={"help": "Most sentences per `generate` call."})
    translation_max_tokens: int = field(
        default=8192,
        metadata={
            "help": "Token budget of a `generate` call: padded source tokens x beams (batches of similar length)."
        },
    )
    translation_window: int = field(
        default=2048, metadata={"help": "Sentences sorted by length together before batching (one `map` batch)."}
    )
    num_beams: int | None = field(
        default=None, metadata={"help": "Beam size of the translation (default: the translator's generation config)."}
    )
    max_new_tokens: int | None = field(default=None, metadata={"help": "Longest translation, in tokens."})
    num_shards: int = field(
        default=1,
        metadata={"help": "Translate in this many shards, each cached on its own (resumable; spread over processes)."},
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Folder of the translation caches (default: the datasets cache / tall_hf)."}
    )

    def __post_init__(self) -> None:
        if self.min_words < 2:
            raise ValueError(f"--min_words must be at least 2 (a prefix and a last word), got {self.min_words}.")
        if self.max_words < self.min_words:
            raise ValueError(f"--max_words ({self.max_words}) is smaller than --min_words ({self.min_words}).")
        for name in ("num_shards", "translation_batch_size", "translation_max_tokens", "translation_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}.")

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(datasets.config.HF_DATASETS_CACHE) / "tall_hf"


@dataclass
class CleanedSentences:
    """Sentences that passed the filters, split into prefix and last word, and the count of each filter reason."""

    sentences: list[str]
    prefixes: list[str]
    last_words: list[str]
    filtered: Counter

    def to_dataset(self) -> Dataset:
        return Dataset.from_dict({"sentence": self.sentences, "prefix": self.prefixes, "last_word": self.last_words})


def clean_sentences(texts: Iterable[str], args: PreparationArguments | None = None) -> CleanedSentences:
    """Normalise, filter (empty, too short, too long, duplicate) and split each text; never raises on bad lines."""
    args = args or PreparationArguments()
    seen: set[str] = set()
    kept = CleanedSentences([], [], [], Counter())
    for text in texts:
        sentence = normalize_text(text or "")
        words = sentence.split()
        if not words:
            reason = "empty"
        elif len(words) < args.min_words:
            reason = "too_short"
        elif len(words) > args.max_words:
            reason = "too_long"
        elif args.deduplicate and sentence in seen:
            reason = "duplicate"
        else:
            seen.add(sentence)
            kept.sentences.append(sentence)
            kept.prefixes.append(" ".join(words[:-1]))
            kept.last_words.append(words[-1])
            continue
        kept.filtered[reason] += 1
    return kept


def word_boundary_prefixes(sentences: Iterable[str], min_words: int = 5) -> list[str]:
    """Every sentence cut after each of its words from the `min_words`-th on (the whole sentence included): each cut
    is a last-word example of its own, so one sentence supervises every word boundary, not only its end."""
    prefixes = []
    for sentence in sentences:
        words = sentence.split()
        prefixes.extend(" ".join(words[:end]) for end in range(min_words, len(words) + 1))
    return prefixes


def read_texts(data: DataSource, text_column: str = "text") -> list[str]:
    """The raw lines of a text file, a list of strings or a column of a `datasets.Dataset`."""
    if isinstance(data, Dataset):
        if text_column not in data.column_names:
            raise ValueError(f"The dataset has no column {text_column!r}; its columns are {data.column_names}.")
        return data[text_column]
    if isinstance(data, (str, os.PathLike)):
        return read_text_lines(data)
    texts = list(data)
    if any(not isinstance(text, str) and text is not None for text in texts):
        raise TypeError("A list input must hold strings, one sentence per item.")
    return texts


def translator_fingerprint(translator: TranslatorSpec, revision: str | None, args: PreparationArguments) -> str | None:
    """Identity of a translation run: the translator's weights (`component_fingerprint`) and the generation settings
    (None if the translator is an unnamed model)."""
    if isinstance(translator, PreTrainedModel):
        name = translator.name_or_path
        revision = revision or getattr(translator.config, "_commit_hash", None)
        generation = translator.generation_config.to_json_string(use_diff=False) if translator.can_generate() else ""
    else:
        name, generation = str(translator), ""
    if not name:
        return None
    identity = component_fingerprint(name, revision)  # the weights' content, not the path: updates invalidate
    return Hasher.hash(
        [_PREPARATION_VERSION, identity, revision, generation, args.num_beams, args.max_new_tokens, args.num_shards]
    )


class _LazyTranslator:
    """Loads the translator only when a shard actually needs translating (a fully cached run never loads it)."""

    def __init__(self, translator: TranslatorSpec, tokenizer: PreTrainedTokenizerBase, revision: str | None, args):
        self.spec, self.tokenizer, self.revision, self.args = translator, tokenizer, revision, args
        self._model = translator if isinstance(translator, PreTrainedModel) else None

    @property
    def model(self) -> PreTrainedModel:
        if self._model is None:
            self._model = load_pretrained(
                AutoModelForSeq2SeqLM, self.spec, role="LR->HR translator", revision=self.revision
            )
            check_tokenizer_fits(self.tokenizer, self._model.config, f"tokenizer of the translator {self.spec}")
        return self._model

    def __call__(self, batch: dict[str, list]) -> dict[str, list[str]]:
        translations = translate(
            batch["prefix"],
            self.model,
            self.tokenizer,
            batch_size=self.args.translation_batch_size,
            max_batch_tokens=self.args.translation_max_tokens,
            num_beams=self.args.num_beams,
            max_new_tokens=self.args.max_new_tokens,
            advance_progress=True,
        )
        return {"translation": translations}


def translate_shards(
    cleaned: Dataset,
    translator: Callable[[dict[str, list]], dict[str, list[str]]],
    fingerprint: str | None,
    args: PreparationArguments,
    shard_indices: Iterable[int] | None = None,
) -> list[Dataset]:
    """Translate (or load from cache) the given shards of `cleaned`; returns them in order.

    Shard `i` is the `i`-th contiguous block of `Dataset.shard(num_shards, i)`. Its cache file is written only once
    the shard is complete, so a killed run resumes at the first unfinished shard.
    """
    cache_dir = args.resolved_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    indices = list(range(args.num_shards) if shard_indices is None else shard_indices)
    shards, cached = [], 0
    sizes = [len(cleaned.shard(args.num_shards, index, contiguous=True)) for index in indices]
    with phase_progress(f"Translating {sum(sizes)} sentences", sum(sizes)):
        for index, size in zip(indices, sizes, strict=True):
            shard = cleaned.shard(args.num_shards, index, contiguous=True)
            kwargs = {}
            if fingerprint is not None:
                shard_fingerprint = f"{fingerprint}-{index:05d}of{args.num_shards:05d}"
                kwargs = {
                    "new_fingerprint": shard_fingerprint,
                    "cache_file_name": str(cache_dir / f"translation-{shard_fingerprint}.arrow"),
                }
                if os.path.exists(kwargs["cache_file_name"]):
                    cached += 1
                    advance_phase(size)
            translate_shard = functools.partial(
                shard.map,
                translator,
                batched=True,
                batch_size=args.translation_window,
                desc=f"Translating shard {index + 1}/{args.num_shards}",
                **kwargs,
            )
            # Another run translating the same shard into the same cache is waited for, then its file is read.
            lock = (
                hold_lock(
                    cache_dir / f"translation-{shard_fingerprint}.lock",
                    f"The translation cache of shard {index}",
                    wait=True,
                )
                if kwargs
                else contextlib.nullcontext()
            )
            with lock:
                try:
                    shards.append(translate_shard())
                except (OSError, pyarrow.ArrowException) as error:
                    if not kwargs or not os.path.exists(kwargs["cache_file_name"]):
                        raise
                    logger.warning(
                        f"The cached translations {kwargs['cache_file_name']} are damaged ({error}); translating again."
                    )
                    os.remove(kwargs["cache_file_name"])
                    cached -= 1
                    shards.append(translate_shard())
    logger.info(f"Translations: {cached} of {len(indices)} shards served from the cache in {cache_dir}.")
    return shards


def prepare_tall_dataset(
    data: DataSource,
    processor: TallProcessor,
    translator: TranslatorSpec,
    args: PreparationArguments | None = None,
    *,
    translator_revision: str | None = None,
    translator_tokenizer: PreTrainedTokenizerBase | None = None,
) -> Dataset:
    """Prepare low-resource text for TALL: a `datasets.Dataset` with one row per kept sentence.

    Args:
        data: a text file (one sentence a line), a list of strings or a `datasets.Dataset` (`args.text_column`).
        processor: the `TallProcessor` whose tokenizers tokenize the three streams.
        translator: the LR->HR translator, a model or a hub id / folder (loaded only if something is not cached).
        args: filtering, translation and caching settings.
        translator_revision: the translator's revision, part of the cache key.
        translator_tokenizer: its tokenizer (default: the processor's source tokenizer, which is the translator's).

    Columns: `sentence`, `prefix`, `last_word`, `translation` (texts) and `input_ids` (source stream),
    `bridge_input_ids` (bridge stream), `target_ids` (the full sentence in target tokens, no special tokens),
    `last_word_length` (target tokens of the last word). `TallDataCollator` pads them into a batch.

    Under `accelerate launch`, each process translates its share of the shards, then all read the shared cache.
    """
    args = args or PreparationArguments()
    cleaned = clean_sentences(read_texts(data, args.text_column), args)
    _log_counts(len(cleaned.sentences), cleaned.filtered)
    if not cleaned.sentences:
        counts = ", ".join(
            f"{reason}: {cleaned.filtered[reason]}" for reason in FILTER_REASONS if cleaned.filtered[reason]
        )
        raise NoSentenceLeftError(
            f"No sentence left after filtering ({counts or 'no lines'}; sentences of {args.min_words}-{args.max_words} "
            "words are kept, see --min_words and --max_words)."
        )
    if args.num_shards > len(cleaned.sentences):
        raise ValueError(f"--num_shards ({args.num_shards}) exceeds the {len(cleaned.sentences)} sentences kept.")
    processor.check_reads(cleaned.sentences[:1000])  # before translating: a wrong tokenizer fails in seconds
    dataset = cleaned.to_dataset()
    fingerprint = translator_fingerprint(translator, translator_revision, args)
    if fingerprint is None:
        logger.warning("The translator has no name_or_path: translations cannot be cached and run every time.")
    else:
        fingerprint = Hasher.hash([dataset._fingerprint, fingerprint])
    run = _LazyTranslator(translator, translator_tokenizer or processor.source_tokenizer, translator_revision, args)

    state = PartialState()
    mine = [index for index in range(args.num_shards) if index % state.num_processes == state.process_index]
    shards = translate_shards(dataset, run, fingerprint, args, mine)
    if state.num_processes > 1:
        state.wait_for_everyone()
        shards = translate_shards(dataset, run, fingerprint, args)  # the other processes' shards, from cache
    translated = concatenate_datasets(shards) if len(shards) > 1 else shards[0]
    tokenized = translated.map(
        _StreamTokenizer(processor), batched=True, desc="Tokenizing the three streams", **_cache_kwargs(translated)
    )
    if args.max_tokens is not None:
        before = len(tokenized)
        tokenized = tokenized.filter(_FitsLength(args.max_tokens), batched=True, desc="Dropping over-long streams")
        if before - len(tokenized):
            logger.info(f"Dropped {before - len(tokenized)} sentences with a stream over {args.max_tokens} tokens.")
    return tokenized


class _StreamTokenizer:
    """The three streams' token ids, stored unpadded; the collator pads them and builds labels."""

    def __init__(self, processor: TallProcessor) -> None:
        self.processor = processor

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        processor = self.processor
        last_word_ids = processor.target_token_ids(batch["last_word"])
        target_ids = processor.target_token_ids(batch["sentence"])
        return {
            "input_ids": processor.source_tokenizer(batch["prefix"])["input_ids"],
            "bridge_input_ids": processor.llm_tokenizer(batch["translation"])["input_ids"],
            "target_ids": target_ids,
            "last_word_length": [min(len(w), len(t)) for w, t in zip(last_word_ids, target_ids, strict=True)],
        }


class _FitsLength:
    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def __call__(self, batch: dict[str, list]) -> list[bool]:
        columns = (batch["input_ids"], batch["bridge_input_ids"], batch["target_ids"])
        return [all(len(ids) <= self.max_tokens for ids in row) for row in zip(*columns, strict=True)]


def _cache_kwargs(dataset: Dataset) -> dict:
    """Keep datasets' own fingerprinting; without cache files (in memory) nothing is written."""
    return {} if dataset.cache_files else {"keep_in_memory": True}


def _log_counts(kept: int, filtered: Counter) -> None:
    total = kept + sum(filtered.values())
    details = ", ".join(f"{reason}: {filtered[reason]}" for reason in FILTER_REASONS if filtered[reason])
    logger.info(f"Kept {kept} of {total} sentences" + (f" (filtered {details})." if details else "."))


__all__ = [
    "CleanedSentences",
    "PreparationArguments",
    "clean_sentences",
    "prepare_tall_dataset",
    "read_texts",
    "translate_shards",
    "translator_fingerprint",
    "word_boundary_prefixes",
]

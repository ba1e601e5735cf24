"""Next-word prediction and multi-word continuation with TALL: a thin layer over `TallForConditionalGeneration.generate`.

Per word, the prefixes are translated by the model's own LR->HR translator (`tall_hf.data.translation`: batched, each
distinct prefix once), whose encoder is TALL's stage 1: the states it computes while translating are handed to TALL
(`lr_encoder_outputs`), so the LR encoder runs once per sentence. Stages 1-6 run once per sentence, and the LR decoder
generates with its KV cache until a word boundary ([`WordBoundaryCriteria`]). The paper's reference algorithm
(translate again and run all seven stages for every token, no cache) lives in `tall_hf.testing.reference` for the
tests and benchmarks that compare against it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import partial

import torch
from transformers import (
    LogitsProcessorList,
    PreTrainedModel,
    StoppingCriteriaList,
)
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import logging

from ..adapters.saving import load_checkpoint
from ..data.translation import batch_encoder_outputs, lr_hr_translator, translate
from ..models.tall import TallForConditionalGeneration, TallProcessor
from ..utils.loading import load_pretrained
from ..utils.progress import advance_phase
from ..utils.text import normalize_text, words
from .decoding import DecodingOptions, continue_word_by_word
from .word_boundary import PerRowSampler, WordBoundaryCriteria, split_words, word_start_mask

logger = logging.get_logger(__name__)


def keep_end(text: str, fits: Callable[[str], bool]) -> str:
    """`text` itself if it `fits`, else its shortest cut that does: the fewest leading words dropped (binary search),
    or for a single word too long, its last characters."""
    if fits(text):
        return text
    words = text.split()
    low, high = 1, len(words) - 1  # dropping `high` words leaves one
    if high < 1 or not fits(words[-1]):
        word = words[-1] if words else text
        low, high = 0, len(word) - 1  # characters kept
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(word[-middle:]) else (low, middle - 1)
        return word[-low:] if low else ""
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(" ".join(words[-middle:])) else (low, middle - 1)
    return " ".join(words[-low:])


class TallPredictor:
    """Predicts the next LR word after each prefix (and continues texts word by word) with a TALL model.

    ```python
    >>> predictor = TallPredictor.from_pretrained("path/to/tall-model")
    >>> predictor.predict_next_word(["הילדים הלכו אל"])
    >>> predictor.continue_text(["הילדים הלכו אל"], num_words=5, do_sample=True, seed=0)
    ```
    """

    def __init__(
        self, model: TallForConditionalGeneration, processor: TallProcessor, translator: PreTrainedModel | None = None
    ) -> None:
        processor.check_compatible(model.config)
        self.model = model.eval()
        self.processor = processor
        self._translator = translator.eval() if translator is not None else None
        tokenizer = processor.target_tokenizer
        self.word_start = word_start_mask(tokenizer, model.get_output_embeddings().out_features)
        self.eos_token_id = tokenizer.eos_token_id
        # Counts of the last prediction call: prefixes cut to fit the position tables, and rows left unanswered.
        self.truncated = self.unreadable = 0

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        translator: str | os.PathLike | None = None,
        *,
        translator_revision: str | None = None,
        **kwargs,
    ) -> TallPredictor:
        """Load a saved TALL model (a full or an adapters-only checkpoint) and its processor from one folder (or hub
        id), and its LR->HR translator (`from_model`); `kwargs` go to the model's `from_pretrained` (e.g. `dtype`,
        `revision`)."""
        load = partial(load_checkpoint, TallForConditionalGeneration)  # full or adapters-only
        model = load_pretrained(
            TallForConditionalGeneration, model_name_or_path, role="TALL model", load=load, **kwargs
        )
        processor = load_pretrained(
            TallProcessor, model_name_or_path, role="TALL processor", revision=kwargs.get("revision")
        )
        return cls.from_model(model, processor, translator, translator_revision=translator_revision)

    @classmethod
    def from_model(
        cls,
        model: TallForConditionalGeneration,
        processor: TallProcessor,
        translator: str | os.PathLike | None = None,
        *,
        translator_revision: str | None = None,
    ) -> TallPredictor:
        """A predictor around a loaded model and processor, with the LR->HR translator loaded now: the model's own
        (`tall_hf.data.translation.lr_hr_translator`: its encoder is stage 1, its decoder side from the checkpoint's
        `translator/` folder or the recorded `lr_hr` component), or `translator` (a hub id or folder) instead."""
        return cls(model, processor, lr_hr_translator(model, translator, revision=translator_revision))

    # ------------------------------------------------------------------ public API
    def predict_next_word(
        self,
        prefixes: list[str],
        *,
        batch_size: int = 16,
        seed: int | None = None,
        use_cache: bool = True,
        translations: list[str] | None = None,
        **decoding,
    ) -> list[str]:
        """The predicted next word of every prefix, normalised (punctuation removed); `""` where the model ends the
        sentence instead. `translations` (HR translations of the prefixes) skip the translator; `decoding` are
        `DecodingOptions` fields (`do_sample`, `temperature`, `top_k`, `top_p`, `max_word_tokens`)."""
        options = DecodingOptions(**decoding)
        generators = self._generators(seed, len(prefixes))
        words = self._next_words(prefixes, options, batch_size, use_cache, generators, translations)
        return [normalize_text(word) for word in words]

    def continue_text(
        self,
        prefixes: list[str],
        num_words: int = 5,
        *,
        batch_size: int = 16,
        seed: int | None = None,
        use_cache: bool = True,
        translations: list[str] | None = None,
        **decoding,
    ) -> list[str]:
        """The next `num_words` words of every prefix (the continuation only), predicted one word at a time: each
        word is appended to its prefix, which is translated again for the next one. A text the model ends early
        has fewer words. `translations` (of the prefixes) replace the translator for the first word only; `decoding` as
        in `predict_next_word`."""
        if num_words < 1:
            raise ValueError(f"num_words must be at least 1, got {num_words}.")
        options = DecodingOptions(**decoding)
        texts = self._check_prefixes(prefixes)
        generators = self._generators(seed, len(texts))
        first = [translations]  # the given translations serve the first word only

        def next_words(rows: list[int], row_texts: list[str]) -> list[str]:
            row_generators = None if generators is None else [generators[i] for i in rows]
            return self._next_words(
                row_texts, options, batch_size, use_cache, row_generators, first.pop() if first else None
            )

        return continue_word_by_word(texts, num_words, next_words)

    # ------------------------------------------------------------------ shared steps
    def _generators(self, seed: int | None, count: int) -> list[torch.Generator] | None:
        """One random stream per sentence, derived from `seed`: a sentence's sampled words then depend neither on the
        batch it shares nor on the path (cached or reference). `None` (no seed) samples from torch's global stream."""
        if seed is None:
            return None
        row_seeds = torch.randint(2**62, (count,), generator=torch.Generator().manual_seed(seed)).tolist()
        return [torch.Generator(device=self.model.device).manual_seed(row_seed) for row_seed in row_seeds]

    @staticmethod
    def _check_prefixes(prefixes: list[str]) -> list[str]:
        if isinstance(prefixes, str):
            raise TypeError("Pass a list of prefixes, one per sentence.")
        if not prefixes:
            raise ValueError("No prefixes given: pass at least one text whose next word to predict.")
        cleaned = []
        for index, prefix in enumerate(prefixes):
            if not isinstance(prefix, str):
                raise TypeError(f"Prefix {index} is a {type(prefix).__name__}, not a string.")
            found = words(prefix)  # invisible code points (direction marks, joiners) removed
            if not found:
                raise ValueError(
                    f"Prefix {index} ({prefix!r}) is empty: next-word prediction needs at least one word to read."
                )
            cleaned.append(" ".join(found))
        return cleaned

    @property
    def translator(self) -> PreTrainedModel:
        """The LR->HR translator: the one given, else the model's own (loaded on first use)."""
        if self._translator is None:
            self._translator = lr_hr_translator(self.model)
        return self._translator

    def translate(self, prefixes: list[str], batch_size: int = 16) -> list[str]:
        """HR translations of LR prefixes with the translator, batched, each distinct prefix translated once."""
        return self._translate(prefixes, batch_size, keep_stage_1=False)[0]

    def _translate(
        self, prefixes: list[str], batch_size: int, keep_stage_1: bool = True
    ) -> tuple[list[str], list[BaseModelOutput | None] | None]:
        """`translate`, and with `keep_stage_1`, where the translator's encoder is the model's stage 1 (its own
        translator), each prefix's output of it, which TALL then reads instead of encoding the prefix again
        (`None` for the rows the translator cut; no list at all for another translator)."""
        distinct = list(dict.fromkeys(prefixes))
        keep_stage_1 = keep_stage_1 and self.translator.get_encoder() is self.model.lr_encoder
        translated = translate(
            distinct,
            self.translator,
            self.processor.source_tokenizer,
            batch_size=batch_size,
            return_encoder_outputs=keep_stage_1,
            output_hidden_states=self.model.encoder_fusion.uses_all_layers,
        )
        translations, stage_1 = translated if keep_stage_1 else (translated, None)
        position = {prefix: index for index, prefix in enumerate(distinct)}
        rows = [position[prefix] for prefix in prefixes]
        return [translations[i] for i in rows], None if stage_1 is None else [stage_1[i] for i in rows]

    def _next_words(
        self,
        prefixes: list[str],
        options: DecodingOptions,
        batch_size: int,
        use_cache: bool,
        generators: list[torch.Generator] | None,
        translations: list[str] | None,
    ) -> list[str]:
        """The raw (not normalised) next word of every prefix (`generators`: one per prefix, or None): rows in order
        of their target stream's length, per batch (`_batches`), per group of rows whose target streams have one
        length, one `generate` call."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        prefixes = self._check_prefixes(prefixes)
        if translations is not None and len(translations) != len(prefixes):
            raise ValueError(f"Got {len(translations)} translations for {len(prefixes)} prefixes.")
        self.unreadable, self._cut_rows = 0, set()
        prefixes = self._fit_prefixes(prefixes, options.max_word_tokens)
        target_lengths = [len(ids) for ids in self.processor.target_token_ids(prefixes)]
        word_ids: list[list[int]] = [[] for _ in prefixes]
        for rows, bridge, stage_1 in self._batches(prefixes, translations, target_lengths, batch_size):
            groups: dict[int, list[int]] = defaultdict(list)  # positions in the batch by target length
            for position, index in enumerate(rows):
                groups[target_lengths[index]].append(position)
            for positions in groups.values():
                group = [rows[p] for p in positions]
                row_generators = None if generators is None else [generators[i] for i in group]
                words = self._generate_words(
                    [prefixes[i] for i in group],
                    [bridge[p] for p in positions],
                    options,
                    use_cache,
                    row_generators,
                    None if stage_1 is None else [stage_1[p] for p in positions],
                )
                for index, ids in zip(group, words, strict=True):
                    word_ids[index] = ids
                advance_phase(len(group))
        self.truncated = len(self._cut_rows)
        if self.truncated or self.unreadable:
            logger.warning(
                f"TALL: of {len(prefixes)} prefixes, {self.truncated} were cut to their last words to fit the model's "
                f"{self.model.config.max_stream_tokens}-token position tables, and {self.unreadable} have a translation "
                "the LLM's tokenizer turns into no tokens (left unanswered)."
            )
        words = self.processor.batch_decode(word_ids)
        return [word.strip() for word in words]

    def _batches(
        self, prefixes: list[str], translations: list[str] | None, target_lengths: list[int], batch_size: int
    ) -> Iterator[tuple[list[int], list[str], list[BaseModelOutput | None] | None]]:
        """Batches of at most `batch_size` rows in order of their target stream's length, as `(rows, their
        translations, their stage-1 outputs or None)`, without the rows whose translation the LLM's tokenizer turns
        into no tokens (counted in `unreadable`, left unanswered). Given `translations` are filtered before batching;
        otherwise each batch is translated on its own, and the LR encoder's output the translation computed is kept
        for TALL's stage 1 (`_translate`): the LR encoder runs once per prefix."""
        order = sorted(range(len(prefixes)), key=target_lengths.__getitem__)
        if translations is not None:
            translations = self._fit_translations(translations, list(range(len(translations))))
            readable = self._readable(translations)
            order = [index for index in order if readable[index]]
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                yield rows, [translations[i] for i in rows], None
            return
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            bridge, stage_1 = self._translate([prefixes[i] for i in rows], batch_size)
            bridge = self._fit_translations(bridge, rows)
            kept = [position for position, ok in enumerate(self._readable(bridge)) if ok]
            yield (
                [rows[p] for p in kept],
                [bridge[p] for p in kept],
                None if stage_1 is None else [stage_1[p] for p in kept],
            )

    def _readable(self, translations: list[str]) -> list[bool]:
        """Whether the LLM's tokenizer reads each translation as at least one token; the others count in
        `unreadable`."""
        readable = [bool(ids) for ids in self.processor.llm_tokenizer(translations)["input_ids"]]
        self.unreadable += readable.count(False)
        return readable

    def _fit_prefixes(self, prefixes: list[str], max_word_tokens: int) -> list[str]:
        """Each prefix cut to its last words where its source or target stream (with room for the predicted word)
        would exceed the model's position tables."""
        limit = self.model.config.max_stream_tokens

        def fits(text: str) -> bool:
            source = len(self.processor.source_tokenizer(text)["input_ids"])
            target = 1 + len(self.processor.target_token_ids([text])[0]) + max_word_tokens
            return source <= limit and target <= limit

        fitted = [keep_end(prefix, fits) for prefix in prefixes]
        self._cut_rows.update(i for i, (new, old) in enumerate(zip(fitted, prefixes, strict=True)) if new != old)
        return fitted

    def _fit_translations(self, translations: list[str], rows: list[int]) -> list[str]:
        """Each translation (of prefix `rows[i]`) cut to its last words where its bridge stream would exceed the
        position tables."""
        limit = self.model.config.max_stream_tokens
        tokenizer = self.processor.llm_tokenizer
        fitted = [keep_end(text, lambda text: len(tokenizer(text)["input_ids"]) <= limit) for text in translations]
        self._cut_rows.update(row for row, new, old in zip(rows, fitted, translations, strict=True) if new != old)
        return fitted

    @torch.inference_mode()
    def _generate_words(
        self,
        prefixes: list[str],
        translations: list[str],
        options: DecodingOptions,
        use_cache: bool,
        generators: list[torch.Generator] | None,
        stage_1: list[BaseModelOutput | None] | None = None,
    ) -> list[list[int]]:
        """`generate` the next word of prefixes whose target streams have one length: greedy, sampled with the
        paper's warpers (from each row's own random stream when `generators` are given), stopped at a word boundary.
        `stage_1`: each prefix's LR encoder output, from its translation (used where every row has one)."""
        batch = self.processor(prefixes, translations).to(self.model.device)
        if stage_1 is not None and all(row is not None for row in stage_1):
            batch["lr_encoder_outputs"] = batch_encoder_outputs(stage_1)
        sampling: dict = {"do_sample": False}
        logits_processor = LogitsProcessorList()
        if options.do_sample and generators is not None:
            logits_processor.extend([*options.warpers(), PerRowSampler(generators)])
        elif options.do_sample:
            sampling = {"do_sample": True, "temperature": options.temperature, "top_k": options.top_k}
            sampling["top_p"] = options.top_p
        generated = self.model.generate(
            **batch,
            max_new_tokens=options.max_word_tokens,
            use_cache=use_cache,
            logits_processor=logits_processor,
            stopping_criteria=StoppingCriteriaList([WordBoundaryCriteria(self.word_start, self.eos_token_id)]),
            **sampling,
        )
        prompt_length = batch["decoder_input_ids"].shape[1]
        pad_token_id = self.processor.target_tokenizer.pad_token_id
        return split_words(generated[:, prompt_length:], self.word_start, self.eos_token_id, pad_token_id)

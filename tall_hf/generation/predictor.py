"""Next-word prediction and multi-word continuation with TALL.

The default path runs stages 1-6 once per word (they read the HR translation of the whole LR prefix, which changes
only when a word is added), batched over sentences, and the stage-7 LR decoder token by token with its KV cache.
`use_cache=False` runs the paper's reference algorithm instead: for every new token, the prefix is translated again
and all seven stages run on the whole target stream, without a cache.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    LogitsProcessorList,
    PreTrainedModel,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)
from transformers.utils import logging

from ..data.translation import translate
from ..models.tall import TallForCausalLM, TallProcessor
from ..models.tall.modeling_tall import TallEncoderOutput
from ..utils.hub import load_pretrained
from ..utils.padding import pad_rows
from ..utils.text import normalize_text

WORD_START_MARKERS = ("\u2581", "\u0120")  # sentencepiece's "▁" and byte-level BPE's "Ġ"

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


@dataclass(frozen=True)
class DecodingOptions:
    """How each token of a word is chosen: greedy, or sampled after the paper's temperature / top-k / top-p."""

    do_sample: bool = False
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    max_word_tokens: int = 8

    def __post_init__(self) -> None:
        if self.max_word_tokens < 1:
            raise ValueError(f"max_word_tokens must be at least 1, got {self.max_word_tokens}.")


class TallPredictor:
    """Predicts the next LR word after each prefix (and continues texts word by word) with a TALL model.

    ```python
    >>> predictor = TallPredictor.from_pretrained("path/to/tall-model")
    >>> predictor.predict_next_word(["הילדים הלכו אל"])
    >>> predictor.continue_text(["הילדים הלכו אל"], num_words=5, do_sample=True, seed=0)
    ```
    """

    def __init__(
        self,
        model: TallForCausalLM,
        processor: TallProcessor,
        translator: PreTrainedModel,
        translator_tokenizer,
    ) -> None:
        processor.check_compatible(model.config)
        self.model = model.eval()
        self.processor = processor
        self.translator = translator.eval()
        self.translator_tokenizer = translator_tokenizer
        # Counts of the last prediction call: prefixes cut to fit the position tables, and rows left unanswered.
        self.truncated = self.unreadable = 0
        target_tokenizer = processor.target_tokenizer
        self.eos_token_id = target_tokenizer.eos_token_id
        vocab_size = model.get_output_embeddings().out_features
        pieces = target_tokenizer.convert_ids_to_tokens(list(range(min(len(target_tokenizer), vocab_size))))
        starts = [piece is not None and piece.startswith(WORD_START_MARKERS) for piece in pieces]
        self.word_start = torch.zeros(vocab_size, dtype=torch.bool)
        self.word_start[: len(starts)] = torch.tensor(starts, dtype=torch.bool)
        self.word_start = self.word_start.to(model.device)
        # The decoder start / pad token is never a prediction (Marian checkpoints ban it in their generation config).
        self.suppress = SuppressTokensLogitsProcessor([processor.decoder_start_token_id], device=model.device)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        translator: str | os.PathLike | None = None,
        *,
        translator_revision: str | None = None,
        **kwargs,
    ) -> TallPredictor:
        """Load a saved TALL model and its processor from one folder (or hub id), and the LR->HR translator.

        The translator defaults to the one the model was built from (`config.components["lr_hr"]`); `kwargs` go to
        the model's `from_pretrained` (e.g. `dtype`, `revision`).
        """
        model = load_pretrained(TallForCausalLM, model_name_or_path, role="TALL model", **kwargs)
        processor = load_pretrained(
            TallProcessor, model_name_or_path, role="TALL processor", revision=kwargs.get("revision")
        )
        return cls.from_model(model, processor, translator, translator_revision=translator_revision)

    @classmethod
    def from_model(
        cls,
        model: TallForCausalLM,
        processor: TallProcessor,
        translator: str | os.PathLike | None = None,
        *,
        translator_revision: str | None = None,
    ) -> TallPredictor:
        """A predictor around a loaded model and processor; the translator (a hub id or folder) defaults to the one
        recorded in `model.config.components["lr_hr"]`."""
        if translator is None:
            provenance = (model.config.components or {}).get("lr_hr", {})
            translator = provenance.get("name_or_path")
            translator_revision = translator_revision or provenance.get("revision")
            if not translator:
                raise ValueError(
                    "The model does not record its LR->HR translator (config.components['lr_hr']); pass "
                    "`translator=` (a hub id or local folder)."
                )
        translator_model = load_pretrained(
            AutoModelForSeq2SeqLM, translator, role="LR->HR translator", revision=translator_revision
        ).to(model.device)
        translator_tokenizer = load_pretrained(
            AutoTokenizer, translator, role="LR->HR translator tokenizer", revision=translator_revision
        )
        return cls(model, processor, translator_model, translator_tokenizer)

    # ------------------------------------------------------------------ public API
    def predict_next_word(
        self,
        prefixes: list[str],
        *,
        batch_size: int = 16,
        do_sample: bool = False,
        temperature: float = 0.7,
        top_k: int = 50,
        top_p: float = 0.95,
        seed: int | None = None,
        use_cache: bool = True,
        max_word_tokens: int = 8,
        translations: list[str] | None = None,
    ) -> list[str]:
        """The predicted next word of every prefix, normalised (punctuation removed); `""` where the model ends the
        sentence instead. `translations` (HR translations of the prefixes) skip the translator."""
        options = DecodingOptions(do_sample, temperature, top_k, top_p, max_word_tokens)
        generators = self._generators(seed, len(prefixes))
        words = self._next_words(prefixes, options, batch_size, use_cache, generators, translations)
        return [normalize_text(word) for word in words]

    def continue_text(
        self,
        prefixes: list[str],
        num_words: int = 5,
        *,
        batch_size: int = 16,
        do_sample: bool = False,
        temperature: float = 0.7,
        top_k: int = 50,
        top_p: float = 0.95,
        seed: int | None = None,
        use_cache: bool = True,
        max_word_tokens: int = 8,
        translations: list[str] | None = None,
    ) -> list[str]:
        """The next `num_words` words of every prefix (the continuation only), predicted one word at a time: each
        word is appended to its prefix, which is translated again for the next one. A text the model ends early
        has fewer words. `translations` (of the prefixes) replace the translator for the first word only."""
        if num_words < 1:
            raise ValueError(f"num_words must be at least 1, got {num_words}.")
        options = DecodingOptions(do_sample, temperature, top_k, top_p, max_word_tokens)
        texts = self._check_prefixes(prefixes)
        generators = self._generators(seed, len(texts))
        continuations: list[list[str]] = [[] for _ in texts]
        active = list(range(len(texts)))
        for _ in range(num_words):
            row_generators = None if generators is None else [generators[i] for i in active]
            row_texts = [texts[i] for i in active]
            words = self._next_words(row_texts, options, batch_size, use_cache, row_generators, translations)
            translations = None
            still_active = []
            for index, word in zip(active, words, strict=True):
                if word:
                    texts[index] = f"{texts[index]} {word}"
                    continuations[index].append(word)
                    still_active.append(index)
            active = still_active
            if not active:
                break
        return [" ".join(words) for words in continuations]

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
            if not prefix.split():
                raise ValueError(
                    f"Prefix {index} ({prefix!r}) is empty: next-word prediction needs at least one word to read."
                )
            cleaned.append(" ".join(prefix.split()))
        return cleaned

    def _translate(self, prefixes: list[str], batch_size: int) -> list[str]:
        return translate(prefixes, self.translator, self.translator_tokenizer, batch_size=batch_size)

    def _next_words(
        self,
        prefixes: list[str],
        options: DecodingOptions,
        batch_size: int,
        use_cache: bool,
        generators: list[torch.Generator] | None,
        translations: list[str] | None,
    ) -> list[str]:
        """The raw (not normalised) next word of every prefix (`generators`: one per prefix, or None)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        prefixes = self._check_prefixes(prefixes)
        if translations is not None and len(translations) != len(prefixes):
            raise ValueError(f"Got {len(translations)} translations for {len(prefixes)} prefixes.")
        sampler = self._sampler(options)
        self.unreadable, self._cut_rows = 0, set()
        prefixes = self._fit_prefixes(prefixes, options.max_word_tokens)
        if use_cache:
            words = self._next_words_cached(prefixes, options, sampler, batch_size, generators, translations)
        else:
            words = self._next_words_reference(prefixes, options, sampler, batch_size, generators, translations)
        self.truncated = len(self._cut_rows)
        if self.truncated or self.unreadable:
            logger.warning(
                f"TALL: of {len(prefixes)} prefixes, {self.truncated} were cut to their last words to fit the model's "
                f"{self.model.config.max_stream_tokens}-token position tables, and {self.unreadable} have a translation "
                "the LLM's tokenizer turns into no tokens (left unanswered)."
            )
        return words

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

    def _sampler(self, options: DecodingOptions) -> LogitsProcessorList | None:
        if not options.do_sample:
            return None
        return LogitsProcessorList(
            [
                TemperatureLogitsWarper(options.temperature),
                TopKLogitsWarper(options.top_k),
                TopPLogitsWarper(options.top_p),
            ]
        )

    def _choose(
        self,
        sequences: torch.LongTensor,
        scores: torch.FloatTensor,
        sampler: LogitsProcessorList | None,
        generators: list[torch.Generator] | None,
    ) -> torch.LongTensor:
        """One token per row: the argmax, or a draw from the warped distribution (from the row's own stream)."""
        scores = self.suppress(sequences, scores.float())
        if sampler is None:
            return scores.argmax(dim=-1)
        probabilities = torch.softmax(sampler(sequences, scores), dim=-1)
        if generators is None:
            return torch.multinomial(probabilities, 1).squeeze(1)
        rows = zip(probabilities, generators, strict=True)
        return torch.cat([torch.multinomial(row, 1, generator=generator) for row, generator in rows])

    def _stops(self, tokens: torch.LongTensor, step: int) -> torch.BoolTensor:
        """A word ends at the end-of-sentence token, or (after its first token) at a token that starts a new word."""
        stops = tokens.eq(self.eos_token_id)
        if step > 0:
            stops |= self.word_start[tokens.to(self.word_start.device)].to(tokens.device)
        return stops

    def _decode_words(self, word_ids: list[list[int]]) -> list[str]:
        words = self.processor.target_tokenizer.batch_decode(word_ids, skip_special_tokens=True)
        return [word.strip() for word in words]

    # ------------------------------------------------------------------ default path: per word, batched, cached
    @torch.inference_mode()
    def _next_words_cached(
        self,
        prefixes: list[str],
        options: DecodingOptions,
        sampler: LogitsProcessorList | None,
        batch_size: int,
        generators: list[torch.Generator] | None,
        translations: list[str] | None,
    ) -> list[str]:
        """Stages 1-6 once per prefix, batched; stage 7 with a KV cache, per group of rows whose target prefixes have
        one length (the Marian decoder derives positions from the cache length, so its stream must not be padded)."""
        target_lengths = [len(ids) for ids in self.processor.target_token_ids(prefixes)]
        order = sorted(range(len(prefixes)), key=target_lengths.__getitem__)
        if translations is None:
            ordered = self._translate([prefixes[i] for i in order], batch_size)
            translations = [None] * len(prefixes)
            for index, translation in zip(order, ordered, strict=True):
                translations[index] = translation
        translations = self._fit_translations(translations, list(range(len(translations))))
        word_ids: list[list[int]] = [[] for _ in prefixes]
        readable = [bool(ids) for ids in self.processor.llm_tokenizer(translations)["input_ids"]]
        self.unreadable += readable.count(False)
        order = [index for index in order if readable[index]]
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self.processor([prefixes[i] for i in chunk], [translations[i] for i in chunk])
            batch = batch.to(self.model.device)
            encoded = self.model.encode(
                batch["input_ids"], batch["attention_mask"], batch["bridge_input_ids"], batch["bridge_attention_mask"]
            )
            groups: dict[int, list[int]] = defaultdict(list)
            for row, index in enumerate(chunk):
                groups[target_lengths[index]].append(row)
            for length, rows in groups.items():
                rows_tensor = torch.tensor(rows, device=self.model.device)
                mask = encoded.attention_mask[rows_tensor]
                width = int(mask.sum(dim=1).max())
                group_encoded = TallEncoderOutput(
                    last_hidden_state=encoded.last_hidden_state[rows_tensor, :width], attention_mask=mask[:, :width]
                )
                decoder_input_ids = batch["decoder_input_ids"][rows_tensor, : length + 1]
                group_generators = None if generators is None else [generators[chunk[row]] for row in rows]
                words = self._decode_one_word(decoder_input_ids, group_encoded, options, sampler, group_generators)
                for row, ids in zip(rows, words, strict=True):
                    word_ids[chunk[row]] = ids
        return self._decode_words(word_ids)

    def _decode_one_word(
        self,
        decoder_input_ids: torch.LongTensor,
        encoded: TallEncoderOutput,
        options: DecodingOptions,
        sampler: LogitsProcessorList | None,
        generators: list[torch.Generator] | None,
    ) -> list[list[int]]:
        """Stage 7 with a KV cache over an unpadded group: the prefix once, then one token per step."""
        logits, cache = self.model.decode(decoder_input_ids, encoded, use_cache=True)
        sequences = decoder_input_ids
        words: list[list[int]] = [[] for _ in range(decoder_input_ids.shape[0])]
        active = torch.ones(decoder_input_ids.shape[0], dtype=torch.bool, device=decoder_input_ids.device)
        for step in range(options.max_word_tokens):
            tokens = self._choose(sequences, logits[:, -1], sampler, generators)
            active &= ~self._stops(tokens, step)
            for row in active.nonzero().flatten().tolist():
                words[row].append(int(tokens[row]))
            if not active.any() or step == options.max_word_tokens - 1:
                break
            sequences = torch.cat([sequences, tokens[:, None]], dim=1)
            logits, cache = self.model.decode(tokens[:, None], encoded, past_key_values=cache, use_cache=True)
        return words

    # ------------------------------------------------------------------ reference algorithm: per token, no cache
    @torch.inference_mode()
    def _next_words_reference(
        self,
        prefixes: list[str],
        options: DecodingOptions,
        sampler: LogitsProcessorList | None,
        batch_size: int,
        generators: list[torch.Generator] | None,
        translations: list[str] | None,
    ) -> list[str]:
        """The paper's reference generation loop: for every new token, translate the prefix again and run all seven
        stages on the whole target stream (prefix + the word so far), without a cache. Kept as the baseline the
        cached path is checked and benchmarked against."""
        prefix_ids = self.processor.target_token_ids(prefixes)
        start_id, pad_id = self.processor.decoder_start_token_id, self.processor.target_tokenizer.pad_token_id
        word_ids: list[list[int]] = [[] for _ in prefixes]
        for start in range(0, len(prefixes), batch_size):
            chunk = list(range(start, min(start + batch_size, len(prefixes))))
            active = torch.ones(len(chunk), dtype=torch.bool)
            for step in range(options.max_word_tokens):
                chunk_prefixes = [prefixes[i] for i in chunk]
                if translations is None:
                    chunk_translations = self._translate(chunk_prefixes, batch_size)
                else:
                    chunk_translations = [translations[i] for i in chunk]
                chunk_translations = self._fit_translations(chunk_translations, chunk)
                batch = self.processor(chunk_prefixes, chunk_translations)
                rows = [[start_id] + prefix_ids[i] + word_ids[i] for i in chunk]
                batch["decoder_input_ids"], batch["decoder_attention_mask"] = pad_rows(rows, pad_id)
                batch = batch.to(self.model.device)
                logits = self.model(**batch, use_cache=False).logits
                last = batch["decoder_attention_mask"].sum(dim=1) - 1
                scores = logits[torch.arange(len(chunk), device=logits.device), last]
                chunk_generators = None if generators is None else [generators[i] for i in chunk]
                tokens = self._choose(batch["decoder_input_ids"], scores, sampler, chunk_generators).cpu()
                active &= ~self._stops(tokens, step)
                for row in active.nonzero().flatten().tolist():
                    word_ids[chunk[row]].append(int(tokens[row]))
                if not active.any():
                    break
        return self._decode_words(word_ids)

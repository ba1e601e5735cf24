"""The frozen components without TALL: a causal LM writes the next word after each text (until the word ends), and the
pivot through it (translate the LR prefix to HR, the LLM adds one HR word, translate the completed HR sentence back,
take its last word). The evaluation's Direct and Naive approaches and the teacher labels of `tall_hf.training.teacher`
run on it.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import ClassVar

import torch
from peft import PeftModel
from tokenizers import decoders
from transformers import (
    AutoTokenizer,
    BatchEncoding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteriaList,
    set_seed,
)
from transformers.utils import logging
from transformers.utils.logging import tqdm

from ..data.translation import position_limit, tokenize_keeping_ends, translate
from ..utils.loading import load_pretrained
from ..utils.progress import advance_phase
from ..utils.text import words
from .decoding import SAMPLING
from .word_boundary import WordBoundaryCriteria, word_start_mask

logger = logging.get_logger(__name__)

# The decoder that undoes each `tokenizers` pre-tokenizer (its word markers: sentencepiece's "▁", byte-level's "Ġ").
MATCHING_DECODERS = {"ByteLevel": decoders.ByteLevel, "Metaspace": decoders.Metaspace}
# Tokens the forced-prefix back-translation may write past the LR prefix (enough for the next word).
FORCED_PREFIX_NEW_TOKENS = 16


def first_word(text: str) -> str:
    """The first whitespace-separated word of `text` (invisible code points removed), or `""` when it has none."""
    found = words(text)
    return found[0] if found else ""


def last_word(text: str) -> str:
    """The last whitespace-separated word of `text` (invisible code points removed), or `""` when it has none."""
    found = words(text)
    return found[-1] if found else ""


def with_decoder(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """`tokenizer`, or a copy of it given the decoder of its pre-tokenizer when it has none: without one, `decode`
    joins token strings with spaces and keeps their word markers ("▁word", "Ġword"), which are no words."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.decoder is not None:
        return tokenizer
    pre_tokenizer = json.loads(backend.to_str()).get("pre_tokenizer") or {}
    steps = pre_tokenizer.get("pretokenizers", [pre_tokenizer])  # one pre-tokenizer or a Sequence of them
    matching = [MATCHING_DECODERS[step["type"]] for step in steps if step.get("type") in MATCHING_DECODERS]
    if not matching:
        logger.warning("The LLM tokenizer has no decoder and no byte-level or metaspace pre-tokenizer to undo.")
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.backend_tokenizer.decoder = matching[0]()
    return tokenizer


def load_llm_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """The LLM's tokenizer, padding on the left for batched generation (the models take their position ids from the
    attention mask), with a pad token."""
    tokenizer = load_pretrained(AutoTokenizer, name_or_path, role="LLM tokenizer", padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class NextWordLM:
    """A causal LM continues each text until it has written one word; that word is its answer.

    The text goes in as the model was trained on text: with its tokenizer's special tokens (a BOS where the tokenizer
    adds one) and without a trailing space, so the model writes the word's leading space itself (a lone space token
    is a sequence most LLMs never saw). Generation stops at the word's end (`WordBoundaryCriteria`: the first token
    after it that starts a new word, or the end of sentence), within `max_new_tokens`: enough for a long word spelled
    byte by byte, as a byte-level tokenizer spells a script it was not trained on. Batches are padded on the left; the
    models take their position ids from the attention mask, so padding does not change what is generated.
    """

    display_name: ClassVar[str] = "LLM"
    # Set by the last call: texts cut to what the model reads, and texts its tokenizer could not read.
    truncated: int = 0
    unreadable: int = 0

    def __init__(
        self, model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int = 40
    ) -> None:
        if tokenizer.padding_side != "left":
            raise ValueError("Batched generation with a causal LM needs a tokenizer with padding_side='left'.")
        self.model = model.eval()
        self.tokenizer = with_decoder(tokenizer)
        self.max_new_tokens = max_new_tokens
        self.word_start = word_start_mask(self.tokenizer, model.config.vocab_size)

    def stopping_criteria(self) -> StoppingCriteriaList:
        """A fresh word-boundary stop for one `generate` call (none for a tokenizer without word markers, which then
        stops at `max_new_tokens`)."""
        if not self.word_start.any():
            return StoppingCriteriaList()
        eos = self.tokenizer.eos_token_id
        return StoppingCriteriaList([WordBoundaryCriteria(self.word_start, -1 if eos is None else eos)])

    @torch.inference_mode()
    def continuations(
        self, texts: list[str], *, batch_size: int = 16, do_sample: bool = False, seed: int | None = None, **sampling
    ) -> list[str]:
        """The decoded text the model generates after each of `texts` (at most `max_new_tokens` tokens); `sampling`
        (temperature, top_k, top_p) replaces the paper's `SAMPLING` when `do_sample`."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        decoding = {"do_sample": do_sample, **({**SAMPLING, **sampling} if do_sample else {})}
        if seed is not None:
            set_seed(seed)
        device = next(self.model.parameters()).device
        limit = position_limit(self.model.config, self.tokenizer)
        limit = None if limit is None else limit - self.max_new_tokens
        outputs: list[str] = [""] * len(texts)
        # A text the tokenizer turns into no tokens (e.g. a script it drops) has nothing to continue: unanswered.
        readable = [i for i, ids in enumerate(self.tokenizer(texts, add_special_tokens=False)["input_ids"]) if ids]
        self.unreadable = len(texts) - len(readable)
        self.truncated = 0
        starts = range(0, len(readable), batch_size)
        for start in tqdm(starts, desc=f"{self.display_name}: generating", disable=len(starts) < 2, leave=False):
            rows = readable[start : start + batch_size]
            inputs, cut = tokenize_keeping_ends(self.tokenizer, [texts[i] for i in rows], limit)
            self.truncated += cut
            new_tokens = self.generate_new_tokens(
                inputs.to(device),
                max_new_tokens=self.max_new_tokens,
                stopping_criteria=self.stopping_criteria(),
                pad_token_id=self.tokenizer.pad_token_id,
                **decoding,
            )
            for row, text in zip(rows, self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                outputs[row] = text
            advance_phase(len(rows))
        if self.unreadable or self.truncated:
            logger.warning(
                f"{self.display_name}: of {len(texts)} texts, {self.unreadable} have no tokens for the LLM's tokenizer "
                f"(left unanswered) and {self.truncated} were cut to their last {limit} tokens."
            )
        return outputs

    def generate_new_tokens(self, inputs: BatchEncoding, **generate_kwargs) -> torch.LongTensor:
        """The tokens `generate` adds after the left-padded `inputs`."""
        generated = self.model.generate(**inputs, **generate_kwargs)
        return generated[:, inputs["input_ids"].shape[1] :]

    def next_words(self, texts: list[str], **generation) -> list[str]:
        """The word the model writes after each text (`""` where it writes none)."""
        return [first_word(text) for text in self.continuations([text.rstrip() for text in texts], **generation)]


def back_translated_last_words(
    translator: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, completed: list[str], batch_size: int = 16
) -> list[str]:
    """The LR word of each completed HR sentence: the last word of its translation (the translator's own generation
    settings)."""
    return [last_word(text) for text in translate(completed, translator, tokenizer, batch_size=batch_size)]


@torch.inference_mode()
def forced_prefix_words(
    translator: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prefixes: list[str],
    completed: list[str],
    batch_size: int = 16,
    max_new_tokens: int = FORCED_PREFIX_NEW_TOKENS,
) -> list[str]:
    """The LR word after each LR prefix when the HR->LR `translator` reads the completed HR sentence with its decoder
    start token and the prefix's tokens forced as the start of its output, then generates on (its own generation
    settings, at most `max_new_tokens` past the prefix): the back-translation TALL's LR decoder does, without TALL."""
    start = translator.generation_config.decoder_start_token_id
    if start is None:
        start = translator.config.decoder_start_token_id
    forced = [[start, *ids] for ids in tokenizer(text_target=prefixes, add_special_tokens=False)["input_ids"]]
    source_ids = tokenizer(completed, truncation=True)["input_ids"]
    groups: dict[int, list[int]] = {}  # rows of one forced length share a `generate` call (no decoder padding)
    for row, ids in enumerate(forced):
        groups.setdefault(len(ids), []).append(row)
    found = [""] * len(prefixes)
    for rows in groups.values():
        for begin in range(0, len(rows), batch_size):
            batch = rows[begin : begin + batch_size]
            inputs = tokenizer.pad({"input_ids": [source_ids[i] for i in batch]}, return_tensors="pt")
            generated = translator.generate(
                **inputs.to(translator.device),
                decoder_input_ids=torch.tensor([forced[i] for i in batch], device=translator.device),
                max_length=len(forced[batch[0]]) + max_new_tokens,  # the translator's config sets one
            )
            for row, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                after = text.split()[len(prefixes[row].split()) :]
                found[row] = after[0] if after else ""
    return found


def pivot_words(
    prefixes: list[str],
    translations: list[str],
    llm: NextWordLM,
    back_translate: Callable[[list[str], list[str], int], list[str]],
    *,
    batch_size: int = 16,
    **generation,
) -> list[str]:
    """The pivot's LR word after each LR prefix, from the prefixes' HR `translations`: the LLM's next HR word, then
    `back_translate(prefixes, completed HR sentences, batch_size)` of the rows it answered; `""` where the LLM wrote
    no word."""
    hr_words = llm.next_words(translations, batch_size=batch_size, **generation)
    answered = [i for i, word in enumerate(hr_words) if word]
    found = [""] * len(prefixes)
    if answered:
        completed = [f"{translations[i]} {hr_words[i]}" for i in answered]
        back = back_translate([prefixes[i] for i in answered], completed, batch_size)
        for i, word in zip(answered, back, strict=True):
            found[i] = word
    return found


__all__ = [
    "FORCED_PREFIX_NEW_TOKENS",
    "NextWordLM",
    "back_translated_last_words",
    "first_word",
    "forced_prefix_words",
    "last_word",
    "load_llm_tokenizer",
    "pivot_words",
    "with_decoder",
]

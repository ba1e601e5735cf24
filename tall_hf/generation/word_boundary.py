"""Word-level generation with `generate`: a stopping criterion at word boundaries, per-sentence random streams, and
the split of generated ids into the next word."""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase, StoppingCriteria

WORD_START_MARKERS = ("\u2581", "\u0120")  # sentencepiece's "▁" and byte-level BPE's "Ġ"


def word_start_mask(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> torch.BoolTensor:
    """`mask[id]`: whether token `id` begins a new word (its piece carries the tokenizer's word-start marker)."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(min(len(tokenizer), vocab_size))))
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[: len(pieces)] = torch.tensor([p is not None and p.startswith(WORD_START_MARKERS) for p in pieces])
    return mask


class WordBoundaryCriteria(StoppingCriteria):
    """Stops a sequence once its newest token ends the word being generated: the end-of-sentence token, or, after the
    word's first token, a token that starts a new word (that token is not part of the word: see [`split_words`]).

    One criterion serves one `generate` call: it takes the prompt length at its first step. (TALL's `generate`,
    which runs one call per target length, gives each call its own copy.)"""

    def __init__(self, word_start: torch.BoolTensor, eos_token_id: int) -> None:
        self.word_start = word_start
        self.eos_token_id = eos_token_id
        self._prompt_length: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        length = input_ids.shape[1]
        if self._prompt_length is None:
            self._prompt_length = length - 1
        newest = input_ids[:, -1]
        done = newest.eq(self.eos_token_id)
        if length - self._prompt_length > 1:
            done |= self.word_start.to(newest.device)[newest]
        return done


def split_words(
    generated: torch.LongTensor, word_start: torch.BoolTensor, eos_token_id: int, pad_token_id: int
) -> list[list[int]]:
    """The ids of each row's next word: its generated tokens up to the end of sentence, the first token (after the
    first) that starts a new word, or padding."""
    words = []
    for row in generated.tolist():
        word: list[int] = []
        for step, token in enumerate(row):
            if token in (eos_token_id, pad_token_id) or (step > 0 and bool(word_start[token])):
                break
            word.append(token)
        words.append(word)
    return words


class PerRowSampler(LogitsProcessor):
    """Draws each row's next token from its own `torch.Generator` (the scores already warped by temperature, top-k
    and top-p) and leaves only that token possible, so greedy `generate` follows the draw: a sentence's sampled words
    then depend neither on the batch it shares nor on batch size."""

    def __init__(self, generators: list[torch.Generator]) -> None:
        self.generators = generators

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probabilities = torch.softmax(scores, dim=-1)
        rows = zip(probabilities, self.generators, strict=True)
        tokens = torch.cat([torch.multinomial(row, 1, generator=generator) for row, generator in rows])
        chosen = torch.full_like(scores, float("-inf"))
        return chosen.scatter(1, tokens[:, None], 0.0)


__all__ = ["PerRowSampler", "WordBoundaryCriteria", "split_words", "word_start_mask"]

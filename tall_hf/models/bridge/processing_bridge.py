"""BridgeProcessor: the encoder's and the LLM's tokenizers, saved and loaded with the bridge."""

from __future__ import annotations

from transformers import AutoTokenizer, BatchEncoding
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

from ...modules.losses import IGNORE_INDEX
from ...utils.loading import load_pretrained

logger = logging.get_logger(__name__)

MODEL_MAX_LENGTH_UNSET = 1_000_000_000
"""A tokenizer's `model_max_length` at or past this means it has none (transformers' `VERY_LARGE_INTEGER`)."""


class BridgeProcessor(ProcessorMixin):
    """Tokenizes the bridge's two streams, both right padded:

    - the prompt (in training, the prefix), with the encoder's tokenizer -> `input_ids`, `attention_mask`;
    - the text the LLM reads after the soft prompt (in training, the continuation), with the LLM's tokenizer and
      without special tokens -> `llm_input_ids`, `llm_attention_mask`, and `labels` (the same ids, `-100` on padding).
      `add_eos=True` ends every continuation with the LLM's end-of-sequence token, so the model learns to stop.
    """

    def __init__(self, encoder_tokenizer=None, llm_tokenizer=None, **kwargs) -> None:
        if llm_tokenizer is not None and llm_tokenizer.pad_token is None:
            logger.info("The LLM tokenizer has no pad token; padding with its eos token.")
            llm_tokenizer.pad_token = llm_tokenizer.eos_token
        super().__init__(encoder_tokenizer, llm_tokenizer, **kwargs)

    @classmethod
    def from_components(
        cls, encoder: str, llm: str, *, encoder_revision: str | None = None, llm_revision: str | None = None
    ) -> BridgeProcessor:
        """The tokenizers of the two components, each a hub id or a local folder."""
        return cls(
            load_pretrained(AutoTokenizer, encoder, role="encoder tokenizer", revision=encoder_revision),
            load_pretrained(AutoTokenizer, llm, role="LLM tokenizer", revision=llm_revision),
        )

    def __call__(
        self,
        texts: list[str],
        continuations: list[str] | None = None,
        *,
        add_eos: bool = True,
        max_length: int | None = None,
    ) -> BatchEncoding:
        """Tokenize prompts for the encoder and, when given, the LLM-side texts with their labels (PyTorch tensors)."""
        return self.pad(self.tokenize(texts, continuations, add_eos=add_eos, max_length=max_length))

    def tokenize(
        self,
        texts: list[str],
        continuations: list[str] | None = None,
        *,
        add_eos: bool = True,
        max_length: int | None = None,
    ) -> dict[str, list[list[int]]]:
        """Unpadded token ids: `input_ids` (encoder, with its special tokens) and, given continuations,
        `llm_input_ids` (LLM, no special tokens, an end-of-sequence token when `add_eos`). Rows are cut at `max_length`
        (the encoder's also at its tokenizer's `model_max_length`)."""
        if isinstance(texts, str) or isinstance(continuations, str):
            raise TypeError("Pass lists of texts, one per example.")
        texts = list(texts)
        continuations = None if continuations is None else list(continuations)
        if not texts:
            raise ValueError("Empty batch: no texts to tokenize.")
        if continuations is not None and len(continuations) != len(texts):
            raise ValueError(
                f"One continuation per text: got {len(texts)} texts and {len(continuations)} continuations."
            )
        # The encoder's side is never longer than its tokenizer's `model_max_length` (its position table: Marian's, for
        # one, has no room past it).
        limits = [length for length in (max_length, self.encoder_tokenizer.model_max_length) if length]
        limits = [length for length in limits if length < MODEL_MAX_LENGTH_UNSET]
        truncation = {"truncation": True, "max_length": min(limits)} if limits else {}
        tokens = {"input_ids": self.encoder_tokenizer(texts, **truncation)["input_ids"]}
        if continuations is not None:
            tokens["llm_input_ids"] = self.llm_token_ids(continuations, add_eos=add_eos, max_length=max_length)
        return tokens

    def llm_token_ids(
        self, texts: list[str], *, add_eos: bool = True, max_length: int | None = None
    ) -> list[list[int]]:
        """The LLM's tokens of `texts`, without special tokens, ending with its end-of-sequence token when
        `add_eos`, cut at `max_length`."""
        rows = self.llm_tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        empty = [texts[index] for index, row in enumerate(rows) if not row]
        if empty:
            raise ValueError(f"These LLM-side texts have no tokens: {empty[:3]}.")
        if add_eos:
            rows = [row + [self.llm_tokenizer.eos_token_id] for row in rows]
        return [row[:max_length] for row in rows] if max_length else rows

    def pad(self, features: dict[str, list[list[int]]] | list[dict[str, list[int]]]) -> BatchEncoding:
        """Right-pad token ids (a dict of rows, or a list of examples as a data collator receives them) into tensors
        with masks: `input_ids` (encoder) and/or `llm_input_ids`, the latter with `labels` (its ids, `-100` on
        padding)."""
        if isinstance(features, list):
            features = {key: [example[key] for example in features] for key in features[0]}
        batch = {}
        if "input_ids" in features:
            encoded = self.encoder_tokenizer.pad(
                {"input_ids": features["input_ids"]}, padding=True, padding_side="right", return_tensors="pt"
            )
            batch["input_ids"], batch["attention_mask"] = encoded["input_ids"], encoded["attention_mask"]
        if "llm_input_ids" in features:
            llm = self.llm_tokenizer.pad(
                {"input_ids": features["llm_input_ids"]}, padding=True, padding_side="right", return_tensors="pt"
            )
            batch["llm_input_ids"], batch["llm_attention_mask"] = llm["input_ids"], llm["attention_mask"]
            batch["labels"] = llm["input_ids"].masked_fill(llm["attention_mask"].eq(0), IGNORE_INDEX)
        return BatchEncoding(batch, tensor_type="pt")

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        """Decode the bridge's outputs (LLM tokens)."""
        return self.llm_tokenizer.batch_decode(sequences, **kwargs)

    def decode(self, token_ids, **kwargs) -> str:
        return self.llm_tokenizer.decode(token_ids, **kwargs)


__all__ = ["BridgeProcessor"]

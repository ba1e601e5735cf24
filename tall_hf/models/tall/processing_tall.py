"""TallProcessor: the three tokenizers of TALL's three input streams, and the pure text and tensor helpers around
them. Stateless: it loads, runs and saves no model (translating LR text into HR is a data step over the model's own
LR->HR translator: `tall_hf.data.translation`)."""

from __future__ import annotations

import torch
from transformers import AutoTokenizer, BatchEncoding, PretrainedConfig, PreTrainedTokenizerBase
from transformers.processing_utils import ProcessorMixin
from transformers.utils import logging

from ...modules.losses import IGNORE_INDEX
from ...utils.loading import load_pretrained
from ...utils.padding import pad_rows
from ...utils.text import split_last_word
from .configuration_tall import LOSS_MODES

logger = logging.get_logger(__name__)


class TallProcessor(ProcessorMixin):
    """Tokenizes TALL's streams, every one right-padded with its own tokenizer's pad id.

    - source: the LR prefix, with the LR->HR translator's (source side) tokenizer -> `input_ids`, `attention_mask`;
    - bridge: its HR translation, with the LLM's tokenizer -> `bridge_input_ids`, `bridge_attention_mask`;
    - target: with the HR->LR translator's target-side tokenizer, shifted right behind `decoder_start_token_id`
      -> `decoder_input_ids`, `decoder_attention_mask`. Given full sentences (`target_texts`), it also returns
      `labels` for `loss_mode`; without them the target stream is the prefix, ready for next-word prediction.

    Targets carry no end-of-sentence token, so the last labelled position is the last piece of the last word.

    The HR translations (`bridge_texts`) are an input, not something the processor makes: `TallPredictor` translates
    for you, and `tall_hf.data.translation` holds the model's own translator (`lr_hr_translator(model)`) and
    `translate`. `decode` / `batch_decode` turn LR decoder ids back into text.
    """

    def __init__(
        self,
        source_tokenizer=None,
        llm_tokenizer=None,
        target_tokenizer=None,
        loss_mode: str = "last_token",
        decoder_start_token_id: int | None = None,
        **kwargs,
    ) -> None:
        if loss_mode not in LOSS_MODES:
            raise ValueError(f"loss_mode must be one of {LOSS_MODES}, got {loss_mode!r}.")
        self.loss_mode = loss_mode
        if decoder_start_token_id is None and target_tokenizer is not None:
            decoder_start_token_id = target_tokenizer.pad_token_id  # Marian's convention
        self.decoder_start_token_id = decoder_start_token_id
        if llm_tokenizer is not None and llm_tokenizer.pad_token is None:
            logger.info("The LLM tokenizer has no pad token; padding the bridge stream with its eos token.")
            llm_tokenizer.pad_token = llm_tokenizer.eos_token
        super().__init__(source_tokenizer, llm_tokenizer, target_tokenizer, **kwargs)

    @classmethod
    def from_components(
        cls,
        lr_hr: str,
        llm: str,
        hr_lr: str,
        *,
        lr_hr_revision: str | None = None,
        llm_revision: str | None = None,
        hr_lr_revision: str | None = None,
        **kwargs,
    ) -> TallProcessor:
        """The tokenizers of the three components, each a hub id or a local folder."""
        return cls(
            load_pretrained(AutoTokenizer, lr_hr, role="LR->HR translator tokenizer", revision=lr_hr_revision),
            load_pretrained(AutoTokenizer, llm, role="LLM tokenizer", revision=llm_revision),
            load_pretrained(AutoTokenizer, hr_lr, role="HR->LR translator tokenizer", revision=hr_lr_revision),
            **kwargs,
        )

    def batch_decode(self, sequences, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        """LR text of LR decoder token ids (the HR->LR translator's target tokenizer)."""
        return self.target_tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens, **kwargs)

    def decode(self, token_ids, skip_special_tokens: bool = True, **kwargs) -> str:
        """LR text of one sequence of LR decoder token ids."""
        return self.target_tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens, **kwargs)

    def check_compatible(self, config: PretrainedConfig) -> None:
        """Raise a `ValueError` naming any tokenizer that does not fit its component (`check_tokenizer_fits`)."""
        pairs = (
            ("source_tokenizer", self.source_tokenizer, config.lr_hr_config, "LR->HR translator"),
            ("llm_tokenizer", self.llm_tokenizer, config.llm_config, "LLM"),
            ("target_tokenizer", self.target_tokenizer, config.hr_lr_config, "HR->LR translator"),
        )
        for name, tokenizer, component, role in pairs:
            check_tokenizer_fits(tokenizer, component, f"{name} of the {role}")

    def check_reads(self, texts: list[str], max_unknown: float = 0.1) -> None:
        """Raise a `ValueError` when the LR-side tokenizers (the source one, the target one's target side) read more
        than `max_unknown` of the LR `texts`' tokens as unknown: a tokenizer of another language, or a translator
        whose source and target tokenizers are swapped."""
        sides = (
            ("source_tokenizer (LR->HR translator, source side)", self.source_tokenizer, {}),
            ("target_tokenizer (HR->LR translator, target side)", self.target_tokenizer, {"target": True}),
        )
        for name, tokenizer, side in sides:
            if tokenizer.unk_token_id is None or not texts:
                continue
            key = "text_target" if side else "text"
            ids = [i for row in tokenizer(**{key: texts}, add_special_tokens=False)["input_ids"] for i in row]
            share = ids.count(tokenizer.unk_token_id) / max(len(ids), 1)
            if share > max_unknown:
                raise ValueError(
                    f"The {name} reads {100 * share:.0f}% of the LR text as unknown tokens ({tokenizer.unk_token!r}): "
                    "it is not a tokenizer of this language (a translator with its source and target tokenizers "
                    "swapped, or another model's tokenizer copied into its folder?)."
                )

    def __call__(
        self,
        source_texts: list[str],
        bridge_texts: list[str] | None = None,
        target_texts: list[str] | None = None,
        return_tensors: str = "pt",
    ) -> BatchEncoding:
        """Tokenize LR prefixes, their HR translations and (for training) the full LR sentences."""
        if isinstance(source_texts, str) or isinstance(bridge_texts, str):
            raise TypeError("Pass lists of texts, one per sentence.")
        if not source_texts:
            raise ValueError("Empty batch: no sentences to tokenize.")
        if bridge_texts is None:
            raise TypeError(
                "TallProcessor does not translate: pass `bridge_texts`, the HR translations of `source_texts` (e.g. "
                "`translate(source_texts, lr_hr_translator(model), processor.source_tokenizer)` from "
                "`tall_hf.data.translation`), or predict with `TallPredictor`, which translates."
            )
        if len(bridge_texts) != len(source_texts) or (
            target_texts is not None and len(target_texts) != len(source_texts)
        ):
            raise ValueError(
                f"Every stream needs one text per sentence: {len(source_texts)} sources, {len(bridge_texts)} "
                f"translations, {len(target_texts) if target_texts is not None else 'no'} targets."
            )
        source = self.source_tokenizer(source_texts, padding=True, padding_side="right", return_tensors=return_tensors)
        bridge = self.llm_tokenizer(bridge_texts, padding=True, padding_side="right", return_tensors=return_tensors)
        batch = {
            "input_ids": source["input_ids"],
            "attention_mask": source["attention_mask"],
            "bridge_input_ids": bridge["input_ids"],
            "bridge_attention_mask": bridge["attention_mask"],
        }
        if target_texts is None:
            batch.update(self.target_prefix_stream(source_texts))
        else:
            batch.update(self.target_stream(target_texts))
        return BatchEncoding(batch, tensor_type=return_tensors)

    def target_token_ids(self, texts: list[str]) -> list[list[int]]:
        """Target-side token ids of LR texts, without special tokens."""
        return self.target_tokenizer(text_target=texts, add_special_tokens=False)["input_ids"]

    def target_prefix_stream(self, prefixes: list[str]) -> dict[str, torch.Tensor]:
        """Decoder inputs for predicting the word after each prefix: start token + prefix tokens."""
        rows = [[self.decoder_start_token_id] + ids for ids in self.target_token_ids(prefixes)]
        input_ids, mask = pad_rows(rows, self.target_tokenizer.pad_token_id)
        return {"decoder_input_ids": input_ids, "decoder_attention_mask": mask}

    def target_stream(self, sentences: list[str]) -> dict[str, torch.Tensor]:
        """Teacher-forced decoder inputs and `labels` of the loss mode for full LR sentences."""
        token_ids = self.target_token_ids(sentences)
        for sentence, ids in zip(sentences, token_ids, strict=True):
            if not ids:
                raise ValueError(f"Target sentence {sentence!r} has no tokens.")
        last_word_lengths = [0] * len(sentences)
        if self.loss_mode == "last_word":
            last_words = [split_last_word(sentence)[1] for sentence in sentences]
            last_word_lengths = [len(ids) for ids in self.target_token_ids(last_words)]
        return self.teacher_forcing(token_ids, last_word_lengths)

    def teacher_forcing(
        self,
        token_ids: list[list[int]],
        last_word_lengths: list[int],
        loss_mode: str | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """The target stream of tokenized sentences: inputs shifted right behind the decoder start token, and
        `labels` of `loss_mode` (default: the processor's), right-padded."""
        loss_mode = loss_mode or self.loss_mode
        inputs = [[self.decoder_start_token_id] + ids[:-1] for ids in token_ids]
        labels = [target_labels(ids, n, loss_mode) for ids, n in zip(token_ids, last_word_lengths, strict=True)]
        input_ids, mask = pad_rows(inputs, self.target_tokenizer.pad_token_id, pad_to_multiple_of)
        label_ids, _ = pad_rows(labels, IGNORE_INDEX, pad_to_multiple_of)
        return {"decoder_input_ids": input_ids, "decoder_attention_mask": mask, "labels": label_ids}


def target_labels(target_ids: list[int], last_word_length: int, loss_mode: str) -> list[int]:
    """Unshifted labels of one target sentence: every token (`last_token`, `all_tokens`; the model's `last_token`
    loss reads the last one) or only the last word's tokens (`last_word`), the rest `IGNORE_INDEX`."""
    if loss_mode == "last_word":
        keep = max(1, min(last_word_length, len(target_ids)))
        return [IGNORE_INDEX] * (len(target_ids) - keep) + list(target_ids[-keep:])
    return list(target_ids)


def check_tokenizer_fits(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig, name: str) -> None:
    """Raise a `ValueError` naming `name` when the tokenizer's ids do not fit the model's vocabulary, or (for a
    translator) its pad / end-of-sentence ids differ from the model's: another model's tokenizer."""
    vocab_size = getattr(config, "decoder_vocab_size", None) or config.vocab_size
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"Mismatched tokenizer: the {name} has {len(tokenizer)} tokens but the model ({config.model_type}) has a "
            f"vocabulary of {vocab_size}."
        )
    if not config.is_encoder_decoder:
        return
    for special in ("pad_token_id", "eos_token_id"):
        expected, actual = getattr(config, special, None), getattr(tokenizer, special, None)
        if isinstance(expected, int) and actual is not None and actual != expected:
            raise ValueError(
                f"Mismatched tokenizer: the {name} has {special}={actual} but the model ({config.model_type}) has "
                f"{expected}; it is another model's tokenizer."
            )

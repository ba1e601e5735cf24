"""Translation of LR text into HR: a data step over TALL's own frozen LR->HR translator, not processor state.

`translate` runs a seq2seq translator (`generate`) in batches, shared by data preparation, inference and the
baselines: sentences are sorted by length (longest first) and cut into batches by a token budget, so a batch pads
little and its beams stop at about the same step; the translations come back in input order.

`lr_hr_translator(model)` is that translator for a TALL model, and `save_translator(model, dir)` puts what a full
checkpoint needs of it beside the model. Where its parts live: its encoder *is* TALL's stage 1 (`model.lr_encoder`,
one module, held and saved once, in the model's weights). Its decoder side (decoder, LM head, final logits bias,
generation settings) takes no part in TALL's forward and is not a submodule of the model: it is read from the
`translator/` folder of the full checkpoint the model came from (which holds only the weights `model.safetensors` does
not), or else from the `lr_hr` component recorded in `config.components` (which adapters-only checkpoints name too).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    BatchEncoding,
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import CONFIG_NAME, GENERATION_CONFIG_NAME, SAFE_WEIGHTS_NAME, cached_file, logging

from ..utils.folders import staged_folder
from ..utils.loading import load_pretrained
from ..utils.progress import advance_phase

logger = logging.get_logger(__name__)

# The folder of a full checkpoint that holds the decoder side of its LR->HR translator.
TRANSLATOR_SUBFOLDER = "translator"


def position_limit(config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase | None = None) -> int | None:
    """How many tokens a model reads: the smaller of its position table and the tokenizer's `model_max_length`."""
    limits = [getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)]
    if tokenizer is not None and tokenizer.model_max_length < 10**9:  # tokenizers without a limit use a huge value
        limits.append(tokenizer.model_max_length)
    limits = [limit for limit in limits if limit]
    return min(limits) if limits else None


def keep_ends(rows: list[list[int]], max_length: int | None) -> tuple[list[list[int]], int]:
    """Cut every token row over `max_length` to its last `max_length` tokens (the end of a prefix is what a
    next-word model needs); returns the rows and how many were cut."""
    if max_length is None:
        return rows, 0
    cut = sum(len(row) > max_length for row in rows)
    return ([row[-max_length:] for row in rows] if cut else rows), cut


def tokenize_keeping_ends(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int | None
) -> tuple[BatchEncoding, int]:
    """Tokenize and pad `texts` with `keep_ends`; returns the tensors and how many rows were cut."""
    rows, cut = keep_ends(tokenizer(texts)["input_ids"], max_length)
    return tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt"), cut


def length_batches(lengths: list[int], max_sentences: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices of `lengths` sorted longest first, cut into batches of at most `max_sentences` whose padded size
    (sentences x longest length) stays within `max_tokens` (a longer single sentence gets a batch of its own)."""
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batch and (len(batch) == max_sentences or (len(batch) + 1) * lengths[batch[0]] > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


@torch.inference_mode()
def translate(
    texts: list[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    batch_size: int = 64,
    max_batch_tokens: int = 8192,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    advance_progress: bool = False,
    return_encoder_outputs: bool = False,
    output_hidden_states: bool = False,
) -> list[str] | tuple[list[str], list[BaseModelOutput | None]]:
    """Translate `texts` on the model's device, in input order (`advance_progress`: the translation is the work of the
    phase the caller runs in, whose bar advances with every batch: `tall_hf.utils.progress`).

    Batches hold sentences of similar length, at most `batch_size` of them and at most `max_batch_tokens` padded
    source tokens times beams. Generation settings default to the translator's own `generation_config` (e.g.
    Marian's beam size); `num_beams` and `max_new_tokens` override them. A text longer than the translator reads (its
    position table or its tokenizer's limit, whichever is smaller) is translated from its last tokens, with one
    warning that counts them.

    `return_encoder_outputs`: also return each text's encoder output as the translation computed it
    (`last_hidden_state` and, with `output_hidden_states`, every layer's states; `(length, width)` each, no padding),
    for a model that reads the same tokens with the same encoder: TALL's stage 1 is its LR->HR translator's encoder
    (`TallForConditionalGeneration(..., lr_encoder_outputs=batch_encoder_outputs(rows))`). `None` for a text cut to
    the translator's limit. The encoder then runs before `generate`, which takes its output instead of running it: the
    translations are the same.
    """
    if batch_size < 1 or max_batch_tokens < 1:
        raise ValueError(f"batch_size and max_batch_tokens must be positive, got {batch_size} and {max_batch_tokens}.")
    num_beams = num_beams or model.generation_config.num_beams or 1
    generate_kwargs = {"num_beams": num_beams}
    if max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = max_new_tokens
    limit = position_limit(model.config, tokenizer)
    was_training = model.training
    model.eval()
    full_ids = tokenizer(texts)["input_ids"] if texts else []
    source_ids, cut = keep_ends(full_ids, limit)
    outputs = [""] * len(texts)
    encoder_outputs: list[BaseModelOutput | None] = [None] * len(texts)
    for batch in length_batches([len(ids) for ids in source_ids], batch_size, max(max_batch_tokens // num_beams, 1)):
        inputs = tokenizer.pad({"input_ids": [source_ids[i] for i in batch]}, return_tensors="pt").to(model.device)
        if return_encoder_outputs:
            encoded = model.get_encoder()(**inputs, output_hidden_states=output_hidden_states, return_dict=True)
            for row, index in enumerate(batch):
                if len(source_ids[index]) == len(full_ids[index]):
                    encoder_outputs[index] = _row_of(encoded, row, len(source_ids[index]))
            # `generate` expands the output it is given for its beams in place: it gets a copy.
            generate_kwargs["encoder_outputs"] = BaseModelOutput(last_hidden_state=encoded.last_hidden_state)
        generated = model.generate(**inputs, **generate_kwargs)
        for index, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
            outputs[index] = text.strip()
        if advance_progress:
            advance_phase(len(batch))
    model.train(was_training)
    if cut:
        logger.warning(
            f"Translation: {cut} of {len(texts)} texts were longer than the translator reads ({limit} tokens); "
            "each was translated from its last tokens."
        )
    return (outputs, encoder_outputs) if return_encoder_outputs else outputs


def batch_encoder_outputs(rows: list[BaseModelOutput]) -> BaseModelOutput:
    """Per-text encoder outputs (`translate(..., return_encoder_outputs=True)`) as one batch, right-padded with zeros
    to the longest: at every real token, the encoder's output for those texts' right-padded batch (the padding
    positions, which the attention mask hides, hold zeros)."""

    def pad(tensors: list[torch.Tensor]) -> torch.Tensor:
        return nn.utils.rnn.pad_sequence(tensors, batch_first=True)

    hidden_states = None
    if rows[0].hidden_states is not None:
        hidden_states = tuple(pad(list(layer)) for layer in zip(*(row.hidden_states for row in rows), strict=True))
    return BaseModelOutput(last_hidden_state=pad([row.last_hidden_state for row in rows]), hidden_states=hidden_states)


def _row_of(encoded: BaseModelOutput, row: int, length: int) -> BaseModelOutput:
    """One text's part of a batch's encoder output: its first `length` positions (right padding dropped)."""
    hidden_states = None
    if encoded.hidden_states is not None:
        hidden_states = tuple(layer[row, :length] for layer in encoded.hidden_states)
    return BaseModelOutput(last_hidden_state=encoded.last_hidden_state[row, :length], hidden_states=hidden_states)


def lr_hr_translator(
    model: PreTrainedModel, name_or_path: str | os.PathLike | None = None, *, revision: str | None = None
) -> PreTrainedModel:
    """TALL's own frozen LR->HR translator, in eval mode on the model's device and dtype: what writes the HR text of
    LR text (the bridge stream of TALL's prompt).

    Its encoder is the model's stage 1 (`model.lr_encoder`, the same module, not a copy; where the translator's two
    sides share one token table, that table is the encoder's too). Its decoder side comes from the `translator/`
    folder of the full checkpoint the model was read from, else from the model's recorded `lr_hr` component (module
    docstring). `name_or_path` (a hub id or folder) loads that translator instead, whole and as it is.
    """
    encoder = model.lr_encoder
    dtype = next(encoder.parameters()).dtype
    if name_or_path is not None:
        translator = load_pretrained(
            AutoModelForSeq2SeqLM, name_or_path, role="LR->HR translator", revision=revision, dtype=dtype
        )
    else:
        translator = _saved_decoder_side(model, encoder, dtype)
        if translator is None:
            provenance = (model.config.components or {}).get("lr_hr") or {}
            if not provenance.get("name_or_path"):
                raise ValueError(
                    "This TALL was built from a config, not from a translator: it has no LR->HR decoder to write HR "
                    "text with. Pass the HR translations (`bridge_texts`) or a translator (hub id or folder)."
                )
            translator = load_pretrained(
                AutoModelForSeq2SeqLM,
                provenance["name_or_path"],
                role="LR->HR translator",
                revision=provenance.get("revision"),
                dtype=dtype,
            )
        _use_encoder(translator, encoder)
    return translator.to(encoder.device).eval().requires_grad_(False)


def save_translator(model: PreTrainedModel, save_directory: str | os.PathLike) -> None:
    """Write the decoder side of the model's LR->HR translator (`lr_hr_translator`) into
    `save_directory/translator/`: its config, generation settings and the weights the model's own do not hold (no
    encoder, no token table the encoder shares), so a full checkpoint translates offline and from any directory
    without storing the LR encoder twice. The folder is written beside and swapped in whole."""
    translator = lr_hr_translator(model)
    held = {tensor.data_ptr() for tensor in model.lr_encoder.state_dict().values()}
    decoder_side = {key: value for key, value in translator.state_dict().items() if value.data_ptr() not in held}
    with staged_folder(os.path.join(save_directory, TRANSLATOR_SUBFOLDER)) as staging:
        translator.save_pretrained(staging, state_dict=decoder_side)


def _use_encoder(translator: PreTrainedModel, encoder: torch.nn.Module) -> None:
    """Put `encoder` in place of the translator's own encoder (and of the token table both sides share, if they do:
    the LM head tied to it follows)."""
    shares_table = translator.get_input_embeddings() is translator.get_encoder().get_input_embeddings()
    translator.set_encoder(encoder)
    if shares_table:
        translator.set_input_embeddings(encoder.get_input_embeddings())
        translator.tie_weights()


def _saved_decoder_side(model: PreTrainedModel, encoder: torch.nn.Module, dtype: torch.dtype):
    """The translator whose decoder side a full checkpoint holds in `translator/` (None where the model was not read
    from such a checkpoint), its encoder weights taken from `encoder` (a checkpoint of an earlier version holds them
    too; the model's are used either way)."""
    location = model.name_or_path
    if not location:
        return None
    found = {
        name: cached_file(
            location,
            name,
            subfolder=TRANSLATOR_SUBFOLDER,
            revision=getattr(model.config, "_commit_hash", None),
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        for name in (CONFIG_NAME, SAFE_WEIGHTS_NAME, GENERATION_CONFIG_NAME)
    }
    if found[CONFIG_NAME] is None or found[SAFE_WEIGHTS_NAME] is None:
        return None
    config = AutoConfig.from_pretrained(os.path.dirname(found[CONFIG_NAME]))
    with torch.device("meta"):  # where the encoder sits in this translator class
        skeleton = AutoModelForSeq2SeqLM.from_config(config)
    prefix = next(name for name, module in skeleton.named_modules() if module is skeleton.get_encoder())
    weights = load_file(found[SAFE_WEIGHTS_NAME])
    weights.update({f"{prefix}.{key}": value for key, value in encoder.state_dict().items()})
    translator = type(skeleton).from_pretrained(None, config=config, state_dict=weights, dtype=dtype)
    if found[GENERATION_CONFIG_NAME] is not None:  # the beam size and banned tokens it translates with
        translator.generation_config = GenerationConfig.from_pretrained(os.path.dirname(found[GENERATION_CONFIG_NAME]))
    return translator

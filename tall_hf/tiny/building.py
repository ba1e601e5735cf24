"""Building blocks shared by the tiny components and the known-answer worlds (`tall_hf.worlds`): sentencepiece and
LLM tokenizers trained on local text, Marian vocabularies, LLM folders with random weights, and `build_once`, which
writes a seeded build once into a folder named by its description and stamps it complete."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerFast,
    set_seed,
)

from ..resources import read_corpus
from ..utils.folders import hold_lock, main_process_first

# One small config per LLM family: the families differ only in their config's field names.
_TINY_ROPE_DECODER = {
    "hidden_size": 48,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
TINY_LLM_CONFIGS: dict[str, dict] = {
    "qwen2": _TINY_ROPE_DECODER,
    "llama": _TINY_ROPE_DECODER,
    "bloom": {"hidden_size": 48, "n_layer": 2, "n_head": 4, "tie_word_embeddings": True},
    "gpt2": {"n_embd": 48, "n_layer": 2, "n_head": 4, "n_positions": 256, "tie_word_embeddings": True},
}
SPM_VOCAB_SIZE = 400
LLM_VOCAB_SIZE = 600
BUILD_VERSION = 1
BUILD_STAMP = "tiny_components.json"


def check_tiny_llm(llm: str) -> None:
    if llm not in TINY_LLM_CONFIGS:
        raise ValueError(f"Unknown tiny LLM family {llm!r}; choose one of {sorted(TINY_LLM_CONFIGS)}.")


def build_once(
    directory: str | os.PathLike, name: str, description: list, write: Callable[[Path], None], seed: int
) -> Path:
    """`directory/<name>-<key>`, where the key hashes `description` and the shipped corpora: built once by
    `write(staging)` into a temporary folder that is moved into place (an interrupted build is never picked up),
    then reused."""
    payload = [
        BUILD_VERSION,
        description,
        SPM_VOCAB_SIZE,
        LLM_VOCAB_SIZE,
        read_corpus("hebrew"),
        read_corpus("english"),
    ]
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]
    root = Path(directory)
    target = root / f"{name}-{key}"
    # Under `accelerate launch` the main process builds and the others then find its build; another run building
    # the same target at the same time is waited for (the lock beside the target), then its build is reused.
    with main_process_first():
        if (target / BUILD_STAMP).is_file():
            return target
        with hold_lock(root / f".{target.name}.lock", f"The build {target}", wait=True):
            if (target / BUILD_STAMP).is_file():
                return target
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
            try:
                set_seed(seed)
                write(staging)
                (staging / BUILD_STAMP).write_text(json.dumps({"name": name, "description": description}, default=str))
                shutil.rmtree(target, ignore_errors=True)  # a folder without the stamp is no build
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


def marian_generation_config(pad_token_id: int, max_length: int, num_beams: int) -> GenerationConfig:
    """How a locally built Marian translator generates: from the pad token, ending at id 0 (`</s>`), never writing
    padding."""
    return GenerationConfig(
        decoder_start_token_id=pad_token_id,
        pad_token_id=pad_token_id,
        eos_token_id=0,
        bad_words_ids=[[pad_token_id]],
        max_length=max_length,
        num_beams=num_beams,
    )


def train_sentencepiece(sentences: list[str], vocab_size: int = SPM_VOCAB_SIZE, model_type: str = "unigram") -> bytes:
    """A sentencepiece model (`model_type` unigram or bpe) trained on `sentences`, as bytes (no special pieces but
    `<unk>`, deterministic: one thread, no shuffling)."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        shuffle_input_sentence=False,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def marian_vocab(spm_models) -> dict[str, int]:
    """Marian's shared vocabulary: `</s>` = 0, `<unk>` = 1, the pieces of both languages, `<pad>` last."""
    pieces: dict[str, None] = {"</s>": None, "<unk>": None}
    for model in spm_models:
        processor = spm.SentencePieceProcessor(model_proto=model)
        for index in range(processor.get_piece_size()):
            piece = processor.id_to_piece(index)
            if not processor.is_unknown(index):
                pieces.setdefault(piece, None)
    pieces["<pad>"] = None
    return {piece: index for index, piece in enumerate(pieces)}


# The kinds of LLM tokenizer a locally built LLM can have: byte-level BPE (GPT-2, Qwen2, Bloom) or a sentencepiece-style
# unigram model over Metaspace ("▁"-marked) words (Llama 1-2, T5, Gemma).
LLM_TOKENIZERS = ("byte_level_bpe", "metaspace_unigram")


def _llm_tokenizer(sentences: list[str], vocab_size: int, kind: str) -> Tokenizer:
    """A `tokenizers` tokenizer of `kind` (one of `LLM_TOKENIZERS`) trained on `sentences`."""
    special = ["<|endoftext|>", "<|pad|>"]
    if kind == "byte_level_bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif kind == "metaspace_unigram":
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
        tokenizer.decoder = decoders.Metaspace(prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=[*special, "<unk>"], unk_token="<unk>", show_progress=False
        )
    else:
        raise ValueError(f"Unknown LLM tokenizer kind {kind!r}; choose one of {LLM_TOKENIZERS}.")
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    return tokenizer


def _check_loads_as_written(folder: Path, tokenizer: PreTrainedTokenizerFast, family: str) -> None:
    """`AutoTokenizer` gives back the tokenizer model that was written (transformers 5 replaces the saved tokenizer of
    some families with their own class: every `qwen2` checkpoint loads a byte-level BPE `Qwen2Tokenizer`)."""
    written = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["type"]
    loaded = json.loads(AutoTokenizer.from_pretrained(folder).backend_tokenizer.to_str())["model"]["type"]
    if loaded != written:
        raise ValueError(
            f"A {family} LLM's folder loads its tokenizer as a {loaded} model, not the {written} one written: "
            "transformers ties this family to its own tokenizer class. Use another LLM family (e.g. llama)."
        )


def write_llm(
    folder: Path,
    family: str,
    sentences: list[str],
    seed: int,
    vocab_size: int = LLM_VOCAB_SIZE,
    tokenizer_kind: str = "byte_level_bpe",
    **config_overrides,
) -> None:
    """A `family` LLM (`TINY_LLM_CONFIGS`, `config_overrides` in their place) with random weights and a tokenizer of
    `tokenizer_kind` trained on `sentences`, written to `folder`."""
    folder.mkdir(parents=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_llm_tokenizer(sentences, vocab_size, tokenizer_kind),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        **({"unk_token": "<unk>"} if tokenizer_kind == "metaspace_unigram" else {}),
        model_max_length=256,
    )
    tokenizer.save_pretrained(folder)
    config = AutoConfig.for_model(
        family,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**TINY_LLM_CONFIGS[family], **config_overrides},
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(folder)
    if tokenizer_kind != "byte_level_bpe":
        _check_loads_as_written(folder, tokenizer, family)


__all__ = [
    "BUILD_STAMP",
    "BUILD_VERSION",
    "LLM_TOKENIZERS",
    "LLM_VOCAB_SIZE",
    "SPM_VOCAB_SIZE",
    "TINY_LLM_CONFIGS",
    "build_once",
    "check_tiny_llm",
    "marian_generation_config",
    "marian_vocab",
    "train_sentencepiece",
    "write_llm",
]

"""Tiny, complete TALL components written to disk: real tokenizer files, real architectures, random weights.

Every folder loads with `from_pretrained` exactly as a hub checkpoint would, so the package's real loading code is
what the tests and the offline demo run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import MarianConfig, MarianMTModel, MarianTokenizer

from ..resources import read_corpus
from .building import (
    TINY_LLM_CONFIGS,
    build_once,
    check_tiny_llm,
    marian_generation_config,
    marian_vocab,
    train_sentencepiece,
    write_llm,
)

# The two translators have different widths from each other and from the LLM, so a width mix-up fails loudly.
TINY_TRANSLATOR_CONFIGS: dict[str, dict] = {
    "lr_hr": {"d_model": 32, "encoder_attention_heads": 4, "decoder_attention_heads": 4},
    "hr_lr": {"d_model": 24, "encoder_attention_heads": 4, "decoder_attention_heads": 4},
}
TRANSLATOR_DEFAULTS = {
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 128,
    "activation_function": "swish",
    "scale_embedding": True,
    "share_encoder_decoder_embeddings": True,
    "eos_token_id": 0,
}
# A trained translator's decoder depends on its source; a random one at the usual init scale hardly does (its
# cross-attention adds almost nothing to the residual stream), so it would translate every sentence alike and ignore
# whatever TALL's stages 1-6 produce. Scaling the decoders' cross-attention output gives the tiny translators that
# property of real ones: varied translations, and a stage 7 that TALL's trainable parts can steer.
CROSS_ATTENTION_SCALE = {"lr_hr": 10.0, "hr_lr": 100.0}
TRANSLATION_MAX_LENGTH = 32


def build_tiny_components(directory: str | os.PathLike, llm: str = "qwen2", seed: int = 0) -> dict[str, str]:
    """Write a tiny TALL setup under `directory` and return `{"lr_hr": path, "llm": path, "hr_lr": path}`.

    `llm` is a model type of `TINY_LLM_CONFIGS` (qwen2, llama, bloom, gpt2). The build is seeded and deterministic,
    and reused when `directory` already holds the same build (it is written to a temporary folder and moved into
    place, so an interrupted build is never picked up).
    """
    check_tiny_llm(llm)

    def write(staging: Path) -> None:
        hebrew, english = read_corpus("hebrew"), read_corpus("english")
        spm_models = {"he": train_sentencepiece(hebrew), "en": train_sentencepiece(english)}
        vocab = marian_vocab(spm_models.values())
        _write_translator(staging / "lr_hr", "lr_hr", spm_models["he"], spm_models["en"], vocab, seed)
        _write_translator(staging / "hr_lr", "hr_lr", spm_models["en"], spm_models["he"], vocab, seed + 1)
        write_llm(staging / "llm", llm, english + hebrew, seed + 2)

    description = [
        llm,
        seed,
        TINY_LLM_CONFIGS[llm],
        TINY_TRANSLATOR_CONFIGS,
        TRANSLATOR_DEFAULTS,
        CROSS_ATTENTION_SCALE,
    ]
    target = build_once(directory, f"tiny-{llm}", description, write, seed)
    return {role: str(target / role) for role in ("lr_hr", "llm", "hr_lr")}


def _write_translator(folder: Path, role: str, source_spm: bytes, target_spm: bytes, vocab: dict, seed: int) -> None:
    folder.mkdir(parents=True)
    files = {"source.spm": source_spm, "target.spm": target_spm}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"), vocab=str(folder / "vocab.json")
    )
    tokenizer.save_pretrained(folder)
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        pad_token_id=pad,
        decoder_start_token_id=pad,
        **TRANSLATOR_DEFAULTS,
        **TINY_TRANSLATOR_CONFIGS[role],
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    with torch.no_grad():
        for layer in model.get_decoder().layers:
            layer.encoder_attn.v_proj.weight.mul_(CROSS_ATTENTION_SCALE[role])
            layer.encoder_attn.out_proj.weight.mul_(CROSS_ATTENTION_SCALE[role])
    model.generation_config = marian_generation_config(pad, TRANSLATION_MAX_LENGTH, num_beams=2)
    model.save_pretrained(folder)

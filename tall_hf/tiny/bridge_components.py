"""Tiny, complete bridge components written to disk: a tiny multilingual mT5 encoder and a tiny LLM.

The encoder's sentencepiece vocabulary is trained on the shipped Hebrew and English corpora, so it reads both
languages (the bridge trains on English and runs on Hebrew). Weights are random; every folder loads with
`from_pretrained` exactly as a hub checkpoint would.
"""

from __future__ import annotations

import os
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MT5Config, MT5EncoderModel, T5Tokenizer

from ..resources import read_corpus
from .building import TINY_LLM_CONFIGS, build_once, check_tiny_llm, train_sentencepiece, write_llm

# More layers than width would suggest, so that fusing them has something to choose from.
TINY_ENCODER_CONFIG = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 4,
    "num_heads": 4,
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 32,
    "tie_word_embeddings": False,
}
# A random LLM initialised at the usual scale (0.02) is 48 wide: its logits span about +-1 whatever it reads, so no
# soft prompt could steer it. At this scale the frozen random LLM responds to its input, and training the bridge has
# an effect to show.
TINY_LLM_INITIALIZER_RANGE = 0.3


def build_tiny_bridge_components(directory: str | os.PathLike, llm: str = "qwen2", seed: int = 0) -> dict[str, str]:
    """Write a tiny bridge setup under `directory` and return `{"encoder": path, "llm": path}`.

    The encoder is an `MT5EncoderModel` with a T5 (unigram sentencepiece) tokenizer trained on the shipped Hebrew and
    English text; the LLM is the tiny `llm` family of `build_tiny_components`. Seeded and deterministic, reused when
    `directory` already holds the same build, and written atomically (a temporary folder moved into place).
    """
    check_tiny_llm(llm)

    def write(staging: Path) -> None:
        hebrew, english = read_corpus("hebrew"), read_corpus("english")
        _write_encoder(staging / "encoder", hebrew + english, seed)
        write_llm(staging / "llm", llm, english + hebrew, seed + 1, initializer_range=TINY_LLM_INITIALIZER_RANGE)

    description = [llm, seed, TINY_LLM_CONFIGS[llm], TINY_ENCODER_CONFIG, TINY_LLM_INITIALIZER_RANGE]
    target = build_once(directory, f"tiny-bridge-{llm}", description, write, seed)
    return {"encoder": str(target / "encoder"), "llm": str(target / "llm")}


def _write_encoder(folder: Path, sentences: list[str], seed: int) -> None:
    """A T5 tokenizer (`<pad>` 0, `</s>` 1, `<unk>` 2, then the pieces) and a random `MT5EncoderModel`."""
    folder.mkdir(parents=True)
    processor = spm.SentencePieceProcessor(model_proto=train_sentencepiece(sentences))
    pieces = [
        (processor.id_to_piece(index), processor.get_score(index))
        for index in range(processor.get_piece_size())
        if not processor.is_unknown(index)
    ]
    tokenizer = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *pieces], extra_ids=0)
    tokenizer.save_pretrained(folder)
    config = MT5Config(
        vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **TINY_ENCODER_CONFIG
    )
    torch.manual_seed(seed)
    MT5EncoderModel(config).save_pretrained(folder)

"""The world's LLM: a small causal LM of any tiny family, with its own tokenizer (byte-level BPE or unigram), trained with `Trainer` on the HR
text only (it never sees the LR script)."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from ..tiny.building import TINY_LLM_CONFIGS, check_tiny_llm, write_llm
from ..training.baselines import train_causal_lm
from .scratch import scratch_training_arguments

# A family's own names for the width, depth, heads and feed-forward size of `TINY_LLM_CONFIGS`.
_SIZE_FIELDS = {
    "hidden_size": "width",
    "n_embd": "width",
    "intermediate_size": "ffn",
    "num_hidden_layers": "layers",
    "n_layer": "layers",
    "num_attention_heads": "heads",
    "n_head": "heads",
}


def llm_config_overrides(family: str, size: dict[str, int]) -> dict:
    """The tiny config of `family` resized to `size` (`width`, `ffn`, `layers`, `heads`)."""
    check_tiny_llm(family)
    return {
        name: size[_SIZE_FIELDS[name]] if name in _SIZE_FIELDS else value
        for name, value in TINY_LLM_CONFIGS[family].items()
    }


def train_llm(
    folder: Path,
    family: str,
    texts: list[str],
    *,
    size: dict,
    vocab_size: int,
    training: dict,
    seed: int,
    tokenizer_kind: str = "byte_level_bpe",
) -> PreTrainedModel:
    """Write a `family` LLM with a tokenizer of `tokenizer_kind` (`LLM_TOKENIZERS`) trained on `texts` to `folder`,
    train it on `texts` and save it."""
    write_llm(
        folder,
        family,
        texts,
        seed,
        vocab_size=vocab_size,
        tokenizer_kind=tokenizer_kind,
        **llm_config_overrides(family, size),
    )
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="right")
    with scratch_training_arguments(folder, seed, training) as args:
        model = train_causal_lm(model, tokenizer, texts, args, description="World: training the LLM")
    model.save_pretrained(folder)
    return model

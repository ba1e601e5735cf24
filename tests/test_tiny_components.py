"""The tiny offline components load like hub checkpoints, are deterministic and cached."""

from __future__ import annotations

import os

from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, MarianTokenizer

from tall_hf.testing import build_tiny_components


def test_folders_load_with_from_pretrained(tiny_paths):
    for role in ("lr_hr", "hr_lr"):
        tokenizer = AutoTokenizer.from_pretrained(tiny_paths[role])
        assert isinstance(tokenizer, MarianTokenizer)
        model = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths[role])
        assert len(tokenizer) == model.config.vocab_size
    hebrew = AutoTokenizer.from_pretrained(tiny_paths["lr_hr"])("הילדים משחקים בחצר").input_ids
    assert hebrew[-1] == 0 and 1 not in hebrew[:-1], "Hebrew must tokenize into known pieces, not <unk>"
    llm_tokenizer = AutoTokenizer.from_pretrained(tiny_paths["llm"])
    llm = AutoModelForCausalLM.from_pretrained(tiny_paths["llm"])
    assert llm.config.vocab_size == len(llm_tokenizer)
    assert llm_tokenizer.decode(llm_tokenizer("the children play").input_ids) == "the children play"


def test_build_is_cached_and_deterministic(tiny_paths, tiny_cache, tmp_path):
    again = build_tiny_components(tiny_cache, llm="qwen2")
    assert again == tiny_paths
    fresh = build_tiny_components(tmp_path, llm="qwen2")
    for role in ("lr_hr", "llm", "hr_lr"):
        cached = open(os.path.join(tiny_paths[role], "model.safetensors"), "rb").read()
        rebuilt = open(os.path.join(fresh[role], "model.safetensors"), "rb").read()
        assert cached == rebuilt, role
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")], "no staging folder is left behind"

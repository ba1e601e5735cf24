"""The causal-LM baselines get their input the way the LLM was trained, and give back clean words."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import processors
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from tall_hf.evaluation import DirectApproach


class RecordingDirect(DirectApproach):
    """Direct whose model 'writes' fixed text: records what it was given instead of generating."""

    def __init__(self, model, tokenizer, written: str) -> None:
        super().__init__(model, tokenizer)
        self.written = written
        self.inputs = []

    def generate_new_tokens(self, inputs, **generate_kwargs):
        self.inputs.append(inputs)
        ids = self.tokenizer(self.written, add_special_tokens=False)["input_ids"]
        return torch.tensor([ids] * inputs["input_ids"].shape[0])


@pytest.fixture(scope="module")
def llm(tiny_paths):
    return AutoModelForCausalLM.from_pretrained(tiny_paths["llm"])


@pytest.fixture
def tokenizer(tiny_paths):
    return AutoTokenizer.from_pretrained(tiny_paths["llm"], padding_side="left")


def fed_texts(approach: RecordingDirect) -> list[list[int]]:
    """The unpadded token ids each prefix was given as."""
    rows = []
    for inputs in approach.inputs:
        for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True):
            rows.append(ids[mask.bool()].tolist())
    return rows


def test_prefix_goes_in_without_a_trailing_space_and_the_model_writes_the_space(llm, tokenizer):
    prefixes = ["the cat sat on the", "אני אוהב לקרוא "]
    approach = RecordingDirect(llm, tokenizer, " mat and")
    assert approach.predict(prefixes, batch_size=2) == ["mat", "mat"]
    rows = fed_texts(approach)
    assert rows[0] == tokenizer("the cat sat on the")["input_ids"]
    assert rows[1] == tokenizer("אני אוהב לקרוא")["input_ids"]
    assert all(not tokenizer.decode(row).endswith(" ") for row in rows)


def test_a_bos_is_given_where_the_tokenizer_adds_one(llm, tokenizer):
    backend = tokenizer.backend_tokenizer
    bos = tokenizer.bos_token
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", special_tokens=[(bos, tokenizer.bos_token_id)]
    )
    approach = RecordingDirect(llm, tokenizer, " mat")
    approach.predict(["the cat sat on the"])
    (row,) = fed_texts(approach)
    assert row[0] == tokenizer.bos_token_id
    assert row[1:] == tokenizer("the cat sat on the", add_special_tokens=False)["input_ids"]


def test_words_decode_without_markers_when_the_tokenizer_has_no_decoder(llm, tokenizer):
    bare = copy.deepcopy(tokenizer)
    bare.backend_tokenizer.decoder = None
    written = " הילדים הלכו"
    assert len(bare(" הילדים", add_special_tokens=False)["input_ids"]) > 1, "the word must span several tokens"
    assert "\u0120" in bare.decode(bare(written, add_special_tokens=False)["input_ids"]), "no decoder: markers show"
    approach = RecordingDirect(llm, bare, written)
    assert approach.predict(["אני אוהב לקרוא"]) == ["הילדים"]
    assert bare.backend_tokenizer.decoder is None, "the caller's tokenizer is left as it was"


class ScriptedDirect(DirectApproach):
    """Direct whose model is forced to write `script` (token ids), one token per step, through `generate`."""

    def __init__(self, model, tokenizer, script: list[int]) -> None:
        super().__init__(model, tokenizer)
        self.script = script
        self.steps = []

    def generate_new_tokens(self, inputs, **generate_kwargs):
        script, start = self.script, inputs["input_ids"].shape[1]

        def force(input_ids, scores):
            forced = torch.full_like(scores, float("-inf"))
            forced[:, script[min(input_ids.shape[1] - start, len(script) - 1)]] = 0
            return forced

        new_tokens = super().generate_new_tokens(
            inputs, logits_processor=LogitsProcessorList([force]), **generate_kwargs
        )
        self.steps.append(new_tokens.shape[1])
        return new_tokens


def test_a_word_spelled_in_many_tokens_is_generated_whole_and_generation_stops_after_it(llm, tokenizer):
    """A byte-level LLM spells a script it was not trained on byte by byte: the word must not be cut at a small token
    budget, and generation ends at the first token of the word after it."""
    word = "ףףץץךךםםןן"
    word_ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    after = tokenizer(" next words follow", add_special_tokens=False)["input_ids"]
    assert len(word_ids) > 8, "the word must need more tokens than the old budget of 8"
    approach = ScriptedDirect(llm, tokenizer, word_ids + after)
    assert approach.predict(["the cat sat on the", "a dog"], batch_size=2) == [word, word]
    assert approach.steps == [len(word_ids) + 1], "stopped at the next word's first token"

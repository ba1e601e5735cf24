"""TallPredictor: the cached, batched path agrees with the reference algorithm, and its outputs are well formed."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, pipeline

from tall_hf import TallForCausalLM, TallPredictor
from tall_hf.data import translate
from tall_hf.generation import TallNextWordPipeline
from tall_hf.resources import read_corpus


@pytest.fixture(scope="module")
def predictor(tiny_paths, tiny_processor) -> TallPredictor:
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**tiny_paths)
    translator = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    return TallPredictor(model, tiny_processor, translator)


@pytest.fixture(scope="module")
def prefixes() -> list[str]:
    """20 prefixes of different lengths (so target lengths differ inside a batch), one of them a single word."""
    sentences = read_corpus("hebrew")[:20]
    return [" ".join(sentence.split()[:-1]) for sentence in sentences[:19]] + [sentences[19].split()[0]]


def test_cached_and_reference_greedy_agree_at_batch_size_one(predictor, prefixes):
    subset = prefixes[:6] + prefixes[-1:]
    cached = predictor.predict_next_word(subset, batch_size=1)
    reference = predictor.predict_next_word(subset, batch_size=1, use_cache=False)
    assert cached == reference
    assert any(cached), "the tiny model should predict some non-empty words"


def test_stages_one_to_six_run_once_per_word_not_per_token(predictor, prefixes, monkeypatch):
    calls = {"encode": 0, "translate": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(predictor.model, "encode", counting("encode", predictor.model.encode))
    monkeypatch.setattr(predictor.translator, "generate", counting("translate", predictor.translator.generate))
    predictor.predict_next_word(prefixes[:6], batch_size=3, max_word_tokens=4)
    assert calls == {"encode": 2, "translate": 2}  # one call per batch of 3, whatever the word's length

    calls.update(encode=0, translate=0)
    token_counts = []
    monkeypatch.setattr(predictor, "_stops", counting_stops(predictor._stops, token_counts))
    predictor.predict_next_word(prefixes[:1], batch_size=1, max_word_tokens=4, use_cache=False)
    assert calls["encode"] == calls["translate"] == len(token_counts) >= 1  # the reference: all stages per token


def counting_stops(stops, steps: list):
    def wrapper(tokens, step):
        steps.append(step)
        return stops(tokens, step)

    return wrapper


def test_batching_does_not_change_greedy_predictions(predictor, prefixes):
    one_by_one = predictor.predict_next_word(prefixes, batch_size=1)
    batched = predictor.predict_next_word(prefixes, batch_size=16)
    assert batched == one_by_one
    assert predictor.predict_next_word(prefixes[:8], batch_size=4, use_cache=False) == one_by_one[:8]


def test_one_word_per_prefix(predictor, prefixes):
    words = predictor.predict_next_word(prefixes, batch_size=8)
    assert len(words) == len(prefixes)
    assert all(len(word.split()) <= 1 for word in words)
    short = predictor.predict_next_word(prefixes, batch_size=8, max_word_tokens=1)
    target_tokenizer = predictor.processor.target_tokenizer
    assert all(len(target_tokenizer(text_target=word, add_special_tokens=False)["input_ids"]) <= 2 for word in short)


def test_given_translations_skip_the_translator(predictor, prefixes):
    translations = translate(prefixes, predictor.translator, predictor.processor.source_tokenizer)
    assert predictor.predict_next_word(prefixes, translations=translations) == predictor.predict_next_word(prefixes)
    continued = predictor.continue_text(prefixes[:4], 2, translations=translations[:4])
    assert continued == predictor.continue_text(prefixes[:4], 2)
    with pytest.raises(ValueError, match="translations"):
        predictor.predict_next_word(prefixes, translations=translations[:-1])


def test_sampling_is_reproducible_with_a_seed(predictor, prefixes):
    first = predictor.predict_next_word(prefixes, do_sample=True, seed=3)
    assert predictor.predict_next_word(prefixes, do_sample=True, seed=3) == first
    # one random stream per sentence: neither the batch nor the path changes a sentence's draws
    assert predictor.predict_next_word(prefixes, do_sample=True, seed=3, batch_size=1) == first
    sample = prefixes[:4]
    assert predictor.predict_next_word(sample, do_sample=True, seed=3, batch_size=1, use_cache=False) == first[:4]
    others = [predictor.predict_next_word(prefixes, do_sample=True, seed=seed) for seed in (4, 5)]
    greedy = predictor.predict_next_word(prefixes)
    assert any(other != first for other in others)
    assert first != greedy


def test_continuation_adds_num_words_words(predictor, prefixes):
    continuations = predictor.continue_text(prefixes[:6], num_words=3, batch_size=4)
    assert len(continuations) == 6
    assert all(1 <= len(text.split()) <= 3 for text in continuations)
    assert sum(len(text.split()) == 3 for text in continuations) >= 4
    first_words = predictor.predict_next_word(prefixes[:6])
    assert [text.split()[0] for text in continuations] == first_words
    sampled = predictor.continue_text(prefixes[:6], num_words=3, do_sample=True, seed=1)
    assert predictor.continue_text(prefixes[:6], num_words=3, do_sample=True, seed=1) == sampled


@pytest.mark.parametrize("bad", [[""], ["   "], ["שלום", ""]])
def test_empty_prefix_is_a_clear_error(predictor, bad):
    with pytest.raises(ValueError, match="empty"):
        predictor.predict_next_word(bad)


def test_bad_arguments_are_clear_errors(predictor, prefixes):
    with pytest.raises(TypeError, match="list"):
        predictor.predict_next_word(prefixes[0])
    with pytest.raises(ValueError, match="No prefixes"):
        predictor.predict_next_word([])
    with pytest.raises(ValueError, match="num_words"):
        predictor.continue_text(prefixes[:1], num_words=0)
    with pytest.raises(ValueError, match="max_word_tokens"):
        predictor.predict_next_word(prefixes[:1], max_word_tokens=0)


@pytest.fixture(scope="module")
def saved_model(predictor, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tall_model")
    predictor.model.save_pretrained(folder)
    predictor.processor.save_pretrained(folder)
    return str(folder)


def test_from_pretrained_finds_the_translator_in_the_config(predictor, prefixes, saved_model):
    loaded = TallPredictor.from_pretrained(saved_model)
    assert loaded.predict_next_word(prefixes[:5]) == predictor.predict_next_word(prefixes[:5])


def test_pipeline_wraps_the_predictor(predictor, prefixes, saved_model):
    predict = pipeline("tall-next-word", model=saved_model, device="cpu", batch_size=4)
    assert isinstance(predict, TallNextWordPipeline)
    expected = predictor.predict_next_word(prefixes[:5])
    assert predict(prefixes[0]) == {"prefix": prefixes[0], "next_word": expected[0]}
    assert [row["next_word"] for row in predict(prefixes[:5])] == expected
    continued = predict(prefixes[:2], num_words=2, do_sample=True, seed=0)
    assert [row["continuation"] for row in continued] == predictor.continue_text(
        prefixes[:2], 2, do_sample=True, seed=0
    )
    with pytest.raises(TypeError, match="Unknown arguments"):
        predict(prefixes[0], beams=2)

"""TallPredictor: the cached, batched path agrees with the reference algorithm, and its outputs are well formed."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, pipeline

from tall_hf import TallForConditionalGeneration, TallPredictor
from tall_hf.data import lr_hr_translator, translate
from tall_hf.generation import TallNextWordPipeline
from tall_hf.generation.predictor import DecodingOptions
from tall_hf.resources import read_corpus
from tall_hf.testing.reference import reference_next_words


@pytest.fixture(scope="module")
def predictor(tiny_paths, tiny_processor) -> TallPredictor:
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    translator = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    return TallPredictor(model, tiny_processor, translator)


@pytest.fixture(scope="module")
def prefixes() -> list[str]:
    """20 prefixes of different lengths (so target lengths differ inside a batch), one of them a single word."""
    sentences = read_corpus("hebrew")[:20]
    return [" ".join(sentence.split()[:-1]) for sentence in sentences[:19]] + [sentences[19].split()[0]]


def test_generate_and_the_reference_algorithm_agree_greedily(predictor, prefixes):
    """`generate` (stages 1-6 once, the LR decoder with its cache, batched) gives the words of the paper's uncached
    per-token algorithm (the package's previous implementation)."""
    subset = prefixes[:6] + prefixes[-1:]
    cached = predictor.predict_next_word(subset, batch_size=4)
    reference = reference_next_words(
        predictor.model, predictor.processor, subset, batch_size=1, translator=predictor.translator
    )
    assert cached == reference
    assert any(cached), "the tiny model should predict some non-empty words"


def test_stages_one_to_six_run_once_per_word_not_per_token(predictor, prefixes, monkeypatch):
    encoded, translated = [], []
    encoder = predictor.model.get_encoder()
    encode, generate = encoder.forward, predictor.translator.generate
    monkeypatch.setattr(
        encoder, "forward", lambda *a, **k: encoded.append(len(a[0] if a else k["input_ids"])) or encode(*a, **k)
    )
    monkeypatch.setattr(predictor.translator, "generate", lambda **k: translated.append(1) or generate(**k))
    new_prefixes = [f"{prefix} שוב" for prefix in prefixes[:6]]
    predictor.predict_next_word(new_prefixes, batch_size=3, max_word_tokens=4)
    assert sum(encoded) == 6 and len(translated) == 2  # each sentence encoded once; translated in 2 batches of 3

    encoded.clear(), translated.clear()
    options = DecodingOptions(max_word_tokens=4)
    reference_next_words(
        predictor.model, predictor.processor, new_prefixes[:1], options, translator=predictor.translator
    )
    assert len(encoded) == len(translated) >= 2  # the reference: translation and all stages for every token


def test_the_lr_encoder_reads_each_sentence_once(tiny_paths, tiny_processor, prefixes):
    """With the model's own translator, whose encoder is stage 1, the states it computes while translating are
    TALL's stage 1 (`lr_encoder_outputs`): the LR encoder runs once per batch of sentences, not once to translate and
    again in TALL (6 + 6 rows before), and the words are those of TALL encoding the prefixes itself."""
    torch.manual_seed(0)
    predictor = TallPredictor.from_model(TallForConditionalGeneration.from_components(**tiny_paths), tiny_processor)
    assert predictor.translator.get_encoder() is predictor.model.lr_encoder
    rows = []
    hook = predictor.model.lr_encoder.register_forward_hook(
        lambda module, args, output: rows.append(output.last_hidden_state.shape[0])
    )
    try:
        words = predictor.predict_next_word(prefixes[:6], batch_size=3)
        assert rows == [3, 3]  # the translation of each batch of 3, and nothing in TALL
        translations = predictor.translate(prefixes[:6])
        rows.clear()
        assert predictor.predict_next_word(prefixes[:6], batch_size=3, translations=translations) == words
        assert sum(rows) == 6  # given translations: TALL's stage 1 encodes the prefixes
    finally:
        hook.remove()
    assert any(words)


def test_batching_does_not_change_greedy_predictions(predictor, prefixes):
    one_by_one = predictor.predict_next_word(prefixes, batch_size=1)
    batched = predictor.predict_next_word(prefixes, batch_size=16)
    assert batched == one_by_one
    assert predictor.predict_next_word(prefixes[:8], batch_size=4, use_cache=False) == one_by_one[:8]  # no KV cache


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
    options = DecodingOptions(do_sample=True)
    generators = predictor._generators(3, len(prefixes))[:4]
    reference = reference_next_words(predictor.model, predictor.processor, sample, options, generators=generators)
    assert reference == first[:4]
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


def test_each_target_length_group_gets_fresh_stopping_criteria(predictor, prefixes):
    """TALL's `generate` runs one decoder call per target length: a stateful criterion (the word boundary reads the
    prompt length at its first step) must not carry one group's state into the next."""
    from transformers import StoppingCriteriaList

    from tall_hf.generation.word_boundary import WordBoundaryCriteria, word_start_mask

    calls: list[tuple[bool, int]] = []  # per call: was it the first call of its criterion, and the sequence length

    class Recording(WordBoundaryCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            calls.append((self._prompt_length is None, input_ids.shape[1]))
            return super().__call__(input_ids, scores, **kwargs)

    processor = predictor.processor
    batch = processor(prefixes[:5], predictor.translate(prefixes[:5]))
    lengths = batch["decoder_attention_mask"].sum(dim=1)
    assert len(lengths.unique()) > 1, "the batch must hold several target lengths"
    word_start = word_start_mask(processor.target_tokenizer, predictor.model.config.hr_lr_config.vocab_size)
    criterion = Recording(word_start, processor.target_tokenizer.eos_token_id)
    predictor.model.generate(**batch, stopping_criteria=StoppingCriteriaList([criterion]), max_new_tokens=4)
    assert criterion._prompt_length is None, "the caller's criterion stays unused"
    starts = [index for index, (first, _) in enumerate(calls) if first]
    assert starts[0] == 0 and len(starts) == len(lengths.unique()), f"one fresh criterion per group: {calls}"
    ends = [*starts[1:], len(calls)]
    for start, end in zip(starts, ends, strict=True):  # each copy served one generate call: consecutive lengths
        steps = [length for _, length in calls[start:end]]
        assert steps == list(range(steps[0], steps[0] + len(steps))), calls


def test_generate_reads_the_cache_and_labelled_forwards_return_none(predictor, prefixes):
    """With either name transformers gives the cache (`past_key_values` before 5.24, `cache` after), `generate` feeds
    the LR decoder one new token per step; a forward with labels (Trainer's training and evaluation) keeps no cache."""
    from tall_hf.models.tall.modeling_tall import CACHE_NAME

    model, processor = predictor.model, predictor.processor
    batch = processor(prefixes[:1], predictor.translate(prefixes[:1]))
    widths: list[int] = []
    handle = model.lr_decoder.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        cached = model.generate(**batch, max_new_tokens=4, min_new_tokens=4)
    finally:
        handle.remove()
    assert widths == [batch["decoder_input_ids"].shape[1], 1, 1, 1]
    assert torch.equal(cached, model.generate(**batch, max_new_tokens=4, min_new_tokens=4, use_cache=False))
    labels = batch["decoder_input_ids"].clone()
    with torch.no_grad():
        output = model(**batch, labels=labels)
    assert getattr(output, CACHE_NAME) is None and output.loss is not None
    with torch.no_grad():
        assert getattr(model(**batch, use_cache=True), CACHE_NAME) is not None


def test_generate_on_a_saved_tall_gives_the_reference_greedy_words(predictor, prefixes, saved_model):
    """HF-native use: `AutoModelForSeq2SeqLM` + `generate(**processor(prefixes, translations))` with the word-boundary
    criterion gives the words of the paper's reference algorithm; rows of different target lengths go in one call."""
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor, StoppingCriteriaList

    from tall_hf.generation.word_boundary import WordBoundaryCriteria, split_words, word_start_mask
    from tall_hf.utils.text import normalize_text

    model = AutoModelForSeq2SeqLM.from_pretrained(saved_model)
    processor = AutoProcessor.from_pretrained(saved_model)
    assert model.can_generate() and model.config.is_encoder_decoder
    sample = prefixes[:5]
    translations = translate(sample, lr_hr_translator(model), processor.source_tokenizer)  # the model's own
    batch = processor(sample, translations)
    word_start = word_start_mask(processor.target_tokenizer, model.config.hr_lr_config.vocab_size)
    eos, pad = processor.target_tokenizer.eos_token_id, processor.target_tokenizer.pad_token_id
    criteria = StoppingCriteriaList([WordBoundaryCriteria(word_start, eos)])
    generated = model.generate(**batch, stopping_criteria=criteria)  # GenerationConfig: max_new_tokens=8
    lengths = batch["decoder_attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) > 1  # a mixed batch, generated in groups of one target length
    rows = zip(generated, lengths, strict=True)
    words = [split_words(row[None, length:], word_start, eos, pad)[0] for row, length in rows]
    words = [normalize_text(word) for word in processor.batch_decode(words)]
    assert words == reference_next_words(predictor.model, predictor.processor, sample)

    torch.manual_seed(0)  # sampling through generate's own path: the paper's warpers, global random stream
    sampled = model.generate(
        **processor(sample[:1], translations[:1]), do_sample=True, temperature=0.7, top_k=50, top_p=0.95
    )
    assert sampled.shape[1] <= batch["decoder_input_ids"].shape[1] + model.generation_config.max_new_tokens

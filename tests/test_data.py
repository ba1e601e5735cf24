"""Data preparation: filters with counts, cached translation (no second translator run), resumable shards, collator
labels and loss per mode against hand computations."""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset
from torch.nn import functional as F
from transformers import AutoModelForSeq2SeqLM

from tall_hf import TallForConditionalGeneration, TallProcessor
from tall_hf.data import PreparationArguments, TallDataCollator, clean_sentences, prepare_tall_dataset, translate

FAST = {"translation_batch_size": 32, "num_beams": 1, "max_new_tokens": 8}


class CountingTranslator:
    """Wraps a translator's `generate` to count the sentences it translates (and optionally fail on a call)."""

    def __init__(self, model, fail_on_call: int | None = None) -> None:
        self.model, self.sentences, self.calls, self.fail_on_call = model, 0, 0, fail_on_call
        self._generate = model.generate
        model.generate = self

    def __call__(self, **inputs):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated kill")
        self.sentences += inputs["input_ids"].shape[0]
        return self._generate(**inputs)


@pytest.fixture
def translator(tiny_paths):
    return AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])


def test_filters_count_every_reason_and_never_crash(tiny_processor, tiny_paths, tmp_path, caplog):
    long_line = " ".join(f"מילה{i}" for i in range(40))
    lines = [
        "",
        "   ",
        "אחת",
        "שתי מילים",
        long_line,
        "זה משפט תקין של חמש מילים",
        "זה משפט תקין, של חמש מילים!",
        None,
    ]
    cleaned = clean_sentences(lines, PreparationArguments())
    assert cleaned.sentences == ["זה משפט תקין של חמש מילים"]
    assert cleaned.prefixes == ["זה משפט תקין של חמש"] and cleaned.last_words == ["מילים"]
    assert dict(cleaned.filtered) == {"empty": 3, "too_short": 2, "too_long": 1, "duplicate": 1}

    caplog.set_level(logging.INFO, logger="tall_hf")
    args = PreparationArguments(cache_dir=str(tmp_path), **FAST)
    dataset = prepare_tall_dataset(lines, tiny_processor, tiny_paths["lr_hr"], args)
    assert len(dataset) == 1
    assert "Kept 1 of 8 sentences (filtered empty: 3, too_short: 2, too_long: 1, duplicate: 1)" in caplog.text
    with pytest.raises(ValueError, match="No sentence left"):
        prepare_tall_dataset(["", "אחת"], tiny_processor, tiny_paths["lr_hr"], args)


def test_word_limits_are_configurable():
    lines = ["אחת שתיים", "אחת שתיים שלוש ארבע חמש שש"]
    assert len(clean_sentences(lines, PreparationArguments(min_words=2, max_words=3)).sentences) == 1
    with pytest.raises(ValueError, match="min_words"):
        PreparationArguments(min_words=1)


def test_second_preparation_is_served_from_cache(tiny_processor, translator, hebrew_sentences, tmp_path):
    counter = CountingTranslator(translator)
    args = PreparationArguments(cache_dir=str(tmp_path), **FAST)
    first = prepare_tall_dataset(hebrew_sentences[:24], tiny_processor, translator, args)
    assert counter.sentences == len(first) > 20
    again = prepare_tall_dataset(hebrew_sentences[:24], tiny_processor, translator, args)
    assert counter.sentences == len(first)  # nothing translated the second time
    assert again["translation"] == first["translation"] and again["input_ids"] == first["input_ids"]
    # Other inputs, or other generation settings, are a different cache entry.
    prepare_tall_dataset(hebrew_sentences[:23], tiny_processor, translator, args)
    assert counter.sentences == len(first) + 23
    as_dataset = Dataset.from_dict({"line": hebrew_sentences[:24]})
    args_column = PreparationArguments(cache_dir=str(tmp_path), text_column="line", **FAST)
    assert prepare_tall_dataset(as_dataset, tiny_processor, translator, args_column)["sentence"] == first["sentence"]


def test_translations_are_the_same_when_the_encoder_outputs_are_kept(translator, tiny_processor, hebrew_sentences):
    """`translate(..., return_encoder_outputs=True)` runs the encoder itself and hands its output to `generate` (which
    expands it for its beams): the same translations, and each text's states without padding."""
    texts = hebrew_sentences[:7]
    tokenizer = tiny_processor.source_tokenizer
    plain = translate(texts, translator, tokenizer, batch_size=3, num_beams=3)
    kept, states = translate(
        texts, translator, tokenizer, batch_size=3, num_beams=3, return_encoder_outputs=True, output_hidden_states=True
    )
    assert kept == plain
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    assert [state.last_hidden_state.shape[0] for state in states] == lengths
    assert len(states[0].hidden_states) == translator.config.encoder_layers + 1


def test_killed_preparation_resumes_without_redoing_finished_shards(
    tiny_processor, translator, hebrew_sentences, tmp_path
):
    args = PreparationArguments(cache_dir=str(tmp_path), num_shards=4, **{**FAST, "translation_batch_size": 4})
    texts = hebrew_sentences[:16]
    counter = CountingTranslator(translator, fail_on_call=3)  # killed in the third shard (one batch per shard)
    with pytest.raises(KeyboardInterrupt):
        prepare_tall_dataset(texts, tiny_processor, translator, args)
    assert counter.sentences == 8
    counter.fail_on_call = None
    resumed = prepare_tall_dataset(texts, tiny_processor, translator, args)
    assert counter.sentences == 8 + 8  # shards 1-2 come from cache; only shards 3-4 are translated
    translator.generate = counter._generate
    fresh = prepare_tall_dataset(texts, tiny_processor, translator, PreparationArguments(**FAST, num_shards=4))
    assert resumed["translation"] == fresh["translation"]


def test_file_input_and_lazy_translator(tiny_processor, tiny_paths, hebrew_sentences, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(hebrew_sentences[:20]), encoding="utf-8")
    args = PreparationArguments(cache_dir=str(tmp_path / "cache"), **FAST)
    dataset = prepare_tall_dataset(path, tiny_processor, tiny_paths["lr_hr"], args)
    assert set(dataset.column_names) >= {"input_ids", "bridge_input_ids", "target_ids", "last_word_length"}
    with pytest.raises(FileNotFoundError, match="No text file"):
        prepare_tall_dataset(tmp_path / "missing.txt", tiny_processor, tiny_paths["lr_hr"], args)


SENTENCES = ["זה משפט קצר של חמש מילים", "הספר הזה מספר על חייו של אדם שעבד בעיר גדולה", "היא הלכה הביתה מוקדם"]
TRANSLATIONS = [
    "this is a short sentence of five",
    "this book tells of the life of a man who worked in a big",
    "she went",
]


@pytest.mark.parametrize("loss_mode", ["last_token", "last_word", "all_tokens"])
def test_collator_labels_and_loss_match_hand_computation(tiny_paths, loss_mode):
    processor = TallProcessor.from_components(**tiny_paths, loss_mode=loss_mode)
    rows = []
    for sentence, translation in zip(SENTENCES, TRANSLATIONS, strict=True):
        prefix, last = sentence.rsplit(" ", 1)
        target = processor.target_token_ids([sentence])[0]
        rows.append(
            {
                "input_ids": processor.source_tokenizer(prefix)["input_ids"],
                "bridge_input_ids": processor.llm_tokenizer(translation)["input_ids"],
                "target_ids": target,
                "last_word_length": len(processor.target_token_ids([last])[0]),
                "sentence": sentence,  # text columns are ignored
            }
        )
    batch = TallDataCollator(processor)(rows)

    # The collator agrees with the processor on the same texts.
    prefixes = [sentence.rsplit(" ", 1)[0] for sentence in SENTENCES]
    reference = processor(prefixes, TRANSLATIONS, SENTENCES)
    for key in reference:
        assert torch.equal(batch[key], reference[key]), key

    # Padding uses each stream's own pad id.
    pads = {"input_ids": processor.source_tokenizer, "bridge_input_ids": processor.llm_tokenizer}
    for key, tokenizer in pads.items():
        mask = batch["attention_mask" if key == "input_ids" else "bridge_attention_mask"]
        assert batch[key][mask == 0].eq(tokenizer.pad_token_id).all() and (mask == 0).any()
    assert (
        batch["decoder_input_ids"][batch["decoder_attention_mask"] == 0]
        .eq(processor.target_tokenizer.pad_token_id)
        .all()
    )

    # Labels by hand.
    for index, row in enumerate(rows):
        target, keep = row["target_ids"], row["last_word_length"]
        expected = list(target) if loss_mode != "last_word" else [-100] * (len(target) - keep) + target[-keep:]
        expected += [-100] * (batch["labels"].shape[1] - len(target))
        assert batch["labels"][index].tolist() == expected
        assert (
            batch["decoder_input_ids"][index, : len(target)].tolist()
            == [processor.decoder_start_token_id] + target[:-1]
        )

    # Loss by hand from the logits.
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths, loss_mode=loss_mode).eval()
    with torch.no_grad():
        output = model(**batch)
    terms = []
    for index, row in enumerate(rows):
        target, keep = row["target_ids"], row["last_word_length"]
        positions = {"last_token": [len(target) - 1], "last_word": range(len(target) - keep, len(target))}
        for position in positions.get(loss_mode, range(len(target))):
            terms.append(F.cross_entropy(output.logits[index, position], torch.tensor(target[position])))
    expected_loss = torch.stack(terms).mean()
    torch.testing.assert_close(output.loss, expected_loss)


def test_collator_explains_missing_columns(tiny_processor):
    with pytest.raises(KeyError, match="remove_unused_columns=False"):
        TallDataCollator(tiny_processor)([{"input_ids": [1, 2]}])

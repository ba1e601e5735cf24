"""Teacher labels from the frozen pipeline and every word boundary as an example: what the default recipe learns from."""

from __future__ import annotations

import pytest
import torch

from tall_hf import TallProcessor
from tall_hf.data import PreparationArguments, prepare_tall_dataset
from tall_hf.data.preparation import word_boundary_prefixes
from tall_hf.training import teacher
from tall_hf.training.run import TallDataArguments
from tall_hf.training.teacher import with_teacher_labels


def test_every_word_boundary_is_an_example():
    assert word_boundary_prefixes(["a b c d e f g", "a b c"], min_words=5) == [
        "a b c d e",
        "a b c d e f",
        "a b c d e f g",
    ]


def test_recipes_set_the_data_options():
    assert TallDataArguments(train_file="x").recipe_options("teacher") == {
        "teacher_labels": True,
        "word_boundaries": True,
    }
    assert TallDataArguments(train_file="x").recipe_options("paper") == {
        "teacher_labels": False,
        "word_boundaries": False,
    }
    given = TallDataArguments(train_file="x", teacher_labels=False).recipe_options("teacher")
    assert given == {"teacher_labels": False, "word_boundaries": True}


def test_teacher_labels_are_the_pipelines_words_and_are_cached(test_world, tmp_path, monkeypatch):
    components = test_world.components
    processor = TallProcessor.from_components(**components, loss_mode="last_word")
    train = prepare_tall_dataset(
        test_world.sentences("train"), processor, components["lr_hr"], PreparationArguments(cache_dir=str(tmp_path))
    )
    labelled = with_teacher_labels(train, processor, components, tmp_path / "run")
    # Measured: the world LLM writes a word after 272 of the 300 prefixes (it ends the text after the others).
    assert len(train) >= len(labelled) > len(train) / 2
    for row in labelled:
        assert row["sentence"] == f"{row['prefix']} {row['last_word']}"
        assert row["target_ids"] == processor.target_token_ids([row["sentence"]])[0]
        assert row["last_word_length"] == len(processor.target_token_ids([row["last_word"]])[0])
    # The teacher is the world LLM: measured, its word is the gold one for 34 of the 300 training sentences (the
    # world's ceiling on the test sentences is 18%); a teacher of random words would agree with almost none.
    gold = dict(zip(train["prefix"], train["last_word"], strict=True))
    agree = sum(gold[row["prefix"]] == row["last_word"] for row in labelled)
    assert agree > 17, agree

    def never(*args, **kwargs):
        raise AssertionError("labelled again")

    monkeypatch.setattr(teacher, "teacher_words", never)
    assert with_teacher_labels(train, processor, components, tmp_path / "run")["last_word"] == labelled["last_word"]
    with pytest.raises(AssertionError, match="labelled again"):
        with_teacher_labels(train, processor, components, tmp_path / "other")


def test_adapter_b_learns_to_read_the_llms_predictions(test_world, run_arguments, tmp_path):
    from tall_hf import TallForCausalLM
    from tall_hf.training.adapter_pretraining import next_token_table, pretrain_next_token_reader

    components = test_world.components
    processor = TallProcessor.from_components(**components)
    model = TallForCausalLM.from_components(**components, target_transformer_init="translator")
    table = next_token_table(model, processor)
    assert table.shape == (model.get_input_embeddings().weight.shape[0], model.config.hr_lr_config.d_model)
    assert (table[processor.llm_tokenizer.all_special_ids] == 0).all()
    used = {i for ids in processor.llm_tokenizer(test_world.sentences("train", hr=True))["input_ids"] for i in ids}
    covered = [bool(table[i].any()) for i in sorted(used)]
    assert sum(covered) / len(covered) > 0.9, sum(covered) / len(covered)  # the HR text's tokens read as HR text
    train = prepare_tall_dataset(
        test_world.sentences("train")[:64],
        processor,
        components["lr_hr"],
        PreparationArguments(cache_dir=str(tmp_path)),
    )
    before = model.target_alignment.down.weight.detach().clone()
    args = run_arguments(tmp_path / "reader", max_steps=30, logging_steps=10)
    losses = pretrain_next_token_reader(model, processor, train, args, components["llm"])
    # Measured (test world): 0.91 -> 0.24 over 60 steps on 300 sentences, 0.92 -> 0.30 over these 30 steps on 64.
    assert losses[-1] < 0.6 * losses[0], losses
    assert not torch.equal(model.target_alignment.down.weight, before)

"""Teacher labels from the frozen pipeline and every word boundary as an example: what the default recipe learns from."""

from __future__ import annotations

import pytest
import torch

from tall_hf import TallForConditionalGeneration, TallProcessor
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
    teacher = TallDataArguments(train_file="x").recipe_options("teacher")
    assert teacher["teacher_labels"] and teacher["word_boundaries"]
    assert TallDataArguments(train_file="x").recipe_options("paper") == {
        "teacher_labels": False,
        "teacher_forced_prefix": False,
        "word_boundaries": False,
    }
    given = TallDataArguments(train_file="x", teacher_labels=False).recipe_options("teacher")
    assert given == {**teacher, "teacher_labels": False}


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
    from tall_hf.training.adapter_pretraining import next_token_table, pretrain_next_token_reader

    components = test_world.components
    processor = TallProcessor.from_components(**components)
    model = TallForConditionalGeneration.from_components(**components, target_transformer_init="translator")
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


def test_the_forced_prefix_teacher_is_naive_with_the_lr_prefix_forced(test_world, tmp_path):
    """`forced_prefix` labels with `ForcedPrefixNaiveApproach`: the back-translation starts with the LR prefix, as
    TALL's LR decoder reads it (what it gains on the lossy world: benchmarks/README.md, "On real text")."""
    from tall_hf.evaluation import ApproachContext, ForcedPrefixNaiveApproach

    components = test_world.components
    processor = TallProcessor.from_components(**components, loss_mode="last_word")
    train = prepare_tall_dataset(
        test_world.sentences("train")[:64],
        processor,
        components["lr_hr"],
        PreparationArguments(cache_dir=str(tmp_path)),
    )
    labelled = with_teacher_labels(train, processor, components, tmp_path / "forced", forced_prefix=True)
    context = ApproachContext(**components, output_dir=str(tmp_path), device=torch.device("cpu"))
    words = ForcedPrefixNaiveApproach.from_context(context).predict(train["prefix"], translations=train["translation"])
    assert labelled["last_word"] == [word for word in words if word]


def test_frozen_stages_get_no_gradient(tiny_paths, tiny_processor):
    from tall_hf.training.recipes import freeze_stages

    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(
        **tiny_paths, source_residual=True, target_transformer_init="translator"
    )
    source_side = ("encoder_fusion", "source_alignment", "source_transformer")
    freeze_stages(model, source_side)
    batch = tiny_processor(["הילדים הלכו אל"], ["the children went to"], ["הילדים הלכו אל הגן"])
    model(**batch).loss.backward()
    for stage in source_side:
        assert all(p.grad is None and not p.requires_grad for p in getattr(model, stage).parameters()), stage
    assert any(p.grad is not None for p in model.target_alignment.parameters())
    with pytest.raises(ValueError, match="no stage"):
        freeze_stages(model, ["source_adapter"])


def test_teacher_agreement_counts_the_words_and_the_gold_words_the_pipeline_writes(test_world):
    from tall_hf.training.teacher import teacher_agreement

    measured = teacher_agreement(test_world.sentences("train"), test_world.components)
    # Measured on this world: a word for 265 of its 300 training sentences, the gold one for 34 (as labelled above).
    assert measured["sentences"] == 300
    assert measured["answered"] == pytest.approx(265 / 300, abs=0.05)
    assert measured["gold"] == pytest.approx(34 / 300, abs=0.03)

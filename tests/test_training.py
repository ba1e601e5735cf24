"""Training through transformers.Trainer: frozen parts never change, resuming is exact, the output folder loads with
AutoModel/TallProcessor, evaluation reports loss/perplexity/last-token accuracy, and the tiny TALL overfits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, EvalPrediction, TrainingArguments

from tall_hf import TallForConditionalGeneration, TallProcessor
from tall_hf.data import PreparationArguments, prepare_tall_dataset
from tall_hf.models.tall.configuration_tall import derive_source_transformer_config, derive_target_transformer_config
from tall_hf.models.tall.modeling_tall import TallEncoder
from tall_hf.training import TallMetrics, create_tall_trainer, tall_training_arguments, train_tall
from tall_hf.training.adapter_pretraining import masked_mse, pretrain_alignment_adapters


@pytest.fixture(scope="module")
def prepared(tiny_paths, tiny_processor, hebrew_sentences, tmp_path_factory):
    args = PreparationArguments(
        cache_dir=str(tmp_path_factory.mktemp("prep")), translation_batch_size=64, num_beams=1, max_new_tokens=8
    )
    return prepare_tall_dataset(hebrew_sentences[:64], tiny_processor, tiny_paths["lr_hr"], args)


def quick_args(output_dir, **overrides):
    settings = {
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "learning_rate": 1e-3,
        "warmup_steps": 0,
        "max_steps": 6,
        "eval_steps": 3,
        "save_steps": 3,
        "logging_steps": 1,
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 7,
        "save_total_limit": None,
    }
    return tall_training_arguments(output_dir, **{**settings, **overrides})


def trainable_state(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def test_training_updates_only_trainable_parts_and_saves_a_loadable_model(
    tiny_paths, tiny_processor, prepared, tmp_path
):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    before = trainable_state(model)
    trainer = train_tall(
        model, tiny_processor, prepared.select(range(48)), prepared.select(range(48, 64)), quick_args(tmp_path)
    )

    optimized = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(optimized) == len(trainable) and all(any(p is q for q in optimized) for p in trainable)
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert torch.equal(parameter, frozen[name]), name
    assert any(not torch.equal(p, before[name]) for name, p in trainable_state(model).items())

    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) >= 2
    last = evaluations[-1]
    assert {"eval_last_token_accuracy", "eval_token_accuracy", "eval_perplexity"} <= set(last)
    assert last["eval_perplexity"] == pytest.approx(np.exp(last["eval_loss"]), rel=1e-4)
    assert trainer.state.best_metric == min(entry["eval_loss"] for entry in evaluations)

    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert isinstance(loaded, TallForConditionalGeneration)
    for name, parameter in loaded.named_parameters():
        torch.testing.assert_close(parameter, dict(model.named_parameters())[name])
    processor = TallProcessor.from_pretrained(tmp_path)
    assert processor.loss_mode == tiny_processor.loss_mode
    assert (tmp_path / "checkpoint-3" / "source_tokenizer").is_dir()  # every checkpoint is complete


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tiny_paths, tiny_processor, prepared, tmp_path):
    data = prepared.select(range(40))
    torch.manual_seed(0)
    uninterrupted = TallForConditionalGeneration.from_components(**tiny_paths)
    create_tall_trainer(
        uninterrupted,
        tiny_processor,
        quick_args(tmp_path / "a", eval_strategy="no", load_best_model_at_end=False),
        data,
    ).train()

    torch.manual_seed(0)
    resumed = TallForConditionalGeneration.from_components(**tiny_paths)
    args = quick_args(tmp_path / "b", eval_strategy="no", load_best_model_at_end=False)
    create_tall_trainer(resumed, tiny_processor, args, data).train(
        resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3")
    )
    expected = trainable_state(uninterrupted)
    for name, parameter in trainable_state(resumed).items():
        assert torch.equal(parameter, expected[name]), name


def test_a_frozen_source_side_trains_on_cached_llm_states_with_the_same_losses(
    tiny_paths, tiny_processor, prepared, tmp_path, monkeypatch
):
    """Stages 1-4 frozen: training on their cached output (`tall_hf.training.frozen_states`) gives the losses of
    training through them (no dropout, so both paths draw the same numbers), and a second run reads the cache."""
    from tall_hf.training import frozen_states
    from tall_hf.training.recipes import SOURCE_SIDE, freeze_stages

    def train(folder, cache):
        torch.manual_seed(0)
        model = TallForConditionalGeneration.from_components(
            **tiny_paths, source_residual=True, adapter_dropout=0.0, transformer_dropout=0.0
        )
        freeze_stages(model, SOURCE_SIDE)
        args = quick_args(folder, eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
        trainer = train_tall(model, tiny_processor, prepared.select(range(40)), args=args, cache_llm_states=cache)
        return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry], trainer

    uncached, _ = train(tmp_path / "uncached", False)
    cached, trainer = train(tmp_path / "cached", True)
    assert frozen_states.LLM_STATES in trainer.train_dataset.column_names
    assert len(cached) == len(uncached) == 6
    np.testing.assert_allclose(cached, uncached, rtol=1e-4)
    assert len(list((tmp_path / "cached").glob("llm_states-*.arrow"))) == 1
    assert not list((tmp_path / "uncached").glob("llm_states-*.arrow"))

    def never(*args, **kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(TallEncoder, "llm_states", never)
    again = frozen_states.with_llm_states(
        prepared.select(range(40)), trainer.model, tiny_processor, tmp_path / "cached"
    )
    torch.testing.assert_close(again[0]["llm_states"], trainer.train_dataset[0]["llm_states"])


def test_metrics_against_hand_computation():
    labels = np.array([[5, 6, 7, -100], [8, 9, -100, -100]])
    predictions = np.array([[5, 0, 7, 1], [8, 1, 2, 3]])
    nll = np.array([[0.5, 1.0, 2.0, 0.0], [1.5, 3.0, 0.0, 0.0]])
    last = TallMetrics("last_token")(EvalPrediction(predictions=(predictions, nll), label_ids=labels))
    assert last["last_token_accuracy"] == 0.5  # row 0: 7 == 7; row 1: 1 != 9
    assert last["token_accuracy"] == pytest.approx(3 / 5)
    assert last["perplexity"] == pytest.approx(np.exp((2.0 + 3.0) / 2))
    tokens = TallMetrics("all_tokens")(EvalPrediction(predictions=(predictions, nll), label_ids=labels))
    assert tokens["perplexity"] == pytest.approx(np.exp((0.5 + 1.0 + 2.0 + 1.5 + 3.0) / 5))


def test_adapter_pretraining_initialises_tall_adapters(tiny_paths, tiny_processor, prepared, tmp_path):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    before = {stage: getattr(model, stage).state_dict() for stage in ("source_alignment", "target_alignment")}
    before = {stage: {k: v.clone() for k, v in state.items()} for stage, state in before.items()}
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=12,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    losses = pretrain_alignment_adapters(model, tiny_processor, prepared.select(range(32)), args)
    assert set(losses) == {"source_alignment", "target_alignment"}
    for stage, state in before.items():
        assert any(not torch.equal(value, getattr(model, stage).state_dict()[key]) for key, value in state.items())
    # Measured: 1.85 -> 0.28 (source) and 1.71 -> 0.12 (target) over the 12 steps; half of either drop ends above
    # 0.5 x the first loss.
    for history in losses.values():
        assert len(history) == 12 and history[-1] < 0.35 * history[0], losses


def test_masked_mse_ignores_padding():
    prediction = torch.tensor([[[1.0, 1.0], [5.0, 5.0]]])
    target = torch.tensor([[[0.0, 2.0], [0.0, 0.0]]])
    assert masked_mse(prediction, target, torch.tensor([[1, 0]])).item() == pytest.approx(1.0)


def overfit(
    tiny_paths, tiny_processor, sentences, tmp_path, max_steps: int, batch_size: int, **training
) -> dict[str, float]:
    """Train a dropout-free tiny TALL on `sentences` and return its evaluation on the same sentences."""
    prep = PreparationArguments(
        cache_dir=str(tmp_path / "cache"), translation_batch_size=64, num_beams=1, max_new_tokens=8
    )
    data = prepare_tall_dataset(sentences, tiny_processor, tiny_paths["lr_hr"], prep)
    configs = {role: AutoConfig.from_pretrained(path) for role, path in tiny_paths.items()}
    source = derive_source_transformer_config(configs["lr_hr"], configs["llm"])
    target = derive_target_transformer_config(configs["hr_lr"])
    source.dropout = target.dropout = 0.0
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(
        **tiny_paths,
        adapter_dropout=0.0,
        initializer_range=0.15,
        source_transformer_config=source,
        target_transformer_config=target,
    )
    settings = {
        "max_steps": max_steps,
        "per_device_train_batch_size": batch_size,
        "learning_rate": 3e-3,
        "lr_scheduler_type": "constant",
        "eval_strategy": "no",
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "logging_steps": max_steps // 4,
    }
    args = quick_args(tmp_path / "out", **{**settings, **training})
    trainer = create_tall_trainer(model, tiny_processor, args, data, eval_dataset=data)
    trainer.train()
    return trainer.evaluate()


def test_tiny_tall_overfits_a_few_sentences(tiny_paths, tiny_processor, hebrew_sentences, tmp_path):
    metrics = overfit(tiny_paths, tiny_processor, hebrew_sentences[:10], tmp_path, max_steps=150, batch_size=10)
    assert metrics["eval_last_token_accuracy"] >= 0.9, metrics


@pytest.mark.slow
def test_tiny_tall_overfits_256_sentences(tiny_paths, tiny_processor, hebrew_sentences, tmp_path):
    metrics = overfit(
        tiny_paths,
        tiny_processor,
        hebrew_sentences,
        tmp_path,
        max_steps=6000,
        batch_size=32,
        learning_rate=5e-3,
        lr_scheduler_type="cosine",
        warmup_steps=100,
    )
    assert metrics["eval_last_token_accuracy"] >= 0.9, metrics


def test_the_resume_decision_is_one_function(tmp_path):
    """`resume_point` takes the run's whole resume decision; `train_tall` is then handed a folder or nothing."""
    from tall_hf.training.run import resume_point

    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert resume_point(args) == (None, None)  # a fresh folder: start afresh
    args.resume_from_checkpoint = "True"
    with pytest.raises(ValueError, match="No complete checkpoint to resume from"):
        resume_point(args)
    args.resume_from_checkpoint = str(tmp_path / "checkpoint-3")
    assert resume_point(args) == (str(tmp_path / "checkpoint-3"), None)  # as given

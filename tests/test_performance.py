"""Performance paths give the results of the straightforward ones: reduced logits, length-sorted translation,
gradient checkpointing and bf16 autocast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from tall_hf import TallForCausalLM, TallProcessor
from tall_hf.data import PreparationArguments, prepare_tall_dataset
from tall_hf.data.translation import length_batches, translate
from tall_hf.modules.logits import loss_positions
from tall_hf.modules.losses import last_token_cross_entropy, token_cross_entropy
from tall_hf.training import create_tall_trainer

PREFIXES = ["הילדים משחקים בחצר", "אני אוהב לקרוא ספרים בערב", "מחר"]
TRANSLATIONS = ["the children play in the yard", "i like to read books in the evening", "tomorrow"]
SENTENCES = ["הילדים משחקים בחצר הגדולה", "אני אוהב לקרוא ספרים בערב השקט", "מחר בבוקר"]


def _full_logits_loss(model: TallForCausalLM, batch: dict) -> torch.Tensor:
    """The straightforward forward: LR logits at every target position, then the loss of the model's mode."""
    encoded = model.encode(
        batch["input_ids"], batch["attention_mask"], batch["bridge_input_ids"], batch["bridge_attention_mask"]
    )
    logits, _ = model.decode(batch["decoder_input_ids"], encoded, batch["decoder_attention_mask"])
    assert logits.shape[:2] == batch["labels"].shape
    if model.config.loss_mode == "last_token":
        return last_token_cross_entropy(logits, batch["labels"])
    return token_cross_entropy(logits, batch["labels"])


def _loss_and_gradients(model: TallForCausalLM, loss_fn) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(0)  # the same dropout masks in both paths
    loss = loss_fn()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("loss_mode", ["last_token", "last_word"])
def test_reduced_logits_give_the_full_logits_loss_and_gradients(tiny_paths, loss_mode):
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**tiny_paths, loss_mode=loss_mode).train()
    batch = TallProcessor.from_components(**tiny_paths, loss_mode=loss_mode)(PREFIXES, TRANSLATIONS, SENTENCES)
    keep = loss_positions(batch["labels"], loss_mode)
    reduced_loss, reduced_grads = _loss_and_gradients(model, lambda: model(**batch).loss)
    full_loss, full_grads = _loss_and_gradients(model, lambda: _full_logits_loss(model, batch))

    torch.testing.assert_close(reduced_loss, full_loss, rtol=1e-6, atol=1e-6)
    assert reduced_grads.keys() == full_grads.keys() and len(reduced_grads) > 10
    for name, grad in reduced_grads.items():
        assert grad.abs().sum() > 0 or full_grads[name].abs().sum() == 0, name
        torch.testing.assert_close(grad, full_grads[name], rtol=1e-5, atol=1e-7, msg=name)
    # Training-mode logits cover only the positions the loss reads, in the order of labels[keep].
    with torch.no_grad():
        torch.manual_seed(0)
        logits = model(**batch).logits
    expected_kept = 3 if loss_mode == "last_token" else int(batch["labels"].ne(-100).sum())
    assert logits.shape == (expected_kept, model.config.hr_lr_config.vocab_size) and int(keep.sum()) == expected_kept


def test_evaluation_and_all_tokens_mode_keep_full_logits(tiny_paths, tiny_processor):
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**tiny_paths)
    batch = tiny_processor(PREFIXES, TRANSLATIONS, SENTENCES)
    vocab = model.config.hr_lr_config.vocab_size
    with torch.no_grad():
        eval_output = model.eval()(**batch)
    assert eval_output.logits.shape == (*batch["labels"].shape, vocab)
    torch.testing.assert_close(eval_output.loss, last_token_cross_entropy(eval_output.logits, batch["labels"]))
    all_tokens = TallForCausalLM.from_components(**tiny_paths, loss_mode="all_tokens").train()
    batch = TallProcessor.from_components(**tiny_paths, loss_mode="all_tokens")(PREFIXES, TRANSLATIONS, SENTENCES)
    with torch.no_grad():
        assert all_tokens(**batch).logits.shape == (*batch["labels"].shape, vocab)


def test_length_batches_sort_longest_first_within_both_budgets():
    lengths = [3, 9, 1, 9, 4, 4, 2, 7]
    batches = list(length_batches(lengths, max_sentences=3, max_tokens=20))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) <= 3 and (len(batch) == 1 or len(batch) * lengths[batch[0]] <= 20)
    assert [len(batch) for batch in batches] == [2, 2, 3, 1]
    assert list(length_batches([50, 2], max_sentences=8, max_tokens=10)) == [[0], [1]]  # too long alone: its own batch


def test_sorted_translation_equals_one_sentence_at_a_time(tiny_paths, hebrew_sentences):
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_paths["lr_hr"])
    texts = [" ".join(line.split()[:n]) for line, n in zip(hebrew_sentences[:24], range(3, 27), strict=True)]
    calls = []
    generate = model.generate
    model.generate = lambda **kwargs: calls.append(kwargs) or generate(**kwargs)
    batched = translate(texts, model, tokenizer, batch_size=16, max_batch_tokens=600, max_new_tokens=12)

    beams = model.generation_config.num_beams
    assert beams > 1 and all(call["num_beams"] == beams for call in calls)  # the translator's own beam size
    assert 1 < len(calls) < len(texts)
    assert all(call["input_ids"].numel() * beams <= 600 or len(call["input_ids"]) == 1 for call in calls)
    calls.clear()
    single = translate(texts, model, tokenizer, batch_size=1, max_new_tokens=12, num_beams=beams)
    assert len(calls) == len(texts) and batched == single
    assert len(set(batched)) > 3  # varied translations: the comparison means something
    translate(texts[:2], model, tokenizer, num_beams=1, max_new_tokens=4)
    assert calls[-1]["num_beams"] == 1


@pytest.fixture(scope="module")
def prepared(tiny_paths, tiny_processor, hebrew_sentences, tmp_path_factory):
    args = PreparationArguments(cache_dir=str(tmp_path_factory.mktemp("prep")), num_beams=1, max_new_tokens=8)
    return prepare_tall_dataset(hebrew_sentences[:32], tiny_processor, tiny_paths["lr_hr"], args)


def _train(
    run_arguments, tiny_paths, tiny_processor, dataset, output_dir, **overrides
) -> tuple[TallForCausalLM, list[float], list]:
    """4 Trainer steps at batch 8 (dropout on); returns the model, the logged losses and the dtypes of the LM head's
    outputs and the number of self-attention calls of custom transformer 1's first layer."""
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**tiny_paths)
    seen = []
    model.lm_head.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    model.source_transformer.layers[0].self_attn.register_forward_hook(lambda *_: seen.append("attention"))
    args = run_arguments(
        output_dir,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        warmup_steps=0,
        max_steps=4,
        logging_steps=1,
        seed=7,
        **overrides,
    )
    trainer = create_tall_trainer(model, tiny_processor, args, dataset)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return model, losses, seen


def test_gradient_checkpointing_gives_the_same_training(run_arguments, tiny_paths, tiny_processor, prepared, tmp_path):
    plain, plain_losses, plain_seen = _train(run_arguments, tiny_paths, tiny_processor, prepared, tmp_path / "plain")
    checkpointed, losses, seen = _train(
        run_arguments, tiny_paths, tiny_processor, prepared, tmp_path / "checkpointed", gradient_checkpointing=True
    )
    assert checkpointed.source_transformer.layers[0].gradient_checkpointing
    assert checkpointed.target_transformer.layers[0].gradient_checkpointing
    assert plain_seen.count("attention") == 4 and seen.count("attention") == 8  # recomputed in every backward
    assert len(losses) == 4
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-5)
    plain_parameters = dict(plain.named_parameters())
    for name, parameter in checkpointed.named_parameters():
        torch.testing.assert_close(parameter, plain_parameters[name], rtol=1e-4, atol=1e-6, msg=name)


def test_bf16_autocast_trains_close_to_float32(run_arguments, tiny_paths, tiny_processor, prepared, tmp_path):
    _, fp32_losses, fp32_seen = _train(run_arguments, tiny_paths, tiny_processor, prepared, tmp_path / "fp32")
    _, bf16_losses, bf16_seen = _train(
        run_arguments, tiny_paths, tiny_processor, prepared, tmp_path / "bf16", bf16=True
    )
    assert set(fp32_seen) - {"attention"} == {torch.float32} and set(bf16_seen) - {"attention"} == {torch.bfloat16}
    assert len(bf16_losses) == 4
    np.testing.assert_allclose(bf16_losses, fp32_losses, rtol=3e-2)

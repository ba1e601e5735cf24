"""Performance paths give the results of the straightforward ones: reduced logits, length-sorted translation,
gradient checkpointing and bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from tall_hf import TallForCausalLM, TallProcessor
from tall_hf.data.translation import length_batches, translate
from tall_hf.modules.logits import loss_positions
from tall_hf.modules.losses import last_token_cross_entropy, token_cross_entropy

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
    assert len(set(batched)) >= len(texts) // 3  # varied translations: the comparison means something
    translate(texts[:2], model, tokenizer, num_beams=1, max_new_tokens=4)
    assert calls[-1]["num_beams"] == 1

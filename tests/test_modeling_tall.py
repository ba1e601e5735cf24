"""TallForConditionalGeneration on the tiny components: stages, loss, gradients, save/load, families, bad input."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from transformers import AutoModel, AutoModelForSeq2SeqLM

from tall_hf import TallForConditionalGeneration, TallModel, TallProcessor
from tall_hf.data import batch_encoder_outputs, lr_hr_translator, translate
from tall_hf.models.tall.modeling_tall import FROZEN_STAGES, TRAINABLE_STAGES, stage_of
from tall_hf.modules.losses import last_token_cross_entropy
from tall_hf.testing import build_tiny_components


def test_each_stage_has_the_width_of_its_neighbours(tiny_model, batch):
    tiny_model.eval()  # in training mode the LM head runs only where the loss reads (tests/test_performance.py)
    config = tiny_model.config
    widths = {}
    hooks = [
        getattr(tiny_model, name).register_forward_hook(
            lambda module, args, output, name=name: widths.__setitem__(
                name, (output if torch.is_tensor(output) else output[0]).shape
            )
        )
        for name in (
            "lr_encoder",
            "source_alignment",
            "source_transformer",
            "llm",
            "target_alignment",
            "target_transformer",
            "lr_decoder",
        )
    ]
    logits = tiny_model(**batch).logits
    for hook in hooks:
        hook.remove()
    lr_width, llm_width, hr_lr_width = (
        config.lr_hr_config.d_model,
        config.llm_config.hidden_size,
        config.hr_lr_config.d_model,
    )
    source_len, bridge_len = batch["input_ids"].shape[1], batch["bridge_input_ids"].shape[1]
    target_len = batch["decoder_input_ids"].shape[1]
    assert widths["lr_encoder"] == (3, source_len, lr_width)
    assert widths["source_alignment"] == (3, source_len, llm_width)
    assert widths["source_transformer"] == (3, bridge_len, llm_width)
    assert widths["llm"] == (3, bridge_len, llm_width)
    assert widths["target_alignment"] == (3, bridge_len, hr_lr_width)
    assert widths["target_transformer"] == (3, bridge_len, hr_lr_width)
    assert widths["lr_decoder"] == (3, target_len, hr_lr_width)
    assert logits.shape == (3, target_len, config.hr_lr_config.vocab_size)


def test_alignment_adapters_zero_padding(tiny_model, batch):
    states = tiny_model.lr_encoder(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    aligned = tiny_model.source_alignment(states, batch["attention_mask"])
    assert torch.all(aligned[batch["attention_mask"] == 0] == 0)
    assert torch.all(aligned[batch["attention_mask"] == 1].abs().sum(-1) > 0)


def test_default_loss_is_cross_entropy_at_the_last_non_pad_target(tiny_model, batch):
    tiny_model.eval()
    output = tiny_model(**batch)
    labels = batch["labels"]
    lengths = batch["decoder_attention_mask"].sum(-1)
    assert len(set(lengths.tolist())) > 1, "the batch must be padded for this test to mean anything"
    by_hand = torch.stack(
        [F.cross_entropy(output.logits[row, lengths[row] - 1], labels[row, lengths[row] - 1]) for row in range(3)]
    ).mean()
    torch.testing.assert_close(output.loss, by_hand)


def test_last_token_loss_under_left_and_right_padding():
    logits = torch.randn(2, 4, 16)
    labels = torch.tensor([[-100, -100, 5, 7], [3, 9, 11, -100]])
    expected = (F.cross_entropy(logits[0, 3:4], labels[0, 3:4]) + F.cross_entropy(logits[1, 2:3], labels[1, 2:3])) / 2
    torch.testing.assert_close(last_token_cross_entropy(logits, labels), expected)
    with pytest.raises(ValueError, match="no label"):
        last_token_cross_entropy(logits, torch.full((2, 4), -100))


@pytest.mark.parametrize("loss_mode", ["last_word", "all_tokens"])
def test_per_token_modes_average_over_their_labels(tiny_paths, tall_texts, loss_mode):
    processor = TallProcessor.from_components(**tiny_paths, loss_mode=loss_mode)
    model = TallForConditionalGeneration.from_components(**tiny_paths, loss_mode=loss_mode).eval()
    batch = processor(*tall_texts)
    output = model(**batch)
    labels = batch["labels"]
    keep = labels != -100
    torch.testing.assert_close(output.loss, F.cross_entropy(output.logits[keep], labels[keep]))
    last_word_tokens = [len(ids) for ids in processor.target_token_ids([s.split()[-1] for s in tall_texts[2]])]
    expected = last_word_tokens if loss_mode == "last_word" else batch["decoder_attention_mask"].sum(-1).tolist()
    assert keep.sum(-1).tolist() == expected


def test_padding_does_not_change_a_sentence_logits(tiny_model, tiny_processor, tall_texts):
    tiny_model.eval()
    alone = tiny_processor(*(texts[:1] for texts in tall_texts))
    together = tiny_processor(*tall_texts)
    with torch.no_grad():
        single = tiny_model(**alone).logits[0]
        batched = tiny_model(**together).logits[0, : single.shape[0]]
    torch.testing.assert_close(single, batched, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fusion", ["last", "global_softmax"])
def test_a_precomputed_lr_encoder_output_gives_the_same_logits(tiny_paths, tiny_processor, tall_texts, fusion):
    """Stage 1's output given (`lr_encoder_outputs`) or computed by TALL: the same logits to the bit; the LR->HR
    translator's encoder (the same module) computes it while translating, up to its own batch's padding."""
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths, encoder_fusion=fusion).eval()
    batch = tiny_processor(*tall_texts)
    every_layer = model.encoder_fusion.uses_all_layers
    with torch.inference_mode():
        expected = model(**batch).logits
        stage_1 = model.lr_encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=every_layer
        )
        assert torch.equal(model(**batch, lr_encoder_outputs=stage_1).logits, expected)
        streams = {name: value for name, value in batch.items() if name != "labels"}
        base = model.model(**streams, lr_encoder_outputs=stage_1).last_hidden_state
        assert torch.equal(base, model.model(**streams).last_hidden_state)
        _, rows = translate(
            tall_texts[0],
            lr_hr_translator(model),
            tiny_processor.source_tokenizer,
            return_encoder_outputs=True,
            output_hidden_states=every_layer,
        )
        translated = model(**batch, lr_encoder_outputs=batch_encoder_outputs(rows)).logits
        torch.testing.assert_close(translated, expected, atol=1e-5, rtol=1e-4)
        with pytest.raises(ValueError, match="lr_encoder_outputs"):
            model(**batch, lr_encoder_outputs=batch_encoder_outputs(rows[:2]))


def test_only_adapters_and_custom_transformers_get_gradients(tiny_model, batch):
    tiny_model.train()
    tiny_model(**batch).loss.backward()
    for name, param in tiny_model.named_parameters():
        stage = stage_of(name)
        if stage in FROZEN_STAGES:
            assert not param.requires_grad and param.grad is None, name
        elif "embed_positions" in name:
            assert not param.requires_grad and param.grad is None, name  # fixed sinusoids
        else:
            assert stage in TRAINABLE_STAGES, name
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_frozen_components_stay_in_eval_mode_while_training(tiny_model):
    tiny_model.train()
    assert all(not getattr(tiny_model, name).training for name in FROZEN_STAGES)
    assert all(getattr(tiny_model, name).training for name in TRAINABLE_STAGES)


def test_one_training_step_changes_only_trainable_weights(tiny_model, batch):
    before = {name: param.detach().clone() for name, param in tiny_model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in tiny_model.parameters() if p.requires_grad], lr=1e-3)
    tiny_model.train()
    tiny_model(**batch).loss.backward()
    optimizer.step()
    for name, param in tiny_model.named_parameters():
        changed = not torch.equal(before[name], param.detach())
        assert changed == param.requires_grad, name


def test_save_and_auto_model_give_identical_logits(tiny_model, tiny_processor, tall_texts, batch, tmp_path):
    tiny_model.eval()
    tiny_model.save_pretrained(tmp_path)
    tiny_processor.save_pretrained(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, TallForConditionalGeneration)
    assert loaded.lm_head.weight is loaded.model.decoder.embed_tokens.weight
    with torch.no_grad():
        expected = tiny_model(**batch)
        torch.testing.assert_close(loaded(**batch).logits, expected.logits, atol=0, rtol=0)
        base = AutoModel.from_pretrained(tmp_path).eval()  # the base model: the LR decoder's states, no LM head
        assert isinstance(base, TallModel)
        hidden = base(**{key: value for key, value in batch.items() if key != "labels"}).last_hidden_state
        torch.testing.assert_close(loaded.lm_logits(hidden), expected.logits, atol=0, rtol=0)
    reloaded = TallProcessor.from_pretrained(tmp_path)(*tall_texts)
    assert all(torch.equal(reloaded[key], batch[key]) for key in batch)


def test_from_components_records_provenance_and_freezes(tiny_paths):
    model = TallForConditionalGeneration.from_components(**tiny_paths, loss_mode="all_tokens", adapter_dropout=0.0)
    assert model.config.components["llm"]["name_or_path"] == tiny_paths["llm"]
    assert model.config.loss_mode == "all_tokens"
    assert model.source_alignment.dropout.p == 0.0
    assert not any(p.requires_grad for p in model.llm.parameters())


@pytest.mark.parametrize("family", ["qwen2", "llama", "bloom", "gpt2"])
def test_each_llm_family_builds_and_trains(family, tiny_cache, tall_texts):
    paths = build_tiny_components(tiny_cache, llm=family)
    processor = TallProcessor.from_components(**paths)
    model = TallForConditionalGeneration.from_components(**paths)
    processor.check_compatible(model.config)
    assert model.llm.config.model_type == family
    output = model(**processor(*tall_texts))
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert model.source_transformer.layers[0].self_attn.q_proj.weight.grad is not None


def test_bad_input_gets_a_clear_error(tiny_model, batch, tiny_paths, tmp_path):
    with pytest.raises(OSError, match="LLM"):
        TallForConditionalGeneration.from_components(
            tiny_paths["lr_hr"], str(tmp_path / "no-such-llm"), tiny_paths["hr_lr"]
        )
    with pytest.raises(ValueError, match="decoder-only"):
        TallForConditionalGeneration.from_components(tiny_paths["lr_hr"], tiny_paths["lr_hr"], tiny_paths["hr_lr"])
    with pytest.raises(ValueError, match="Unknown tiny LLM family"):
        build_tiny_components(tmp_path, llm="mamba")
    with pytest.raises(ValueError, match="different batch sizes"):
        tiny_model(
            **{
                **batch,
                "bridge_input_ids": batch["bridge_input_ids"][:2],
                "bridge_attention_mask": batch["bridge_attention_mask"][:2],
            }
        )
    with pytest.raises(ValueError, match="Empty batch"):
        tiny_model(**{key: value[:0] for key, value in batch.items()})
    with pytest.raises(ValueError, match="Missing input streams: bridge_input_ids"):
        tiny_model(**{key: value for key, value in batch.items() if key != "bridge_input_ids"})


def test_over_long_streams_are_named(tiny_model, batch):
    limit = tiny_model.config.max_stream_tokens
    assert limit == min(tiny_model.config.lr_hr_config.max_position_embeddings, 256)
    long_source = torch.ones(3, limit + 1, dtype=torch.long)
    with pytest.raises(ValueError, match=f"input_ids has {limit + 1} tokens but this TALL reads at most {limit}"):
        tiny_model(**{**batch, "input_ids": long_source, "attention_mask": long_source})


def test_processor_rejects_bad_batches(tiny_processor, tiny_paths, tall_texts):
    with pytest.raises(ValueError, match="Empty batch"):
        tiny_processor([], [])
    with pytest.raises(ValueError, match="one text per sentence"):
        tiny_processor(tall_texts[0], tall_texts[1][:2])
    last_word = TallProcessor.from_components(**tiny_paths, loss_mode="last_word")
    with pytest.raises(ValueError, match="one word"):
        last_word(["שלום"], ["hello"], ["שלום"])
    config = TallForConditionalGeneration.from_components(**tiny_paths).config
    config.llm_config.vocab_size = 10
    with pytest.raises(ValueError, match="Mismatched tokenizer: the llm_tokenizer"):
        TallProcessor.from_components(**tiny_paths).check_compatible(config)


def test_logits_to_keep_selects_positions_and_unknown_arguments_are_refused(tiny_model, batch):
    tiny_model.eval()
    with torch.no_grad():
        full = tiny_model(**batch).logits
        unlabelled = {key: value for key, value in batch.items() if key != "labels"}
        torch.testing.assert_close(tiny_model(**unlabelled, logits_to_keep=1).logits, full[:, -1:], rtol=0, atol=1e-6)
        with pytest.raises(ValueError, match="A loss needs the logits of every target position"):
            tiny_model(**batch, logits_to_keep=1)
        mask = batch["labels"].ne(-100)
        kept = tiny_model(**batch, logits_to_keep=mask)
        torch.testing.assert_close(kept.logits, full[mask], rtol=0, atol=1e-6)
        tiny_model.train()  # in training mode with labels the default keeps only what the loss reads
        assert tiny_model(**batch).logits.shape == (3, full.shape[-1])
        assert tiny_model(**batch, logits_to_keep=0).logits.shape == full.shape
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['bridge_ids'\]"):
        tiny_model(**batch, bridge_ids=batch["bridge_input_ids"])


def test_checkpoints_keep_the_original_weight_names_and_the_old_class_name_warns(tiny_model, tmp_path):
    from safetensors import safe_open

    tiny_model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        stages = {key.split(".")[0] for key in weights.keys()}
    assert {"lr_encoder", "source_alignment", "llm", "lr_decoder"} <= stages and "model" not in stages
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in tiny_model.state_dict().items())
    with pytest.warns(FutureWarning, match="TallForCausalLM is deprecated"):
        from tall_hf.models.tall import TallForCausalLM as alias
    assert alias is TallForConditionalGeneration

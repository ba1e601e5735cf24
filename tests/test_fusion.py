"""Layer fusion (last, global softmax, token softmax) on its own and inside TALL's stage 1."""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutput

from tall_hf import TallForCausalLM
from tall_hf.modules.fusion import FUSION_METHODS, LayerFusion, build_fusion, register_fusion

NUM_LAYERS, WIDTH = 4, 16


def encoder_outputs(batch: int = 2, length: int = 5, seed: int = 0) -> BaseModelOutput:
    """Fake encoder outputs: the embedding output plus one state per layer, the last one also `last_hidden_state`."""
    generator = torch.Generator().manual_seed(seed)
    hidden_states = tuple(torch.randn(batch, length, WIDTH, generator=generator) for _ in range(NUM_LAYERS + 1))
    return BaseModelOutput(last_hidden_state=hidden_states[-1], hidden_states=hidden_states)


def test_methods_are_registered_by_name():
    assert {"last", "global_softmax", "token_softmax"} <= set(FUSION_METHODS)
    with pytest.raises(ValueError, match="Unknown fusion method 'nope'.*global_softmax"):
        build_fusion("nope", NUM_LAYERS, WIDTH)


def test_a_new_method_plugs_in_through_the_registry():
    @register_fusion("first_layer_for_test")
    class FirstLayerFusion(LayerFusion):
        def weights(self, states, real):
            weights = torch.zeros(states.shape[:-1])
            weights[..., 0] = real.float()
            return weights

    try:
        outputs = encoder_outputs()
        fused = build_fusion("first_layer_for_test", NUM_LAYERS, WIDTH)(outputs)
        torch.testing.assert_close(fused, outputs.hidden_states[1])
        with pytest.raises(ValueError, match="already registered"):
            register_fusion("first_layer_for_test")(FirstLayerFusion)
    finally:
        FUSION_METHODS.pop("first_layer_for_test")


def test_last_returns_the_encoder_output_unchanged_and_has_no_parameters():
    outputs = encoder_outputs()
    fusion = build_fusion("last", NUM_LAYERS, WIDTH)
    assert fusion(outputs) is outputs.last_hidden_state
    assert sum(p.numel() for p in fusion.parameters()) == 0
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    weights = fusion.layer_weights(outputs, mask)
    assert weights[..., -1].tolist() == mask.float().tolist()
    assert weights[..., :-1].abs().sum() == 0


@pytest.mark.parametrize("layer", range(NUM_LAYERS))
def test_global_softmax_with_all_weight_on_one_layer_equals_that_layer(layer):
    outputs = encoder_outputs()
    fusion = build_fusion("global_softmax", NUM_LAYERS, WIDTH)
    with torch.no_grad():
        fusion.layer_logits.fill_(float("-inf"))
        fusion.layer_logits[layer] = 0.0
    # layer index i is the output of transformer layer i + 1: the embedding output is not fused
    torch.testing.assert_close(fusion(outputs), outputs.hidden_states[layer + 1], rtol=0, atol=0)


def test_global_softmax_starts_uniform_and_learns():
    outputs = encoder_outputs()
    fusion = build_fusion("global_softmax", NUM_LAYERS, WIDTH)
    torch.testing.assert_close(fusion.global_weights(), torch.full((NUM_LAYERS,), 1 / NUM_LAYERS))
    torch.testing.assert_close(fusion(outputs), torch.stack(outputs.hidden_states[1:]).mean(0))
    fusion(outputs).pow(2).sum().backward()
    assert fusion.layer_logits.grad is not None and fusion.layer_logits.grad.abs().sum() > 0


def test_token_softmax_weights_sum_to_one_on_real_tokens_and_vanish_on_padding():
    torch.manual_seed(0)
    fusion = build_fusion("token_softmax", NUM_LAYERS, WIDTH, num_heads=2).eval()
    outputs = encoder_outputs(batch=3, length=6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    weights = fusion.layer_weights(outputs, mask)
    assert weights.shape == (3, 6, NUM_LAYERS)
    real = mask.bool()
    torch.testing.assert_close(weights[real].sum(-1), torch.ones(int(real.sum())))
    assert (weights[real] > 0).all()
    assert weights[~real].abs().sum() == 0
    # each token gets its own weighting
    assert not torch.allclose(weights[0, 0], weights[0, 1])


def test_token_softmax_padding_does_not_change_the_real_tokens():
    torch.manual_seed(0)
    fusion = build_fusion("token_softmax", NUM_LAYERS, WIDTH, num_heads=2).eval()
    alone = encoder_outputs(batch=1, length=3, seed=1)
    padded_states = tuple(
        torch.cat([state, 1e3 * torch.randn(1, 4, WIDTH)], dim=1) for state in alone.hidden_states
    )  # huge garbage on padding
    padded = BaseModelOutput(last_hidden_state=padded_states[-1], hidden_states=padded_states)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(
            fusion.layer_weights(padded, mask)[:, :3], fusion.layer_weights(alone, torch.ones(1, 3))
        )
        torch.testing.assert_close(fusion(padded, mask)[:, :3], fusion(alone, torch.ones(1, 3)))
        assert fusion(padded, mask)[:, 3:].abs().sum() == 0


def test_token_softmax_trains_its_small_transformer():
    fusion = build_fusion("token_softmax", NUM_LAYERS, WIDTH, num_heads=2)
    fusion(encoder_outputs(), torch.ones(2, 5)).pow(2).sum().backward()
    for name, parameter in fusion.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="output_hidden_states=True"):
        build_fusion("global_softmax", NUM_LAYERS, WIDTH)(BaseModelOutput(last_hidden_state=torch.zeros(1, 2, WIDTH)))
    with pytest.raises(ValueError, match="built for 3 encoder layers"):
        build_fusion("global_softmax", 3, WIDTH)(encoder_outputs())
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        build_fusion("token_softmax", NUM_LAYERS, 10, num_heads=4)


# ---------------------------------------------------------------------------------------------- TALL's stage 1
@pytest.mark.parametrize("method", ["last", "global_softmax", "token_softmax"])
def test_tall_with_each_fusion_trains_one_step(tiny_paths, tiny_processor, method):
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**tiny_paths, encoder_fusion=method)
    assert model.config.encoder_fusion == method
    batch = tiny_processor(
        ["שלום לכם", "בבוקר ירד גשם חזק"],
        ["hello to you", "in the morning heavy rain fell"],
        ["שלום לכם חברים", "בבוקר ירד גשם חזק מאוד"],
    )
    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    fusion_grads = [p.grad for p in model.encoder_fusion.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in fusion_grads)
    assert all(p.grad is None for p in model.lr_encoder.parameters())
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    changed = {name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[name])}
    assert {name.split(".")[0] for name in changed} >= ({"encoder_fusion"} if method != "last" else set()) | {
        "source_alignment"
    }


def test_tall_fusion_counts_parameters_only_when_it_has_them(tiny_paths):
    last = TallForCausalLM.from_components(**tiny_paths)
    fused = TallForCausalLM.from_components(**tiny_paths, encoder_fusion="global_softmax")
    assert "encoder_fusion" not in {row["stage"] for row in last.parameter_report()}
    row = next(row for row in fused.parameter_report() if row["stage"] == "encoder_fusion")
    assert row["total"] == row["trainable"] == fused.config.lr_hr_config.encoder_layers
    assert fused.num_parameters() == last.num_parameters() + fused.config.lr_hr_config.encoder_layers


def test_tall_with_last_fusion_matches_the_encoder_output(tiny_model, tiny_processor):
    tiny_model.eval()
    batch = tiny_processor(["שלום לכם"], ["hello to you"])
    with torch.no_grad():
        expected = tiny_model.lr_encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        fused = tiny_model.encoder_fusion(expected, batch["attention_mask"])
    assert fused is expected.last_hidden_state


@pytest.mark.parametrize("adapters_only", [False, True])
def test_tall_token_softmax_round_trips(tiny_paths, tiny_processor, tmp_path, adapters_only):
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(
        **tiny_paths, encoder_fusion="token_softmax", encoder_fusion_options={"num_heads": 2}
    ).eval()
    with torch.no_grad():
        model.encoder_fusion.score.weight.normal_()  # away from the fresh initialisation
    model.save_pretrained(tmp_path, adapters_only=adapters_only)
    loaded = TallForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.config.encoder_fusion == "token_softmax" and loaded.config.encoder_fusion_options == {"num_heads": 2}
    batch = tiny_processor(["שלום לכם"], ["hello to you"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


@pytest.mark.slow
def test_tall_with_token_softmax_trains_on_the_shipped_corpus(tiny_paths, tiny_processor):
    """Checked by issue 6: TALL with `encoder_fusion="token_softmax"` trains. The tiny frozen Marian decoder is random,
    so its logits barely respond to what it reads: the loss falls, but only slightly (as it does with `last`)."""
    from tall_hf.resources import read_corpus

    hebrew, english = read_corpus("hebrew")[:16], read_corpus("english")[:16]
    batch = tiny_processor(
        [line.rsplit(" ", 1)[0] for line in hebrew], [line.rsplit(" ", 1)[0] for line in english], hebrew
    )
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**tiny_paths, encoder_fusion="token_softmax").train()
    initial_fusion = [p.detach().clone() for p in model.encoder_fusion.parameters()]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    marks = losses[::7]  # steps 1, 8 and 15
    assert all(later < earlier for earlier, later in zip(marks, marks[1:], strict=False)), losses
    # Measured 6.72 -> 6.52 over the 15 steps; half that drop (0.10) fails.
    assert losses[-1] < losses[0] - 0.12, losses
    assert all(not torch.equal(p, q) for p, q in zip(model.encoder_fusion.parameters(), initial_fusion, strict=True))

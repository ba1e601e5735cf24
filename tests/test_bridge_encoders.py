"""Encoders of every supported family in the bridge (tiny configs): mT5, T5, XLM-R, NLLB/M2M100 and Marian; and the
fusion module's account of pre-norm encoders (T5/mT5, M2M100): their intermediate states are the unnormalised residual
stream, only the last layer is normed, and the fusion reads them as they are."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig

from tall_hf import BridgeForCausalLM
from tall_hf.models.bridge.modeling_bridge import encoder_auto_class, encoder_of
from tall_hf.modules.fusion import build_fusion, stack_layer_states
from tall_hf.testing import build_tiny_bridge_components

NUM_LAYERS, WIDTH, VOCAB = 3, 16, 64
T5_FIELDS = {"d_model": WIDTH, "d_kv": 8, "d_ff": 32, "num_layers": NUM_LAYERS, "num_heads": 2}
SEQ2SEQ_FIELDS = {"d_model": WIDTH, "encoder_layers": NUM_LAYERS, "encoder_attention_heads": 2, "encoder_ffn_dim": 32}
# family: (config fields, the encoder's transformer layers, its final norm or None, pre-norm)
FAMILIES = {
    "mt5": (T5_FIELDS, "encoder.block", "encoder.final_layer_norm", True),
    "t5": (T5_FIELDS, "encoder.block", "encoder.final_layer_norm", True),
    "m2m_100": (SEQ2SEQ_FIELDS, "layers", "layer_norm", True),  # NLLB checkpoints are M2M100 models
    "marian": (SEQ2SEQ_FIELDS, "layers", None, False),
    "xlm-roberta": (
        {"hidden_size": WIDTH, "num_hidden_layers": NUM_LAYERS, "num_attention_heads": 2, "intermediate_size": 32},
        "encoder.layer",
        None,
        False,
    ),
}
EXPECTED_ENCODER = {
    "mt5": "MT5EncoderModel",
    "t5": "T5EncoderModel",
    "m2m_100": "M2M100Encoder",
    "marian": "MarianEncoder",
    "xlm-roberta": "XLMRobertaModel",
}


@pytest.fixture(scope="module")
def llm_path(tiny_cache) -> str:
    return build_tiny_bridge_components(tiny_cache, llm="qwen2")["llm"]


def family_config(family: str):
    fields = FAMILIES[family][0]
    return AutoConfig.for_model(family, vocab_size=VOCAB, pad_token_id=1, decoder_start_token_id=0, **fields)


def tiny_encoder(family: str):
    config = family_config(family)
    torch.manual_seed(0)
    return encoder_of(encoder_auto_class(config).from_config(config)).eval()


def run_encoder(encoder, ids):
    """The encoder's outputs with every layer's state, and the raw output of its last transformer layer."""
    layers = encoder.get_submodule(FAMILIES[FAMILY_OF[type(encoder).__name__]][1])
    captured = {}

    def keep(module, args, output):
        captured["raw"] = output[0] if isinstance(output, tuple) else output

    handle = layers[-1].register_forward_hook(keep)
    try:
        outputs = encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    finally:
        handle.remove()
    return outputs, captured["raw"]


FAMILY_OF = {name: family for family, name in EXPECTED_ENCODER.items()}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("fusion", ["last", "global_softmax", "token_softmax"])
def test_bridge_runs_and_trains_on_each_encoder_family(llm_path, family, fusion):
    torch.manual_seed(0)
    options = {"num_heads": 2} if fusion == "token_softmax" else None
    model = BridgeForCausalLM.from_components(family_config(family), llm_path, fusion=fusion, fusion_options=options)
    assert type(model.encoder).__name__ == EXPECTED_ENCODER[family]
    assert model.fusion.num_layers == NUM_LAYERS
    ids = torch.randint(4, VOCAB, (2, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    llm_ids = torch.tensor([[5, 6], [7, 8]])
    output = model(input_ids=ids, attention_mask=mask, llm_input_ids=llm_ids, labels=llm_ids)
    assert output.logits.shape == (2, 5 + 1 + 2, model.config.llm_config.vocab_size)
    output.loss.backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
    assert all(p.grad is None for p in model.encoder.parameters())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fused_layers_are_the_layer_outputs_with_the_normed_last(family):
    """What the fusion docstring says: layers 1..L-1 are the layers' outputs as they are; layer L is the encoder's
    `last_hidden_state` — after the final norm in pre-norm encoders (so `last` reads exactly the model's output)."""
    encoder = tiny_encoder(family)
    ids = torch.randint(4, VOCAB, (2, 6))
    with torch.no_grad():
        outputs, raw_last = run_encoder(encoder, ids)
    stacked = stack_layer_states(outputs, NUM_LAYERS)
    assert len(outputs.hidden_states) == NUM_LAYERS + 1
    for layer in range(NUM_LAYERS - 1):
        torch.testing.assert_close(stacked[:, :, layer], outputs.hidden_states[layer + 1])
    torch.testing.assert_close(stacked[:, :, -1], outputs.last_hidden_state)
    final_norm_name, pre_norm = FAMILIES[family][2], FAMILIES[family][3]
    if final_norm_name is not None:
        final_norm = encoder.get_submodule(final_norm_name)
        with torch.no_grad():
            torch.testing.assert_close(outputs.last_hidden_state, final_norm(raw_last))
            intermediate = stacked[:, :, :-1]
            assert not torch.allclose(final_norm(intermediate), intermediate, atol=1e-2)  # not normed
    else:
        torch.testing.assert_close(outputs.last_hidden_state, raw_last)
    assert pre_norm == (final_norm_name is not None)


@pytest.mark.parametrize("family", [f for f, spec in FAMILIES.items() if not spec[3]])
def test_post_norm_encoders_give_normed_states_at_every_layer(family):
    """Post-norm encoders (Marian, XLM-R) end every layer with a LayerNorm (unit weight, zero bias at init)."""
    encoder = tiny_encoder(family)
    ids = torch.randint(4, VOCAB, (2, 6))
    with torch.no_grad():
        stacked = stack_layer_states(run_encoder(encoder, ids)[0], NUM_LAYERS)
    torch.testing.assert_close(stacked.mean(-1), torch.zeros(stacked.shape[:-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(stacked.var(-1, unbiased=False), torch.ones(stacked.shape[:-1]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("family", ["mt5", "m2m_100"])
def test_fusions_read_pre_norm_states_as_they_are(family):
    """Global softmax mixes the unnormalised states by its weights alone; token softmax layer-norms them only to
    score them, so a layer's scale changes its weights not at all (the fused state still mixes the raw states)."""
    encoder = tiny_encoder(family)
    ids = torch.randint(4, VOCAB, (2, 6))
    with torch.no_grad():
        outputs, _ = run_encoder(encoder, ids)
    stacked = stack_layer_states(outputs, NUM_LAYERS)
    torch.manual_seed(0)
    global_fusion = build_fusion("global_softmax", NUM_LAYERS, WIDTH)
    with torch.no_grad():
        global_fusion.layer_logits.copy_(torch.tensor([0.5, -1.0, 0.2]))
        expected = torch.einsum("l,bsld->bsd", global_fusion.global_weights(), stacked)
        torch.testing.assert_close(global_fusion(outputs), expected)

    token_fusion = build_fusion("token_softmax", NUM_LAYERS, WIDTH, num_heads=2).eval()
    scaled_states = list(outputs.hidden_states)
    scaled_states[1] = 10 * scaled_states[1]
    scaled = type(outputs)(last_hidden_state=outputs.last_hidden_state, hidden_states=tuple(scaled_states))
    with torch.no_grad():
        weights = token_fusion.layer_weights(outputs)
        torch.testing.assert_close(token_fusion.layer_weights(scaled), weights, atol=1e-5, rtol=1e-4)
        expected = torch.einsum("bsl,bsld->bsd", weights, stack_layer_states(scaled, NUM_LAYERS))
        torch.testing.assert_close(token_fusion(scaled), expected)

"""TallConfig: nested component configs, derived custom transformers, validation and round trips."""

from __future__ import annotations

import pytest
from transformers import AutoConfig

from tall_hf import TallConfig


def _configs(hidden_size: int = 48):
    lr_hr = AutoConfig.for_model("marian", d_model=32, decoder_attention_heads=4, encoder_attention_heads=4)
    llm_config = AutoConfig.for_model("qwen2", hidden_size=hidden_size, num_attention_heads=2, num_key_value_heads=2)
    hr_lr = AutoConfig.for_model("marian", d_model=24, decoder_attention_heads=4, encoder_attention_heads=4)
    return lr_hr, llm_config, hr_lr


def _without_path(fields: dict) -> dict:
    return {key: value for key, value in fields.items() if key != "_name_or_path"}


def test_custom_transformers_are_derived_from_the_components():
    lr_hr, llm, hr_lr = _configs()
    config = TallConfig.from_component_configs(lr_hr, llm, hr_lr)
    source, target = config.source_transformer_config, config.target_transformer_config
    assert source.d_model == 48
    assert (source.decoder_layers, source.decoder_attention_heads, source.decoder_ffn_dim) == (
        lr_hr.decoder_layers,
        lr_hr.decoder_attention_heads,
        lr_hr.decoder_ffn_dim,
    )
    assert (target.d_model, target.encoder_layers, target.encoder_ffn_dim) == (
        24,
        hr_lr.encoder_layers,
        hr_lr.encoder_ffn_dim,
    )


def test_custom_transformer_1_is_the_references_not_the_translators():
    """DESIGN.md: the reference builds custom transformer 1 from a fresh MarianConfig given only the shape fields;
    activation, dropout and position count keep Marian's defaults, whatever the LR->HR translator uses."""
    lr_hr, llm, hr_lr = _configs()
    lr_hr.update(
        {"activation_function": "relu", "dropout": 0.3, "max_position_embeddings": 512, "scale_embedding": True}
    )
    source = TallConfig.from_component_configs(lr_hr, llm, hr_lr).source_transformer_config
    assert (source.activation_function, source.dropout, source.max_position_embeddings) == ("gelu", 0.1, 1024)
    assert (source.attention_dropout, source.activation_dropout, source.scale_embedding) == (0.0, 0.0, True)
    inherited = TallConfig.from_component_configs(lr_hr, llm, hr_lr, source_transformer_activation="translator")
    assert inherited.source_transformer_config.activation_function == "relu"
    with pytest.raises(ValueError, match="source_transformer_activation"):
        TallConfig.from_component_configs(lr_hr, llm, hr_lr, source_transformer_activation="nope")


def test_round_trip_through_save_and_auto_config(tmp_path):
    lr_hr, llm, hr_lr = _configs()
    components = {"llm": {"name_or_path": "org/llm", "revision": "abc"}}
    config = TallConfig.from_component_configs(lr_hr, llm, hr_lr, loss_mode="last_word", components=components)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, TallConfig)
    assert _without_path(loaded.to_dict()) == _without_path(config.to_dict())
    assert loaded.llm_config.model_type == "qwen2" and loaded.llm_config.hidden_size == 48
    assert loaded.components["llm"] == {"name_or_path": "org/llm", "revision": "abc"}
    assert loaded.loss_mode == "last_word"
    assert TallConfig(**config.to_dict()).to_dict() == config.to_dict()


def test_bad_configs_name_the_problem():
    lr_hr, llm, hr_lr = _configs()
    with pytest.raises(ValueError, match="loss_mode"):
        TallConfig.from_component_configs(lr_hr, llm, hr_lr, loss_mode="every_word")
    with pytest.raises(ValueError, match="not divisible"):
        TallConfig.from_component_configs(lr_hr, _configs(hidden_size=50)[1], hr_lr)
    with pytest.raises(ValueError, match="encoder-decoder translator"):
        TallConfig.from_component_configs(llm, llm, hr_lr)

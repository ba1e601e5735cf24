"""Adapters-only and full checkpoints of TALL: exact round trips, PEFT's own loaders, any PEFT tuner on the LLM, the
size bound, shape and pickle refusals."""

from __future__ import annotations

import json
import os

import pytest
import torch
from peft import IA3Config, LoraConfig, PeftConfig, PeftModel
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor

from tall_hf import TallForCausalLM
from tall_hf.adapters import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    PickledCheckpointError,
    checkpoint_kind,
    get_tall_model,
)
from tall_hf.models.tall.modeling_tall import TRAINABLE_STAGES


def trainable_names(model) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def logits_of(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def lora_model(tiny_paths) -> TallForCausalLM:
    torch.manual_seed(0)
    tuner = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    return get_tall_model(**tiny_paths, peft_config=tuner, loss_mode="last_word")


def test_both_checkpoint_kinds_reload_exactly(tiny_model, tiny_processor, batch, tmp_path):
    tiny_model.eval()
    expected = logits_of(tiny_model, batch)
    tiny_model.save_pretrained(tmp_path / "full", processor=tiny_processor)
    tiny_model.save_pretrained(tmp_path / "adapters", adapters_only=True, processor=tiny_processor)

    torch.manual_seed(1234)  # fresh trainable modules would differ: the adapters must come from the file
    for kind in ("full", "adapters"):
        loaded = AutoModel.from_pretrained(tmp_path / kind)
        assert isinstance(loaded, TallForCausalLM) and not loaded.training
        assert trainable_names(loaded) == trainable_names(tiny_model), kind  # components stay frozen after loading
        assert torch.equal(logits_of(loaded, batch), expected), kind
        processor = AutoProcessor.from_pretrained(tmp_path / kind)
        assert (
            processor(["שלום"], ["hello"])["input_ids"].tolist()
            == tiny_processor(["שלום"], ["hello"])["input_ids"].tolist()
        )
    assert checkpoint_kind(tmp_path / "full") == "full"
    assert checkpoint_kind(tmp_path / "adapters") == "adapters"


def test_adapters_only_folder_holds_only_the_trainable_weights(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path, adapters_only=True)
    names = set(os.listdir(tmp_path))
    assert {ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, "config.json", "README.md"} <= names
    assert not names & {"model.safetensors", "pytorch_model.bin"}

    saved = load_file(tmp_path / ADAPTER_WEIGHTS_NAME)
    # PEFT's names (under PeftModel's prefix) for every weight of the trainable stages, their fixed position tables
    # included (PEFT saves a `modules_to_save` module whole), and no frozen weight.
    stages = {name for name, _ in tiny_model.named_parameters() if name.partition(".")[0] in TRAINABLE_STAGES}
    assert set(saved) == {"base_model.model." + name for name in stages}
    trainable = {name for name, p in tiny_model.named_parameters() if p.requires_grad}
    assert trainable and trainable <= stages
    stage_bytes = sum(p.numel() * p.element_size() for n, p in tiny_model.named_parameters() if n in stages)
    size = os.path.getsize(tmp_path / ADAPTER_WEIGHTS_NAME)
    assert stage_bytes <= size <= 1.10 * stage_bytes


def test_adapter_config_is_peft_and_config_json_records_provenance(tiny_paths, tmp_path):
    model = lora_model(tiny_paths)
    model.save_pretrained(tmp_path, adapters_only=True)
    assert json.loads((tmp_path / ADAPTER_CONFIG_NAME).read_text())["peft_type"] == "LORA"
    peft_config = PeftConfig.from_pretrained(tmp_path)  # PEFT reads it as its own
    assert isinstance(peft_config, LoraConfig) and peft_config.r == 2
    assert sorted(peft_config.modules_to_save) == sorted(
        stage for stage in TRAINABLE_STAGES if any(True for _ in getattr(model, stage).parameters())
    )
    # The tuner's targets, named inside the LLM, are rooted at it: the translators' own q_proj/v_proj are not hit.
    assert peft_config.target_modules == r"llm\.(?:.*\.)?(?:q_proj|v_proj)"
    config = json.loads((tmp_path / "config.json").read_text())
    assert {role: c["name_or_path"] for role, c in config["components"].items()} == {
        role: os.path.abspath(path) for role, path in tiny_paths.items()
    }
    assert config["loss_mode"] == "last_word" and config["lora"]["r"] == 2


def test_lora_trains_saves_and_reloads_with_the_adapters(tiny_paths, tiny_processor, batch, tmp_path):
    model = lora_model(tiny_paths)
    lora = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert lora and all(p.requires_grad for p in lora.values())
    assert all(name.startswith("llm.") for name in lora)
    before = {name: p.detach().clone() for name, p in lora.items()}
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # lora_B starts at zero: the second step moves lora_A too
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(not torch.equal(before[name], p) for name, p in lora.items())

    model.eval()
    expected = logits_of(model, batch)
    model.save_pretrained(tmp_path / "adapters", adapters_only=True, processor=tiny_processor)
    model.save_pretrained(tmp_path / "full")
    saved = set(load_file(tmp_path / "adapters" / ADAPTER_WEIGHTS_NAME))
    assert {"base_model.model." + name.replace(".default", "") for name in lora} <= saved  # PEFT's key names
    for kind in ("adapters", "full"):
        loaded = AutoModel.from_pretrained(tmp_path / kind)
        assert loaded.config.loss_mode == "last_word"
        assert trainable_names(loaded) == trainable_names(model), kind
        assert torch.equal(logits_of(loaded, batch), expected), kind


def test_lora_dropout_follows_train_mode_inside_the_frozen_llm(tiny_paths):
    model = get_tall_model(**tiny_paths, peft_config=LoraConfig(r=2, lora_dropout=0.5, target_modules=["q_proj"]))
    dropouts = [m for name, m in model.named_modules() if name.endswith("lora_dropout.default")]
    assert dropouts
    model.train()
    assert not model.llm.training and all(d.training for d in dropouts)
    model.eval()
    assert not any(d.training for d in dropouts)


def test_adapters_on_components_of_another_shape_are_refused_by_name(tiny_model, tiny_paths, tmp_path):
    tiny_model.save_pretrained(tmp_path / "adapters", adapters_only=True)
    wider = AutoConfig.from_pretrained(tiny_paths["llm"])
    wider.hidden_size, wider.intermediate_size = 64, 128
    AutoModelForCausalLM.from_config(wider).save_pretrained(tmp_path / "wider-llm")

    # The saved architecture (config.json) does not fit the wider LLM: refused before any weight is read.
    with pytest.raises(ValueError, match="Custom transformer 1 must have the LLM's width"):
        TallForCausalLM.from_pretrained(tmp_path / "adapters", component_paths={"llm": str(tmp_path / "wider-llm")})
    # Adapter weights of other shapes are refused tensor by tensor.
    wider_model = TallForCausalLM.from_components(
        tiny_paths["lr_hr"], str(tmp_path / "wider-llm"), tiny_paths["hr_lr"]
    )
    with pytest.raises(ValueError) as caught:
        wider_model.load_adapters(tmp_path / "adapters")
    message = str(caught.value)
    saved_shape = tuple(tiny_model.source_alignment.up.weight.shape)
    new_shape = (2 * 64, saved_shape[1])
    assert f"source_alignment.up.weight: checkpoint {saved_shape} vs model {new_shape}" in message
    assert "target_alignment.up.weight" in message


def test_load_adapters_onto_a_freshly_assembled_model(tiny_model, tiny_paths, batch, tmp_path):
    tiny_model.eval()
    tiny_model.save_pretrained(tmp_path, adapters_only=True)
    torch.manual_seed(99)
    fresh = TallForCausalLM.from_components(**tiny_paths).eval()
    assert not torch.equal(logits_of(fresh, batch), logits_of(tiny_model, batch))
    fresh.load_adapters(tmp_path)
    assert torch.equal(logits_of(fresh, batch), logits_of(tiny_model, batch))


def test_saving_one_kind_over_the_other_leaves_one_checkpoint(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    tiny_model.save_pretrained(tmp_path, adapters_only=True)
    assert "model.safetensors" not in os.listdir(tmp_path) and checkpoint_kind(tmp_path) == "adapters"
    tiny_model.save_pretrained(tmp_path)
    assert ADAPTER_WEIGHTS_NAME not in os.listdir(tmp_path) and checkpoint_kind(tmp_path) == "full"


def test_pickled_only_checkpoints_are_refused_without_unpickling(tiny_model, tmp_path, monkeypatch):
    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a pickled checkpoint")

    full, adapters = tmp_path / "full", tmp_path / "adapters"
    tiny_model.config.save_pretrained(full)
    torch.save(tiny_model.state_dict(), full / "pytorch_model.bin")
    tiny_model.save_pretrained(adapters, adapters_only=True)
    torch.save(load_file(adapters / ADAPTER_WEIGHTS_NAME), adapters / "adapter_model.bin")
    os.remove(adapters / ADAPTER_WEIGHTS_NAME)

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(PickledCheckpointError, match=r"pytorch_model\.bin.*safetensors only"):
        AutoModel.from_pretrained(full)
    with pytest.raises(PickledCheckpointError, match=r"adapter_model\.bin.*safetensors only"):
        AutoModel.from_pretrained(adapters)
    with pytest.raises(PickledCheckpointError):
        TallForCausalLM.from_pretrained(full)


def test_adapters_only_needs_the_components_provenance(tiny_paths, tmp_path):
    config_only = AutoConfig.from_pretrained(tiny_paths["llm"])
    model = TallForCausalLM.from_components(tiny_paths["lr_hr"], config_only, tiny_paths["hr_lr"])
    with pytest.raises(ValueError, match=r"\['llm'\].*save a full checkpoint"):
        model.save_pretrained(tmp_path, adapters_only=True)


def test_adapters_only_load_options(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path, adapters_only=True)
    half = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16, device_map="cpu")
    assert half.source_alignment.up.weight.dtype == torch.bfloat16 and half.llm.dtype == torch.bfloat16
    assert torch.equal(half.source_alignment.up.weight, tiny_model.source_alignment.up.weight.to(torch.bfloat16))
    with pytest.raises(TypeError, match="device_map='auto'"):
        AutoModel.from_pretrained(tmp_path, device_map="auto")
    with pytest.raises(TypeError, match="output_loading_info"):
        AutoModel.from_pretrained(tmp_path, output_loading_info=True)


def test_missing_checkpoints_are_named(tmp_path):
    with pytest.raises(OSError, match="org/not-cached: it is not a local folder"):
        TallForCausalLM.from_pretrained("org/not-cached")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(OSError, match="holds no weights"):
        TallForCausalLM.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "tuner",
    [None, IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"])],
    ids=["stages-only", "ia3"],
)
def test_peft_loads_the_adapters_only_folder(tiny_paths, batch, tmp_path, tuner):
    """`PeftModel.from_pretrained(TallForCausalLM.from_components(...), folder)` and transformers' `load_adapter` give
    the saved model, whatever the PEFT tuner on the LLM (none, IA3): the trained stages come as `modules_to_save`."""
    torch.manual_seed(0)
    model = get_tall_model(**tiny_paths, peft_config=tuner).eval()
    with torch.no_grad():  # move every trainable weight (IA3 starts as the identity) so that loading shows
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    expected = logits_of(model, batch)
    model.save_pretrained(tmp_path, adapters_only=True)
    torch.manual_seed(1234)
    base = TallForCausalLM.from_components(**tiny_paths).eval()
    assert not torch.allclose(logits_of(base, batch), expected)
    peft_model = PeftModel.from_pretrained(base, tmp_path).eval()
    torch.testing.assert_close(logits_of(peft_model, batch), expected, rtol=0, atol=1e-6)
    other = TallForCausalLM.from_components(**tiny_paths).eval()
    other.load_adapter(str(tmp_path))  # transformers' PEFT integration
    torch.testing.assert_close(logits_of(other, batch), expected, rtol=0, atol=1e-6)
    torch.manual_seed(99)
    reloaded = AutoModel.from_pretrained(tmp_path)
    torch.testing.assert_close(logits_of(reloaded, batch), expected, rtol=0, atol=1e-6)
    assert trainable_names(reloaded) == trainable_names(model)

"""Loading by hub id with the hub unreachable: served from the cache, or a fast error that says what to do."""

from __future__ import annotations

import shutil

import pytest
from huggingface_hub import constants
from transformers import AutoModelForCausalLM

from tall_hf import TallForConditionalGeneration
from tall_hf.utils.loading import load_pretrained


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """Online mode, but the hub endpoint is a closed local port; the hub cache is an empty folder."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_unreachable_hub_fails_fast_naming_the_model(unreachable_hub, tiny_paths):
    with pytest.raises(OSError, match=r"LLM 'org/not-cached'.*unreachable.*local folder"):
        TallForConditionalGeneration.from_components(tiny_paths["lr_hr"], "org/not-cached", tiny_paths["hr_lr"])


def test_unreachable_hub_serves_a_cached_model(unreachable_hub, tiny_paths):
    snapshot = unreachable_hub / "models--org--tiny-llm" / "snapshots" / "0123abc"
    shutil.copytree(tiny_paths["llm"], snapshot)
    (unreachable_hub / "models--org--tiny-llm" / "refs").mkdir()
    (unreachable_hub / "models--org--tiny-llm" / "refs" / "main").write_text("0123abc")
    model = load_pretrained(AutoModelForCausalLM, "org/tiny-llm", role="LLM")
    assert model.config.hidden_size == AutoModelForCausalLM.from_pretrained(tiny_paths["llm"]).config.hidden_size


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(OSError, match="folder exists but does not hold a loadable LLM"):
        load_pretrained(AutoModelForCausalLM, tmp_path, role="LLM")

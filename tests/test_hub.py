"""Model cards and `push_checkpoint`, offline: huggingface_hub's repository and commit calls are intercepted."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, EvalResult, HfApi, ModelCard
from huggingface_hub import constants as hub_constants
from transformers import AutoModelForSeq2SeqLM, AutoProcessor

from tall_hf import TallForConditionalGeneration
from tall_hf.adapters import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    load_checkpoint,
    push_checkpoint,
    save_checkpoint,
)
from tall_hf.hub import ModelCardInfo, render_model_card
from tall_hf.hub.model_card import card_template
from tall_hf.hub.push import folder_files

HUB_IDS = {
    "lr_hr": "Helsinki-NLP/opus-mt-tc-big-he-en",
    "llm": "Qwen/Qwen2.5-0.5B",
    "hr_lr": "Helsinki-NLP/opus-mt-en-he",
}
REPO_ID = "someone/tall-he"


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    header, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(header)


class FakeHub:
    """Stands in for the hub's repository API: records every commit and keeps the files it leaves in the repo."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.commits: list[dict] = []

    def create_repo(self, api, repo_id, **kwargs):
        return SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"someone/{repo_id}")

    def list_repo_files(self, api, repo_id, **kwargs):
        return sorted(self.files)

    def create_commit(self, api, repo_id, operations, **kwargs):
        added, deleted = {}, []
        for operation in operations:
            if isinstance(operation, CommitOperationAdd):
                with open(operation.path_or_fileobj, "rb") as handle:
                    added[operation.path_in_repo] = handle.read()
            else:
                assert isinstance(operation, CommitOperationDelete)
                deleted.append(operation.path_in_repo)
        self.commits.append({"repo_id": repo_id, "added": added, "deleted": deleted, **kwargs})
        for name in deleted:
            del self.files[name]
        self.files.update(added)
        return SimpleNamespace(oid=f"{len(self.commits):040x}")

    def snapshot(self, cache_dir, repo_id) -> None:
        """Lay the repository out as the hub cache does, so loading by hub id works offline."""
        commit = f"{len(self.commits):040x}"
        root = cache_dir / f"models--{repo_id.replace('/', '--')}"
        for name, data in self.files.items():
            path = root / "snapshots" / commit / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(commit)


@pytest.fixture
def fake_hub(monkeypatch):
    hub = FakeHub()
    for name in ("create_repo", "list_repo_files", "create_commit"):
        method = getattr(hub, name)
        monkeypatch.setattr(HfApi, name, lambda api, *args, _method=method, **kwargs: _method(api, *args, **kwargs))
    # upload_folder may split a folder over several commits (hf_xet's pipeline): a checkpoint goes in one.
    monkeypatch.setattr(HfApi, "upload_folder", lambda *a, **k: pytest.fail("upload_folder must not be used"))
    return hub


def test_card_front_matter_parses_and_names_the_three_components(tiny_model):
    for role, name in HUB_IDS.items():
        tiny_model.config.components[role]["name_or_path"] = name
    tiny_model.config.components["llm"]["revision"] = "abc123"
    info = ModelCardInfo(
        language=["he", "en"],
        license="cc-by-4.0",
        datasets=["someone/hebrew-news"],
        tags=["hebrew"],
        eval_results=[
            EvalResult(
                task_type="text-generation",
                dataset_type="someone/wiki-slvm",
                dataset_name="WIKI-SLVM",
                metric_type="accuracy",
                metric_value=5.15,
            )
        ],
        training={"learning_rate": 1e-4, "num_train_epochs": 3},
        limitations=["Trained on news only."],
    )
    card = render_model_card(tiny_model, info, repo_id=REPO_ID, adapters_only=True)
    meta = front_matter(str(card))
    assert meta["base_model"] == list(HUB_IDS.values())
    assert meta["base_model_relation"] == "adapter"
    assert meta["library_name"] == "tall_hf" and meta["language"] == ["he", "en"] and meta["license"] == "cc-by-4.0"
    assert {"tall_hf", "tall", "hebrew"} <= set(meta["tags"]) and meta["datasets"] == ["someone/hebrew-news"]
    assert meta["tall_hf"]["components"]["llm"] == {"name_or_path": HUB_IDS["llm"], "revision": "abc123"}
    result = meta["model-index"][0]["results"][0]
    assert result["metrics"][0] == {"type": "accuracy", "value": 5.15}
    assert ModelCard(str(card)).data.base_model == list(HUB_IDS.values())  # huggingface_hub reads it back

    body = str(card).split("\n---\n", 1)[1]
    assert tiny_model.parameter_table() in body
    assert f'load_checkpoint(TallForConditionalGeneration, "{REPO_ID}")' in body
    assert "| learning_rate | 0.0001 |" in body and "Trained on news only." in body
    assert all(name in body for name in HUB_IDS.values())


def test_local_components_stay_out_of_base_model(tiny_model, tiny_paths, tmp_path):
    save_checkpoint(tiny_model, tmp_path)
    meta = front_matter((tmp_path / "README.md").read_text(encoding="utf-8"))
    assert "base_model" not in meta  # the hub accepts only repository ids there
    assert {role: c["name_or_path"] for role, c in meta["tall_hf"]["components"].items()} == {
        role: os.path.abspath(path) for role, path in tiny_paths.items()
    }
    assert meta["tall_hf"]["checkpoint"] == "full"


def test_templates_are_the_package_data_files():
    import tall_hf.model_cards

    files = sorted(Path(tall_hf.model_cards.__file__).parent.glob("*.j2"))
    assert set(tall_hf.model_cards.TEMPLATES) == {path.name for path in files}
    assert {"bridge_model_card.md.j2", "tall_model_card.md.j2"} <= set(tall_hf.model_cards.TEMPLATES)
    assert all(card_template(path.name) == path.read_text(encoding="utf-8") for path in files)
    with pytest.raises(ValueError, match="no_such_card"):
        card_template("no_such_card.md.j2")


def test_push_uploads_exactly_a_loadable_checkpoint(
    tiny_model, tiny_processor, batch, fake_hub, tmp_path, monkeypatch
):
    tiny_model.eval()
    expected = tiny_model(**batch).logits
    local = tmp_path / "local"
    save_checkpoint(tiny_model, local, adapters_only=True, processor=tiny_processor)

    push_checkpoint(tiny_model, "tall-he", adapters_only=True, processor=tiny_processor)
    (commit,) = fake_hub.commits
    assert commit["repo_id"] == REPO_ID and commit["deleted"] == []
    assert set(commit["added"]) == set(folder_files(local))  # the same files save_checkpoint writes, no more
    assert {ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, "config.json", "README.md"} <= set(commit["added"])
    adapter_config = json.loads(commit["added"][ADAPTER_CONFIG_NAME])
    assert adapter_config["base_model_name_or_path"] == REPO_ID  # what transformers follows for a hub id
    assert f'load_checkpoint(TallForConditionalGeneration, "{REPO_ID}")' in commit["added"]["README.md"].decode()

    # Loaded by hub id from the pushed files alone (laid out as the hub cache), with PEFT.
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    fake_hub.snapshot(tmp_path / "hub", REPO_ID)
    assert torch.equal(load_checkpoint(TallForConditionalGeneration, REPO_ID)(**batch).logits, expected)

    # A full push to the same repository replaces the adapters in one commit.
    push_checkpoint(tiny_model, REPO_ID, processor=tiny_processor, commit_message="full weights")
    second = fake_hub.commits[-1]
    assert sorted(second["deleted"]) == [ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]
    assert second["commit_message"] == "full weights" and "model.safetensors" in second["added"]
    assert "translator/model.safetensors" in second["added"]  # translates offline, as a trained checkpoint does
    folder = tmp_path / "pushed-full"
    for name, data in fake_hub.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert torch.equal(AutoModelForSeq2SeqLM.from_pretrained(folder)(**batch).logits, expected)
    processor = AutoProcessor.from_pretrained(folder)
    assert torch.equal(processor(["שלום"], ["hello"])["input_ids"], tiny_processor(["שלום"], ["hello"])["input_ids"])

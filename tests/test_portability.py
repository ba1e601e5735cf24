"""Checkpoints that travel: a full checkpoint predicts offline from another folder with its components gone, and
a python without tall_hf loads it with `trust_remote_code=True`; the processor translates raw LR text and decodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tall_hf import TallForCausalLM, TallPredictor, TallProcessor
from tall_hf.cli import main

PREFIXES = ["הילדים הלכו אל", "אני אוהב לקרוא"]

# Loads the checkpoint with transformers alone: `tall_hf` cannot be imported (the venv's editable install included).
REMOTE_CODE_PROBE = """
import json, sys
sys.modules["tall_hf"] = None
import torch
from transformers import AutoModel, AutoProcessor
folder = sys.argv[1]
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
with torch.no_grad():
    logits = model(**processor(json.loads(sys.argv[2]))).logits[:, -1]
print(json.dumps({"module": type(model).__module__, "logits": logits.tolist()}))
"""


@pytest.fixture(scope="module")
def moved_checkpoint(tiny_paths, tmp_path_factory):
    """A full checkpoint built from copies of the tiny components, which are then deleted; the checkpoint itself is
    moved to another folder. Returns the folder and the model's outputs before the move."""
    root = tmp_path_factory.mktemp("portable")
    components = {role: str(shutil.copytree(path, root / "components" / role)) for role, path in tiny_paths.items()}
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**components).eval()
    processor = TallProcessor.from_components(**components)
    with torch.no_grad():
        logits = model(**processor(PREFIXES)).logits[:, -1]
    words = TallPredictor(model, processor).predict_next_word(PREFIXES)
    model.save_pretrained(root / "saved", processor=processor)
    shutil.rmtree(root / "components")
    moved = shutil.move(root / "saved", root / "elsewhere" / "tall")
    return moved, logits, words


def run(args: list[str], cwd, **env) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **env)
    result = subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_moved_full_checkpoint_predicts_offline_from_another_directory(
    moved_checkpoint, tmp_path, monkeypatch, capsys
):
    folder, _, words = moved_checkpoint
    config = json.loads((folder / "config.json").read_text())
    assert all(os.path.isabs(c["name_or_path"]) for c in config["components"].values())  # recorded, resolved
    assert not any(os.path.exists(c["name_or_path"]) for c in config["components"].values())  # and gone
    assert (folder / "translator" / "model.safetensors").is_file()
    monkeypatch.chdir(tmp_path)  # offline (conftest), in another directory, with the components deleted
    assert main(["predict", "--model", str(folder), *PREFIXES]) == 0
    assert capsys.readouterr().out.splitlines() == words


def test_trust_remote_code_loads_the_checkpoint_without_tall_hf(moved_checkpoint, tmp_path):
    folder, logits, _ = moved_checkpoint
    printed = run(
        [sys.executable, "-I", "-c", REMOTE_CODE_PROBE, str(folder), json.dumps(PREFIXES)],
        tmp_path,
        HF_MODULES_CACHE=str(tmp_path / "modules"),
    )
    result = json.loads(printed.splitlines()[-1])
    assert result["module"].startswith("transformers_modules.")  # the checkpoint's copy of the code, not tall_hf
    torch.testing.assert_close(torch.tensor(result["logits"]), logits, rtol=0, atol=1e-5)


def test_processor_translates_raw_text_once_and_decodes(tiny_paths, monkeypatch):
    processor = TallProcessor.from_components(**tiny_paths)
    calls = []
    generate = processor.translator.generate
    monkeypatch.setattr(processor.translator, "generate", lambda **kw: calls.append(1) or generate(**kw))
    translated = processor(PREFIXES + PREFIXES[:1])  # one batch, each distinct text translated once
    assert len(calls) == 1
    translations = processor.translate(PREFIXES)
    assert len(calls) == 1  # served from the cache
    given = processor(PREFIXES + PREFIXES[:1], translations + translations[:1])
    assert all(torch.equal(translated[key], given[key]) for key in given)
    ids = processor.target_tokenizer(text_target=PREFIXES, add_special_tokens=False)["input_ids"]
    assert processor.batch_decode(ids) == PREFIXES and processor.decode(ids[0]) == PREFIXES[0]


def test_production_code_does_not_import_the_test_helpers():
    """Only the tests, the benchmarks and the demo use `tall_hf.testing`."""
    import ast
    from pathlib import Path

    import tall_hf

    root = Path(tall_hf.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if relative.parts[0] == "testing" or relative.name == "demo.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(name.split(".")[0:2] in (["testing"], ["tall_hf", "testing"]) for name in names):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []

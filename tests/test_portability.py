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
from tall_hf.adapters import save_checkpoint
from tall_hf.cli import main

PREFIXES = ["הילדים הלכו אל", "אני אוהב לקרוא"]
NOT_IN_REMOTE_CODE = tuple(f"tall_hf__{package}__" for package in ("adapters", "hub", "training", "evaluation"))

# Runs with only what `pip install torch transformers` installs on `sys.path` (`-I -S`: no site-packages, no
# PYTHONPATH, no editable install): loads the checkpoint with `trust_remote_code=True`, runs and generates from the
# given inputs, saves it again (code and model card) and reloads that copy, all without importing sentencepiece; then
# loads the processor, whose Marian translator tokenizers need sentencepiece (a requirement of those components, not of
# tall_hf: it is on the path, after the rest), and saves and reloads model and processor together.
REMOTE_CODE_PROBE = """
import importlib.util, json, os, sys
transformers_only, sentencepiece_only, folder, saved = sys.argv[1:5]
sys.path[:0], sys.path[len(sys.path):] = [transformers_only], [sentencepiece_only]
present = [name for name in ("tall_hf", "peft", "accelerate", "datasets", "evaluate") if importlib.util.find_spec(name)]
import torch
from transformers import AutoModelForSeq2SeqLM
inputs = {key: torch.tensor(value) for key, value in json.loads(sys.argv[5]).items()}
model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(**inputs).logits[:, -1]
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
model.save_pretrained(saved)
again = AutoModelForSeq2SeqLM.from_pretrained(saved, trust_remote_code=True).eval()
with torch.no_grad():
    same = torch.equal(again(**inputs).logits[:, -1], logits)
saved_files = sorted(os.listdir(saved))
model_imported = sorted(name for name in ("sentencepiece", "jinja2") if name in sys.modules)
from transformers import AutoProcessor  # imports sentencepiece where it is installed
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
processed = processor(json.loads(sys.argv[6]))
model.save_pretrained(saved + "-with-processor")
processor.save_pretrained(saved + "-with-processor")
processor = AutoProcessor.from_pretrained(saved + "-with-processor", trust_remote_code=True)
processed_again = processor(json.loads(sys.argv[6]))
print(json.dumps({
    "present": present,
    "model_imported": model_imported,
    "module": type(model).__module__,
    "logits": logits.tolist(),
    "generated": generated.tolist(),
    "reloaded_same": same,
    "saved_files": saved_files,
    "processed": {key: processed[key].tolist() for key in inputs},
    "processed_again": {key: processed_again[key].tolist() for key in inputs},
}))
"""


def install_site(folder, *distributions: str):
    """A folder of links to `distributions` and everything they require (their `Requires-Dist` without extras, with
    environment markers evaluated, recursively), as `pip install` would put them in site-packages."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    folder.mkdir(parents=True)
    todo, seen = list(distributions), set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        distribution = metadata.distribution(name)
        for requirement in map(Requirement, distribution.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
        tops = {file.parts[0] for file in distribution.files if file.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            if not top.endswith(".pth") and not (folder / top).exists():
                (folder / top).symlink_to(distribution.locate_file(top))
    return folder


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
    save_checkpoint(model, root / "saved", processor=processor)
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


def test_trust_remote_code_runs_and_saves_with_torch_and_transformers_alone(moved_checkpoint, tmp_path):
    folder, logits, _ = moved_checkpoint
    model = TallForCausalLM.from_pretrained(folder).eval()
    processor = TallProcessor.from_pretrained(folder)
    inputs = processor(PREFIXES)
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    transformers_only = install_site(tmp_path / "torch-transformers", "torch", "transformers")
    assert not any((transformers_only / name).exists() for name in ("peft", "accelerate", "datasets", "tall_hf"))
    printed = run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            REMOTE_CODE_PROBE,
            str(transformers_only),
            str(install_site(tmp_path / "sentencepiece", "sentencepiece")),
            str(folder),
            str(tmp_path / "saved-again"),
            json.dumps({key: value.tolist() for key, value in inputs.items()}),
            json.dumps(PREFIXES),
        ],
        tmp_path,
        HF_MODULES_CACHE=str(tmp_path / "modules"),
    )
    result = json.loads(printed.splitlines()[-1])
    assert result["present"] == []  # tall_hf, peft, accelerate, datasets, evaluate: none importable
    assert "sentencepiece" not in result["model_imported"]  # the model needs no tokenizer library
    assert result["module"].startswith("transformers_modules.")  # the checkpoint's copy of the code, not tall_hf
    torch.testing.assert_close(torch.tensor(result["logits"]), logits, rtol=0, atol=1e-5)
    assert result["generated"] == generated.tolist()
    assert result["reloaded_same"]
    # transformers' own `save_pretrained` copies the checkpoint's code beside the weights: the model's, config's and
    # processor's modules and what they import, no uploader, no adapters, no training.
    code = {name for name in result["saved_files"] if name.endswith(".py")}
    shipped = {name for name in os.listdir(folder) if name.endswith(".py")}
    assert "tall_hf__models__tall__modeling_tall.py" in code and code <= shipped
    assert not [name for name in shipped if name.startswith(NOT_IN_REMOTE_CODE)], shipped
    assert result["processed"] == result["processed_again"] == {key: value.tolist() for key, value in inputs.items()}


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

"""A checkpoint's remote code is the model's, config's and processor's files and nothing else, each self-contained (the
package definitions it needs written into it): it loads with `trust_remote_code=True` where `tall_hf` cannot be
imported and computes exactly what the package's own model computes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
import torch

from tall_hf import TallForConditionalGeneration
from tall_hf.adapters import save_checkpoint

BRIDGE_TEXTS = (["this morning", "in winter we like to sit"], ["heavy rain fell", "by the stove"])
FILES = {
    kind: {f"{part}_{kind}.py" for part in ("configuration", "modeling", "processing")} for kind in ("tall", "bridge")
}
HEADS = {"tall": "AutoModelForSeq2SeqLM", "bridge": "AutoModelForCausalLM"}

# Loads both checkpoints with `trust_remote_code=True` in a python where importing tall_hf raises (the repository is
# not on its path and the installed copy is blocked); saves each one's processor output and logits (one thread, as
# the test session) for the test to compare.
PROBE = """
import importlib.abc, json, sys


class NoTallHf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tall_hf":
            raise ImportError("tall_hf is not importable here")


sys.meta_path.insert(0, NoTallHf())
import torch
import transformers

torch.set_num_threads(1)
checkpoints, output = json.loads(sys.argv[1]), sys.argv[2]
classes, saved = {}, {}
for kind, (folder, head, texts) in checkpoints.items():
    processor = transformers.AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = getattr(transformers, head).from_pretrained(folder, trust_remote_code=True).eval()
    base = transformers.AutoModel.from_pretrained(folder, trust_remote_code=True)
    inputs = dict(processor(*texts))
    with torch.no_grad():
        saved[kind] = {"inputs": inputs, "logits": model(**inputs).logits}
    classes[kind] = [type(model).__module__.partition(".")[0], type(model).__name__, type(base).__name__]
torch.save(saved, output)
try:
    import tall_hf
except ImportError:
    blocked = True
else:
    blocked = False
print(json.dumps({"classes": classes, "blocked": blocked}))
"""


@pytest.fixture(scope="module")
def checkpoints(tiny_paths, tiny_processor, tall_texts, bridge_paths, bridge_processor, make_bridge, tmp_path_factory):
    """A full TALL checkpoint and a full bridge checkpoint (with processors), each with its model and the texts its
    processor reads."""
    root = tmp_path_factory.mktemp("remote-code")
    torch.manual_seed(0)
    tall = TallForConditionalGeneration.from_components(**tiny_paths).eval()
    save_checkpoint(tall, root / "tall", processor=tiny_processor)
    bridge = make_bridge(bridge_paths, "token_softmax").eval()
    save_checkpoint(bridge, root / "bridge", processor=bridge_processor)
    return {
        "tall": (root / "tall", tall, tiny_processor, tall_texts),
        "bridge": (root / "bridge", bridge, bridge_processor, BRIDGE_TEXTS),
    }


@pytest.mark.parametrize("kind", ["tall", "bridge"])
def test_the_remote_code_is_three_self_contained_files(checkpoints, kind):
    """Only the configuration, modeling and processing files; none imports tall_hf, and each imports only the files
    before it (modeling from configuration, as transformers' model folders do); a package definition sits in one of
    them only."""
    folder = checkpoints[kind][0]
    files = {name for name in os.listdir(folder) if name.endswith(".py")}
    assert files == FILES[kind]
    auto_map = json.loads((folder / "config.json").read_text(encoding="utf-8"))["auto_map"]
    assert {f"{target.split('.')[0]}.py" for target in auto_map.values()} == files
    defined: dict[str, list[str]] = {}
    imported_files = {}
    for name in sorted(files):
        tree = ast.parse((folder / name).read_text(encoding="utf-8"))
        imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
        absolute = [alias.name for node in imports if isinstance(node, ast.Import) for alias in node.names]
        absolute += [node.module for node in imports if isinstance(node, ast.ImportFrom) and not node.level]
        assert not [module for module in absolute if module.partition(".")[0] == "tall_hf"], name
        relative = {(node.level, f"{node.module}.py") for node in imports if isinstance(node, ast.ImportFrom)}
        imported_files[name] = {module for level, module in relative if level}
        assert {level for level, _ in relative} <= {0, 1} and imported_files[name] <= files - {name}, name
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.setdefault(node.name, []).append(name)
    assert imported_files[f"configuration_{kind}.py"] == set()
    assert f"configuration_{kind}.py" in imported_files[f"modeling_{kind}.py"]
    assert {name: places for name, places in defined.items() if len(places) > 1} == {}
    assert "ComposedPreTrainedModel" in defined and "build_fusion" in defined  # written in, not imported


def test_the_remote_code_loads_without_tall_hf_and_computes_the_same_logits(checkpoints, tmp_path):
    """`AutoProcessor`, `AutoModel` and the head load from the checkpoints' own code where importing tall_hf raises;
    the processor's tensors are the package processor's and the logits are the package model's, to the bit."""
    arguments = {kind: (str(folder), HEADS[kind], texts) for kind, (folder, _, _, texts) in checkpoints.items()}
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(arguments), str(tmp_path / "out.pt")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout.splitlines()[-1])
    assert printed["blocked"]
    assert printed["classes"] == {
        "tall": ["transformers_modules", "TallForConditionalGeneration", "TallModel"],
        "bridge": ["transformers_modules", "BridgeForCausalLM", "BridgeForCausalLM"],
    }
    saved = torch.load(tmp_path / "out.pt")
    for kind, (_, model, processor, texts) in checkpoints.items():
        inputs = dict(processor(*texts))
        assert sorted(saved[kind]["inputs"]) == sorted(inputs)
        assert all(torch.equal(saved[kind]["inputs"][key], value) for key, value in inputs.items()), kind
        with torch.no_grad():
            logits = model(**inputs).logits
        # Two processes may take different kernels for the same sums (alignment), so equal up to float rounding: a
        # wrong definition in the bundle moves logits by far more.
        torch.testing.assert_close(saved[kind]["logits"], logits, rtol=1e-5, atol=1e-6, msg=kind)

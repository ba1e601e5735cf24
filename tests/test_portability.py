"""Checkpoints that travel: a full checkpoint predicts offline from another folder with its components gone (its
`translator/` holds only the LR->HR decoder side, nothing `model.safetensors` holds), and a python without tall_hf
loads it with `trust_remote_code=True`; the processor tokenizes given translations and decodes, and translates
nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM

from tall_hf import TallForConditionalGeneration, TallPredictor, TallProcessor
from tall_hf.adapters import save_checkpoint
from tall_hf.cli import main
from tall_hf.data import lr_hr_translator, translate

PREFIXES = ["הילדים הלכו אל", "אני אוהב לקרוא"]

# Runs with only what `pip install torch transformers` installs on `sys.path` (`-I -S`: no site-packages, no
# PYTHONPATH, no editable install): loads the checkpoint with `trust_remote_code=True`, runs and generates from the
# given inputs, saves it again (its code) and reloads that copy, all without importing sentencepiece; then
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
texts = json.loads(sys.argv[6])
processed = processor(texts["prefixes"], texts["translations"])
model.save_pretrained(saved + "-with-processor")
processor.save_pretrained(saved + "-with-processor")
processor = AutoProcessor.from_pretrained(saved + "-with-processor", trust_remote_code=True)
processed_again = processor(texts["prefixes"], texts["translations"])
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
    """A full checkpoint (with its translator's decoder side) built from copies of the tiny components, which are then
    deleted; the checkpoint itself is moved to another folder. Returns the folder, the model's outputs before the move
    and the prefixes' translations."""
    root = tmp_path_factory.mktemp("portable")
    components = {role: str(shutil.copytree(path, root / "components" / role)) for role, path in tiny_paths.items()}
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**components).eval()
    processor = TallProcessor.from_components(**components)
    predictor = TallPredictor(model, processor)
    translations = predictor.translate(PREFIXES)
    with torch.no_grad():
        logits = model(**processor(PREFIXES, translations)).logits[:, -1]
    words = predictor.predict_next_word(PREFIXES)
    save_checkpoint(model, root / "saved", processor=processor)  # with translator/: nothing else is needed
    shutil.rmtree(root / "components")
    moved = shutil.move(root / "saved", root / "elsewhere" / "tall")
    return moved, logits, words, translations


def run(args: list[str], cwd, **env) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **env)
    result = subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_moved_full_checkpoint_predicts_offline_from_another_directory(
    moved_checkpoint, tmp_path, monkeypatch, capsys
):
    folder, _, words, _ = moved_checkpoint
    config = json.loads((folder / "config.json").read_text())
    assert all(os.path.isabs(c["name_or_path"]) for c in config["components"].values())  # recorded, resolved
    assert not any(os.path.exists(c["name_or_path"]) for c in config["components"].values())  # and gone
    assert (folder / "translator" / "model.safetensors").is_file()
    monkeypatch.chdir(tmp_path)  # offline (conftest), in another directory, with the components deleted
    assert main(["predict", "--model", str(folder), *PREFIXES]) == 0
    assert capsys.readouterr().out.splitlines() == words


def test_trust_remote_code_runs_and_saves_with_torch_and_transformers_alone(moved_checkpoint, tmp_path):
    folder, logits, _, translations = moved_checkpoint
    model = TallForConditionalGeneration.from_pretrained(folder).eval()
    processor = TallProcessor.from_pretrained(folder)
    inputs = processor(PREFIXES, translations)
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
            json.dumps({"prefixes": PREFIXES, "translations": translations}),
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
    # The checkpoint's code is the model's, config's and processor's files, each self-contained; transformers' own
    # `save_pretrained` copies the model's file and the file it imports (the config's) beside the weights.
    code = {name for name in result["saved_files"] if name.endswith(".py")}
    shipped = {name for name in os.listdir(folder) if name.endswith(".py")}
    assert shipped == {"configuration_tall.py", "modeling_tall.py", "processing_tall.py"}
    assert code == {"configuration_tall.py", "modeling_tall.py"}
    assert result["processed"] == result["processed_again"] == {key: value.tolist() for key, value in inputs.items()}


def test_a_full_checkpoint_stores_the_lr_encoder_once_and_translates_as_its_component(moved_checkpoint, tiny_paths):
    """`translator/` holds the LR->HR decoder side only: no tensor of the model's stage 1 (encoder layers or the
    token table both sides share) is written twice; the translator read back has the model's own encoder and
    translates, weight for weight, as the component it came from (a copy of `tiny_paths["lr_hr"]`)."""
    folder, _, _, translations = moved_checkpoint
    model = TallForConditionalGeneration.from_pretrained(folder)
    decoder_side = load_file(folder / "translator" / "model.safetensors")
    assert decoder_side and all(
        key.startswith("model.decoder.layers.") or key == "final_logits_bias" for key in decoder_side
    )
    translator = lr_hr_translator(model)
    assert translator.get_encoder() is model.lr_encoder
    assert translator.get_output_embeddings().weight is model.lr_encoder.embed_tokens.weight  # tied, as Marian's
    component = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    theirs = component.state_dict()
    assert all(torch.equal(tensor, theirs[key]) for key, tensor in translator.state_dict().items())
    assert translator.generation_config.to_dict() == component.generation_config.to_dict()
    assert translate(PREFIXES, translator, TallProcessor.from_pretrained(folder).source_tokenizer) == translations


def test_a_full_checkpoint_of_the_earlier_layout_translates_with_its_whole_translator(tiny_paths, tmp_path):
    """Checkpoints saved when the processor held the translator have it whole in `translator/`: still read, with the
    model's own encoder in it."""
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    model.save_pretrained(tmp_path)
    component = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    assert component.generation_config.num_beams > 1
    component.generation_config.num_beams = 1  # tells the checkpoint's translator from the recorded component
    component.save_pretrained(tmp_path / "translator")
    loaded = TallForConditionalGeneration.from_pretrained(tmp_path)
    translator = lr_hr_translator(loaded)
    assert translator.get_encoder() is loaded.lr_encoder and translator.generation_config.num_beams == 1
    tokenizer = TallProcessor.from_components(**tiny_paths).source_tokenizer
    assert translate(PREFIXES, translator, tokenizer) == translate(PREFIXES, component, tokenizer)


def test_the_processor_tokenizes_given_translations_decodes_and_translates_nothing(tiny_paths):
    processor = TallProcessor.from_components(**tiny_paths)
    with pytest.raises(TypeError, match="does not translate: pass `bridge_texts`"):
        processor(PREFIXES)
    assert not any(isinstance(value, torch.nn.Module) for value in vars(processor).values())
    ids = processor.target_tokenizer(text_target=PREFIXES, add_special_tokens=False)["input_ids"]
    assert processor.batch_decode(ids) == PREFIXES and processor.decode(ids[0]) == PREFIXES[0]


def test_a_processor_config_that_names_a_translator_still_loads(tiny_paths, tmp_path):
    """Processors saved when they held a translator recorded its settings; transformers drops them on load."""
    processor = TallProcessor.from_components(**tiny_paths)
    processor.save_pretrained(tmp_path)
    path = tmp_path / "processor_config.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**saved, "translator_name_or_path": "translator", "translation_batch_size": 32}))
    loaded = TallProcessor.from_pretrained(tmp_path)
    assert loaded(PREFIXES, ["a", "b"])["input_ids"].tolist() == processor(PREFIXES, ["a", "b"])["input_ids"].tolist()


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

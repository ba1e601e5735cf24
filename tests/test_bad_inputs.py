"""A table of bad inputs walked through the command line and the Python API: each gives a named error or a correct
result, never a raw traceback from deep inside a library, a silent wrong answer or a hang."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from safetensors import SafetensorError, safe_open
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedTokenizerFast

from tall_hf import TallConfig, TallForConditionalGeneration, TallProcessor
from tall_hf.adapters import load_checkpoint, save_checkpoint
from tall_hf.cli import main, user_error
from tall_hf.data import PreparationArguments, clean_sentences, prepare_tall_dataset, translate
from tall_hf.data.text_files import read_sentences, read_text_lines
from tall_hf.evaluation import words_match
from tall_hf.evaluation.approaches import DirectApproach
from tall_hf.generation import TallPredictor
from tall_hf.modules.losses import IGNORE_INDEX, last_token_cross_entropy, token_cross_entropy
from tall_hf.resources import read_corpus
from tall_hf.training.checkpointing import COMMIT_FILE
from tall_hf.utils.folders import LOCK_NAME, FolderInUseError, hold_lock, save_pretrained_atomically
from tall_hf.utils.loading import load_pretrained
from tall_hf.utils.text import normalize_text, split_last_word

NOT_UTF8 = "שלום עולם\n".encode("cp1255") + b"\xff\xfe broken\n"
LONG_SENTENCE = " ".join(read_corpus("hebrew")[:12])  # ~150 words: more tokens than the translators' 128 positions


@pytest.fixture(scope="module")
def saved_model(tiny_paths, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "tall"
    torch.manual_seed(0)
    save_checkpoint(TallForConditionalGeneration.from_components(**tiny_paths), folder)
    TallProcessor.from_components(**tiny_paths).save_pretrained(folder)
    return folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _without_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def _truncated(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _overwritten(folder: Path) -> None:
    """Bytes of the first tensor's data overwritten with 0xff (a NaN in float32): the file still parses."""
    weights = folder / "model.safetensors"
    with safe_open(weights, "pt") as handle:
        first = sorted(handle.keys())[0]
    data = bytearray(weights.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header : 8 + header + 16] = b"\xff" * 16
    weights.write_bytes(bytes(data))
    assert first  # the file keeps its tensors: only values changed


def cli_error(argv: list[str], capsys) -> str:
    """Run `tall-hf ARGV`, assert that it fails with an error code, and return what it wrote to stderr."""
    capsys.readouterr()
    assert main(argv) != 0
    return capsys.readouterr().err


def one_error_line(stderr: str) -> str:
    """The error line of a command's standard error, asserting that there is one and no traceback."""
    lines = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ------------------------------------------------------------------------------------ damaged model folders
@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (_without_config, OSError, "has model weights but no config.json"),
        (_truncated, OSError, "safetensors weights of .* are damaged"),
        (_overwritten, ValueError, "non-finite weights"),
    ],
    ids=["no-config", "truncated-weights", "overwritten-weights"],
)
def test_a_damaged_model_folder_is_named_by_every_entry_point(saved_model, tmp_path, capsys, damage, error, message):
    folder = _copy(saved_model, tmp_path)
    damage(folder)
    with pytest.raises(error, match=message) as raised:
        load_checkpoint(TallForConditionalGeneration, folder)
    assert str(folder) in str(raised.value)
    for command in (
        ["predict", "--model", str(folder), "שלום לכם"],
        ["push", "--model", str(folder), "--repo_id", "x/y"],
    ):
        assert re.search(message, cli_error(command, capsys))


def test_a_config_without_components_is_refused():
    with pytest.raises(ValueError, match="lr_hr_config, llm_config, hr_lr_config missing"):
        TallConfig()


def test_a_missing_local_folder_is_called_missing(monkeypatch, tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(OSError, match="there is no folder at") as raised:
        load_pretrained(AutoTokenizer, missing, role="LLM tokenizer")
    assert "set HF_HUB_OFFLINE" not in str(raised.value)
    assert "there is no folder at" in cli_error(["predict", "--model", str(missing), "שלום לכם"], capsys)


# ------------------------------------------------------------------------------------ text files
def test_text_that_is_not_utf8_is_named_with_its_line(tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ValueError, match=r"latin.txt', line 1, is not UTF-8"):
        read_text_lines(path)
    assert "latin.txt', line 1, is not UTF-8" in cli_error(
        ["predict", "--model", "unused", "--file", str(path)], capsys
    )


def test_text_files_are_read_with_datasets_line_for_line_and_cache_nothing(tmp_path, monkeypatch):
    """Blank lines stay (empty rows), line ends and a BOM go, `limit` counts lines, a bad byte is named by line and
    byte; the `datasets` builder writes nothing beside the data nor into the datasets cache."""
    import datasets

    cache = tmp_path / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    data = tmp_path / "data"
    data.mkdir()
    path = data / "lines.txt"
    path.write_bytes("\ufeffהילדים הלכו\r\n\n  אל הגן \nסוף".encode())
    assert read_text_lines(path) == ["הילדים הלכו", "", "  אל הגן ", "סוף"]
    assert read_text_lines(path, limit=2) == ["הילדים הלכו", ""]
    assert read_sentences(path) == ["הילדים הלכו", "אל הגן", "סוף"]
    assert read_sentences(path, 2) == ["הילדים הלכו", "אל הגן"]
    (data / "empty.txt").write_bytes(b"")
    assert read_text_lines(data / "empty.txt") == []
    (data / "bad.txt").write_bytes(b"fine\nstill fine\nab" + NOT_UTF8)
    with pytest.raises(ValueError, match=r"bad.txt', line 3, is not UTF-8 text \(invalid start byte at byte 2\)"):
        read_text_lines(data / "bad.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_text_lines(data / "missing.txt")
    assert sorted(entry.name for entry in data.iterdir()) == ["bad.txt", "empty.txt", "lines.txt"]
    assert not cache.exists()


def test_training_reads_its_text_before_loading_any_component(tmp_path, capsys):
    path = tmp_path / "latin.txt"
    path.write_bytes(NOT_UTF8)
    command = ["train", "--train_file", str(path), "--output_dir", str(tmp_path / "out")]
    # No component exists at these paths: the text file's error must come first.
    command += ["--lr_hr_model", "/missing/a", "--llm_model", "/missing/b", "--hr_lr_model", "/missing/c"]
    assert "latin.txt', line 1, is not UTF-8" in cli_error(command, capsys)


def test_predict_file_keeps_blank_lines_aligned_and_refuses_an_empty_file(saved_model, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("הילדים הלכו אל\n\nאני אוהב לקרוא\n", encoding="utf-8")
    assert main(["predict", "--model", str(saved_model), "--file", str(lines)]) == 0
    answers = capsys.readouterr().out.split("\n")[:-1]
    assert len(answers) == 3 and answers[1] == "" and answers[0] and answers[2]

    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SystemExit):  # an error, not a fall back to (and a block on) standard input
        main(["predict", "--model", str(saved_model), "--file", str(empty)])
    assert "empty.txt' is empty" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ losses and streams
@pytest.mark.parametrize("loss", [last_token_cross_entropy, token_cross_entropy])
def test_labels_of_the_wrong_shape_are_refused(loss):
    logits = torch.randn(2, 5, 11)
    with pytest.raises(ValueError, match=r"labels have shape \(2, 4\) but the target stream has shape \(2, 5\)"):
        loss(logits, torch.randint(0, 11, (2, 4)))


@pytest.mark.parametrize("loss_mode", ["last_word", "all_tokens"])
def test_no_label_gives_a_zero_loss_not_nan(tiny_paths, tiny_processor, loss_mode):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths, loss_mode=loss_mode)
    batch = tiny_processor(["הילדים הלכו"], ["the children went"], ["הילדים הלכו הביתה"])
    batch["labels"] = torch.full_like(batch["labels"], IGNORE_INDEX)
    loss = model(**batch).loss
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_left_padded_stream_is_refused(tiny_model, tiny_processor):
    batch = tiny_processor(["הילדים הלכו", "אני"], ["the children went to the big house", "i"])
    mask = batch["bridge_attention_mask"]
    batch["bridge_attention_mask"] = mask.flip(-1)  # row 1: padding first
    batch["bridge_input_ids"] = batch["bridge_input_ids"].flip(-1)
    with pytest.raises(ValueError, match="bridge_attention_mask is padded on the left"):
        tiny_model(**batch)


# ------------------------------------------------------------------------------------ sentences models cannot read
def test_a_sentence_longer_than_the_translator_reads_is_cut_and_counted(tiny_paths, caplog):
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_paths["lr_hr"])
    assert (
        len(tokenizer(LONG_SENTENCE)["input_ids"]) > model.config.max_position_embeddings < tokenizer.model_max_length
    )
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        outputs = translate([LONG_SENTENCE, "שלום לכם"], model, tokenizer, num_beams=1, max_new_tokens=4)
    assert (
        len(outputs) == 2 and outputs[1] == translate(["שלום לכם"], model, tokenizer, num_beams=1, max_new_tokens=4)[0]
    )
    assert "1 of 2 texts were longer than the translator reads (128 tokens)" in caplog.text


def test_tall_cuts_a_prefix_too_long_for_its_position_tables(tiny_model, tiny_processor, tiny_paths):
    translator = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    predictor = TallPredictor(tiny_model, tiny_processor, translator)
    long_translation = " ".join(read_corpus("english")[:20])
    words = predictor.predict_next_word(
        [LONG_SENTENCE, "הילדים הלכו אל"], translations=[long_translation, "the children went to"]
    )
    assert len(words) == 2 and predictor.truncated == 1 and predictor.unreadable == 0


def _latin_only_tokenizer() -> PreTrainedTokenizerFast:
    """A BPE tokenizer of English with no unknown token: it drops Hebrew letters, so a Hebrew text has no tokens."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(read_corpus("english"), trainers.BpeTrainer(vocab_size=200, special_tokens=["<pad>"]))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<pad>", padding_side="left")


def test_direct_leaves_a_prefix_its_tokenizer_cannot_read_unanswered(tiny_paths):
    tokenizer = _latin_only_tokenizer()
    assert tokenizer("הילדים הלכו")["input_ids"] == []
    llm = AutoModelForCausalLM.from_pretrained(tiny_paths["llm"])
    approach = DirectApproach(llm, tokenizer, max_new_tokens=2)
    predictions = approach.predict(["הילדים הלכו", "the children went to"])
    assert len(predictions) == 2 and predictions[0] == "" and approach.unreadable == 1


# ------------------------------------------------------------------------------------ tokenizers that do not fit
def _swap_sides(folder: Path) -> None:
    source, target = folder / "source.spm", folder / "target.spm"
    source_bytes = source.read_bytes()
    source.write_bytes(target.read_bytes())
    target.write_bytes(source_bytes)


def _llm_tokenizer_inside(llm: str):
    def copy(folder: Path) -> None:
        for path in Path(llm).iterdir():
            if "token" in path.name:
                shutil.copy(path, folder / path.name)

    return copy


@pytest.mark.parametrize(
    ("break_translator", "message"),
    [
        (_swap_sides, "reads .*% of the LR text as unknown tokens"),
        ("llm", "Mismatched tokenizer: the source_tokenizer of the LR->HR translator has"),
    ],
    ids=["source-target-swapped", "llm-tokenizer-copied-in"],
)
def test_a_wrong_translator_tokenizer_fails_before_any_translation(
    tiny_paths, tmp_path, capsys, break_translator, message
):
    translator = Path(shutil.copytree(tiny_paths["lr_hr"], tmp_path / "lr_hr"))
    (_llm_tokenizer_inside(tiny_paths["llm"]) if break_translator == "llm" else break_translator)(translator)
    paths = {**tiny_paths, "lr_hr": str(translator)}
    texts = tmp_path / "train.txt"
    texts.write_text("\n".join(read_corpus("hebrew")[:40]) + "\n", encoding="utf-8")
    command = ["train", "--lr_hr_model", paths["lr_hr"], "--llm_model", paths["llm"], "--hr_lr_model", paths["hr_lr"]]
    command += ["--train_file", str(texts), "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "c")]
    command += ["--max_steps", "1", "--use_cpu", "--eval_strategy", "no", "--load_best_model_at_end", "False"]
    assert re.search(message, cli_error(command, capsys))
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("translation-*.arrow"))


def test_prepare_checks_its_translator_tokenizer_before_translating(tiny_paths, tiny_processor, tmp_path):
    oversized = AutoTokenizer.from_pretrained(tiny_paths["llm"])  # more tokens than the translator's vocabulary
    args = PreparationArguments(cache_dir=str(tmp_path), num_beams=1, max_new_tokens=4)
    with pytest.raises(ValueError, match="Mismatched tokenizer: the tokenizer of the translator"):
        prepare_tall_dataset(
            read_corpus("hebrew")[:8], tiny_processor, tiny_paths["lr_hr"], args, translator_tokenizer=oversized
        )


# ------------------------------------------------------------------------------------ folders owned by one run
HOLD_LOCK = """
import sys, time
from tall_hf.utils.folders import hold_lock
with hold_lock(sys.argv[1], "the test's folder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


@pytest.fixture
def lock_holder():
    """`lock_holder(path, seconds)`: another live process holding the lock file `path` (killed at the end)."""
    processes = []

    def start(path: Path, seconds: float = 120) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_second_run_on_a_locked_output_folder_refuses_at_once_naming_the_first(
    tmp_path, capsys, lock_holder, command
):
    output = tmp_path / "out"
    first = lock_holder(output / LOCK_NAME)
    # Neither the text nor the components exist: the lock must refuse before anything is read or loaded.
    argv = [command, "--output_dir", str(output), "--lr_hr_model", "/missing/a", "--llm_model", "/missing/b"]
    argv += ["--hr_lr_model", "/missing/c"]
    argv += ["--train_file", "/missing/train.txt"] if command == "train" else ["--test_files", "/missing/test.txt"]
    argv += ["--approaches", "direct"] if command == "evaluate" else []
    error = one_error_line(cli_error(argv, capsys))
    assert f"The output folder {output} is in use by another run (pid {first.pid} on {socket.gethostname()}" in error
    assert "pass another --output_dir" in error
    assert first.poll() is None and (output / LOCK_NAME).is_file()  # the first run's lock is untouched


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "tall-hf train"}))
    with caplog.at_level(logging.WARNING, logger="tall_hf"), hold_lock(lock, "The folder"):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert f"Taking over the lock of The folder left by pid {pid}" in caplog.text
    assert not lock.exists()  # released at the end


def test_a_lock_of_another_host_is_refused_not_taken_over(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": 1234, "host": "another-host", "command": "tall-hf train"}))
    with pytest.raises(FolderInUseError, match="locked by a run on another host .*pid 1234 on another-host"):
        with hold_lock(lock, "The folder"):
            pass
    assert json.loads(lock.read_text())["host"] == "another-host"


def test_a_build_waits_for_the_run_building_it_then_goes_on(tmp_path, lock_holder, caplog):
    lock = tmp_path / ".world-x.lock"
    first = lock_holder(lock, seconds=2)
    with caplog.at_level(logging.WARNING, logger="tall_hf"), hold_lock(lock, "The build", wait=True):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert first.stdout.readline().strip() == "released"  # acquired once the other process let go
    assert f"The build is being written by another run (pid {first.pid}" in caplog.text


def test_a_translation_shard_another_run_holds_is_waited_for_and_read_from_its_cache(tmp_path, lock_holder, caplog):
    from tall_hf.data import clean_sentences, translate_shards

    cleaned = clean_sentences(read_corpus("hebrew")[:20]).to_dataset()
    args = PreparationArguments(cache_dir=str(tmp_path))
    calls = []

    def translator(batch):
        calls.append(len(batch["prefix"]))
        return {"translation": [f"hr {prefix}" for prefix in batch["prefix"]]}

    first = translate_shards(cleaned, translator, "fingerprint", args)  # the other run's cache file
    assert calls == [20]
    holder = lock_holder(tmp_path / "translation-fingerprint-00000of00001.lock", seconds=2)
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        again = translate_shards(cleaned, translator, "fingerprint", args)
    assert f"The translation cache of shard 0 is being written by another run (pid {holder.pid}" in caplog.text
    assert calls == [20] and again[0]["translation"] == first[0]["translation"]


def test_a_full_disk_leaves_no_temporary_file_in_a_cache_folder(tmp_path, monkeypatch):
    from tall_hf.data import clean_sentences, translate_shards
    from tall_hf.training.checkpointing import write_json_atomically

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    cleaned = clean_sentences(read_corpus("hebrew")[:20]).to_dataset()
    with pytest.raises(OSError, match="No space left"):
        translate_shards(cleaned, full, "fingerprint", PreparationArguments(cache_dir=str(tmp_path / "cache")))
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomically(tmp_path / "cache" / "record.json", {"a": 1})
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.slow
def test_ranks_starting_at_once_on_an_empty_component_folder_train(tmp_path, hebrew_sentences):
    """Two processes of one `accelerate launch` on an empty `--tiny_components` folder: the main process builds the
    components while the other waits, and the run trains and saves."""
    root = Path(__file__).resolve().parents[1]
    texts = tmp_path / "train.txt"
    texts.write_text("\n".join(hebrew_sentences[:64]) + "\n", encoding="utf-8")
    command = ["accelerate", "launch", "--config_file", str(root / "examples/accelerate/cpu.yaml")]
    command += [str(root / "examples/train_tall.py"), "--tiny_components", str(tmp_path / "tiny")]
    command += ["--train_file", str(texts), "--output_dir", str(tmp_path / "out"), "--max_steps", "2"]
    command += ["--eval_strategy", "no", "--load_best_model_at_end", "False", "--save_strategy", "no", "--use_cpu"]
    command += ["--per_device_train_batch_size", "4", "--cache_dir", str(tmp_path / "cache")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not list((tmp_path / "tiny").glob(".*"))  # no staging folder or lock left


# ------------------------------------------------------------------------------------ invisible characters
def test_invisible_characters_are_no_words():
    marks = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200c\u200d\ufeff\u200b\u00ad"
    assert words_match("הבית", "הבית\u200f") and words_match("\u202bהבית\u202c", "הבית")
    assert normalize_text(f"הילדים{marks} הלכו \u200f") == "הילדים הלכו"
    assert split_last_word("הילדים הלכו הביתה\u200f") == ("הילדים הלכו", "הביתה")
    assert split_last_word("הילדים הלכו \u200f") == ("הילדים", "הלכו")
    with pytest.raises(ValueError, match="is empty"):
        split_last_word("\u200f \u200e")
    assert normalize_text("נִקּוּד") == "נִקּוּד"  # niqqud (combining marks) is visible text and stays


def test_training_text_with_invisible_marks_is_prepared_as_without_and_blank_lines_are_counted():
    clean = read_corpus("hebrew")[:30]
    marked = [line.replace(" ", " \u200f", 2) + "\u200f" for line in clean] + ["\u200f \u200f", "\u202b\u202c"]
    with_marks, without = clean_sentences(marked), clean_sentences(clean)
    assert with_marks.sentences == without.sentences and with_marks.last_words == without.last_words
    assert with_marks.filtered["empty"] == without.filtered["empty"] + 2


class _Oracle:
    """An approach that answers its stored word for half of the prefixes it knows (a fixed 50% accuracy)."""

    name = display_name = "oracle"
    uses_translation = False
    truncated = unreadable = 0

    def __init__(self, sentences: list[str]) -> None:
        self.answers = {prefix: gold for prefix, gold in map(split_last_word, sentences[::2])}

    def predict(self, prefixes, **_):
        return [self.answers.get(prefix, "") for prefix in prefixes]


def test_a_test_file_whose_lines_end_in_a_direction_mark_scores_as_without_the_marks(tmp_path, caplog):
    from tall_hf.evaluation.runner import _examples, evaluate_approach

    sentences = read_corpus("hebrew")[:40]
    plain, marked = tmp_path / "plain.txt", tmp_path / "marked.txt"
    plain.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    marked.write_text("\n".join(f"{s}\u200f" for s in sentences) + "\n\u200f \u200f\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        results = [evaluate_approach(_Oracle(sentences), _examples(path, None)) for path in (plain, marked)]
    assert "skipped 1 of 41 sentences with fewer than two words" in caplog.text  # the line of two marks
    assert results[0].estimate == results[1].estimate and results[0].estimate.accuracy == 0.5
    assert [r.gold_word for r in results[1].records] == [r.gold_word for r in results[0].records]


def test_prediction_reads_a_prefix_with_invisible_marks_as_without(saved_model, tiny_paths, tmp_path, capsys):
    translator = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["lr_hr"])
    model, processor = (
        TallForConditionalGeneration.from_pretrained(saved_model),
        TallProcessor.from_pretrained(saved_model),
    )
    predictor = TallPredictor(model, processor, translator)
    prefixes = ["הילדים הלכו אל", "אני אוהב לקרוא"]
    assert predictor.predict_next_word([f"\u202b{p}\u200f" for p in prefixes]) == predictor.predict_next_word(prefixes)
    lines = tmp_path / "lines.txt"
    lines.write_text("הילדים הלכו אל\n\u200f\u200e\n", encoding="utf-8")
    assert main(["predict", "--model", str(saved_model), "--file", str(lines)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split("\n")[1] == "" and "1 blank lines (or lines of invisible marks)" in captured.err


# ------------------------------------------------------------------------------------ atomic saves
def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(TallForConditionalGeneration, folder).state_dict()


def test_a_save_that_fails_midway_leaves_the_previous_model_whole(saved_model, tiny_paths, tmp_path, monkeypatch):
    import transformers.modeling_utils

    folder = _copy(saved_model, tmp_path)
    before = _weights(folder)
    torch.manual_seed(1)
    other = TallForConditionalGeneration.from_components(**tiny_paths)
    real_save = transformers.modeling_utils.safe_save_file

    def interrupted(tensors, filename, **kwargs):
        real_save(tensors, filename, **kwargs)
        Path(filename).write_bytes(Path(filename).read_bytes()[:1000])  # half written, then the process stops
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(other, folder)
    after = _weights(folder)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no staging folder left beside it
    monkeypatch.undo()
    save_checkpoint(other, folder)  # a save that completes replaces the model
    trained = next(name for name, parameter in other.named_parameters() if parameter.requires_grad)
    assert torch.equal(_weights(folder)[trained], other.state_dict()[trained])


KILLED_SAVE = """
import os, signal, sys, torch
import transformers.modeling_utils as modeling_utils
from tall_hf import TallForConditionalGeneration
from tall_hf.adapters import save_checkpoint
paths = dict(zip(("lr_hr", "llm", "hr_lr"), sys.argv[2:5]))
torch.manual_seed(1)
model = TallForConditionalGeneration.from_components(**paths)
real_save = modeling_utils.safe_save_file
def killed(tensors, filename, **kwargs):
    real_save(tensors, filename, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
modeling_utils.safe_save_file = killed
save_checkpoint(model, sys.argv[1])
"""


def test_a_save_killed_midway_leaves_the_previous_model_loadable(saved_model, tiny_paths, tmp_path):
    folder = _copy(saved_model, tmp_path)
    before = _weights(folder)
    paths = [tiny_paths[role] for role in ("lr_hr", "llm", "hr_lr")]
    done = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(folder), *paths], capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    after = _weights(folder)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_save_replaces_symbolic_links_in_the_folder_instead_of_writing_through_them(saved_model, tmp_path):
    folder = _copy(saved_model, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("README.md", "config.json", "processor_config.json", "source_tokenizer/tokenizer_config.json"):
        (outside / name.replace("/", "-")).write_text("not yours", encoding="utf-8")
        (folder / name).unlink()
        (folder / name).symlink_to(outside / name.replace("/", "-"))
    model, processor = (
        TallForConditionalGeneration.from_pretrained(saved_model),
        TallProcessor.from_pretrained(saved_model),
    )
    save_checkpoint(model, folder)
    save_pretrained_atomically(processor, folder)
    assert all((outside / name).read_text(encoding="utf-8") == "not yours" for name in os.listdir(outside))
    assert [path.name for path in folder.rglob("*") if path.is_symlink()] == []
    assert TallForConditionalGeneration.from_pretrained(folder) is not None


# ------------------------------------------------------------------------------------ checkpoints that load anywhere
def test_a_full_checkpoint_of_a_tall_built_from_configs_saves_without_a_translator(tiny_paths, tmp_path, caplog):
    """A TALL built from component configs (random weights) has no translator to save: the checkpoint is written and
    loads, without `translator/`, and the log says so."""
    from transformers import AutoConfig

    configs = {role: AutoConfig.from_pretrained(path) for role, path in tiny_paths.items()}
    model = TallForConditionalGeneration.from_components(**configs)
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        save_checkpoint(model, tmp_path / "saved")
    assert not (tmp_path / "saved" / "translator").exists()
    assert "Saved without translator/" in caplog.text
    assert TallForConditionalGeneration.from_pretrained(tmp_path / "saved") is not None


def test_an_adapters_only_save_of_a_loaded_full_checkpoint_predicts_from_elsewhere(
    tiny_paths, tiny_processor, tmp_path, capsys
):
    full = tmp_path / "full"
    torch.manual_seed(0)
    built = TallForConditionalGeneration.from_components(**tiny_paths)
    save_checkpoint(built, full, processor=tiny_processor)  # a full checkpoint holds its translator's decoder side
    assert (full / "translator" / "model.safetensors").is_file()
    model, processor = TallForConditionalGeneration.from_pretrained(full), TallProcessor.from_pretrained(full)
    save_checkpoint(model, tmp_path / "adapters", adapters_only=True, processor=processor)
    moved = Path(shutil.move(tmp_path / "adapters", tmp_path / "elsewhere" / "adapters"))
    shutil.rmtree(full)  # nothing may be read from the checkpoint it came from
    assert not (moved / "translator").exists()
    recorded = json.loads((moved / "config.json").read_text(encoding="utf-8"))["components"]["lr_hr"]
    assert recorded["name_or_path"] == tiny_paths["lr_hr"]  # the translator, found like the other components
    prefixes = ["הילדים הלכו אל", "אני אוהב לקרוא"]
    assert main(["predict", "--model", str(moved), *prefixes]) == 0
    answers = capsys.readouterr().out.splitlines()
    assert answers == TallPredictor.from_pretrained(moved).predict_next_word(prefixes) and all(answers)


# ------------------------------------------------------------------------------------ one-line errors
def _config_edited(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["llm_config"]["num_hidden_layers"] = "two"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _adapter_weights_truncated(folder: Path) -> None:
    for name in os.listdir(folder):
        if name.endswith(".safetensors"):
            os.remove(folder / name)
    (folder / "adapter_model.safetensors").write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"a":')


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_config_edited, r"has an invalid config.json \(.*\): fix the field named here"),
        (_adapter_weights_truncated, r"The safetensors weights of .*adapter_model.safetensors are damaged"),
    ],
    ids=["config-value-of-another-type", "adapter-weights-truncated"],
)
def test_hand_edited_or_damaged_files_end_in_one_line_and_verbose_shows_the_traceback(
    tmp_path, tiny_paths, capsys, damage, message
):
    folder = tmp_path / "tall"
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths)
    save_checkpoint(model, folder, adapters_only=damage is _adapter_weights_truncated)
    TallProcessor.from_components(**tiny_paths).save_pretrained(folder)
    damage(folder)
    for command in (
        ["predict", "--model", str(folder), "שלום לכם"],
        ["push", "--model", str(folder), "--repo_id", "x/y"],
    ):
        assert re.search(message, one_error_line(cli_error(command, capsys)))
    with pytest.raises(Exception, match=message.split(r"\(")[0]):
        main(["predict", "--model", str(folder), "שלום לכם", "--verbose"])


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            RuntimeError("[enforce fail at inline_container.cc:664] PytorchStreamWriter failed writing file data/0"),
            "the disk is full",
        ),
        (OSError(errno.ENOSPC, "No space left on device", "out/checkpoint-2/x"), "out/checkpoint-2/x"),
        (SafetensorError("Error while deserializing header: HeaderTooLarge"), "a safetensors file is damaged"),
        (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"), "set HF_HUB_OFFLINE=1"),
        (StrictDataclassFieldValidationError("dropout", ValueError("must be a float")), "invalid config"),
        (ValueError("--min_words must be at least 2"), "--min_words must be at least 2"),
    ],
    ids=["torch-disk-full", "oserror-disk-full", "safetensors", "hub-offline", "strict-config", "value"],
)
def test_errors_a_user_can_cause_are_one_line(error, expected):
    code, line = user_error(error)
    assert code > 0 and expected in line and "\n" not in line
    assert user_error(KeyError("a bug")) is None  # anything else keeps its traceback


def test_a_push_with_the_hub_unreachable_is_one_line(saved_model, capsys, monkeypatch):
    def unreachable(*args, **kwargs):
        raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("tall_hf.adapters.saving.create_hub_repo", unreachable)
    error = one_error_line(cli_error(["push", "--model", str(saved_model), "--repo_id", "you/tall"], capsys))
    assert "set HF_HUB_OFFLINE=1" in error


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max_steps", "0"], "--max_steps 0 trains nothing"),
        (["--num_train_epochs", "0"], "--num_train_epochs 0.0 trains nothing"),
        (["--max_train_samples", "0"], "--max_train_samples 0 keeps no sentence"),
        (["--max_eval_samples", "0"], "--max_eval_samples 0 keeps no sentence"),
        (["--validation_split_percentage", "0"], "there is no validation data: pass --validation_file"),
        (["--validation_split_percentage", "100"], "--validation_split_percentage 100.0 must lie in [0, 100)"),
    ],
    ids=["max-steps", "epochs", "train-samples", "eval-samples", "no-validation", "all-validation"],
)
def test_values_that_train_or_validate_nothing_are_refused_before_any_work(tmp_path, capsys, flags, message):
    argv = ["train", "--output_dir", str(tmp_path / "out"), "--train_file", "/missing/train.txt"]
    argv += ["--lr_hr_model", "/missing/a", "--llm_model", "/missing/b", "--hr_lr_model", "/missing/c", *flags]
    assert message in cli_error(argv, capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--min_words", "1"], "--min_words must be at least 2"),
        (["train", "--num_shards", "0"], "--num_shards must be positive, got 0"),
        (["predict", "--model", "unused", "--num_words", "0", "שלום לכם"], "--num_words must be at least 1"),
    ],
    ids=["min-words", "num-shards", "num-words"],
)
def test_an_error_about_a_flags_value_names_the_flag(tmp_path, capsys, argv, message):
    if argv[0] == "train":
        argv += ["--output_dir", str(tmp_path / "out"), "--train_file", "/missing/train.txt"]
    try:
        error = cli_error(argv, capsys)
    except SystemExit:  # argparse's own one-line error
        error = capsys.readouterr().err
    assert message in error


def test_a_step_count_a_resumed_run_has_already_reached_is_refused(tmp_path, capsys):
    checkpoint = tmp_path / "out" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    (checkpoint / COMMIT_FILE).write_text(json.dumps({"global_step": 4, "files": {"model.safetensors": 7}}))
    argv = ["train", "--output_dir", str(tmp_path / "out"), "--train_file", "/missing/train.txt"]
    argv += ["--lr_hr_model", "/missing/a", "--llm_model", "/missing/b", "--hr_lr_model", "/missing/c"]
    assert "--max_steps 3 trains nothing" in cli_error([*argv, "--max_steps", "3"], capsys)


def test_evaluation_refuses_sample_counts_that_keep_nothing():
    from tall_hf.evaluation import LastWordEvaluationArguments

    with pytest.raises(ValueError, match="--max_test_samples 0 keeps no sentence"):
        LastWordEvaluationArguments(test_files=["t.txt"], approaches=["direct"], max_test_samples=0)


def test_resume_falls_back_to_the_newest_checkpoint_whose_files_verify(tmp_path, caplog):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from tall_hf.training.checkpointing import CommitCheckpointCallback, last_complete_checkpoint

    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        (folder / "nested").mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"w" * 100)
        (folder / "nested" / "part.bin").write_bytes(b"p" * 10)
        CommitCheckpointCallback().on_save(args, TrainerState(global_step=step), TrainerControl())
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"w" * 50)  # damaged after its commit
    with caplog.at_level(logging.WARNING, logger="tall_hf"):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert "model.safetensors has 50 bytes, 100 when committed" in caplog.text
    (tmp_path / "checkpoint-2" / "nested" / "part.bin").write_bytes(b"")
    assert last_complete_checkpoint(tmp_path) is None


def test_evaluation_keeps_one_tall_checkpoint(monkeypatch, tmp_path):
    from transformers import TrainingArguments

    from tall_hf.evaluation.approaches import ApproachContext, TallApproach

    seen = {}
    monkeypatch.setattr("tall_hf.evaluation.approaches.run_training", lambda *a: seen.setdefault("args", a[3]))
    (tmp_path / "t.txt").write_text("הילדים הלכו אל הגן\n", encoding="utf-8")
    context = ApproachContext("a", "b", "c", output_dir=str(tmp_path), train_file=str(tmp_path / "t.txt"))
    context.training_args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    TallApproach.train(context)
    assert seen["args"].save_total_limit == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_staged_save_is_as_readable_as_the_umask_allows(tmp_path):
    """`tempfile` makes staging folders 0700 and some writers files 0600; the saved folder gets the umask's modes."""
    from tall_hf.utils.folders import staged_folder

    previous = os.umask(0o022)
    try:
        with staged_folder(tmp_path / "saved") as staging:
            (staging / "sub").mkdir(mode=0o700)
            (staging / "sub" / "weights.bin").write_bytes(b"w")
            os.chmod(staging / "sub" / "weights.bin", 0o600)
            (staging / "run.sh").write_text("#!/bin/sh\n")
            os.chmod(staging / "run.sh", 0o700)
    finally:
        os.umask(previous)
    mode = lambda path: (tmp_path / "saved" / path).stat().st_mode & 0o777  # noqa: E731
    assert (mode("."), mode("sub"), mode("sub/weights.bin")) == (0o755, 0o755, 0o644)
    assert mode("run.sh") == 0o744  # bits are added, never taken away


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_json_record_written_atomically_is_as_readable_as_the_umask_allows(tmp_path):
    """A checkpoint's commit record goes through a `tempfile` (0600); the record itself gets the umask's mode."""
    from tall_hf.training.checkpointing import write_json_atomically

    previous = os.umask(0o022)
    try:
        write_json_atomically(tmp_path / "record.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "record.json").stat().st_mode & 0o777 == 0o644
    assert json.loads((tmp_path / "record.json").read_text()) == {"a": 1}

"""A table of bad inputs walked through the command line and the Python API: each gives a named error or a correct
result, never a raw traceback from deep inside a library, a silent wrong answer or a hang."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedTokenizerFast

from tall_hf import TallConfig, TallForCausalLM, TallProcessor
from tall_hf.cli import main
from tall_hf.data import PreparationArguments, prepare_tall_dataset, translate
from tall_hf.data.text_files import read_sentences, read_text_lines
from tall_hf.evaluation.approaches import DirectApproach
from tall_hf.generation import TallPredictor
from tall_hf.modules.losses import IGNORE_INDEX, last_token_cross_entropy, token_cross_entropy
from tall_hf.resources import read_corpus
from tall_hf.utils.hub import load_pretrained

NOT_UTF8 = "שלום עולם\n".encode("cp1255") + b"\xff\xfe broken\n"
LONG_SENTENCE = " ".join(read_corpus("hebrew")[:12])  # ~150 words: more tokens than the translators' 128 positions


@pytest.fixture(scope="module")
def saved_model(tiny_paths, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "tall"
    torch.manual_seed(0)
    TallForCausalLM.from_components(**tiny_paths).save_pretrained(folder)
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
        TallForCausalLM.from_pretrained(folder)
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
    model = TallForCausalLM.from_components(**tiny_paths, loss_mode=loss_mode)
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
    assert len(outputs) == 2 and all(isinstance(text, str) for text in outputs)
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

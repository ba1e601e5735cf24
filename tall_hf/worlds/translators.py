"""The world's two translators: real Marian checkpoints (sentencepiece models trained on the world's text) trained on
its parallel sentences with `Seq2SeqTrainer`."""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)

from ..data import translate
from ..tiny.building import marian_generation_config
from ..utils.progress import show_phase
from .scratch import scratch_training_arguments

TRANSLATOR_ARCHITECTURE = {
    "activation_function": "swish",
    "scale_embedding": True,
    "share_encoder_decoder_embeddings": True,
    "eos_token_id": 0,
}


def write_marian_tokenizer(
    folder: Path, source_spm: bytes, target_spm: bytes, vocab: dict[str, int], max_length: int
) -> MarianTokenizer:
    """A `MarianTokenizer` folder from two sentencepiece models and the shared vocabulary, truncating at
    `max_length` tokens (the model's position table)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.spm").write_bytes(source_spm)
    (folder / "target.spm").write_bytes(target_spm)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"),
        target_spm=str(folder / "target.spm"),
        vocab=str(folder / "vocab.json"),
        model_max_length=max_length,
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def train_translator(
    folder: Path,
    tokenizer: MarianTokenizer,
    sources: list[str],
    targets: list[str],
    *,
    architecture: dict,
    training: dict,
    max_length: int,
    positions: int,
    seed: int,
) -> MarianMTModel:
    """Train a Marian model of `architecture` (over `TRANSLATOR_ARCHITECTURE`; position tables of `positions`) on the
    `sources` -> `targets` pairs and save it (with a greedy `generation_config` of at most `max_length` tokens) beside
    `tokenizer` in `folder`."""
    pad = tokenizer.pad_token_id
    config = MarianConfig(
        vocab_size=len(tokenizer.encoder),
        pad_token_id=pad,
        decoder_start_token_id=pad,
        max_position_embeddings=positions,
        **{**TRANSLATOR_ARCHITECTURE, **architecture},
    )
    set_seed(seed)
    model = MarianMTModel(config)

    def tokenize(batch: dict[str, list[str]]) -> dict:
        return tokenizer(batch["source"], text_target=batch["target"], truncation=True, max_length=max_length)

    dataset = Dataset.from_dict({"source": sources, "target": targets}).map(
        tokenize, batched=True, remove_columns=["source", "target"]
    )
    train_seq2seq(folder, model, tokenizer, dataset, training, seed, f"World: training the {folder.name} translator")
    model.generation_config = marian_generation_config(pad, max_length, num_beams=1)
    model.eval()
    model.save_pretrained(folder)
    return model


def train_seq2seq(
    folder: Path,
    model: MarianMTModel,
    tokenizer: MarianTokenizer,
    dataset: Dataset,
    training: dict,
    seed: int,
    description: str,
) -> None:
    """Train `model` on a tokenized seq2seq `dataset` with `Seq2SeqTrainer` (`training`: a world setting's dict),
    shown as the phase `description`; the trainer's scratch folder beside `folder` is removed afterwards."""
    with scratch_training_arguments(folder, seed, training, Seq2SeqTrainingArguments) as args:
        trainer = Seq2SeqTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
            processing_class=tokenizer,
        )
        show_phase(trainer, description).train()


def exact_rate(model: MarianMTModel, tokenizer: MarianTokenizer, sources: list[str], targets: list[str]) -> float:
    """Share of `sources` whose translation (as the model's `generation_config` says) equals the target exactly."""
    outputs = translate(sources, model, tokenizer, batch_size=64)
    return sum(output == target for output, target in zip(outputs, targets, strict=True)) / len(targets)

"""A known-answer world for the bridge (multilingual encoder fusion): trained on the HR language only, does the bridge
make the HR-only LLM classify LR text, zero-shot?

Built from the TALL world's pieces: generated Hebrew sentences (LR) and their letter-mapped form (HR), an LLM trained
with `Trainer` on HR text only, and

- a **bilingual encoder**: the encoder of a Marian model trained on LR->HR translation and HR->HR copying, with one
  sentencepiece model over both scripts on its source side, so that it reads both languages, and its output (what
  the decoder reads) is where the two forms of a sentence meet. `encoder="premise"` (the default) builds the fusion
  paper's premise in, as a known-answer construction: `specialised_layers` new layers are stacked on that encoder
  and trained, everything below frozen, to write a language-specific map of its output (`language_rotations`):
  the projection onto `kept_dims` random directions (the rest of the content is dropped: the top is lossy for both
  languages), rotated within them by `-rotation_degrees / 2` for HR and `+rotation_degrees / 2` for LR. So, by
  construction, the cross-lingual content sits in the middle (the translation encoder's layers), the top layers
  are language-specific, and a bridge trained on HR reads the LR top states through only `cos(rotation_degrees)` of
  their shared content. `encoder="translation"` is the translation encoder as it is (its last layer is the one the
  two languages share best). For either encoder a per-layer linear probe of the label (fit on HR, read on HR and LR)
  records where the content the languages share sits (`bridge_world.json` `encoder.probe`). The rotation is the
  knob of the construction: at 0 degrees the lossy top reads LR about as well as the translation layers do; the
  more it turns, the more often a bridge on the top layers answers an LR sentence with a word that names no label
  (at 40 degrees below chance by generation in one training seed of five); the default, 35, sits between (on
  world seed 1 the fused bridges, too, often answer LR with no label word: there only log-likelihood shows them
  ahead). The world is built with one torch thread, so its weights do not depend on the thread count the caller
  runs with. Measured figures: `benchmarks/README.md`;
- a **classification task** whose label follows from the text: the topic of the sentence (an animal, a fruit, a
  city or a profession is spoken of), named by a word of that topic in the HR language (`LABEL_WORDS`). Sentences of no topic or of two are left
  out. The test sentences are held out of every training text and come in both forms, balanced over the labels
  (chance is stated in `bridge_world.json`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from torch import nn
from transformers import (
    DataCollatorWithPadding,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    Trainer,
    set_seed,
)
from transformers.utils import logging

from ..tiny.building import build_once, check_tiny_llm, marian_vocab, train_sentencepiece
from ..utils.progress import show_phase
from .build import ComponentWorldSettings, component_training, marian_size
from .hebrew_generator import ANIMAL_SOUNDS, CITIES, FRUIT_COLOURS, NOUNS, PROFESSIONS, HebrewSentenceGenerator
from .letter_map import LetterMap
from .llm import train_llm
from .scratch import scratch_training_arguments
from .translators import exact_rate, train_translator, write_marian_tokenizer

logger = logging.get_logger(__name__)

BRIDGE_WORLD_BUILD_VERSION = 7  # 7: built with one torch thread; the languages 35 degrees apart (30 in 6)
BRIDGE_WORLD_FILE = "bridge_world.json"
# topic -> the words that make a sentence of that topic.
TOPIC_WORDS: dict[str, frozenset[str]] = {
    "חיה": frozenset(ANIMAL_SOUNDS),
    "פרי": frozenset(FRUIT_COLOURS),
    "עיר": frozenset(CITIES),
    "מקצוע": frozenset(word for pair in PROFESSIONS for word in pair) - frozenset(NOUNS),  # "ספר": barber, book
}
LABEL_WORDS = ("גועה", "אדום", "אילת", "אופה")
"""A word of each topic (an animal's sound, a fruit's colour, a city, a profession) that ends many of the LLM's HR
sentences: the label the bridge is trained to write, in the HR script after a space (as it stands in running text).
A frozen LM writes such a word readily, and then its end-of-sentence token, which greedy generation + exact match
needs; a word it met only mid-sentence it follows with more words."""
LANGUAGES = ("hr", "lr")
ENCODER_KINDS = ("premise", "translation")


def sentence_topic(sentence: str) -> int | None:
    """The label id of `sentence` (in `TOPIC_WORDS` order): the one topic whose words it holds; None for none or two."""
    words = set(sentence.split())
    topics = [label for label, topic_words in enumerate(TOPIC_WORDS.values()) if words & topic_words]
    return topics[0] if len(topics) == 1 else None


@dataclass(kw_only=True)
class BridgeWorldSettings(ComponentWorldSettings):
    """Everything a bridge world is built from besides its seed; part of the cache key."""

    test_per_label: int = 100
    train_per_label: int = 300
    encoder_size: dict = field(default_factory=lambda: marian_size(128, encoder_layers=4))
    encoder_training: dict = field(default_factory=lambda: component_training(max_steps=800, learning_rate=3e-3))
    specialised_layers: int = 2
    kept_dims: int = 32
    rotation_degrees: float = 35.0
    specialising_training: dict = field(default_factory=lambda: component_training(max_steps=400, learning_rate=3e-3))


BRIDGE_PRESETS: dict[str, BridgeWorldSettings] = {
    "default": BridgeWorldSettings(
        generated_sentences=12000,
        spm_vocab_size=800,
        llm_vocab_size=800,
        max_length=128,
        llm_size={"width": 64, "ffn": 192, "layers": 2, "heads": 4},
        llm_training=component_training(num_train_epochs=1, learning_rate=3e-3, warmup_steps=30),
    ),
    "test": BridgeWorldSettings(
        generated_sentences=2000,
        test_per_label=10,
        train_per_label=20,
        spm_vocab_size=300,
        llm_vocab_size=400,
        max_length=48,
        encoder_size={
            "d_model": 16,
            "encoder_layers": 2,
            "decoder_layers": 1,
            "encoder_ffn_dim": 32,
            "decoder_ffn_dim": 32,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "dropout": 0.0,
        },
        encoder_training={"max_steps": 10, "per_device_train_batch_size": 16, "learning_rate": 2e-3},
        specialised_layers=1,
        kept_dims=8,
        specialising_training={"max_steps": 10, "per_device_train_batch_size": 16, "learning_rate": 2e-3},
        llm_size={"width": 32, "ffn": 64, "layers": 1, "heads": 2},
        llm_training={"max_steps": 10, "per_device_train_batch_size": 16, "learning_rate": 2e-3},
    ),
}


@dataclass(frozen=True)
class BridgeWorld:
    """A built bridge world: `encoder/` (a Marian checkpoint; the bridge keeps its encoder), `llm/`, `data/` (the
    task in jsonl: `train.jsonl` HR only, `test.jsonl` HR and LR forms of the same sentences; and `pretrain.txt` /
    `pretrain.hr.txt`, the text the encoder and, HR side only, the LLM were trained on) and `bridge_world.json`."""

    path: Path

    @classmethod
    def load(cls, path: str | os.PathLike) -> BridgeWorld:
        """The bridge world at `path`; an error naming it when it is not a complete build."""
        path = Path(path)
        if not (path / BRIDGE_WORLD_FILE).is_file():
            raise FileNotFoundError(f"No complete bridge world at {path} (build one with `build_bridge_world`).")
        return cls(path)

    @property
    def facts(self) -> dict:
        return json.loads((self.path / BRIDGE_WORLD_FILE).read_text(encoding="utf-8"))

    @property
    def components(self) -> dict[str, str]:
        """`{"encoder", "llm"}`: folders `from_pretrained` loads."""
        return {"encoder": str(self.path / "encoder"), "llm": str(self.path / "llm")}

    @property
    def letter_map(self) -> LetterMap:
        return LetterMap.load(self.path / "letter_map.json")

    @property
    def label_words(self) -> list[str]:
        """The HR words naming labels 0, 1, ..., each after a space (what the LLM is trained to write)."""
        return self.facts["label_words"]

    def task(self, split: str) -> Dataset:
        """The task split (`train` or `test`): columns `text`, `label`, `language` (`hr` or `lr`)."""
        if split not in ("train", "test"):
            raise ValueError(f"Unknown split {split!r}; a bridge world has 'train' and 'test'.")
        rows = [json.loads(line) for line in (self.path / "data" / f"{split}.jsonl").read_text("utf-8").splitlines()]
        return Dataset.from_list(rows)


def build_bridge_world(
    directory: str | os.PathLike,
    *,
    preset: str = "default",
    llm: str = "qwen2",
    encoder: str = "premise",
    seed: int = 0,
    settings: BridgeWorldSettings | None = None,
) -> BridgeWorld:
    """Build (or reuse) the bridge world under `directory`: deterministic for `seed`, keyed by a hash of the settings
    and the build version, built with one torch thread (so the same world for any thread count on one machine),
    written to a temporary folder moved into place when complete. `encoder` is `"premise"`
    (language-specific top layers stacked on the translation encoder; see the module docstring) or
    `"translation"` (the translation encoder as it is)."""
    check_tiny_llm(llm)
    if encoder not in ENCODER_KINDS:
        raise ValueError(f"Unknown bridge world encoder {encoder!r}; choose one of {ENCODER_KINDS}.")
    if settings is None:
        if preset not in BRIDGE_PRESETS:
            raise ValueError(f"Unknown bridge world preset {preset!r}; choose one of {sorted(BRIDGE_PRESETS)}.")
        settings = BRIDGE_PRESETS[preset]
    description = [BRIDGE_WORLD_BUILD_VERSION, llm, encoder, seed, dataclasses.asdict(settings)]

    def write(staging: Path) -> None:
        # One torch thread whatever the caller runs with: float reductions split over threads sum in another order,
        # and a world built with 2 threads has other weights than one built with 1 (another probe, other verdicts).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _write_bridge_world(staging, settings, llm, encoder, seed)
        finally:
            torch.set_num_threads(threads)

    return BridgeWorld(build_once(directory, f"bridge-world-{llm}-{encoder}", description, write, seed))


def _balanced_split(sentences: list[str], per_label: int) -> tuple[list[tuple[str, int]], set[int]]:
    """Up to `per_label` labelled sentences of each label, in order; and the indices taken."""
    taken, counts, picked = [], [0] * len(TOPIC_WORDS), set()
    for index, sentence in enumerate(sentences):
        label = sentence_topic(sentence)
        if label is not None and counts[label] < per_label:
            counts[label] += 1
            taken.append((sentence, label))
            picked.add(index)
    if min(counts) < per_label:
        raise ValueError(f"Too few sentences per label for {per_label} each: {counts}; generate more sentences.")
    return taken, picked


def _write_bridge_world(staging: Path, settings: BridgeWorldSettings, llm: str, encoder: str, seed: int) -> None:
    start = time.perf_counter()
    sentences = list(dict.fromkeys(HebrewSentenceGenerator(seed).generate(settings.generated_sentences)))
    random.Random(seed).shuffle(sentences)
    test, test_indices = _balanced_split(sentences, settings.test_per_label)
    rest = [sentence for index, sentence in enumerate(sentences) if index not in test_indices]
    train, _ = _balanced_split(rest, settings.train_per_label)
    letter_map = LetterMap.for_texts(sentences)
    letter_map.save(staging / "letter_map.json")
    hr_rest = [letter_map.to_hr(sentence) for sentence in rest]
    label_words = [" " + letter_map.to_hr(word) for word in LABEL_WORDS]

    data = staging / "data"
    data.mkdir()
    rows = {
        "train": [{"text": letter_map.to_hr(s), "label": label, "language": "hr"} for s, label in train],
        "test": [
            {"text": letter_map.to_hr(s) if language == "hr" else s, "label": label, "language": language}
            for language in LANGUAGES
            for s, label in test
        ],
    }
    for split, split_rows in rows.items():
        lines = [json.dumps(row, ensure_ascii=False) for row in split_rows]
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data / "pretrain.txt").write_text("\n".join(rest) + "\n", encoding="utf-8")
    (data / "pretrain.hr.txt").write_text("\n".join(hr_rest) + "\n", encoding="utf-8")

    # The encoder: a Marian model whose source side reads both scripts (one BPE sentencepiece model over both: the letter
    # map being one to one, an LR sentence and its HR form split into pieces alike), dropout-free as the TALL world's
    # translators, trained to write HR from LR (translation) and from HR (copying), so that the two forms of a sentence
    # get alike encoder states. The test sentences are in none of its training text.
    logger.info(f"Bridge world: training the bilingual encoder on {2 * len(rest)} sentence pairs.")
    source_spm = train_sentencepiece(rest + hr_rest, settings.spm_vocab_size, "bpe")
    target_spm = train_sentencepiece(hr_rest, settings.spm_vocab_size, "bpe")
    tokenizer = write_marian_tokenizer(
        staging / "encoder", source_spm, target_spm, marian_vocab([source_spm, target_spm]), settings.max_length
    )
    model = train_translator(
        staging / "encoder",
        tokenizer,
        rest + hr_rest,
        hr_rest + hr_rest,
        architecture=settings.encoder_size,
        training=settings.encoder_training,
        max_length=settings.max_length,
        positions=settings.max_length,
        seed=seed + 1,
    )
    test_lr = [sentence for sentence, _ in test]
    test_hr = [letter_map.to_hr(sentence) for sentence in test_lr]
    encoder_facts = {
        "exact_lr_to_hr_rate": exact_rate(model, tokenizer, test_lr, test_hr),
        "exact_hr_copy_rate": exact_rate(model, tokenizer, test_hr, test_hr),
        "parameters": model.num_parameters(),
        "encoder_parameters": model.get_encoder().num_parameters(),
        "encoder_layers": model.config.encoder_layers,
        "vocab_size": model.config.vocab_size,
        "kind": encoder,
    }
    logger.info(f"Bridge world: encoder-decoder exact LR->HR rate {encoder_facts['exact_lr_to_hr_rate']:.3f}.")
    if encoder == "premise":
        logger.info(f"Bridge world: {settings.specialised_layers} language-specific layers stacked on the encoder.")
        model = stack_language_specific_layers(
            staging / "encoder",
            model,
            tokenizer,
            {"lr": rest, "hr": hr_rest},
            layers=settings.specialised_layers,
            kept_dims=settings.kept_dims,
            degrees=settings.rotation_degrees,
            training=settings.specialising_training,
            max_length=settings.max_length,
            seed=seed + 3,
        )
        encoder_facts.update(
            specialised_layers=settings.specialised_layers,
            translation_layers=settings.encoder_size["encoder_layers"],
            kept_dims=settings.kept_dims,
            rotation_degrees=settings.rotation_degrees,
            encoder_layers=model.config.encoder_layers,
            parameters=model.num_parameters(),
            encoder_parameters=model.get_encoder().num_parameters(),
        )
    encoder_facts["probe"] = layer_probe(model.get_encoder(), tokenizer, rows["train"], rows["test"])

    logger.info(f"Bridge world: training the {llm} LLM on {len(hr_rest)} HR sentences.")
    llm_model = train_llm(
        staging / "llm",
        llm,
        hr_rest,
        size=settings.llm_size,
        vocab_size=settings.llm_vocab_size,
        training=settings.llm_training,
        seed=seed + 2,
    )
    facts = {
        "build_version": BRIDGE_WORLD_BUILD_VERSION,
        "seed": seed,
        "task": "the topic of the sentence (the one topic whose words it holds)",
        "labels": list(TOPIC_WORDS),
        "label_words": label_words,
        "chance": 1 / len(TOPIC_WORDS),
        "chance_note": "the test set is balanced: each label has the same number of sentences",
        "sentences": {
            "generated_unique": len(sentences),
            "encoder_and_llm_training": len(rest),
            "task_train": len(train),
            "task_test_per_language": len(test),
        },
        "encoder": encoder_facts,
        "llm": {"family": llm, "parameters": llm_model.num_parameters(), "trained_on": "HR text only"},
        "letter_map": letter_map.mapping,
        "settings": dataclasses.asdict(settings),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    (staging / BRIDGE_WORLD_FILE).write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
    logger.info(f"Bridge world built in {facts['build_seconds']} s.")


def language_rotations(hidden_size: int, kept_dims: int, degrees: float, seed: int) -> torch.Tensor:
    """`(2, hidden_size, hidden_size)`: per language (`LANGUAGES` order) the map the stacked top layers learn to
    apply to the translation encoder's output: project onto `kept_dims` seeded random directions (dropping the rest),
    then rotate within them by `-degrees / 2` (HR) or `+degrees / 2` (LR) in `kept_dims / 2` random planes. The two
    languages' top states then sit in one subspace with their coordinates `degrees` apart: the content they share
    is read across languages only through `cos(degrees)` of it."""
    if kept_dims < 2 or kept_dims % 2 or kept_dims > hidden_size:
        raise ValueError(f"kept_dims must be even and in [2, {hidden_size}], got {kept_dims}.")
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(hidden_size, hidden_size, generator=generator))
    kept = basis[:, :kept_dims]
    planes, _ = torch.linalg.qr(torch.randn(kept_dims, kept_dims, generator=generator))
    quarter_turn = torch.zeros(kept_dims, kept_dims)
    quarter_turn[0::2, 1::2] = -torch.eye(kept_dims // 2)
    quarter_turn[1::2, 0::2] = torch.eye(kept_dims // 2)
    turn = planes @ quarter_turn @ planes.T  # a rotation by 90 degrees in kept_dims / 2 random planes
    maps = []
    for sign in (-1, 1):  # HR, LR
        angle = torch.tensor(sign * degrees / 2).deg2rad()
        rotation = torch.cos(angle) * torch.eye(kept_dims) + torch.sin(angle) * turn
        maps.append(kept @ rotation @ kept.T)
    return torch.stack(maps)


class _TopLayerRegression(nn.Module):
    """What trains the stacked layers: the encoder's top output is pulled (mean squared error over real tokens)
    toward `layer_norm(P[language] @ h)`, `h` the output of the layer below the stack."""

    def __init__(self, encoder: nn.Module, below: int, projections: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.below = below
        self.register_buffer("projections", projections)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, language: torch.Tensor) -> dict:
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        middle = output.hidden_states[self.below]
        target = nn.functional.layer_norm(
            torch.einsum("bsd,bed->bse", middle, self.projections[language]), middle.shape[-1:]
        )
        mask = attention_mask.unsqueeze(-1).to(middle.dtype)
        error = (output.last_hidden_state - target).pow(2) * mask
        return {"loss": error.sum() / (mask.sum() * middle.shape[-1])}


def stack_language_specific_layers(
    folder: Path,
    model: MarianMTModel,
    tokenizer: MarianTokenizer,
    texts: dict[str, list[str]],
    *,
    layers: int,
    kept_dims: int,
    degrees: float,
    training: dict,
    max_length: int,
    seed: int,
) -> MarianMTModel:
    """Stack `layers` new encoder layers on the translation encoder of `model` and train them, everything below
    frozen, to write for each sentence of language `l` (`texts[l]`) the layer-normed `language_rotations` map of `l`
    applied to the translation encoder's output (mean squared error over real tokens). Saves the grown model to
    `folder`; its decoder is the translation decoder, which reads the layer below the new ones: the bridge reads only
    the encoder."""
    if layers < 1:
        raise ValueError(f"specialised_layers must be at least 1, got {layers}.")
    config = model.config.to_dict()
    below = config["encoder_layers"]
    config["encoder_layers"] += layers
    projections = language_rotations(config["d_model"], kept_dims, degrees, seed)
    set_seed(seed)
    grown = MarianMTModel(MarianConfig(**config))
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    new_prefix = tuple(f"model.encoder.layers.{index}." for index in range(below, config["encoder_layers"]))
    if unexpected or any(not name.startswith(new_prefix) for name in missing):
        raise RuntimeError(f"Growing the encoder lost weights: missing {missing}, unexpected {unexpected}.")
    grown.generation_config = model.generation_config
    for name, parameter in grown.named_parameters():
        parameter.requires_grad_(name.startswith(new_prefix))

    def tokenize(batch: dict[str, list]) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    rows = {"text": [], "language": []}
    for index, language in enumerate(LANGUAGES):
        rows["text"] += texts[language]
        rows["language"] += [index] * len(texts[language])
    dataset = Dataset.from_dict(rows).map(tokenize, batched=True, remove_columns=["text"])
    regression = _TopLayerRegression(grown.get_encoder(), below, projections)
    with scratch_training_arguments(folder, seed, training) as args:
        trainer = Trainer(
            model=regression,
            args=args,
            train_dataset=dataset,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        show_phase(trainer, "World: training the encoder's language-specific top layers").train()
    for parameter in grown.parameters():
        parameter.requires_grad_(True)
    grown.eval()
    grown.save_pretrained(folder)
    return grown


@torch.no_grad()
def layer_probe(encoder, tokenizer, train_rows: list[dict], test_rows: list[dict], ridge: float = 1.0) -> dict:
    """Per encoder layer (1 = the first transformer layer), a linear probe of the label: a ridge classifier on the
    mean of the layer's states over each HR training sentence, read on the HR and LR test sentences. Accuracy per
    layer and language (`{"hr": [...], "lr": [...]}`): where the LR accuracy stays near the HR one, the layer's
    content is shared by the two languages."""

    def features(texts: list[str]) -> list[torch.Tensor]:
        per_layer = None
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start : start + 64], return_tensors="pt", padding=True, truncation=True)
            states = encoder(**batch, output_hidden_states=True).hidden_states[1:]
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = [(layer * mask).sum(1) / mask.sum(1) for layer in states]
            per_layer = pooled if per_layer is None else [torch.cat(p) for p in zip(per_layer, pooled, strict=True)]
        return [layer.double() for layer in per_layer]

    labels = torch.tensor([row["label"] for row in train_rows])
    targets = torch.nn.functional.one_hot(labels).double()
    train = features([row["text"] for row in train_rows])
    probe: dict[str, list[float]] = {language: [] for language in LANGUAGES}
    tests = {
        language: (
            features([row["text"] for row in test_rows if row["language"] == language]),
            torch.tensor([row["label"] for row in test_rows if row["language"] == language]),
        )
        for language in LANGUAGES
    }
    for layer, states in enumerate(train):
        mean, scale = states.mean(0), states.std(0) + 1e-6
        inputs = torch.cat([(states - mean) / scale, torch.ones(len(states), 1, dtype=states.dtype)], dim=1)
        weights = torch.linalg.solve(
            inputs.T @ inputs + ridge * torch.eye(inputs.shape[1], dtype=states.dtype), inputs.T @ targets
        )
        for language, (test_states, test_labels) in tests.items():
            test_inputs = (test_states[layer] - mean) / scale
            test_inputs = torch.cat([test_inputs, torch.ones(len(test_inputs), 1, dtype=states.dtype)], dim=1)
            accuracy = (test_inputs @ weights).argmax(-1).eq(test_labels).double().mean().item()
            probe[language].append(round(accuracy, 4))
    return probe


__all__ = [
    "BRIDGE_PRESETS",
    "ENCODER_KINDS",
    "BridgeWorld",
    "BridgeWorldSettings",
    "LABEL_WORDS",
    "TOPIC_WORDS",
    "build_bridge_world",
    "language_rotations",
    "sentence_topic",
]

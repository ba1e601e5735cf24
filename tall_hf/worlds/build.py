"""`build_world`: a known-answer world for TALL, built, measured and cached by the package.

From LR text (by default sentences of `HebrewSentenceGenerator` and the shipped Hebrew sample; any text file
otherwise) the builder derives an HR language (`WorldSettings.hr_language`: by default `genderless`, a
`GenderlessMap` that drops grammatical gender and letter-maps the rest; or `letter_map`, a lossless `LetterMap` of the
text onto another script), splits the sentences, trains the two Marian translators on the parallel sentences and a
causal LLM on the HR side only, and records in `world.json` what is then known: each translator's exact-sentence rate,
the LLM's own last-word accuracy on the HR form of the held-out test sentences (the ceiling of any approach that goes
through it), the pivot bound and the share of test sentences whose last word the HR sentence leaves ambiguous
(`tall_hf.worlds.bounds`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from accelerate import PartialState
from transformers.utils import logging

from .. import __version__
from ..data import PreparationArguments, clean_sentences
from ..data.preparation import read_texts
from ..resources import read_corpus
from ..tiny.building import BUILD_STAMP, build_once, check_tiny_llm, marian_vocab, train_sentencepiece
from .bounds import estimate_facts, hr_ceiling_result, world_bounds
from .genderless import GENDERLESS_AGREEMENT_SHARE, HR_LANGUAGES, GenderlessMap, hr_map_for
from .hebrew_generator import HebrewSentenceGenerator
from .letter_map import LetterMap
from .llm import train_llm
from .translators import exact_rate, train_translator, write_marian_tokenizer

logger = logging.get_logger(__name__)

# 2: the ceiling prompts without a trailing space; 3: it generates until the word ends; 4: the genderless HR language
# (the default), the pivot bound and the ambiguous share.
WORLD_BUILD_VERSION = 4
WORLD_FILE = "world.json"
SPLITS = ("pretrain", "train", "validation", "test")
ROLES = ("lr_hr", "llm", "hr_lr")


def marian_size(d_model: int, *, encoder_layers: int = 2, decoder_layers: int = 2, heads: int = 4) -> dict:
    """The shape of a small world Marian model: feed-forward layers twice `d_model` wide, no dropout."""
    return {
        "d_model": d_model,
        "encoder_layers": encoder_layers,
        "decoder_layers": decoder_layers,
        "encoder_ffn_dim": 2 * d_model,
        "decoder_ffn_dim": 2 * d_model,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": heads,
        "dropout": 0.0,
    }


def component_training(**settings) -> dict:
    """`Trainer` settings of a world component: batch 32, 50 warm-up steps, cosine schedule, weight decay 0.01, with
    `settings` (steps or epochs, learning rate, any other) on top."""
    return {
        "per_device_train_batch_size": 32,
        "warmup_steps": 50,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.01,
        **settings,
    }


@dataclass(kw_only=True)
class ComponentWorldSettings:
    """What every world of locally trained components is built from: how many sentences the generator writes, the
    sentencepiece and LLM vocabulary sizes, the longest tokenized sentence kept, and the LLM's size and training
    (`train_llm`). The presets give the values; part of the cache key."""

    generated_sentences: int
    spm_vocab_size: int
    llm_vocab_size: int
    max_length: int
    llm_size: dict
    llm_training: dict


@dataclass(kw_only=True)
class WorldSettings(ComponentWorldSettings):
    """Everything a TALL world is built from besides its text; part of the cache key."""

    test_sentences: int = 600
    validation_sentences: int = 300
    train_sentences: int = 2000
    # Longer than any translation, so TALL keeps every sentence whose translation is at most `max_length` tokens.
    position_embeddings: int = 128
    translator_sizes: dict = field(default_factory=lambda: {"lr_hr": marian_size(128), "hr_lr": marian_size(112)})
    translator_training: dict = field(default_factory=lambda: component_training(max_steps=500, learning_rate=3e-3))
    translator_prefix_share: float = 0.5
    # Below this exact-sentence rate on the test split a translator is reported weak (a warning, and in `world.json`).
    translator_floor: float = 0.5
    # The LLM's tokenizer: byte-level BPE (GPT-2, Qwen2) or "metaspace_unigram" (sentencepiece-style, as Llama 2's;
    # not for qwen2, which transformers always loads with its byte-level BPE class).
    llm_tokenizer: str = "byte_level_bpe"
    # The translators' sentencepiece models: "bpe" or "unigram" (the kind of the opus-mt checkpoints).
    spm_model_type: str = "bpe"
    # `genderless` (lossy: `GenderlessMap`, with the generator's agreement sentences) or `letter_map` (lossless).
    hr_language: str = "genderless"

    def cache_description(self) -> dict:
        """The settings as they enter the cache key (a field added later enters it only when not at its default, so
        worlds built before it keep their key)."""
        description = dataclasses.asdict(self)
        for name, default in _ADDED_LATER.items():
            if description[name] == default:
                del description[name]
        return description


# Fields added to `WorldSettings` after worlds were built, with the default those worlds had.
_ADDED_LATER = {"llm_tokenizer": "byte_level_bpe", "spm_model_type": "bpe"}


DEFAULT_WORLD = WorldSettings(
    generated_sentences=24000,
    spm_vocab_size=1000,
    llm_vocab_size=1200,
    max_length=64,
    llm_size={"width": 128, "ffn": 384, "layers": 3, "heads": 4},
    llm_training=component_training(num_train_epochs=3, learning_rate=2e-3),
)
PRESETS: dict[str, WorldSettings] = {
    "default": DEFAULT_WORLD,
    # The default test suite's world: built in 21.6 s with one thread (seed 0, 2 busy cores). The sides are a letter
    # map of each other and split alike, so the translators only learn a token-for-token map: one attention head (its
    # query matches positions with the whole width) and a high learning rate get there in 400 steps. Measured on the
    # 200 test sentences, seeds 0/1/2/3: translators exact on lr_hr 0.845/0.84/0.82/0.75, hr_lr 0.815/0.825/0.87/
    # 0.805 of the sentences; ceiling 0.18/0.12/0.14/0.14 (95% CI lower bounds 0.13/0.075/0.09/0.095).
    "test": WorldSettings(
        generated_sentences=1600,
        hr_language="letter_map",
        test_sentences=200,
        validation_sentences=30,
        train_sentences=300,
        spm_vocab_size=300,
        llm_vocab_size=400,
        max_length=48,
        translator_sizes={
            role: {
                "d_model": 64,
                "encoder_layers": 1,
                "decoder_layers": 1,
                "encoder_ffn_dim": 128,
                "decoder_ffn_dim": 128,
                "encoder_attention_heads": 1,
                "decoder_attention_heads": 1,
                "dropout": 0.0,
            }
            for role in ("lr_hr", "hr_lr")
        },
        translator_training={
            "max_steps": 400,
            "per_device_train_batch_size": 32,
            "learning_rate": 5e-3,
            "warmup_steps": 30,
            "lr_scheduler_type": "cosine",
        },
        llm_size={"width": 64, "ffn": 128, "layers": 2, "heads": 4},
        llm_training={
            "max_steps": 250,
            "per_device_train_batch_size": 32,
            "learning_rate": 5e-3,
            "warmup_steps": 20,
            "lr_scheduler_type": "cosine",
        },
    ),
    # What `build_world(lr_text=FILE)` uses: real text is far more diverse than the generated sentences (on Hebrew
    # Wikipedia the default preset's 3e-3 x 500 steps leaves the translators exact on 0% of test sentences; 1e-3 x 1,200
    # steps gives 99.7%, benchmarks/README.md), and TALL gets the 4,000 training and 1,000 test sentences.
    "text": dataclasses.replace(
        DEFAULT_WORLD,
        test_sentences=1000,
        train_sentences=4000,
        translator_training=component_training(max_steps=1200, learning_rate=1e-3),
        hr_language="letter_map",
    ),
}
# Real text at the sizes of issue 19's checker world: 3,000-piece unigram sentencepiece models per side, a 4-layer LLM
# (128 wide) with a 4,000-piece vocabulary. For a sentencepiece-style LLM tokenizer:
# `dataclasses.replace(PRESETS["text_large"], llm_tokenizer="metaspace_unigram")` with `llm="llama"`. With 3,000
# pieces per side, `text`'s 1,200 translator steps leave them exact on 6.6% / 2.1% of Wikipedia test sentences, 3,600
# steps on 80.5% / 76.7% (llama, seed 2; benchmarks/README.md): each piece is seen far less often than with 1,000.
PRESETS["text_large"] = dataclasses.replace(
    PRESETS["text"],
    spm_vocab_size=3000,
    spm_model_type="unigram",
    translator_training=component_training(max_steps=3600, learning_rate=1e-3),
    llm_vocab_size=4000,
    llm_size={"width": 128, "ffn": 384, "layers": 4, "heads": 4},
)


@dataclass(frozen=True)
class World:
    """A built world: its folder, with `lr_hr/`, `llm/`, `hr_lr/`, `data/` and `world.json`."""

    path: Path

    @classmethod
    def load(cls, path: str | os.PathLike) -> World:
        """The world at `path`; an error when it is not a complete build."""
        path = Path(path)
        if not (path / BUILD_STAMP).is_file() or not (path / WORLD_FILE).is_file():
            raise FileNotFoundError(f"No complete world at {path} (build one with `build_world`).")
        return cls(path)

    @property
    def facts(self) -> dict:
        """The contents of `world.json`."""
        return json.loads((self.path / WORLD_FILE).read_text(encoding="utf-8"))

    @property
    def components(self) -> dict[str, str]:
        """`{"lr_hr", "llm", "hr_lr"}`: folders `from_pretrained` loads."""
        return {role: str(self.path / role) for role in ROLES}

    @property
    def letter_map(self) -> LetterMap:
        """The letter layer of the HR language (all of it in a `letter_map` world)."""
        return LetterMap.load(self.path / "letter_map.json")

    @property
    def hr_map(self) -> LetterMap | GenderlessMap:
        """The LR -> HR map of the world's language (`to_hr`, `last_word_ambiguous`)."""
        genderless = self.path / "genderless.json"
        return GenderlessMap.load(genderless) if genderless.is_file() else self.letter_map

    def split_file(self, split: str, hr: bool = False) -> str:
        """The text file of `split` (one of `SPLITS`), LR side or its HR form."""
        if split not in SPLITS:
            raise ValueError(f"Unknown split {split!r}; a world has {SPLITS}.")
        return str(self.path / "data" / f"{split}{'.hr' if hr else ''}.txt")

    def sentences(self, split: str, hr: bool = False) -> list[str]:
        return Path(self.split_file(split, hr)).read_text(encoding="utf-8").splitlines()


def build_world(
    directory: str | os.PathLike,
    *,
    lr_text: str | os.PathLike | None = None,
    preset: str | None = None,
    llm: str = "qwen2",
    seed: int = 0,
    settings: WorldSettings | None = None,
    hr_language: str | None = None,
) -> World:
    """Build (or reuse) the world of `lr_text` (default: generated Hebrew and the shipped sample) under `directory`;
    `hr_language` (`genderless` or `letter_map`) overrides the settings' HR language.

    `preset` (one of `PRESETS`) defaults to `"default"` for the generated text and to `"text"` for a file of real text.

    The build is deterministic for `seed` and the torch thread count (recorded in `world.json`), keyed by a hash of
    the text, the settings and the build version, written to a temporary folder and moved into place when complete
    (a killed build is never picked up).
    """
    check_tiny_llm(llm)
    if settings is None:
        if preset is None:
            preset = "default" if lr_text is None else "text"
        if preset not in PRESETS:
            raise ValueError(f"Unknown world preset {preset!r}; choose one of {sorted(PRESETS)}.")
        settings = PRESETS[preset]
    if hr_language is not None:
        if hr_language not in HR_LANGUAGES:
            raise ValueError(f"Unknown HR language {hr_language!r}; choose one of {HR_LANGUAGES}.")
        settings = dataclasses.replace(settings, hr_language=hr_language)
    texts = _lr_texts(lr_text, settings, seed)
    text_hash = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    description = [WORLD_BUILD_VERSION, text_hash, llm, seed, settings.cache_description()]
    source = "generated Hebrew + shipped sample" if lr_text is None else os.path.abspath(lr_text)

    def write(staging: Path) -> None:
        if PartialState().num_processes > 1:  # its Trainer runs would wait for processes that wait for the build
            raise ValueError(
                f"The world under {directory} is not built yet, and it cannot be built by several processes "
                "(`accelerate launch`): build it once in a single process first (`build_world(DIR)`), then launch."
            )
        _write_world(staging, texts, source, settings, llm, seed, text_hash)

    return World(build_once(directory, f"world-{llm}", description, write, seed))


def _lr_texts(lr_text: str | os.PathLike | None, settings: WorldSettings, seed: int) -> list[str]:
    if lr_text is None:
        agreement = GENDERLESS_AGREEMENT_SHARE if settings.hr_language == "genderless" else 0.0
        return HebrewSentenceGenerator(seed, agreement).generate(settings.generated_sentences) + read_corpus("hebrew")
    return read_texts(lr_text)


def _write_world(
    staging: Path, texts: list[str], source: str, settings: WorldSettings, llm: str, seed: int, text_hash: str
) -> None:
    start = time.perf_counter()
    cleaned = clean_sentences(texts, PreparationArguments(min_words=5, max_words=30))
    sentences = cleaned.sentences
    random.Random(seed).shuffle(sentences)
    held_out = settings.test_sentences + settings.validation_sentences + settings.train_sentences
    if len(sentences) < held_out + 100:
        raise ValueError(
            f"The LR text has {len(sentences)} usable sentences (5-30 words, deduplicated); the world needs more than "
            f"{held_out + 100} ({held_out} held out for TALL's training, validation and test)."
        )
    sizes = [settings.test_sentences, settings.validation_sentences, settings.train_sentences]
    test, validation, train = (sentences[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(3))
    splits = {"pretrain": sentences[held_out:], "train": train, "validation": validation, "test": test}

    hr_map = hr_map_for(settings.hr_language, sentences)
    letter_map = hr_map.letter_map if isinstance(hr_map, GenderlessMap) else hr_map
    letter_map.save(staging / "letter_map.json")
    if isinstance(hr_map, GenderlessMap):
        hr_map.save(staging / "genderless.json")
    hr = {name: [hr_map.to_hr(sentence) for sentence in split] for name, split in splits.items()}
    data = staging / "data"
    data.mkdir()
    for name in SPLITS:
        (data / f"{name}.txt").write_text("\n".join(splits[name]) + "\n", encoding="utf-8")
        (data / f"{name}.hr.txt").write_text("\n".join(hr[name]) + "\n", encoding="utf-8")

    # Translators: sentencepiece models (BPE by default: under a letter map the two sides split alike), trained on the
    # pretraining split's parallel sentences, part of them cut at a random word (TALL and Naive translate prefixes),
    # measured on the held-out test sentences.
    logger.info(f"World: training the translators on {len(splits['pretrain'])} parallel sentences.")
    lr_pairs, hr_pairs = _with_prefixes(splits["pretrain"], hr["pretrain"], settings.translator_prefix_share, seed)
    spm_models = {
        "lr": train_sentencepiece(splits["pretrain"], settings.spm_vocab_size, settings.spm_model_type),
        "hr": train_sentencepiece(hr["pretrain"], settings.spm_vocab_size, settings.spm_model_type),
    }
    vocab = marian_vocab(spm_models.values())
    translators = {}
    for role, (source_lang, target_lang), offset in (("lr_hr", ("lr", "hr"), 1), ("hr_lr", ("hr", "lr"), 2)):
        pairs = {"lr": lr_pairs, "hr": hr_pairs}
        tokenizer = write_marian_tokenizer(
            staging / role, spm_models[source_lang], spm_models[target_lang], vocab, settings.max_length
        )
        model = train_translator(
            staging / role,
            tokenizer,
            pairs[source_lang],
            pairs[target_lang],
            architecture=settings.translator_sizes[role],
            training=settings.translator_training,
            max_length=settings.max_length,
            positions=settings.position_embeddings,
            seed=seed + offset,
        )
        side = {"lr": splits["test"], "hr": hr["test"]}
        prefixes = {lang: [" ".join(s.split()[:-1]) for s in side[lang]] for lang in side}
        translators[role] = {
            "exact_sentence_rate": exact_rate(model, tokenizer, side[source_lang], side[target_lang]),
            "exact_prefix_rate": exact_rate(model, tokenizer, prefixes[source_lang], prefixes[target_lang]),
            "parameters": model.num_parameters(),
            "vocab_size": model.config.vocab_size,
            "d_model": model.config.d_model,
        }
        logger.info(
            f"World: {role} translator exact on test sentences: {translators[role]['exact_sentence_rate']:.3f}"
        )

    warnings = weak_translator_warnings(translators, settings.translator_floor)
    for warning in warnings:
        logger.warning(warning)

    logger.info(f"World: training the {llm} LLM on {len(hr['pretrain'])} HR sentences.")
    model = train_llm(
        staging / "llm",
        llm,
        hr["pretrain"],
        size=settings.llm_size,
        vocab_size=settings.llm_vocab_size,
        training=settings.llm_training,
        tokenizer_kind=settings.llm_tokenizer,
        seed=seed + 3,
    )
    components = {role: str(staging / role) for role in ROLES}
    ambiguous = [hr_map.last_word_ambiguous(sentence) for sentence in splits["test"]]
    bounds = world_bounds(components, splits["test"], hr["test"], ambiguous, str(staging / ".ceiling"))
    ceiling = bounds["ceiling"]
    facts = {
        "build_version": WORLD_BUILD_VERSION,
        "lr_text": source,
        "lr_text_sha256": text_hash,
        "seed": seed,
        "hr_language": settings.hr_language,
        "letter_map": letter_map.mapping,
        "sentences": {name: len(split) for name, split in splits.items()},
        "filtered": dict(cleaned.filtered),
        "translators": translators,
        "warnings": warnings,
        "llm": {
            "family": llm,
            "parameters": model.num_parameters(),
            "vocab_size": model.config.vocab_size,
            "trained_on": "pretrain.hr.txt",
        },
        **bounds,
        "settings": dataclasses.asdict(settings),
        "versions": {
            "tall_hf": __version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "torch_threads": torch.get_num_threads(),
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    (staging / WORLD_FILE).write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
    logger.info(
        f"World built in {facts['build_seconds']} s; LLM ceiling {ceiling['accuracy']:.3f}, pivot bound "
        f"{bounds['pivot_bound']['accuracy']:.3f}, ambiguous last words {bounds['ambiguity']['share']:.3f}."
    )


def weak_translator_warnings(translators: dict[str, dict], floor: float) -> list[str]:
    """One warning per translator whose exact-sentence rate on the test split is below `floor`."""
    return [
        f"World: the {role} translator is weak ({facts['exact_sentence_rate']:.3f} exact test sentences, floor "
        f"{floor}): TALL and Naive cannot reach the HR ceiling through it. Train it longer or at a lower rate "
        "(WorldSettings.translator_training, e.g. max_steps 1200, learning_rate 1e-3 on diverse text)."
        for role, facts in translators.items()
        if facts["exact_sentence_rate"] < floor
    ]


def hr_ceiling(components: dict[str, str], hr_sentences: list[str], scratch: str, confidence: float = 0.95) -> dict:
    """The world LLM's own last-word accuracy on HR sentences, prompted exactly as the Direct approach prompts it on LR
    text and scored by the evaluation's metric, with a bootstrap interval."""
    estimate = hr_ceiling_result(components, hr_sentences, scratch, confidence=confidence).estimate
    return estimate_facts(estimate, decoding="greedy, as the Direct approach")


def _with_prefixes(lr: list[str], hr: list[str], share: float, seed: int) -> tuple[list[str], list[str]]:
    """The parallel sentences, plus a `share` of them cut after a random word (the same cut on both sides)."""
    rng = random.Random(f"prefixes-{seed}")
    lr_out, hr_out = list(lr), list(hr)
    for lr_sentence, hr_sentence in zip(lr, hr, strict=True):
        if rng.random() < share:
            cut = rng.randrange(1, len(lr_sentence.split()))
            lr_out.append(" ".join(lr_sentence.split()[:cut]))
            hr_out.append(" ".join(hr_sentence.split()[:cut]))
    return lr_out, hr_out

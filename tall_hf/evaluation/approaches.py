"""The six last-word prediction approaches of the TALL paper's Table 1, and a seventh that separates what TALL gains
by reading the LR prefix (Naive with the LR prefix forced), behind one interface.

Every approach turns a batch of LR prefixes into one predicted LR word each (`""` when it produces no word, which
counts as wrong). To add an approach, subclass `LastWordApproach`, implement `from_context` (load or train what it
needs from the shared `ApproachContext`) and `predict`, and decorate the class with `@register_approach("name")`.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainingArguments,
)
from transformers.utils import logging

from ..data import PreparationArguments, translate
from ..data.text_files import read_sentences
from ..generation import TallPredictor
from ..generation.pivot import (
    NextWordLM,
    back_translated_last_words,
    forced_prefix_words,
    load_llm_tokenizer,
    pivot_words,
)
from ..models.tall import TallForConditionalGeneration, TallProcessor
from ..training import baselines
from ..training.recipes import DEFAULT_RECIPE, get_recipe, with_recipe_defaults
from ..training.run import TallDataArguments, TallModelArguments, run_training
from ..utils.loading import load_pretrained

logger = logging.get_logger(__name__)

APPROACHES: dict[str, type[LastWordApproach]] = {}
TRAINED_APPROACHES = ("fine_tuned", "soft_prompt", "from_scratch", "tall")
"""The approaches that train (on the LR training text): their runs are training seeds."""


def register_approach(name: str, display_name: str):
    """Class decorator adding an approach to `APPROACHES` under `name` (Table 1 order is registration order)."""

    def register(cls: type[LastWordApproach]) -> type[LastWordApproach]:
        if name in APPROACHES:
            raise ValueError(f"An approach named {name!r} is already registered ({APPROACHES[name].__name__}).")
        cls.name, cls.display_name = name, display_name
        APPROACHES[name] = cls
        return cls

    return register


@dataclass
class ApproachContext:
    """What the approaches share: the three components, the training text and arguments, where trained models go.

    Components load lazily and once, so an evaluation that skips Naive never loads the HR->LR translator.
    """

    lr_hr: str
    llm: str
    hr_lr: str
    output_dir: str
    train_file: str | None = None
    max_train_samples: int | None = None
    training_args: TrainingArguments | None = None
    tall_model: str | None = None
    tall_recipe: str = DEFAULT_RECIPE
    device: torch.device = field(default_factory=lambda: torch.device("cuda" if torch.cuda.is_available() else "cpu"))

    def model_dir(self, approach: str) -> str:
        """Where the trained model of `approach` is saved: `models/<approach>/seed-<training seed>`."""
        seed = self.training_args.seed if self.training_args is not None else 0
        return os.path.join(self.output_dir, "models", approach, f"seed-{seed}")

    @cached_property
    def train_texts(self) -> list[str] | None:
        """The training sentences: the first `max_train_samples` non-blank lines of `train_file` (all by default)."""
        return read_sentences(self.train_file, self.max_train_samples) if self.train_file else None

    def training_inputs(self, approach: str) -> tuple[list[str], TrainingArguments]:
        """The training sentences and base `TrainingArguments` a trained approach needs; a clear error if missing."""
        if not self.train_texts:
            raise ValueError(
                f"The {approach!r} approach trains on LR text: give a training file (--train_file) with sentences, "
                f"or leave {approach!r} out of the approaches."
            )
        if self.training_args is None:
            raise ValueError(f"The {approach!r} approach trains with Trainer: pass TrainingArguments.")
        return self.train_texts, self.training_args

    @cached_property
    def llm_tokenizer(self) -> PreTrainedTokenizerBase:
        """The LLM's tokenizer, padding on the left for batched generation (`load_llm_tokenizer`)."""
        return load_llm_tokenizer(self.llm)

    def load_llm(self) -> PreTrainedModel:
        """The pretrained LLM, on the context's device."""
        return load_pretrained(AutoModelForCausalLM, self.llm, role="LLM").to(self.device)

    @cached_property
    def lr_hr_translator(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        return self._translator(self.lr_hr, "LR->HR translator")

    @cached_property
    def hr_lr_translator(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        return self._translator(self.hr_lr, "HR->LR translator")

    def translate_to_hr(self, texts: list[str], batch_size: int = 16) -> list[str]:
        """HR translations of LR `texts` with the LR->HR translator (its own generation settings)."""
        model, tokenizer = self.lr_hr_translator
        return translate(texts, model, tokenizer, batch_size=batch_size, advance_progress=True)

    def _translator(self, name_or_path: str, role: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        model = load_pretrained(AutoModelForSeq2SeqLM, name_or_path, role=role).to(self.device).eval()
        return model, load_pretrained(AutoTokenizer, name_or_path, role=f"{role} tokenizer")


class LastWordApproach(ABC):
    """One way of predicting the last LR word of a sentence from its prefix."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    # Approaches that read the HR translation of the prefix get it precomputed (once per data set) in `predict`.
    uses_translation: ClassVar[bool] = False
    # Set by the last `predict`: prefixes cut to what the model reads, and prefixes its tokenizer could not read.
    truncated: int = 0
    unreadable: int = 0

    @classmethod
    @abstractmethod
    def from_context(cls, context: ApproachContext) -> LastWordApproach:
        """Load (and train, for the trained approaches) everything the approach needs."""

    @abstractmethod
    def predict(
        self,
        prefixes: list[str],
        *,
        translations: list[str] | None = None,
        batch_size: int = 16,
        do_sample: bool = False,
        seed: int | None = None,
        **sampling,
    ) -> list[str]:
        """One predicted word per prefix (`""` when none); greedy unless `do_sample`, then sampled with the paper's
        settings (`tall_hf.generation.SAMPLING`) or the `sampling` (temperature, top_k, top_p) given."""


class CausalLMApproach(NextWordLM, LastWordApproach):
    """A causal LM continues the prefix until it has written one word; that word is the prediction
    (`tall_hf.generation.pivot.NextWordLM`). The LLM as it is, or trained by `train(llm, texts, args)` on the context's
    LR text with the approach's recipe (`baselines.recipe_training_arguments`)."""

    train: ClassVar[Callable | None] = None

    @classmethod
    def from_context(cls, context: ApproachContext) -> CausalLMApproach:
        if cls.train is None:
            return cls(context.load_llm(), context.llm_tokenizer)
        texts, base = context.training_inputs(cls.name)
        args = baselines.recipe_training_arguments(cls.name, base, context.model_dir(cls.name))
        return cls(cls.train(context.llm, texts, args).to(context.device), context.llm_tokenizer)

    def predict(self, prefixes: list[str], *, translations: list[str] | None = None, **generation) -> list[str]:
        return self.next_words(prefixes, **generation)


@register_approach("direct", "Direct")
class DirectApproach(CausalLMApproach):
    """The pretrained LLM continues the LR prefix as it is."""


@register_approach("fine_tuned", "Fine-tuned")
class FineTunedApproach(CausalLMApproach):
    """The LLM with all its parameters fine-tuned on LR text (paper: AdamW, lr 2e-5, weight decay 0.01)."""

    train = staticmethod(baselines.train_fine_tuned)


@register_approach("naive", "Naive")
class NaiveApproach(LastWordApproach):
    """Translate the LR prefix to HR, let the LLM add one HR word, translate the completed HR sentence back to LR and
    take its last word."""

    uses_translation = True

    def __init__(self, llm: NextWordLM, context: ApproachContext) -> None:
        self.llm = llm
        self.context = context

    @classmethod
    def from_context(cls, context: ApproachContext) -> NaiveApproach:
        return cls(NextWordLM(context.load_llm(), context.llm_tokenizer), context)

    def predict(
        self, prefixes: list[str], *, translations: list[str] | None = None, batch_size: int = 16, **generation
    ) -> list[str]:
        if translations is None:
            translations = self.context.translate_to_hr(prefixes, batch_size)
        words = pivot_words(
            prefixes, translations, self.llm, self.back_translated_words, batch_size=batch_size, **generation
        )
        self.truncated, self.unreadable = self.llm.truncated, self.llm.unreadable
        return words

    def back_translated_words(self, prefixes: list[str], completed: list[str], batch_size: int) -> list[str]:
        """The LR word of each completed HR sentence: the last word of its back-translation."""
        return back_translated_last_words(*self.context.hr_lr_translator, completed, batch_size)


@register_approach("naive_forced", "Naive, LR prefix forced")
class ForcedPrefixNaiveApproach(NaiveApproach):
    """Naive whose back-translation starts with the original LR prefix: the HR->LR translator reads the completed HR
    sentence and decodes with its decoder start token and the LR prefix's tokens forced as the start of its output,
    then generates on (its own generation settings); the word after the prefix is the prediction. The same frozen
    components and no training: what reading the LR prefix gives without TALL's trained stages."""

    def back_translated_words(self, prefixes: list[str], completed: list[str], batch_size: int) -> list[str]:
        return forced_prefix_words(*self.context.hr_lr_translator, prefixes, completed, batch_size)


@register_approach("soft_prompt", "Soft prompt")
class SoftPromptApproach(CausalLMApproach):
    """30 trained prompt vectors in front of the frozen LLM (PEFT prompt tuning; paper: lr 5e-4, cosine, 100 warm-up
    steps)."""

    def generate_new_tokens(self, inputs: BatchEncoding, **generate_kwargs) -> torch.LongTensor:
        """Generation from `[soft prompt][left padding][prefix]` embeddings through the base model, whose position
        ids then follow the attention mask. (PEFT's own `generate` drops position ids for prompt tuning, so a
        left-padded prefix would be read at shifted positions and its prediction would depend on the batch.)"""
        embeddings = self.model.get_input_embeddings()(inputs["input_ids"])
        prompt = self.model.get_prompt(batch_size=embeddings.shape[0]).to(embeddings.dtype)
        prompt_mask = inputs["attention_mask"].new_ones(prompt.shape[:2])
        return self.model.get_base_model().generate(
            inputs_embeds=torch.cat([prompt, embeddings], dim=1),
            attention_mask=torch.cat([prompt_mask, inputs["attention_mask"]], dim=1),
            **generate_kwargs,
        )

    train = staticmethod(baselines.train_soft_prompt)


@register_approach("from_scratch", "From scratch")
class FromScratchApproach(CausalLMApproach):
    """The LLM's architecture from random weights, trained on LR text (paper: lr 5e-4, gradient accumulation 8)."""

    train = staticmethod(baselines.train_from_scratch)


@register_approach("tall", "TALL")
class TallApproach(LastWordApproach):
    """TALL through `TallPredictor`: a trained model from `context.tall_model`, or one trained here."""

    uses_translation = True

    def __init__(self, predictor: TallPredictor) -> None:
        self.predictor = predictor

    @classmethod
    def from_context(cls, context: ApproachContext) -> TallApproach:
        model_dir = context.tall_model or cls.train(context)
        model = load_pretrained(TallForConditionalGeneration, model_dir, role="TALL model").to(context.device)
        processor = load_pretrained(TallProcessor, model_dir, role="TALL processor")
        return cls(TallPredictor(model, processor))  # the model's own translator, if ever needed

    @staticmethod
    def train(context: ApproachContext) -> str:
        """Train TALL with the job of `tall-hf train` (`tall_hf.training.run.run_training`) from the context's
        components on its training file, with the context's TALL recipe (its model options, and its optimisation
        settings wherever the context's arguments kept the library defaults); returns the saved model's folder.

        The evaluation trains it afresh (a model left in the folder by an earlier evaluation may come from other
        text or settings; the runner reuses the results of an unchanged evaluation without training). No held-out
        evaluation here: train with `tall-hf train` for best-checkpoint selection and pass the result as
        `context.tall_model`."""
        _, base = context.training_inputs(TallApproach.name)
        output_dir = context.model_dir(TallApproach.name)
        shutil.rmtree(output_dir, ignore_errors=True)
        run_training(
            TallModelArguments(
                lr_hr_model=context.lr_hr, llm_model=context.llm, hr_lr_model=context.hr_lr, recipe=context.tall_recipe
            ),
            TallDataArguments(
                train_file=context.train_file,
                max_train_samples=context.max_train_samples,
                validation_split_percentage=0,
            ),
            PreparationArguments(),
            with_recipe_defaults(
                base, {"save_total_limit": 1, **get_recipe(context.tall_recipe).training}, output_dir
            ),  # each checkpoint holds the frozen components: one is enough to resume
        )
        return output_dir

    def predict(self, prefixes: list[str], *, translations: list[str] | None = None, **generation) -> list[str]:
        words = self.predictor.predict_next_word(prefixes, translations=translations, **generation)
        self.truncated, self.unreadable = self.predictor.truncated, self.predictor.unreadable
        return words

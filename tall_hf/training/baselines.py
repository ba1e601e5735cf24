"""`Trainer` recipes for the paper's three trained baselines: Fine-tuned, Soft prompt and From scratch.

Each recipe is plain causal language modelling on low-resource sentences (`datasets` + `DataCollatorForLanguageModeling
(mlm=False)` + `Trainer`); the recipes differ only in which parameters train and in the paper's hyperparameters.
"""

from __future__ import annotations

from datasets import Dataset
from peft import PeftModel, PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging

from ..utils.progress import show_phase
from .recipes import with_recipe_defaults

logger = logging.get_logger(__name__)

# The paper's appendix, as `TrainingArguments` fields. They replace TrainingArguments' library defaults only: a
# value the user set to anything other than the library default wins.
PAPER_HYPERPARAMETERS: dict[str, dict] = {
    "fine_tuned": {"learning_rate": 2e-5, "weight_decay": 0.01, "max_grad_norm": 1.0},
    "soft_prompt": {"learning_rate": 5e-4, "lr_scheduler_type": "cosine", "warmup_steps": 100},
    "from_scratch": {"learning_rate": 5e-4, "weight_decay": 0.01, "gradient_accumulation_steps": 8},
}
MAX_LENGTH = 128
NUM_VIRTUAL_TOKENS = 30


def recipe_training_arguments(recipe: str, base: TrainingArguments, output_dir: str) -> TrainingArguments:
    """`base` with the paper's hyperparameters of `recipe` filled in wherever `base` kept the library default."""
    if recipe not in PAPER_HYPERPARAMETERS:
        raise ValueError(f"Unknown training recipe {recipe!r}; choose one of {sorted(PAPER_HYPERPARAMETERS)}.")
    return with_recipe_defaults(base, PAPER_HYPERPARAMETERS[recipe], output_dir)


def language_modeling_dataset(
    texts: list[str], tokenizer: PreTrainedTokenizerBase, max_length: int = MAX_LENGTH
) -> Dataset:
    """Sentences tokenized once (truncated to `max_length`, end-of-sentence token appended when the tokenizer has
    one), ready for `DataCollatorForLanguageModeling(mlm=False)`."""
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise ValueError("The training text is empty: the trained baselines need at least one sentence.")
    suffix = tokenizer.eos_token or ""

    def tokenize(batch: dict[str, list[str]]) -> dict:
        return tokenizer([text + suffix for text in batch["text"]], truncation=True, max_length=max_length)

    return Dataset.from_dict({"text": texts}).map(tokenize, batched=True, remove_columns=["text"])


def training_tokenizer(llm: str) -> PreTrainedTokenizerBase:
    """The LLM's tokenizer padding on the right (so training positions start at 0), with a pad token."""
    tokenizer = AutoTokenizer.from_pretrained(llm, padding_side="right")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train_causal_lm(
    model: PreTrainedModel | PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    training_args: TrainingArguments,
    max_length: int = MAX_LENGTH,
    description: str = "Training the LLM",
) -> PreTrainedModel | PeftModel:
    """Train the trainable parameters of `model` on `texts` with `Trainer`, save it (and the tokenizer) in
    `training_args.output_dir`, and return it in eval mode. `description` names its progress bar."""
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=language_modeling_dataset(texts, tokenizer, max_length),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        processing_class=tokenizer,
    )
    show_phase(trainer, description).train()
    trainer.save_model()
    return model.eval()


def train_fine_tuned(llm: str, texts: list[str], training_args: TrainingArguments) -> PreTrainedModel:
    """Fine-tuned baseline: every parameter of the pretrained LLM `llm` (hub id or folder) trains on `texts`."""
    model = AutoModelForCausalLM.from_pretrained(llm)
    return train_causal_lm(model, training_tokenizer(llm), texts, training_args, description="Training Fine-tuned")


def train_soft_prompt(
    llm: str, texts: list[str], training_args: TrainingArguments, num_virtual_tokens: int = NUM_VIRTUAL_TOKENS
) -> PeftModel:
    """Soft-prompt baseline: `num_virtual_tokens` trainable prompt vectors in front of the frozen LLM (PEFT prompt
    tuning); only the PEFT adapter is saved."""
    model = AutoModelForCausalLM.from_pretrained(llm)
    config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=num_virtual_tokens, prompt_tuning_init=PromptTuningInit.RANDOM
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    logger.info(f"Soft prompt: {trainable:,} trainable parameters of {total:,}.")
    return train_causal_lm(
        peft_model, training_tokenizer(llm), texts, training_args, description="Training Soft prompt"
    )


def train_from_scratch(llm: str, texts: list[str], training_args: TrainingArguments) -> PreTrainedModel:
    """From-scratch baseline: the architecture of `llm` (its config and tokenizer), initialised from
    `training_args.seed`, trained on `texts`."""
    set_seed(training_args.seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(llm))
    return train_causal_lm(model, training_tokenizer(llm), texts, training_args, description="Training From scratch")

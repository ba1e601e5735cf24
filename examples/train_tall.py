"""Train TALL on raw low-resource text with `transformers.Trainer`.

Real components (hub ids or folders), e.g. on a GPU:

    python examples/train_tall.py \
        --lr_hr_model Helsinki-NLP/opus-mt-tc-big-he-en --llm_model Qwen/Qwen2.5-0.5B \
        --hr_lr_model Helsinki-NLP/opus-mt-en-he \
        --train_file hebrew_news.txt --output_dir tall-qwen --bf16 --per_device_train_batch_size 16

Offline, with tiny random components built on the spot:

    python examples/train_tall.py --tiny_components /tmp/tall-tiny \
        --train_file ../shared/data/hebrew/svlm_wiki_50k.txt --max_train_samples 2000 \
        --output_dir /tmp/tall-out --max_steps 300 --use_cpu

The prepared data (translations included) is cached, so a second run with the same inputs and translator starts
training at once. The output folder loads with `AutoModel.from_pretrained` and `TallProcessor.from_pretrained`.
"""

from __future__ import annotations

import itertools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from transformers import HfArgumentParser, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from tall_hf import TallForCausalLM, TallProcessor
from tall_hf.data import PreparationArguments, prepare_tall_dataset
from tall_hf.models.tall.configuration_tall import LOSS_MODES
from tall_hf.testing import build_tiny_components
from tall_hf.training import train_tall

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    lr_hr_model: str | None = field(default=None, metadata={"help": "LR->HR translator: hub id or folder."})
    llm_model: str | None = field(default=None, metadata={"help": "The frozen LLM: hub id or folder."})
    hr_lr_model: str | None = field(default=None, metadata={"help": "HR->LR translator: hub id or folder."})
    lr_hr_revision: str | None = field(default=None, metadata={"help": "Revision of the LR->HR translator."})
    llm_revision: str | None = field(default=None, metadata={"help": "Revision of the LLM."})
    hr_lr_revision: str | None = field(default=None, metadata={"help": "Revision of the HR->LR translator."})
    loss_mode: str = field(default="last_token", metadata={"help": f"One of {LOSS_MODES}.", "choices": LOSS_MODES})
    adapter_dropout: float = field(default=0.1, metadata={"help": "Dropout inside the alignment adapters."})
    tiny_components: str | None = field(
        default=None,
        metadata={"help": "Build tiny random components in this folder and use them (offline smoke runs)."},
    )
    tiny_llm: str = field(default="qwen2", metadata={"help": "LLM family of the tiny components."})

    def components(self) -> dict[str, str]:
        if self.tiny_components:
            return build_tiny_components(self.tiny_components, llm=self.tiny_llm)
        missing = [name for name in ("lr_hr_model", "llm_model", "hr_lr_model") if not getattr(self, name)]
        if missing:
            raise ValueError(f"Pass --{' --'.join(missing)} (hub ids or folders), or --tiny_components DIR.")
        return {"lr_hr": self.lr_hr_model, "llm": self.llm_model, "hr_lr": self.hr_lr_model}


@dataclass
class DataArguments:
    train_file: str = field(metadata={"help": "Text file of LR sentences, one a line."})
    validation_file: str | None = field(default=None, metadata={"help": "Held-out sentences, one a line."})
    validation_split_percentage: float = field(
        default=5.0, metadata={"help": "Without --validation_file, hold out this share of the prepared training data."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Read only the first N training lines."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep at most N validation sentences."})


def read_lines(path: str, limit: int | None) -> list[str]:
    with Path(path).open(encoding="utf-8") as handle:
        return list(itertools.islice(handle, limit))


def main() -> None:
    parser = HfArgumentParser((ModelArguments, DataArguments, PreparationArguments, TrainingArguments))
    parser.set_defaults(
        eval_strategy="steps",
        save_strategy="steps",
        eval_steps=100,
        save_steps=100,
        logging_steps=25,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        lr_scheduler_type="cosine",
        learning_rate=1e-4,
        warmup_steps=100,
        weight_decay=0.01,
        num_train_epochs=5,
        remove_unused_columns=False,
        report_to="none",
    )
    model_args, data_args, prep_args, training_args = parser.parse_args_into_dataclasses()

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    transformers.utils.logging.set_verbosity(log_level)
    for name in (__name__, "tall_hf"):
        logging.getLogger(name).setLevel(min(log_level, logging.INFO))
    set_seed(training_args.seed)

    paths = model_args.components()
    revisions = {
        "lr_hr_revision": model_args.lr_hr_revision,
        "llm_revision": model_args.llm_revision,
        "hr_lr_revision": model_args.hr_lr_revision,
    }
    processor = TallProcessor.from_components(**paths, **revisions, loss_mode=model_args.loss_mode)
    model = TallForCausalLM.from_components(
        **paths, **revisions, loss_mode=model_args.loss_mode, adapter_dropout=model_args.adapter_dropout
    )
    logger.info("\n" + model.parameter_table())

    # The translator is the model's own LR->HR translator (its encoder is TALL's stage 1). Under `accelerate launch`,
    # the processes share the translation shards and then read each other's from the cache.
    translator = {"translator": paths["lr_hr"], "translator_revision": model_args.lr_hr_revision}
    train = prepare_tall_dataset(
        read_lines(data_args.train_file, data_args.max_train_samples), processor, args=prep_args, **translator
    )
    if data_args.validation_file:
        validation = prepare_tall_dataset(
            read_lines(data_args.validation_file, None), processor, args=prep_args, **translator
        )
    else:
        split = train.train_test_split(
            test_size=data_args.validation_split_percentage / 100, seed=training_args.seed, shuffle=True
        )
        train, validation = split["train"], split["test"]
    if data_args.max_eval_samples is not None:
        validation = validation.select(range(min(data_args.max_eval_samples, len(validation))))
    logger.info(f"Training on {len(train)} sentences, evaluating on {len(validation)}.")

    checkpoint = training_args.resume_from_checkpoint
    if checkpoint is None and Path(training_args.output_dir).is_dir():
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint:
            logger.info(f"Resuming from {checkpoint} (pass a new --output_dir to start afresh).")
    trainer = train_tall(model, processor, train, validation, training_args, resume_from_checkpoint=checkpoint)
    logger.info(f"Saved TALL and its processor to {trainer.args.output_dir}.")


if __name__ == "__main__":
    main()

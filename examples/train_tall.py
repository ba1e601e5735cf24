"""Train TALL on raw low-resource text with `transformers.Trainer` (the job behind `tall-hf train`).

Real components (hub ids or folders), e.g. on a GPU:

    python examples/train_tall.py \
        --lr_hr_model Helsinki-NLP/opus-mt-tc-big-he-en --llm_model Qwen/Qwen2.5-0.5B \
        --hr_lr_model Helsinki-NLP/opus-mt-en-he \
        --train_file hebrew_news.txt --output_dir tall-qwen --bf16 --per_device_train_batch_size 16

Offline, with tiny random components built on the spot:

    python examples/train_tall.py --tiny_components /tmp/tall-tiny \
        --train_file ../shared/data/hebrew/svlm_wiki_50k.txt --max_train_samples 2000 \
        --output_dir /tmp/tall-out --max_steps 300 --use_cpu

Under `accelerate launch` it trains with DDP unchanged. The prepared data (translations included) is cached, so a
second run with the same inputs and translator starts training at once; a run whose output folder holds a complete
checkpoint resumes from it. The output folder loads with `AutoModelForSeq2SeqLM.from_pretrained` and
`TallProcessor.from_pretrained`.
"""

from __future__ import annotations

import sys

import transformers
from transformers import HfArgumentParser

from tall_hf.data import PreparationArguments
from tall_hf.tiny import TinyComponentsArguments
from tall_hf.training.recipes import parser_training_defaults
from tall_hf.training.run import TallDataArguments, TallModelArguments, run_training
from tall_hf.training.time_limit import TallTrainingArguments
from tall_hf.utils.logging import set_verbosity


def main() -> None:
    parser = HfArgumentParser(
        (TallModelArguments, TallDataArguments, PreparationArguments, TallTrainingArguments, TinyComponentsArguments)
    )
    parser.set_defaults(**parser_training_defaults(sys.argv[1:]))
    model_args, data_args, prep_args, training_args, tiny = parser.parse_args_into_dataclasses()
    tiny.fill(model_args)
    level = min(training_args.get_process_log_level(), transformers.logging.INFO)
    transformers.utils.logging.set_verbosity(level)
    set_verbosity(level)
    run_training(model_args, data_args, prep_args, training_args)


if __name__ == "__main__":
    main()

"""Table 1 of the TALL paper for your components and text: last-word prediction by Direct, Fine-tuned, Naive, Soft
prompt, From scratch and TALL, with 95% bootstrap confidence intervals, prediction files and accuracy curves.

The trained approaches (Fine-tuned, Soft prompt, From scratch and, without --tall_model, TALL) train on --train_file
with `Trainer`, --training_seeds times each (seeds --seed, --seed + 1, ...); the TrainingArguments flags (--max_steps,
--per_device_train_batch_size, ...) apply to all of them, and the paper's hyperparameters fill in whatever you leave at
the library default. `--tall_model A B C` takes trained TALL folders as TALL's seeds. The report compares TALL with
every other approach and calls it better or worse only from at least 3 seeds.

Offline, on tiny random-weight components (accuracies near 0 are expected; this checks the pipeline):

    python examples/evaluate_last_word.py --tiny_components /tmp/tall_tiny \\
        --train_file tall_hf/resources/corpus/hebrew.txt \\
        --test_files ../shared/data/hebrew/svlm_wiki_50k.txt ../shared/data/hebrew/ynet_news_999.txt \\
        --max_test_samples 200 --max_steps 30 --per_device_train_batch_size 8 --output_dir /tmp/last_word

With the paper's components on a GPU (sampling as in the paper):

    python examples/evaluate_last_word.py \\
        --lr_hr_model Helsinki-NLP/opus-mt-tc-big-he-en --llm_model Qwen/Qwen2.5-0.5B \\
        --hr_lr_model Helsinki-NLP/opus-mt-en-he --train_file news_he.txt \\
        --test_files wiki_slvm.txt he_lyrics.txt --do_sample --num_train_epochs 1 --bf16 \\
        --output_dir results/qwen

Arguments can also come from one JSON file: `python examples/evaluate_last_word.py config.json`.
"""

import sys

from transformers import HfArgumentParser
from transformers.utils import logging

from tall_hf.evaluation import LastWordEvaluationArguments, run_last_word_evaluation
from tall_hf.tiny import TinyComponentsArguments
from tall_hf.training.time_limit import TallTrainingArguments


def main() -> None:
    parser = HfArgumentParser((LastWordEvaluationArguments, TallTrainingArguments, TinyComponentsArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        evaluation_args, training_args, tiny = parser.parse_json_file(sys.argv[1])
    else:
        evaluation_args, training_args, tiny = parser.parse_args_into_dataclasses()
    tiny.fill(evaluation_args)
    logging.set_verbosity(training_args.get_process_log_level())
    report = run_last_word_evaluation(evaluation_args, training_args)
    print(report.to_markdown())
    print(f"Predictions, CSV/JSON tables and accuracy_curves.png are in {training_args.output_dir}")


if __name__ == "__main__":
    main()

"""Train the multilingual encoder bridge (LangBridge with layer fusion) on English data with `transformers.Trainer`.

Only the fusion and the projection train, with one of two objectives (`--objective`):
- `prefix_lm` (LangBridge): unlabelled text; the encoder reads the first part of each line, the frozen LLM learns to
  continue it (`--train_file` a .txt file, or .jsonl/.csv with a `--text_column`);
- `supervised` (the fusion paper): task examples; the encoder reads the input (`--text_column`, or `--template`
  filled from the columns), the LLM learns to write the label string (`--label_column`; integer labels are named by
  `--label_words`), loss on the label tokens only (`--train_file` .jsonl or .csv).
Afterwards the model reads any language the encoder knows: `--test_file` (with a `language` column) is classified
zero-shot (greedy generation + exact match, and label log-likelihood) into `zero_shot/results.{md,json}`. The learned
layer weights are plotted into --output_dir (`layer_weights.png`; for token softmax also `token_layer_weights.png`
and, with a test file, `layer_weights_by_language.png`).

Real components on a GPU:

    python examples/train_bridge.py --encoder_model google/mt5-xl --llm_model Qwen/Qwen2.5-0.5B \
        --fusion token_softmax --train_file english.txt --output_dir bridge-qwen \
        --bf16 --per_device_train_batch_size 16 --learning_rate 1e-4 --num_train_epochs 1

The paper's XNLI recipe (English XNLI rows in jsonl: premise, hypothesis, label 0/1/2):

    python examples/train_bridge.py --encoder_model google/mt5-large --llm_model meta-llama/Llama-3.2-1B-Instruct \
        --objective supervised --train_file xnli_en.jsonl --test_file xnli_15_languages.jsonl \
        --template "{premise} Question: {hypothesis} True, False or Neither? Answer:" --label_words True,Neither,False \
        --fusion token_softmax --learning_rate 3e-5 --lr_scheduler_type cosine --warmup_steps 0.05 \
        --num_train_epochs 3 --per_device_train_batch_size 8 --bf16 --output_dir bridge-xnli

Offline, with tiny random components built on the spot and the English text the package ships:

    python examples/train_bridge.py --tiny_components /tmp/bridge-tiny --fusion token_softmax \
        --output_dir /tmp/bridge-out --max_steps 60 --per_device_train_batch_size 16 --learning_rate 1e-2 --use_cpu

The output folder loads with `AutoModelForCausalLM.from_pretrained` and `AutoProcessor.from_pretrained` (after
`import tall_hf`); by default it is adapters-only (the fusion and projection weights, the components by reference).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

import transformers
from transformers import HfArgumentParser, TrainingArguments

from tall_hf.data.task_data import load_data_file
from tall_hf.evaluation.zero_shot import SCORING_METHODS, ZeroShotReport, chance_accuracy, evaluate_zero_shot
from tall_hf.resources import read_corpus
from tall_hf.tiny import build_tiny_bridge_components
from tall_hf.training.bridge import BridgeArguments, run_bridge_training
from tall_hf.visualization.layer_weights import save_layer_weight_plots

logger = logging.getLogger(__name__)


@dataclass
class ExampleArguments:
    """What the example does beside training: tiny offline components, a zero-shot test set and the plots."""

    test_file: str | None = field(
        default=None,
        metadata={"help": "Zero-shot test set (.jsonl/.csv: input, integer label, `language`); needs --label_words."},
    )
    tiny_components: str | None = field(
        default=None, metadata={"help": "Build tiny offline components in this folder and use them."}
    )
    plot_sentence: str | None = field(
        default=None, metadata={"help": "Sentence for the per-token heat map (default: a shipped Hebrew line)."}
    )


def main() -> None:
    parser = HfArgumentParser((BridgeArguments, ExampleArguments, TrainingArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        args, example, training_args = parser.parse_json_file(sys.argv[1])
    else:
        args, example, training_args = parser.parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    if example.tiny_components:
        if args.encoder_model or args.llm_model:
            raise ValueError("Pass either --tiny_components or --encoder_model/--llm_model, not both.")
        tiny = build_tiny_bridge_components(example.tiny_components)
        args.encoder_model, args.llm_model = tiny["encoder"], tiny["llm"]
    label_words = args.label_word_list()
    if example.test_file and not label_words:
        raise ValueError("--test_file needs --label_words (the label strings of labels 0, 1, ...).")

    model, processor, trainer = run_bridge_training(args, training_args)
    if not trainer.is_world_process_zero():
        return
    texts_by_language = None
    if example.test_file:
        test_set = load_data_file(example.test_file)
        template = args.template or "{" + args.text_column + "}"
        results = {
            (args.fusion, method): evaluate_zero_shot(
                model,
                processor,
                test_set,
                template=template,
                label_words=label_words,
                label_column=args.label_column,
                method=method,
                batch_size=training_args.per_device_eval_batch_size,
            )
            for method in SCORING_METHODS
        }
        report = ZeroShotReport(results, chance=chance_accuracy(test_set[args.label_column]))
        paths = report.save(os.path.join(training_args.output_dir, "zero_shot"))
        print(report.to_markdown())
        logger.info("Wrote %s", ", ".join(paths.values()))
        if "language" in test_set.column_names:
            texts_by_language = {}
            for row in test_set:
                texts_by_language.setdefault(row["language"], []).append(template.format(**row))
    sentence = example.plot_sentence or read_corpus("hebrew")[0]
    for path in save_layer_weight_plots(
        model.eval(), processor, training_args.output_dir, sentence, texts_by_language
    ):
        logger.info("Wrote %s", path)


if __name__ == "__main__":
    main()

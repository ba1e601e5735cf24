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

By default the output folder is adapters-only (a PEFT adapter folder of the fusion and projection weights, the
components by reference): `tall_hf.adapters.load_checkpoint(BridgeForCausalLM, folder)` loads it (PEFT's
`PeftModel.from_pretrained` on the recorded components), `AutoProcessor.from_pretrained` its processor (after `import
tall_hf`); with `--full_checkpoint`, `AutoModelForCausalLM.from_pretrained` loads the model.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import torch
import transformers
from datasets import Dataset
from transformers import HfArgumentParser, TrainingArguments, set_seed

from tall_hf import BridgeForCausalLM, BridgeProcessor
from tall_hf.adapters import save_checkpoint
from tall_hf.evaluation.zero_shot import SCORING_METHODS, ZeroShotReport, chance_accuracy, evaluate_zero_shot
from tall_hf.models.bridge import BRIDGE_OBJECTIVES, bridge_training_pairs, create_bridge_trainer, load_data_file
from tall_hf.modules.fusion import FUSION_METHODS
from tall_hf.resources import corpus_path, read_corpus
from tall_hf.testing import build_tiny_bridge_components
from tall_hf.visualization.layer_weights import save_layer_weight_plots

logger = logging.getLogger(__name__)


@dataclass
class BridgeArguments:
    encoder_model: str | None = field(
        default=None, metadata={"help": "Multilingual encoder: hub id or folder (mT5, XLM-R, NLLB/M2M100, Marian)."}
    )
    llm_model: str | None = field(default=None, metadata={"help": "Decoder-only LLM: hub id or folder."})
    fusion: str = field(
        default="token_softmax", metadata={"help": f"How the encoder layers are fused: {sorted(FUSION_METHODS)}."}
    )
    fusion_options: str | None = field(
        default=None, metadata={"help": "The fusion method's settings as JSON, e.g. '{\"num_heads\": 4}'."}
    )
    objective: str = field(
        default="prefix_lm",
        metadata={"help": f"Training objective: {BRIDGE_OBJECTIVES} (unlabelled text, or input + label string)."},
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training data: .txt (one text a line), .jsonl or .csv (default: the shipped English corpus)."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Column of the input text (jsonl/csv)."})
    label_column: str = field(default="label", metadata={"help": "Column of the label (supervised, test file)."})
    template: str | None = field(
        default=None, metadata={"help": "Input built from the columns, e.g. '{premise} Question: {hypothesis}'."}
    )
    label_words: str | None = field(
        default=None, metadata={"help": "Comma-separated label strings naming integer labels 0, 1, ..."}
    )
    test_file: str | None = field(
        default=None,
        metadata={"help": "Zero-shot test set (.jsonl/.csv: input, integer label, `language`); needs --label_words."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N examples."})
    max_length: int = field(default=128, metadata={"help": "Cut inputs and continuations at this many tokens."})
    tiny_components: str | None = field(
        default=None, metadata={"help": "Build tiny offline components in this folder and use them."}
    )
    plot_sentence: str | None = field(
        default=None, metadata={"help": "Sentence for the per-token heat map (default: a shipped Hebrew line)."}
    )
    full_checkpoint: bool = field(
        default=False, metadata={"help": "Save every weight instead of only the fusion and projection."}
    )


def training_data(args: BridgeArguments) -> Dataset | list[str] | str:
    """What `bridge_training_pairs` reads: the train file (cut to --max_train_samples) or the shipped corpus."""
    if args.train_file is None:
        if args.objective == "supervised":
            raise ValueError("The supervised objective needs --train_file (jsonl/csv with input and label columns).")
        texts = read_corpus("english")
        return texts[: args.max_train_samples] if args.max_train_samples else texts
    if args.max_train_samples is None:
        return args.train_file
    data = load_data_file(args.train_file)
    return data.select(range(min(args.max_train_samples, len(data))))


def main() -> None:
    parser = HfArgumentParser((BridgeArguments, TrainingArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        args, training_args = parser.parse_json_file(sys.argv[1])
    else:
        args, training_args = parser.parse_args_into_dataclasses()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    set_seed(training_args.seed)

    if args.tiny_components:
        if args.encoder_model or args.llm_model:
            raise ValueError("Pass either --tiny_components or --encoder_model/--llm_model, not both.")
        components = build_tiny_bridge_components(args.tiny_components)
    elif args.encoder_model and args.llm_model:
        components = {"encoder": args.encoder_model, "llm": args.llm_model}
    else:
        raise ValueError("Pass --encoder_model and --llm_model (hub ids or folders), or --tiny_components DIR.")
    label_words = args.label_words.split(",") if args.label_words else None
    if args.test_file and not label_words:
        raise ValueError("--test_file needs --label_words (the label strings of labels 0, 1, ...).")

    processor = BridgeProcessor.from_components(**components)
    model = BridgeForCausalLM.from_components(
        **components,
        fusion=args.fusion,
        fusion_options=json.loads(args.fusion_options) if args.fusion_options else None,
        dtype=torch.bfloat16 if training_args.bf16 else None,
    )
    logger.info("Bridge parameters:\n%s", model.parameter_table())

    pairs = bridge_training_pairs(
        training_data(args),
        args.objective,
        text_column=args.text_column,
        label_column=args.label_column,
        template=args.template,
        label_words=label_words,
        seed=training_args.seed,
    )
    logger.info(
        "Training (%s) on %d prefix/continuation pairs (%s).",
        args.objective,
        len(pairs),
        args.train_file or corpus_path("english"),
    )
    trainer = create_bridge_trainer(model, processor, pairs, training_args, max_length=args.max_length)
    result = trainer.train()
    trainer.save_state()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        logger.info("Training loss: first logged %.4f, last logged %.4f.", losses[0], losses[-1])
    trainer.log_metrics("train", result.metrics)
    if not trainer.is_world_process_zero():
        return

    save_checkpoint(model, training_args.output_dir, adapters_only=not args.full_checkpoint, processor=processor)
    texts_by_language = None
    if args.test_file:
        test_set = load_data_file(args.test_file)
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
    sentence = args.plot_sentence or read_corpus("hebrew")[0]
    for path in save_layer_weight_plots(
        model.eval(), processor, training_args.output_dir, sentence, texts_by_language
    ):
        logger.info("Wrote %s", path)


if __name__ == "__main__":
    main()

"""Train the multilingual encoder bridge (LangBridge with layer fusion) on English text with `transformers.Trainer`.

Only the fusion and the projection train (prefix-LM: the encoder reads the first part of each line, the frozen LLM
learns to continue it); afterwards the model reads any language the encoder knows. The learned layer weights are
plotted into --output_dir (`layer_weights.png`, and `token_layer_weights.png` for token softmax).

Real components on a GPU:

    python examples/train_bridge.py --encoder_model google/mt5-xl --llm_model Qwen/Qwen2.5-0.5B \
        --fusion token_softmax --train_file english.txt --output_dir bridge-qwen \
        --bf16 --per_device_train_batch_size 16 --learning_rate 1e-4 --num_train_epochs 1

Offline, with tiny random components built on the spot and the English text the package ships:

    python examples/train_bridge.py --tiny_components /tmp/bridge-tiny --fusion token_softmax \
        --output_dir /tmp/bridge-out --max_steps 60 --per_device_train_batch_size 16 --learning_rate 1e-2 --use_cpu

The output folder loads with `AutoModelForCausalLM.from_pretrained` and `AutoProcessor.from_pretrained` (after
`import tall_hf`); by default it is adapters-only (the fusion and projection weights, the components by reference).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field

import torch
import transformers
from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed

from tall_hf import BridgeForCausalLM, BridgeProcessor
from tall_hf.models.bridge import PrefixLMCollator, prefix_lm_pairs, tokenize_prefix_lm
from tall_hf.models.bridge.prefix_lm import read_lines
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
    train_file: str | None = field(
        default=None, metadata={"help": "English training text, one text a line (default: the shipped corpus)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N lines."})
    max_length: int = field(default=128, metadata={"help": "Cut prefixes and continuations at this many tokens."})
    tiny_components: str | None = field(
        default=None, metadata={"help": "Build tiny offline components in this folder and use them."}
    )
    plot_sentence: str | None = field(
        default=None, metadata={"help": "Sentence for the per-token heat map (default: a shipped Hebrew line)."}
    )
    full_checkpoint: bool = field(
        default=False, metadata={"help": "Save every weight instead of only the fusion and projection."}
    )


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

    processor = BridgeProcessor.from_components(**components)
    model = BridgeForCausalLM.from_components(
        **components,
        fusion=args.fusion,
        fusion_options=json.loads(args.fusion_options) if args.fusion_options else None,
        dtype=torch.bfloat16 if training_args.bf16 else None,
    )
    logger.info("Bridge parameters:\n%s", model.parameter_table())

    texts = read_corpus("english") if args.train_file is None else read_lines(args.train_file)
    if args.max_train_samples is not None:
        texts = texts[: args.max_train_samples]
    pairs = prefix_lm_pairs(texts, seed=training_args.seed)
    with training_args.main_process_first(desc="tokenizing"):
        train_set = tokenize_prefix_lm(pairs, processor, max_length=args.max_length)
    logger.info(
        "Training on %d English prefix/continuation pairs (%s).",
        len(train_set),
        args.train_file or corpus_path("english"),
    )

    trainer = Trainer(
        model=model, args=training_args, train_dataset=train_set, data_collator=PrefixLMCollator(processor)
    )
    result = trainer.train()
    trainer.save_state()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        logger.info("Training loss: first logged %.4f, last logged %.4f.", losses[0], losses[-1])
    trainer.log_metrics("train", result.metrics)

    if trainer.is_world_process_zero():
        model.save_pretrained(training_args.output_dir, adapters_only=not args.full_checkpoint, processor=processor)
        sentence = args.plot_sentence or read_corpus("hebrew")[0]
        for path in save_layer_weight_plots(model.eval(), processor, training_args.output_dir, sentence):
            logger.info("Wrote %s", path)


if __name__ == "__main__":
    main()

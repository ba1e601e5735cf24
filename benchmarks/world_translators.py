"""A world's translator alone, trained again with other settings: exact test sentences and training seconds.

Builds (or reuses) the world of `--lr_text` (`tall_hf.worlds.build_world`), then trains one translator on the world's
own pretraining pairs and tokenizer as the builder does (`train_translator`), with `--training` / `--architecture`
overriding the preset's values, and scores it on the world's test split (`exact_rate`).

    python benchmarks/world_translators.py --lr_text /tmp/wiki20k.txt                # the preset's recipe
    python benchmarks/world_translators.py --lr_text /tmp/wiki20k.txt --training '{"learning_rate": 1e-3, "max_steps": 1200}'
    python benchmarks/world_translators.py --architecture '{"tie_word_embeddings": true}'   # the generated text
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import MarianTokenizer  # noqa: E402

from tall_hf.worlds import PRESETS, build_world  # noqa: E402
from tall_hf.worlds.build import _with_prefixes  # noqa: E402
from tall_hf.worlds.translators import exact_rate, train_translator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr_text", default=None, help="LR text file (default: the generated world's text)")
    parser.add_argument("--worlds", default="benchmark-worlds", help="where the world is built or reused")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--role", choices=("lr_hr", "hr_lr"), default="lr_hr")
    parser.add_argument("--training", type=json.loads, default={}, help="JSON overriding translator_training")
    parser.add_argument("--architecture", type=json.loads, default={}, help="JSON overriding translator_sizes[role]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = PRESETS[args.preset]
    world = build_world(args.worlds, lr_text=args.lr_text, preset=args.preset, seed=args.seed)
    source_hr = args.role == "hr_lr"
    sources, targets = _with_prefixes(
        world.sentences("pretrain", hr=source_hr),
        world.sentences("pretrain", hr=not source_hr),
        settings.translator_prefix_share,
        args.seed,
    )
    tokenizer = MarianTokenizer.from_pretrained(world.components[args.role])
    training = {**settings.translator_training, **args.training}
    architecture = {**settings.translator_sizes[args.role], **args.architecture}
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        model = train_translator(
            Path(scratch) / args.role,
            tokenizer,
            sources,
            targets,
            architecture=architecture,
            training=training,
            max_length=settings.max_length,
            positions=settings.position_embeddings,
            seed=args.seed + (1 if args.role == "lr_hr" else 2),
        )
        seconds = time.perf_counter() - start
    rate = exact_rate(
        model, tokenizer, world.sentences("test", hr=source_hr), world.sentences("test", hr=not source_hr)
    )
    print(
        json.dumps(
            {
                "world": world.path.name,
                "role": args.role,
                "pretrain_pairs": len(sources),
                "vocab_size": model.config.vocab_size,
                "training": training,
                "architecture": architecture,
                "train_seconds": round(seconds, 1),
                "torch_threads": torch.get_num_threads(),
                "exact_test_sentences": round(rate, 4),
                "n": len(world.sentences("test")),
            }
        )
    )


if __name__ == "__main__":
    main()

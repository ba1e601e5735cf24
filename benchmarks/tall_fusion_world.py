"""TALL's stage-1 encoder fusion on the known-answer world: `encoder_fusion=last`, `global_softmax`, `token_softmax`.

Each fusion trains TALL with the package's default recipe (its model options through `TallModelArguments`, its
training settings `training_defaults()`, batch 16: as `tall-hf demo` does) on the world's LR training sentences, then
predicts the last word of its test sentences. Printed and written (`OUTPUT_DIR/results.json`): accuracy per fusion
with 95% bootstrap intervals, each fusion against `last` (paired bootstrap on the same sentences), the world's HR
ceiling, and the seconds each fusion took.

    python benchmarks/tall_fusion_world.py --output-dir tall-fusion                  # builds the default world
    python benchmarks/tall_fusion_world.py --world worlds/world-qwen2-... --test-sentences 600
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from tall_hf.demo import TALL_STEPS, train_demo_tall  # noqa: E402
from tall_hf.evaluation import LastWordEvaluationArguments, run_last_word_evaluation  # noqa: E402
from tall_hf.evaluation.zero_shot import bootstrap_difference  # noqa: E402
from tall_hf.worlds import World, build_world  # noqa: E402

FUSIONS = ("last", "global_softmax", "token_softmax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="tall-fusion-world")
    parser.add_argument("--world", help="A built world's folder (default: build the default world under OUTPUT_DIR).")
    parser.add_argument("--steps", type=int, default=TALL_STEPS, help="TALL training steps (the demo's default).")
    parser.add_argument("--batch-size", type=int, default=16, help="As the demo.")
    parser.add_argument("--test-sentences", type=int, default=600)
    parser.add_argument("--fusions", default=",".join(FUSIONS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    output = Path(args.output_dir)
    world = World.load(args.world) if args.world else build_world(output / "worlds", seed=args.seed)
    common = {"use_cpu": True, "seed": args.seed, "report_to": "none", "disable_tqdm": True}

    rows, correct, seconds = [], {}, {}
    for fusion in [name.strip() for name in args.fusions.split(",") if name.strip()]:
        start = time.perf_counter()
        folder = output / fusion
        train_demo_tall(
            world.components,
            world.split_file("train"),
            world.split_file("validation"),
            folder / "tall",
            cache_dir=output / "cache",
            steps=args.steps,
            batch_size=args.batch_size,
            model_options={"encoder_fusion": fusion},
            **common,
        )
        report = run_last_word_evaluation(
            LastWordEvaluationArguments(
                test_files=[world.split_file("test")],
                lr_hr_model=world.components["lr_hr"],
                llm_model=world.components["llm"],
                hr_lr_model=world.components["hr_lr"],
                tall_model=str(folder / "tall"),
                approaches=["tall"],
                max_test_samples=args.test_sentences,
            ),
            TrainingArguments(output_dir=str(folder / "evaluation"), save_strategy="no", **common),
        )
        (result,) = report.results
        seconds[fusion] = round(time.perf_counter() - start, 1)
        correct[fusion] = result.correct
        estimate = result.estimate
        rows.append(
            {
                "fusion": fusion,
                "accuracy": 100 * estimate.accuracy,
                "ci_lower": 100 * estimate.lower,
                "ci_upper": 100 * estimate.upper,
                "n": estimate.n,
                "seconds": seconds[fusion],
            }
        )
        print(f"{fusion}: {estimate.as_percent()} ({seconds[fusion]} s)", flush=True)

    comparisons = [
        {"fusion": fusion, **{k: 100 * v for k, v in bootstrap_difference(correct[fusion], correct["last"]).items()}}
        for fusion in correct
        if fusion != "last" and "last" in correct
    ]
    ceiling = world.facts["ceiling"]
    summary = {"world": str(world.path), "steps": args.steps, "results": rows, "comparisons": comparisons}
    summary["hr_ceiling"] = ceiling
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("| encoder_fusion | TALL accuracy % [95% CI] | vs last (points) [95% CI] |")
    print("| --- | --- | --- |")
    versus = {row["fusion"]: row for row in comparisons}
    for row in rows:
        diff = versus.get(row["fusion"])
        text = f"{diff['difference']:+.2f} [{diff['ci_lower']:+.2f}, {diff['ci_upper']:+.2f}]" if diff else "-"
        print(f"| {row['fusion']} | {row['accuracy']:.2f} [{row['ci_lower']:.2f}, {row['ci_upper']:.2f}] | {text} |")
    print(f"HR ceiling (the world's LLM on the HR form): {json.dumps(ceiling)}")


if __name__ == "__main__":
    main()

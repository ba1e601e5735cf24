"""Inference speed of TALL: the paper's reference algorithm against the package's default path.

On the tiny components (random weights, real tokenizers), for next-word prediction and for an N-word continuation of
real Hebrew sentences, it measures sentences/s of three paths in one run:

- reference: as the paper's code runs it, one sentence at a time; for every new token the prefix is translated again
  and all seven stages run on the whole target stream without a cache (`tall_hf.testing.reference`, batch 1);
- per-word, batch 1: stages 1-6 once per word, the stage-7 decoder with its KV cache, still one sentence at a time;
- default: per word and cached, batched (`batch_size=16`).

The first ratio (per-word, batch 1 / reference) is the gain of running stages 1-6 once per word with a cached
decoder, the second (default / per-word, batch 1) the gain of batching. With one torch thread (the default), ratios
use the CPU time of the thread that runs the models, since on a shared machine wall time also counts other
processes; wall-clock figures are printed beside them (and used with --threads > 1). It also reports each path's peak
resident memory above the loaded models, and checks that greedy predictions at batch size 1 are identical with and
without the cache.

    python benchmarks/inference.py                # 64 sentences, 5-word continuation, 1 thread (~3 CPU-minutes)
    python benchmarks/inference.py --repeats 2 --threads 2 --num_sentences 128
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import platform  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForSeq2SeqLM, HfArgumentParser  # noqa: E402

from tall_hf import TallForCausalLM, TallPredictor, TallProcessor  # noqa: E402
from tall_hf.resources import corpus_path  # noqa: E402
from tall_hf.testing import build_tiny_components  # noqa: E402
from tall_hf.testing.reference import reference_continue_text, reference_next_words  # noqa: E402
from tall_hf.utils.text import split_last_word  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hebrew" / "svlm_wiki_50k.txt"


@dataclass
class InferenceBenchmarkArguments:
    num_sentences: int = field(default=64, metadata={"help": "Sentences to predict for / continue."})
    num_words: int = field(default=5, metadata={"help": "Words of the continuation."})
    batch_size: int = field(default=16, metadata={"help": "Batch size of the default path."})
    repeats: int = field(default=1, metadata={"help": "Timed runs per path (interleaved); the fastest counts."})
    threads: int = field(default=1, metadata={"help": "torch threads (1 keeps timings stable on a shared machine)."})
    data: str = field(
        default=str(DEFAULT_DATA),
        metadata={"help": "One Hebrew sentence per line; the package's shipped corpus when the file is absent."},
    )
    llm: str = field(default="qwen2", metadata={"help": "Tiny LLM family: qwen2, llama, bloom or gpt2."})
    cache_dir: str = field(
        default=os.path.join(tempfile.gettempdir(), "tall_hf_tiny"), metadata={"help": "Where the tiny components go."}
    )


class PeakMemory:
    """Peak resident memory of this process while the block runs, above its resident memory at the start (sampled
    from /proc every 5 ms; on systems without /proc, the process's lifetime peak from `getrusage`)."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._statm = Path(f"/proc/{os.getpid()}/statm")
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def _rss(self) -> int:
        return int(self._statm.read_text().split()[1]) * self._page

    def __enter__(self) -> PeakMemory:
        self._running = self._statm.exists()
        if self._running:
            self._start = self._peak = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self._peak = max(self._peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        if self._running:
            self._running = False
            self._thread.join()
            self._peak = max(self._peak, self._rss())
            self.peak_mib = (self._peak - self._start) / 2**20
        else:
            self.peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_sentences(path: str, count: int) -> tuple[list[str], str]:
    """The first `count` lines of at least two words, from `path` or else the shipped Hebrew corpus."""
    source = Path(path) if Path(path).is_file() else corpus_path("hebrew")
    sentences = []
    with open(source, encoding="utf-8") as handle:
        for line in handle:
            if len(line.split()) >= 2:
                sentences.append(" ".join(line.split()))
            if len(sentences) == count:
                break
    if len(sentences) < count:
        raise ValueError(f"{source} holds only {len(sentences)} sentences of two words or more; {count} requested.")
    return sentences, str(source)


def time_paths(paths: dict[str, Callable[[], list[str]]], repeats: int) -> dict[str, dict]:
    """Run every path `repeats` times, interleaved; keep the fastest wall and CPU times (the CPU time of the thread
    running the models), the outputs and the peak memory."""
    results: dict[str, dict] = {name: {"wall": float("inf"), "cpu": float("inf"), "peak_mib": 0.0} for name in paths}
    for _ in range(repeats):
        for name, run in paths.items():
            with PeakMemory() as memory:
                wall, cpu = time.perf_counter(), time.thread_time()
                outputs = run()
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            result = results[name]
            result["wall"], result["cpu"] = min(result["wall"], wall), min(result["cpu"], cpu)
            result["peak_mib"] = max(result["peak_mib"], memory.peak_mib)
            result["outputs"] = outputs
    return results


def report(title: str, results: dict[str, dict], count: int, clock: str) -> float:
    """Print a table of the paths and the two sources of gain; return the default path's speedup on `clock`."""
    rates = {name: count / result[clock] for name, result in results.items()}
    print(f"\n## {title} ({count} sentences)\n")
    print("| path | wall s | sentences/s (wall) | CPU s | sentences/CPU-s | peak RSS above models (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, result in results.items():
        print(
            f"| {name} | {result['wall']:.2f} | {count / result['wall']:.2f} | {result['cpu']:.2f} | "
            f"{rates[name]:.2f} | {result['peak_mib']:.1f} |"
        )
    wall_speedup = results["reference, batch 1"]["wall"] / results["default (per-word, cached, batched)"]["wall"]
    per_word = rates["per-word, cached, batch 1"] / rates["reference, batch 1"]
    batching = rates["default (per-word, cached, batched)"] / rates["per-word, cached, batch 1"]
    speedup = rates["default (per-word, cached, batched)"] / rates["reference, batch 1"]
    print(f"\nper-word + cache vs per-token reference (batch 1): {per_word:.2f}x")
    print(f"batching (default vs batch 1, both cached): {batching:.2f}x")
    print(
        f"total speedup (default vs reference): {speedup:.2f}x on the {clock} clock (wall clock: {wall_speedup:.2f}x)"
    )
    return speedup


def main() -> None:
    args = HfArgumentParser(InferenceBenchmarkArguments).parse_args_into_dataclasses()[0]
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    paths = build_tiny_components(args.cache_dir, llm=args.llm)
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**paths)
    processor = TallProcessor.from_components(**paths)
    translator = AutoModelForSeq2SeqLM.from_pretrained(paths["lr_hr"])
    predictor = TallPredictor(model, processor, translator)
    sentences, source = read_sentences(args.data, args.num_sentences)
    prefixes = [split_last_word(sentence)[0] for sentence in sentences]

    print("# TALL inference benchmark (tiny components, random weights)\n")
    print(f"- data: {source}, {len(prefixes)} sentences; continuation of {args.num_words} words")
    print(f"- torch {torch.__version__}, transformers {transformers.__version__}, {platform.machine()} CPU")
    print(f"- {args.threads} torch thread(s); fastest of {args.repeats} interleaved run(s) per path")

    predictor.predict_next_word(prefixes[:4], batch_size=2)  # warm-up
    reference_next_words(model, processor, prefixes[:2], translator=translator)

    def next_word(batch_size: int, use_cache: bool) -> Callable[[], list[str]]:
        if not use_cache:
            return lambda: reference_next_words(
                model, processor, prefixes, batch_size=batch_size, translator=translator
            )
        return lambda: predictor.predict_next_word(prefixes, batch_size=batch_size)

    def continuation(batch_size: int, use_cache: bool) -> Callable[[], list[str]]:
        if not use_cache:
            return lambda: reference_continue_text(
                model, processor, prefixes, args.num_words, batch_size=batch_size, translator=translator
            )
        return lambda: predictor.continue_text(prefixes, args.num_words, batch_size=batch_size)

    summaries = {}
    checks = {}
    for title, make in (("next-word prediction", next_word), (f"{args.num_words}-word continuation", continuation)):
        results = time_paths(
            {
                "reference, batch 1": make(1, False),
                "per-word, cached, batch 1": make(1, True),
                "default (per-word, cached, batched)": make(args.batch_size, True),
            },
            args.repeats,
        )
        summaries[title] = report(title, results, len(prefixes), "cpu" if args.threads == 1 else "wall")
        reference = results["reference, batch 1"]["outputs"]
        checks[title] = (
            reference == results["per-word, cached, batch 1"]["outputs"],
            reference == results["default (per-word, cached, batched)"]["outputs"],
        )
        print(f"greedy outputs, cached vs reference at batch 1 identical: {checks[title][0]}")
        print(f"greedy outputs, batched vs reference identical: {checks[title][1]}")

    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak RSS (models included): {lifetime_peak:.0f} MiB\n")
    next_word_speedup, continuation_speedup = summaries.values()
    print(f"identical={all(check[0] for check in checks.values())}")
    print(f"next_word_speedup={next_word_speedup:.2f}")
    print(f"continuation_speedup={continuation_speedup:.2f}")


if __name__ == "__main__":
    main()

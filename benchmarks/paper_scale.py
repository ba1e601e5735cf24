"""TALL at the paper's scale: the published component shapes (`../shared/design/paper_components/`), random weights
materialised on the chosen device, measured side by side in one run.

1. Training step (forward, backward, gradient clipping, AdamW step) at batch 8 with 128 tokens in each of the three
   streams (the paper's maximum sequence length): the package's forward, whose LM head runs only at the position the
   `last_token` loss reads, against the straightforward forward that computes LR logits at
   every target position (as the paper's reference does). Samples/s from the two variants' steps interleaved in one
   process; peak memory from a fresh subprocess per variant (peak RSS on CPU, reset after the model is built, so it
   counts the step: weights, gradients, optimizer state and activations; `max_memory_allocated` on GPU).
2. Next-word prediction and an N-word continuation, the package's default path (per word, cached, batched) against the
   paper's uncached algorithm (per token: translate the prefix again and run all seven stages; batch 1), greedy. The
   components have the paper's widths and depths but the tiny components' tokenizers and vocabularies (no hub here,
   and the random model's words must decode).
3. Data-preparation translation with the LR->HR translator at its real shape (vocabulary included, 4 beams, as the
   Marian checkpoints' generation configs): the package's batching (`tall_hf.data.translation.translate`: sorted by
   length, token budget) against today's (32 sentences per `generate` call in input order). Random weights never
   stop on their own, so every sentence gets a fixed output length derived from its own length in words
   (`--tokens_per_word`), the same in both ways; its source tokens come from the tiny 400-piece tokenizer.

With one torch thread (the default) the ratios use the CPU time of this process's work, robust to other processes on a
shared machine; wall-clock figures are printed beside them.

    python benchmarks/paper_scale.py --steps 3                    # CPU, float32, bloomz-560m TALL
    python benchmarks/paper_scale.py --device cuda --dtype bfloat16 --llm qwen2.5-0.5b --steps 20
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from inference import read_sentences, time_paths  # noqa: E402  (benchmarks/inference.py)
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    GenerationConfig,
    HfArgumentParser,
    LogitsProcessor,
    LogitsProcessorList,
    PretrainedConfig,
)

from tall_hf import TallForCausalLM, TallPredictor, TallProcessor  # noqa: E402
from tall_hf.data import clean_sentences  # noqa: E402
from tall_hf.data.translation import translate  # noqa: E402
from tall_hf.modules.losses import last_token_cross_entropy  # noqa: E402
from tall_hf.testing import build_tiny_components  # noqa: E402
from tall_hf.testing.reference import reference_continue_text, reference_next_words  # noqa: E402
from tall_hf.utils.text import split_last_word  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
LLMS = {"bloomz-560m": "bloom", "qwen2.5-0.5b": "qwen2"}  # paper LLM -> tiny family with matching tokenizers
LR_HR, HR_LR = "opus-mt-tc-big-he-en", "opus-mt-en-he"
SPECIAL_IDS = ("vocab_size", "decoder_vocab_size", "pad_token_id", "eos_token_id", "bos_token_id")
SPECIAL_IDS += ("decoder_start_token_id", "forced_eos_token_id")


@dataclass
class PaperScaleArguments:
    steps: int = field(default=3, metadata={"help": "Timed training steps per variant (after one warm-up step)."})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda.", "choices": ["cpu", "cuda"]})
    dtype: str = field(default="float32", metadata={"help": "Weights' dtype.", "choices": ["float32", "bfloat16"]})
    bf16_autocast: bool = field(
        default=False, metadata={"help": "Training under bf16 autocast, float32 weights (what Trainer's --bf16 does)."}
    )
    llm: str = field(default="bloomz-560m", metadata={"help": "The paper's LLM.", "choices": list(LLMS)})
    batch_size: int = field(default=8, metadata={"help": "Training batch size."})
    stream_length: int = field(default=128, metadata={"help": "Tokens per stream (the paper's max length: 128)."})
    num_sentences: int = field(default=4, metadata={"help": "Sentences of the inference comparison."})
    num_words: int = field(default=5, metadata={"help": "Words of the continuation."})
    inference_batch_size: int = field(default=8, metadata={"help": "Batch size of the default inference path."})
    num_translations: int = field(default=64, metadata={"help": "Sentences of the translation comparison."})
    translation_repeats: int = field(
        default=2, metadata={"help": "Interleaved runs of each batching; fastest counts."}
    )
    tokens_per_word: float = field(default=1.5, metadata={"help": "Translation output tokens per source word."})
    parts: str = field(default="train,inference,translation", metadata={"help": "Comma-separated parts to run."})
    threads: int = field(default=1, metadata={"help": "torch threads (1: ratios of CPU time, stable under load)."})
    components: str = field(default=str(SHARED / "design" / "paper_components"))
    data: str = field(
        default=f"{SHARED / 'data' / 'hebrew' / 'svlm_wiki_50k.txt'},{SHARED / 'data' / 'hebrew' / 'ynet_news_999.txt'}",
        metadata={
            "help": "Hebrew corpora (comma-separated): translation draws equal shares of each, inference reads the first."
        },
    )
    cache_dir: str = field(default=os.path.join(tempfile.gettempdir(), "tall_hf_tiny"))
    worker: str = field(default="", metadata={"help": "Internal: run one training variant in this process."})


# ---------------------------------------------------------------------------------------------------- components
def paper_config(args: PaperScaleArguments, name: str, like: PretrainedConfig | None = None) -> PretrainedConfig:
    """A published config; with `like`, its vocabulary and special token ids replaced by `like`'s."""
    fields = json.loads((Path(args.components) / f"{name}.json").read_text())
    fields = {key: value for key, value in fields.items() if not key.startswith("_")}
    if like is not None:
        fields.update({key: getattr(like, key) for key in SPECIAL_IDS if getattr(like, key, None) is not None})
    return AutoConfig.for_model(**fields)


def dtype_of(args: PaperScaleArguments) -> torch.dtype:
    return getattr(torch, args.dtype)


def precision(args: PaperScaleArguments) -> str:
    return f"{args.dtype} weights" + (", bf16 autocast" if args.bf16_autocast else "")


def synchronize(args: PaperScaleArguments) -> None:
    if args.device == "cuda":
        torch.cuda.synchronize()


def clock(args: PaperScaleArguments) -> float:
    """CPU time of this process with one CPU thread, wall time otherwise (several threads, or a GPU)."""
    synchronize(args)
    return time.process_time() if args.threads == 1 and args.device == "cpu" else time.perf_counter()


# ---------------------------------------------------------------------------------------------------- 1. training
def training_batch(model: TallForCausalLM, args: PaperScaleArguments) -> dict[str, torch.Tensor]:
    """Random token ids (pad ids excluded) filling all three streams, labelled like `TallDataCollator` does."""
    generator = torch.Generator().manual_seed(0)
    config, shape = model.config, (args.batch_size, args.stream_length)

    def ids(component: PretrainedConfig) -> torch.Tensor:
        return torch.randint(0, component.vocab_size - 2, shape, generator=generator)

    labels = ids(config.hr_lr_config)
    batch = {
        "input_ids": ids(config.lr_hr_config),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "bridge_input_ids": ids(config.llm_config),
        "bridge_attention_mask": torch.ones(shape, dtype=torch.long),
        "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(labels),
        "decoder_attention_mask": torch.ones(shape, dtype=torch.long),
        "labels": labels,
    }
    return {name: tensor.to(args.device) for name, tensor in batch.items()}


def full_logits_loss(model: TallForCausalLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The straightforward forward: LR logits at every target position, then the last-token loss."""
    encoded = model.encode(
        batch["input_ids"], batch["attention_mask"], batch["bridge_input_ids"], batch["bridge_attention_mask"]
    )
    logits, _ = model.decode(batch["decoder_input_ids"], encoded, batch["decoder_attention_mask"])
    return last_token_cross_entropy(logits, batch["labels"])


VARIANTS: dict[str, Callable[[TallForCausalLM, dict], torch.Tensor]] = {
    "package": lambda model, batch: model(**batch).loss,
    "full_logits": full_logits_loss,
}


def memory_now(args: PaperScaleArguments, key: str = "VmRSS") -> int:
    """Bytes in use (`VmRSS`) or the peak since the last reset (`VmHWM`) on CPU; allocated bytes on GPU."""
    if args.device == "cuda":
        return torch.cuda.max_memory_allocated() if key == "VmHWM" else torch.cuda.memory_allocated()
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) * 1024


def reset_peak_memory(args: PaperScaleArguments) -> None:
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def training_worker(args: PaperScaleArguments) -> dict:
    """One fresh process: build TALL, then the first step of variant `args.worker` under a reset peak-memory
    counter; for the package variant, then the interleaved timed steps of both variants."""
    start = time.perf_counter()
    llm = paper_config(args, args.llm)
    torch.manual_seed(0)  # the same weights and dropout masks in both variants' processes
    with torch.device(args.device):
        model = TallForCausalLM.from_components(
            paper_config(args, LR_HR), llm, paper_config(args, HR_LR), dtype=dtype_of(args)
        ).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    batch = training_batch(model, args)
    build_seconds = time.perf_counter() - start

    def step(variant: str) -> tuple[float, float, float]:
        wall, cpu = time.perf_counter(), clock(args)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16_autocast):
            loss = VARIANTS[variant](model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return clock(args) - cpu, time.perf_counter() - wall, loss.item()

    gc.collect()
    reset_peak_memory(args)
    before = memory_now(args)
    first_loss = step(args.worker)[2]
    result = {
        "variant": args.worker,
        "build_seconds": build_seconds,
        "memory_before": before,
        "peak_memory": memory_now(args, "VmHWM"),
        "first_loss": first_loss,
    }
    if args.worker == "package" and args.steps > 0:  # timing: both variants in this process, interleaved
        step("full_logits")  # its warm-up
        times = {variant: [] for variant in VARIANTS}
        for _ in range(args.steps):
            for variant in VARIANTS:
                times[variant].append(step(variant)[:2])
        result["times"] = times
    return result


def run_worker(args: PaperScaleArguments, variant: str) -> dict:
    command = [sys.executable, __file__, *sys.argv[1:], "--worker", variant]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"The {variant} training worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def training(args: PaperScaleArguments) -> dict[str, float]:
    results = {variant: run_worker(args, variant) for variant in ("full_logits", "package")}
    times = results["package"]["times"]
    samples = args.batch_size * args.steps
    print(f"\n## Training step: batch {args.batch_size}, {args.stream_length} tokens per stream, {precision(args)}\n")
    print("| forward | samples/s (wall) | samples/CPU-s | peak memory (MiB) | above the built model (MiB) | loss |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for variant, result in results.items():
        cpu, wall = (sum(t[i] for t in times[variant]) for i in (0, 1))
        result["rate"] = samples / cpu
        result["wall_rate"] = samples / wall
        above = result["peak_memory"] - result["memory_before"]
        print(
            f"| {variant} | {samples / wall:.3f} | {samples / cpu:.3f} | {result['peak_memory'] / 2**20:,.0f} | "
            f"{above / 2**20:,.0f} | {result['first_loss']:.4f} |"
        )
    package, full = results["package"], results["full_logits"]
    print(
        f"\nbuild time per process: {package['build_seconds']:.0f} s; same first-step loss: "
        f"{math.isclose(package['first_loss'], full['first_loss'], rel_tol=1e-4)}"
    )
    return {
        "train_speedup": package["rate"] / full["rate"],
        "train_wall_speedup": package["wall_rate"] / full["wall_rate"],
        "train_memory_ratio": package["peak_memory"] / full["peak_memory"],
        "train_step_memory_ratio": (package["peak_memory"] - package["memory_before"])
        / (full["peak_memory"] - full["memory_before"]),
        "train_samples_per_s": package["rate"],
        "full_logits_samples_per_s": full["rate"],
        "train_peak_mib": package["peak_memory"] / 2**20,
        "full_logits_peak_mib": full["peak_memory"] / 2**20,
    }


# ---------------------------------------------------------------------------------------------------- 2. inference
def inference(args: PaperScaleArguments) -> dict[str, float]:
    """Paper widths and depths, the tiny components' tokenizers and vocabularies."""
    paths = build_tiny_components(args.cache_dir, llm=LLMS[args.llm])
    tiny = {role: AutoConfig.from_pretrained(path) for role, path in paths.items()}
    torch.manual_seed(0)
    with torch.device(args.device):
        translator = AutoModelForSeq2SeqLM.from_config(paper_config(args, LR_HR, tiny["lr_hr"]), dtype=dtype_of(args))
        translator.generation_config = GenerationConfig.from_pretrained(paths["lr_hr"])
        model = TallForCausalLM.from_components(
            translator,
            paper_config(args, args.llm, tiny["llm"]),
            paper_config(args, HR_LR, tiny["hr_lr"]),
            dtype=dtype_of(args),
        )
    processor = TallProcessor.from_components(**paths)
    predictor = TallPredictor(model, processor, translator)
    sentences, source = read_sentences(args.data.split(",")[0], args.num_sentences)
    prefixes = [split_last_word(sentence)[0] for sentence in sentences]
    print(f"\n## Inference ({len(prefixes)} sentences of {source}; paper widths, tiny vocabularies)\n")
    predictor.predict_next_word(prefixes[:2], batch_size=2)  # warm-up
    # The paper's algorithm (uncached, per token) is tall_hf.testing.reference; the default path TallPredictor over
    # generate (which translates on every call).
    tasks = {
        "next_word": lambda size, cache: (
            predictor.predict_next_word(prefixes, batch_size=size)
            if cache
            else reference_next_words(model, processor, prefixes, batch_size=size, translator=translator)
        ),
        "continuation": lambda size, cache: (
            predictor.continue_text(prefixes, args.num_words, batch_size=size)
            if cache
            else reference_continue_text(
                model, processor, prefixes, args.num_words, batch_size=size, translator=translator
            )
        ),
    }
    key = "cpu" if args.threads == 1 and args.device == "cpu" else "wall"
    figures, identical = {}, True
    for task, run in tasks.items():
        results = time_paths(
            {
                "paper": functools.partial(run, 1, False),
                "default": functools.partial(run, args.inference_batch_size, True),
            },
            repeats=1,
        )
        paper, default = results["paper"], results["default"]
        same = paper["outputs"] == default["outputs"]
        identical &= same
        print(
            f"- {task} ({args.num_words if task == 'continuation' else 1} word(s)): paper's algorithm (uncached, batch "
            f"1) {len(prefixes) / paper[key]:.3f} sentences/s, default {len(prefixes) / default[key]:.3f} sentences/s "
            f"({key} time): {paper[key] / default[key]:.2f}x (wall {paper['wall'] / default['wall']:.2f}x); "
            f"identical words: {same}"
        )
        figures[f"{task}_speedup"] = paper[key] / default[key]
    return {"identical": identical, **figures}


# ---------------------------------------------------------------------------------------------------- 3. translation
class FixedLengths(LogitsProcessor):
    """Random weights never end a translation: end row `i` after exactly `lengths[i]` tokens (EOS included) and keep
    every token within the tokenizer's vocabulary, so both batchings do the same work per sentence."""

    def __init__(self, lengths: torch.Tensor, eos_token_id: int, vocabulary: int) -> None:
        self.lengths, self.eos, self.vocabulary = lengths, eos_token_id, vocabulary

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids.shape[1]  # the decoder start token and the tokens so far: this one is number `generated`
        scores[:, self.vocabulary :] = -math.inf
        ending = self.lengths.eq(generated)
        scores[:, self.eos] = -math.inf
        scores[ending] = -math.inf
        scores[ending, self.eos] = 0.0
        return scores


def translation(args: PaperScaleArguments) -> dict[str, float]:
    paths = build_tiny_components(args.cache_dir, llm=LLMS[args.llm])
    tokenizer = AutoTokenizer.from_pretrained(paths["lr_hr"])
    tiny = AutoConfig.from_pretrained(paths["lr_hr"])
    config = paper_config(args, LR_HR)
    for key in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
        setattr(config, key, getattr(tiny, key))  # ids the tiny tokenizer decodes; the vocabulary stays 60,269
    torch.manual_seed(0)
    with torch.device(args.device):
        model = AutoModelForSeq2SeqLM.from_config(config, dtype=dtype_of(args)).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        pad_token_id=config.pad_token_id,
        eos_token_id=config.eos_token_id,
        num_beams=4,
        max_length=512,
    )
    files = args.data.split(",")
    prefixes = [  # equal shares of each corpus, drawn at random: their sentence lengths, in random order
        prefix
        for path in files
        for prefix in random.Random(0).sample(
            clean_sentences(Path(path).read_text(encoding="utf-8").splitlines()).prefixes,
            args.num_translations // len(files),
        )
    ]
    random.Random(0).shuffle(prefixes)
    length_of = {  # each sentence's output length, from its own length in words (the same in both batchings)
        tuple(ids): math.ceil(args.tokens_per_word * len(prefix.split())) + 1
        for prefix, ids in zip(prefixes, tokenizer(prefixes, truncation=True)["input_ids"], strict=True)
    }
    generate = model.generate

    def generate_fixed_lengths(input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        rows = [tuple(row[mask.bool()].tolist()) for row, mask in zip(input_ids, attention_mask, strict=True)]
        beams = kwargs.get("num_beams") or model.generation_config.num_beams
        lengths = torch.tensor([length_of[row] for row in rows], device=input_ids.device).repeat_interleave(beams)
        processor = FixedLengths(lengths, config.eos_token_id, len(tokenizer))
        return generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            logits_processor=LogitsProcessorList([processor]),
            **kwargs,
        )

    model.generate = generate_fixed_lengths

    def todays_batching() -> list[str]:  # 32 sentences per call, in input order (the package before this change)
        outputs = []
        for start in range(0, len(prefixes), 32):
            inputs = tokenizer(prefixes[start : start + 32], padding=True, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                generated = model.generate(**inputs.to(args.device))
            outputs.extend(text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True))
        return outputs

    translate(prefixes[:4], model, tokenizer)  # warm-up
    results = time_paths(
        {"today's": todays_batching, "package": lambda: translate(prefixes, model, tokenizer)},
        args.translation_repeats,
    )
    key = "cpu" if args.threads == 1 and args.device == "cpu" else "wall"
    source_lengths = [len(ids) for ids in length_of]
    print(
        f"\n## Translation ({len(prefixes)} prefixes drawn at random, equal shares of {args.data}; {sum(source_lengths) / len(source_lengths):.1f} "
        f"source tokens and {sum(length_of.values()) / len(length_of):.1f} output tokens on average, 4 beams)\n"
    )
    for name, result in results.items():
        print(f"- {name}: {len(prefixes) / result[key]:.3f} sentences/s ({key} time), wall {result['wall']:.1f} s")
    same = results["today's"]["outputs"] == results["package"]["outputs"]
    print(f"- identical translations: {same}")
    return {
        "translation_speedup": results["today's"][key] / results["package"][key],
        "translation_wall_speedup": results["today's"]["wall"] / results["package"]["wall"],
        "translation_identical": same,
    }


def main() -> None:
    args = HfArgumentParser(PaperScaleArguments).parse_args_into_dataclasses()[0]
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    if args.worker:
        print(json.dumps(training_worker(args)))
        return
    parts = args.parts.split(",")
    print(f"# TALL at the paper's scale ({args.llm}, {args.device}, {precision(args)})\n")
    print(
        f"- torch {torch.__version__}, transformers {transformers.__version__}, {platform.machine()}, "
        f"{args.threads} torch thread(s), load average {os.getloadavg()[0]:.1f} at the start"
    )
    start = time.perf_counter()
    figures = {}
    for name, part in (("train", training), ("inference", inference), ("translation", translation)):
        if name in parts:
            figures.update(part(args))
            gc.collect()
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.1f} at the end\n")
    for key, value in figures.items():
        print(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")


if __name__ == "__main__":
    main()

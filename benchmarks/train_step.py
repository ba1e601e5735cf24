"""Training throughput of TALL through the package's `Trainer` against a bare PyTorch loop.

Both train the same model (the tiny components) on the same prepared data, with the same collator
(`TallDataCollator`), batch size, optimizer (fused AdamW, Trainer's default), gradient clipping and cosine schedule.
The difference is what the package adds around the step: `Trainer` with `create_tall_trainer`'s wiring (accelerate,
callbacks, its data loader). Saving, logging and evaluation are switched off so only the training step is compared.

Each repeat runs a Trainer segment, then a bare segment; each segment runs untimed warm-up steps first, then times
`timed_steps` steps (data loading included). The fastest segment of each kind counts.

    python benchmarks/train_step.py               # batch 8, 3 repeats of 40 timed steps, 1 thread
    python benchmarks/train_step.py --repeats 5 --threads 2
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import itertools  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSeq2SeqLM,
    HfArgumentParser,
    PrinterCallback,
    TrainerCallback,
    get_cosine_schedule_with_warmup,
)

from tall_hf import TallForConditionalGeneration, TallProcessor  # noqa: E402
from tall_hf.data import PreparationArguments, TallDataCollator, prepare_tall_dataset  # noqa: E402
from tall_hf.resources import corpus_path  # noqa: E402
from tall_hf.testing import build_tiny_components  # noqa: E402
from tall_hf.training import create_tall_trainer, tall_training_arguments  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hebrew" / "svlm_wiki_50k.txt"


@dataclass
class TrainStepBenchmarkArguments:
    num_sentences: int = field(default=512, metadata={"help": "Hebrew lines read (filtered to 5-30 words)."})
    batch_size: int = field(default=8, metadata={"help": "Training batch size of both loops."})
    warmup_steps: int = field(default=5, metadata={"help": "Untimed steps at the start of every segment."})
    timed_steps: int = field(default=40, metadata={"help": "Timed steps per segment."})
    repeats: int = field(default=3, metadata={"help": "Trainer/bare segment pairs, interleaved."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of both loops."})
    threads: int = field(default=1, metadata={"help": "torch threads (1 keeps timings stable on a shared machine)."})
    data: str = field(
        default=str(DEFAULT_DATA),
        metadata={"help": "One Hebrew sentence per line; the package's shipped corpus when the file is absent."},
    )
    llm: str = field(default="qwen2", metadata={"help": "Tiny LLM family: qwen2, llama, bloom or gpt2."})
    cache_dir: str = field(
        default=os.path.join(tempfile.gettempdir(), "tall_hf_tiny"),
        metadata={"help": "Where the tiny components and the prepared data go."},
    )


def clocks() -> tuple[float, float]:
    """(wall, CPU) time of this process."""
    return time.perf_counter(), time.process_time()


def elapsed(started: tuple[float, float]) -> tuple[float, float]:
    return tuple(now - then for now, then in zip(clocks(), started, strict=True))


class StepTimer(TrainerCallback):
    """Wall and CPU time from the end of step `start_step` to the end of step `end_step` of a Trainer run."""

    def __init__(self, start_step: int, end_step: int) -> None:
        self.start_step, self.end_step = start_step, end_step
        self.started = self.seconds = None

    def on_step_end(self, args, state, control, **kwargs) -> None:
        if state.global_step == self.start_step:
            self.started = clocks()
        elif state.global_step == self.end_step:
            self.seconds = elapsed(self.started)


def read_lines(path: str, count: int) -> tuple[list[str], str]:
    source = Path(path) if Path(path).is_file() else corpus_path("hebrew")
    with open(source, encoding="utf-8") as handle:
        return [line.strip() for line in itertools.islice(handle, count)], str(source)


def trainer_segment(
    model, processor, dataset, args: TrainStepBenchmarkArguments, output_dir: str
) -> tuple[float, float]:
    """Samples/s (wall, CPU) of `timed_steps` steps of the package's Trainer, after `warmup_steps` untimed steps."""
    total = args.warmup_steps + args.timed_steps
    timer = StepTimer(args.warmup_steps, total)
    training_args = tall_training_arguments(
        output_dir,
        max_steps=total,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=0,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        load_best_model_at_end=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=True,
        report_to="none",
    )
    trainer = create_tall_trainer(model, processor, training_args, train_dataset=dataset, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # logging is off; it would still print the final metrics
    trainer.train()
    return tuple(args.timed_steps * args.batch_size / seconds for seconds in timer.seconds)


def bare_segment(model, processor, dataset, args: TrainStepBenchmarkArguments, seed: int) -> tuple[float, float]:
    """Samples/s (wall, CPU) of the same steps written by hand: forward, backward, clipping, optimizer and schedule."""
    total = args.warmup_steps + args.timed_steps
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.learning_rate, weight_decay=0.01, fused=True)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=total)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=TallDataCollator(processor, loss_mode=model.config.loss_mode),
        generator=torch.Generator().manual_seed(seed),
    )
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    model.train()
    started = None
    for step in range(total):
        if step == args.warmup_steps:
            started = clocks()
        batch = next(batches)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return tuple(args.timed_steps * args.batch_size / seconds for seconds in elapsed(started))


def main() -> None:
    args = HfArgumentParser(TrainStepBenchmarkArguments).parse_args_into_dataclasses()[0]
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    paths = build_tiny_components(args.cache_dir, llm=args.llm)
    processor = TallProcessor.from_components(**paths)
    lines, source = read_lines(args.data, args.num_sentences)
    dataset = prepare_tall_dataset(
        lines,
        processor,
        AutoModelForSeq2SeqLM.from_pretrained(paths["lr_hr"]),
        PreparationArguments(cache_dir=os.path.join(args.cache_dir, "prepared")),
    )
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**paths)

    print("# TALL training-step benchmark (tiny components)\n")
    print(f"- data: {source}, {len(dataset)} prepared sentences; batch size {args.batch_size}")
    print(f"- torch {torch.__version__}, transformers {transformers.__version__}, {platform.machine()} CPU")
    print(f"- {args.threads} torch thread(s); {args.repeats} interleaved repeats per loop")
    print(f"- each segment: {args.warmup_steps} untimed warm-up steps, then {args.timed_steps} timed steps\n")
    print("| repeat | Trainer samples/s (wall) | bare samples/s (wall) | Trainer samples/CPU-s | bare samples/CPU-s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    trainer_rates, bare_rates = [], []
    with tempfile.TemporaryDirectory() as output_dir:
        for repeat in range(args.repeats):
            trainer_rates.append(trainer_segment(model, processor, dataset, args, output_dir))
            bare_rates.append(bare_segment(model, processor, dataset, args, seed=repeat))
            (trainer_wall, trainer_cpu), (bare_wall, bare_cpu) = trainer_rates[-1], bare_rates[-1]
            print(f"| {repeat + 1} | {trainer_wall:.1f} | {bare_wall:.1f} | {trainer_cpu:.1f} | {bare_cpu:.1f} |")
    ratios = {}
    for index, clock in enumerate(("wall", "CPU")):
        trainer_best = max(rate[index] for rate in trainer_rates)
        bare_best = max(rate[index] for rate in bare_rates)
        median = statistics.median(rate[index] for rate in trainer_rates) / statistics.median(
            rate[index] for rate in bare_rates
        )
        ratios[clock] = trainer_best / bare_best
        print(
            f"\n{clock} clock: fastest Trainer {trainer_best:.1f}, fastest bare loop {bare_best:.1f} samples/s; "
            f"ratio {ratios[clock]:.3f} (ratio of medians {median:.3f})"
        )
    print("\nthroughput_ratio is the CPU-clock ratio: on a shared machine, CPU time counts the work each loop does,")
    print("while wall time also counts other processes; on an idle machine with one thread the two agree.\n")
    print(f"throughput_ratio={ratios['CPU']:.3f}")


if __name__ == "__main__":
    main()

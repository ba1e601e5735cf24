"""`tall-hf`: the package's command line. Each subcommand parses its own dataclasses with `HfArgumentParser`.

Imports are lazy: `tall-hf --help` and `tall-hf --version` load neither torch nor transformers, and each command
imports only what it runs.
"""

from __future__ import annotations

import errno
import logging as pylogging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from . import __version__
from .utils.logging import is_verbose, set_verbose

# Errors a user can fix (a bad option value, a missing file or model): one line on stderr instead of a traceback.
EXIT_CODES: dict[type[BaseException], int] = {ValueError: 2, FileNotFoundError: 1, OSError: 1}
# What `transformers.utils.logging.get_logger` returns, without importing transformers for `--help`.
logger = pylogging.getLogger(__name__)


@dataclass
class PredictArguments:
    """`tall-hf predict --model DIR "sentence" ...`: the next word of each sentence (from arguments, a file or stdin)."""

    model: str = field(metadata={"help": "A saved TALL model: a local folder or a hub id."})
    file: str | None = field(default=None, metadata={"help": "Read sentences from this file, one per line."})
    translator: str | None = field(
        default=None,
        metadata={
            "help": "Another LR->HR translator, whole (default: the model's own: stage 1 and the decoder side in the "
            "checkpoint's translator/ or of the lr_hr component its config records)."
        },
    )
    num_words: int = field(default=1, metadata={"help": "How many words to continue each sentence with."})
    do_sample: bool = field(
        default=False, metadata={"help": "Sample with the paper's settings (tall_hf.generation.SAMPLING)."}
    )
    seed: int | None = field(default=None, metadata={"help": "Seed for sampling."})
    batch_size: int = field(default=16, metadata={"help": "Sentences per batch."})


def predict(argv: list[str]) -> int:
    """Print the predicted next word(s) of every sentence, one per line."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(PredictArguments, prog="tall-hf predict", description=predict.__doc__)
    args, sentences = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    unknown = [text for text in sentences if text.startswith("--")]
    if unknown:
        parser.error(f"unknown options: {' '.join(unknown)}")
    for name in ("num_words", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.file:
        from .data.text_files import read_text_lines

        # One row a line, blank lines kept (their answers stay blank); a missing or undecodable file is main's
        # one-line error naming it.
        lines = read_text_lines(args.file)
        if not lines:
            parser.error(f"{args.file!r} is empty: no sentences to predict.")
        sentences += lines
    elif not sentences and not sys.stdin.isatty():
        sentences = sys.stdin.read().splitlines()
    from .utils.text import words

    if not any(words(sentence) for sentence in sentences):
        parser.error("no sentences: pass them as arguments, with --file, or on standard input.")
    from .generation import TallPredictor

    predictor = TallPredictor.from_pretrained(args.model, translator=args.translator)
    options = {"batch_size": args.batch_size, "do_sample": args.do_sample, "seed": args.seed}
    # One output line per input line: a blank line (nothing to read, invisible marks only) gets a blank answer.
    readable = [index for index, sentence in enumerate(sentences) if words(sentence)]
    if len(readable) < len(sentences):
        logger.warning(
            f"{len(sentences) - len(readable)} blank lines (or lines of invisible marks) get blank answers."
        )
    texts = [sentences[index] for index in readable]
    if args.num_words == 1:
        words = predictor.predict_next_word(texts, **options)
    else:
        words = predictor.continue_text(texts, num_words=args.num_words, **options)
    answers = [""] * len(sentences)
    for index, word in zip(readable, words, strict=True):
        answers[index] = word
    for answer in answers:
        print(answer)
    return 0


@dataclass
class PushArguments:
    """`tall-hf push --model DIR --repo_id you/tall-he`: upload a saved TALL with its processor and model card."""

    model: str = field(metadata={"help": "A saved TALL model folder (full or adapters-only)."})
    repo_id: str = field(metadata={"help": "The hub repository to create or update, e.g. you/tall-he."})
    adapters_only: bool = field(
        default=False, metadata={"help": "Upload only the trainable weights; the components are fetched by id."}
    )
    language: list[str] = field(default_factory=lambda: ["he", "en"], metadata={"help": "Languages, for the card."})
    license: str | None = field(default=None, metadata={"help": "License id of the checkpoint, for the card."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to."})
    commit_message: str | None = field(default=None, metadata={"help": "Message of the upload commit."})


def _parse(dataclasses, argv: list[str], prog: str, description: str | None, defaults: dict | None = None):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclasses, prog=prog, description=description)
    if defaults:
        parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(argv)


def train(argv: list[str]) -> int:
    """Train TALL on low-resource text with Trainer (resumes from the last complete checkpoint)."""
    from .data import PreparationArguments
    from .tiny import TinyComponentsArguments
    from .training.recipes import parser_training_defaults
    from .training.run import TallDataArguments, TallModelArguments, run_training
    from .training.time_limit import TallTrainingArguments

    *job, tiny = _parse(
        (TallModelArguments, TallDataArguments, PreparationArguments, TallTrainingArguments, TinyComponentsArguments),
        argv,
        "tall-hf train",
        train.__doc__,
        parser_training_defaults(argv),
    )
    tiny.fill(job[0])
    run_training(*job)
    return 0


def evaluate(argv: list[str]) -> int:
    """Evaluate the paper's six approaches on last-word prediction and write the Table-1 report."""
    from .evaluation import LastWordEvaluationArguments, run_last_word_evaluation
    from .tiny import TinyComponentsArguments
    from .training.time_limit import TallTrainingArguments

    eval_args, training_args, tiny = _parse(
        (LastWordEvaluationArguments, TallTrainingArguments, TinyComponentsArguments),
        argv,
        "tall-hf evaluate",
        evaluate.__doc__,
        {"report_to": "none"},
    )
    tiny.fill(eval_args)
    report = run_last_word_evaluation(eval_args, training_args)
    print(report.to_markdown())
    return 0


def demo(argv: list[str]) -> int:
    """Run the main job offline on a known-answer world: build it, train TALL and the baselines, evaluate, report."""
    if "--bridge" in argv:
        return bridge_demo([arg for arg in argv if arg != "--bridge"])
    from .demo import REAL_MODELS_HINT, DemoArguments, run_demo, tall_dir

    (args,) = _parse(DemoArguments, argv, "tall-hf demo", demo.__doc__)
    report = run_demo(args)
    first = tall_dir(args.output_dir, args.seed)
    logger.info(
        f"Report, predictions and plot: {args.output_dir}/evaluation   Trained TALL: {first.parent}/seed-*\n"
        f'Try: tall-hf predict --model {first} "<a prefix from {args.output_dir}/worlds/*/data/test.txt>"\n'
        f"{REAL_MODELS_HINT}"
    )
    print(report.to_markdown())  # last: the table is what standard output ends with
    return 0


def bridge_demo(argv: list[str]) -> int:
    """`tall-hf demo --bridge`: the bridge world, a bridge per fusion trained on HR only, HR and zero-shot LR tables."""
    from .demo_bridge import BridgeDemoArguments, run_bridge_demo

    (args,) = _parse(BridgeDemoArguments, argv, "tall-hf demo --bridge", bridge_demo.__doc__)
    reports = run_bridge_demo(args)
    for report in reports.values():
        print(report.to_markdown())
    print(f"Tables: {args.output_dir}/evaluation   Bridges and layer-weight plots: {args.output_dir}/bridge/<fusion>")
    return 0


def push(argv: list[str]) -> int:
    """Upload a saved TALL (full or adapters-only) with its processor and a model card to the hub."""
    from functools import partial

    from .adapters import load_checkpoint, push_checkpoint
    from .hub import ModelCardInfo
    from .models.tall import TallForConditionalGeneration, TallProcessor

    (args,) = _parse(PushArguments, argv, "tall-hf push", push.__doc__)
    from .utils.loading import load_pretrained

    load = partial(load_checkpoint, TallForConditionalGeneration)  # full or adapters-only
    model = load_pretrained(TallForConditionalGeneration, args.model, role="TALL model", load=load)
    processor = load_pretrained(TallProcessor, args.model, role="TALL processor")
    url = push_checkpoint(
        model,
        args.repo_id,
        adapters_only=args.adapters_only,
        processor=processor,
        model_card=ModelCardInfo(language=args.language, license=args.license),
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
    )
    print(url)
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "demo": demo,
    "train": train,
    "evaluate": evaluate,
    "predict": predict,
    "push": push,
}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


_DISK_FULL_HINT = (
    "the disk is full or the folder cannot be written: free space (or pass another --output_dir) and run again; "
    "training resumes from its last complete checkpoint"
)


def user_error(error: BaseException) -> tuple[int, str] | None:
    """`(exit code, one line)` for an error a user can cause and fix (a bad value, a missing or damaged file, a full
    disk, an unreachable hub, a hand-edited config); `None` for anything else, whose traceback is shown."""
    message = _one_line(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return 1, f"{message} ({_DISK_FULL_HINT})."
    if isinstance(error, RuntimeError) and ("PytorchStreamWriter" in message or "file write failed" in message):
        return 1, f"writing a file failed ({message}): {_DISK_FULL_HINT}."
    libraries = {cls.__module__.partition(".")[0] for cls in type(error).__mro__}
    if libraries & {"httpx", "httpx2", "requests", "urllib3"}:
        return 1, (
            f"the Hugging Face Hub could not be reached ({message}): check the network, or set HF_HUB_OFFLINE=1 to "
            "load local folders and the local hub cache only."
        )
    if "safetensors" in libraries:
        return 1, f"a safetensors file is damaged ({message}): save or download the model again."
    if type(error).__name__.startswith("StrictDataclass"):  # transformers' validation of a config's fields
        return 2, f"invalid config ({message}): fix that field of the model's config.json, or save the model again."
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code, message
    return None


def main(argv: list[str] | None = None) -> int:
    """Dispatch `tall-hf <command> [options]`; `--verbose` (anywhere, read back with `tall_hf.utils.logging.is_verbose()`)
    shows DEBUG messages, the libraries' progress bars and tracebacks."""
    argv = sys.argv[1:] if argv is None else argv
    usage = (
        "usage: tall-hf {"
        + ",".join(COMMANDS)
        + "} [options] [--verbose]   (tall-hf <command> --help for its options)"
    )
    if argv and argv[0] == "--version":
        print(f"tall-hf {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        for name, command in COMMANDS.items():
            print(f"  {name:<9} {(command.__doc__ or '').strip().splitlines()[0]}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"tall-hf: unknown command {argv[0]!r}.\n{usage}", file=sys.stderr)
        return 2
    if "-h" not in argv and "--help" not in argv:
        set_verbose("--verbose" in argv)
    try:
        return command([arg for arg in argv[1:] if arg != "--verbose"])
    except Exception as error:
        described = None if is_verbose() else user_error(error)
        if described is None:
            raise
        code, message = described
        print(f"tall-hf {argv[0]}: error: {message} (--verbose shows the traceback)", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

"""`tall-hf`: the package's command line. Each subcommand parses its own dataclasses with `HfArgumentParser`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import HfArgumentParser
from transformers.utils import logging

logger = logging.get_logger(__name__)


@dataclass
class PredictArguments:
    """`tall-hf predict --model DIR "sentence" ...`: the next word of each sentence (from arguments, a file or stdin)."""

    model: str = field(metadata={"help": "A saved TALL model: a local folder or a hub id."})
    file: str | None = field(default=None, metadata={"help": "Read sentences from this file, one per line."})
    translator: str | None = field(
        default=None, metadata={"help": "LR->HR translator (defaults to the one recorded in the model's config)."}
    )
    num_words: int = field(default=1, metadata={"help": "How many words to continue each sentence with."})
    do_sample: bool = field(default=False, metadata={"help": "Sample (temperature 0.7, top-k 50, top-p 0.95)."})
    seed: int | None = field(default=None, metadata={"help": "Seed for sampling."})
    batch_size: int = field(default=16, metadata={"help": "Sentences per batch."})


def predict(argv: list[str]) -> int:
    """Print the predicted next word(s) of every sentence, one per line."""
    parser = HfArgumentParser(PredictArguments, prog="tall-hf predict", description=predict.__doc__)
    (args,), sentences = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    unknown = [text for text in sentences if text.startswith("--")]
    if unknown:
        parser.error(f"unknown options: {' '.join(unknown)}")
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            sentences += [line.strip() for line in handle if line.strip()]
    if not sentences and not sys.stdin.isatty():
        sentences = [line.strip() for line in sys.stdin if line.strip()]
    if not sentences:
        parser.error("no sentences: pass them as arguments, with --file, or on standard input.")
    from .generation import TallPredictor

    predictor = TallPredictor.from_pretrained(args.model, translator=args.translator)
    options = {"batch_size": args.batch_size, "do_sample": args.do_sample, "seed": args.seed}
    if args.num_words == 1:
        words = predictor.predict_next_word(sentences, **options)
    else:
        words = predictor.continue_text(sentences, num_words=args.num_words, **options)
    for word in words:
        print(word)
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "predict": predict,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch `tall-hf <command> [options]`."""
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: tall-hf {" + ",".join(COMMANDS) + "} [options]   (tall-hf <command> --help for its options)"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        for name, command in COMMANDS.items():
            print(f"  {name:<9} {(command.__doc__ or '').strip().splitlines()[0]}")
        return 0
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"tall-hf: unknown command {argv[0]!r}.\n{usage}", file=sys.stderr)
        return 2
    logging.set_verbosity_info() if "--verbose" in argv else logging.set_verbosity_warning()
    return command([arg for arg in argv[1:] if arg != "--verbose"])


if __name__ == "__main__":
    sys.exit(main())

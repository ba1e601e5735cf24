"""Text the package ships for its offline demo and tiny tokenizers (written for tall_hf)."""

from __future__ import annotations

from functools import cache
from importlib import resources

CORPORA = ("hebrew", "english")


@cache
def read_corpus(name: str) -> list[str]:
    """Sentences of a shipped corpus: `hebrew` and `english` are line-aligned translations of each other."""
    return [line.strip() for line in corpus_text(name).splitlines() if line.strip()]


def corpus_text(name: str) -> str:
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; the package ships {CORPORA}.")
    return resources.files(__package__).joinpath("corpus", f"{name}.txt").read_text(encoding="utf-8")


def corpus_path(name: str) -> str:
    """Filesystem path of a shipped corpus, for APIs that read files."""
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus {name!r}; the package ships {CORPORA}.")
    return str(resources.files(__package__).joinpath("corpus", f"{name}.txt"))

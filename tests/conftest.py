"""Shared fixtures: offline mode, the tiny components (built once, cached across runs) and the shared Hebrew data."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from tall_hf import TallForCausalLM, TallProcessor  # noqa: E402
from tall_hf.resources import read_corpus  # noqa: E402
from tall_hf.testing import build_tiny_components  # noqa: E402
from tall_hf.utils.logging import VERBOSE_ENV  # noqa: E402

# Tiny models gain nothing from intra-op threads and lose a lot to contention on a busy 2-core machine.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def command_line_verbosity_stays_in_its_test(monkeypatch):
    """A `tall-hf` command run in-process sets `TALL_HF_VERBOSE` for the whole process (quiet Trainer output
    follows from it): every test starts without it, as the Python API does."""
    monkeypatch.setenv(VERBOSE_ENV, "")


def _shared_path(*parts: str) -> Path:
    """A path under `../shared`; skipped with a reason where it is absent, but a failure under CI=true."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (the shared data beside the checkout)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must have it.")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_path():
    """`shared_path("data", "hebrew", "x.txt")`: a path under `../shared`, skipped where absent (fails under CI)."""
    return _shared_path


@pytest.fixture(scope="session")
def tiny_cache(request) -> Path:
    return Path(request.config.cache.mkdir("tall_hf_tiny"))


@pytest.fixture(scope="session")
def tiny_paths(tiny_cache) -> dict[str, str]:
    return build_tiny_components(tiny_cache, llm="qwen2")


@pytest.fixture(scope="session")
def test_world(tiny_cache):
    """The `test` preset's known-answer world (trained translators and LLM, about 25 s to build on one thread), built
    once and cached with the tiny components."""
    from tall_hf.worlds import build_world

    return build_world(tiny_cache / "worlds", preset="test")


@pytest.fixture(scope="session")
def lossy_test_world(tiny_cache):
    """The `test` preset's world with the genderless (lossy) HR language (about 60 s to build on a busy core)."""
    from tall_hf.worlds import build_world

    return build_world(tiny_cache / "worlds", preset="test", hr_language="genderless")


@pytest.fixture(scope="session")
def tiny_processor(tiny_paths) -> TallProcessor:
    return TallProcessor.from_components(**tiny_paths)


@pytest.fixture
def tiny_model(tiny_paths) -> TallForCausalLM:
    torch.manual_seed(0)
    return TallForCausalLM.from_components(**tiny_paths)


@pytest.fixture(scope="session")
def hebrew_sentences() -> list[str]:
    """256 Hebrew sentences from the package's own corpus (a clean clone has them; no test here needs the shared
    Wikipedia text, which the examples and benchmarks read through `shared_path`)."""
    return read_corpus("hebrew")[:256]

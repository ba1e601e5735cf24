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

from tall_hf import BridgeForCausalLM, BridgeProcessor, TallForCausalLM, TallProcessor  # noqa: E402
from tall_hf.resources import read_corpus  # noqa: E402
from tall_hf.testing import build_tiny_bridge_components, build_tiny_components  # noqa: E402
from tall_hf.tiny import tiny_model_names  # noqa: E402
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
def tiny_names(tiny_paths) -> dict[str, str]:
    """The tiny components as `lr_hr_model`, `llm_model`, `hr_lr_model` keyword arguments."""
    return tiny_model_names(tiny_paths)


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
def tall_texts() -> tuple[list[str], list[str], list[str]]:
    """Three LR prefixes, their HR translations and the full LR sentences (of different lengths)."""
    return (
        ["הילדים משחקים בחצר", "אני אוהב לקרוא ספרים בערב", "מחר"],
        ["the children play in the yard", "i like to read books in the evening", "tomorrow"],
        ["הילדים משחקים בחצר הגדולה", "אני אוהב לקרוא ספרים בערב השקט", "מחר בבוקר"],
    )


@pytest.fixture
def batch(tiny_processor, tall_texts):
    """The three streams of `tall_texts`, with labels: a batch TALL's forward pass reads."""
    return tiny_processor(*tall_texts)


@pytest.fixture(scope="session")
def run_arguments():
    """`run_arguments(output_dir, recipe=None, **overrides)`: the recipe's `TrainingArguments` for a run that trains
    only (no evaluation, no checkpoints), on the CPU, without progress bars; `overrides` on top."""
    from tall_hf.training import tall_training_arguments

    def make(output_dir, recipe: str | None = None, **overrides):
        settings = {"eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}
        settings.update(use_cpu=True, disable_tqdm=True, **overrides)
        return tall_training_arguments(output_dir, *([recipe] if recipe else []), **settings)

    return make


@pytest.fixture(scope="session")
def bridge_run_arguments():
    """`bridge_run_arguments(output_dir, steps, batch_size=16)`: a bridge's quick `Trainer` run (constant lr 3e-2,
    a loss logged every step, no checkpoints), on the CPU."""
    from transformers import TrainingArguments

    def make(output_dir, steps: int, batch_size: int = 16) -> TrainingArguments:
        return TrainingArguments(
            output_dir=str(output_dir),
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=3e-2,
            lr_scheduler_type="constant",
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            seed=0,
        )

    return make


@pytest.fixture(scope="session")
def bridge_paths(tiny_cache) -> dict[str, str]:
    return build_tiny_bridge_components(tiny_cache, llm="qwen2")


@pytest.fixture(scope="session")
def bridge_processor(bridge_paths) -> BridgeProcessor:
    return BridgeProcessor.from_components(**bridge_paths)


@pytest.fixture(scope="session")
def make_bridge():
    """`make_bridge(paths, fusion, **overrides)`: a bridge with seeded fresh weights (token softmax with 2 heads)."""

    def make(paths: dict[str, str], fusion: str = "last", **overrides) -> BridgeForCausalLM:
        torch.manual_seed(0)
        if fusion == "token_softmax":
            overrides.setdefault("fusion_options", {"num_heads": 2})
        return BridgeForCausalLM.from_components(**paths, fusion=fusion, **overrides)

    return make


@pytest.fixture(scope="session")
def hebrew_sentences() -> list[str]:
    """256 Hebrew sentences from the package's own corpus (a clean clone has them; no test here needs the shared
    Wikipedia text, which the examples and benchmarks read through `shared_path`)."""
    return read_corpus("hebrew")[:256]

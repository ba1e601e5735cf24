"""The paper's Tables 2-4, reproduced from the published component configs on the meta device."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig

from tall_hf import TallForConditionalGeneration

TABLES = {
    "bloomz-560m": {
        "lr_encoder": 138_341_376,
        "llm_embeddings": 256_901_120,
        "source_alignment": 4_203_520,
        "source_transformer": 101_828_608,
        "llm_body": 302_313_472,
        "target_alignment": 1_577_472,
        "target_transformer": 19_176_448,
        "lr_decoder": 59_195_904,
        "lm_head": 33_709_568,
        "total": 883_537_920,
        "trainable_paper": 126_786_048,
        "positions": 1_048_576 + 262_144,
    },
    "qwen2.5-0.5b": {
        "lr_encoder": 138_341_376,
        "llm_embeddings": 136_134_656,
        "source_alignment": 3_448_704,
        "source_transformer": 83_598_080,
        "llm_body": 357_898_112,
        "target_alignment": 1_446_400,
        "target_transformer": 19_176_448,
        "lr_decoder": 59_195_904,
        "lm_head": 33_709_568,
        "total": 799_239_680,
        "trainable_paper": 107_669_632,
        "positions": 917_504 + 262_144,
    },
}


def _paper_config(shared_path, name: str):
    fields = json.loads(shared_path("design", "paper_components", f"{name}.json").read_text())
    return AutoConfig.for_model(**{key: value for key, value in fields.items() if not key.startswith("_")})


@pytest.mark.parametrize("llm", sorted(TABLES))
def test_paper_scale_parameter_counts(llm, capsys, shared_path):
    expected = TABLES[llm]
    with torch.device("meta"):
        model = TallForConditionalGeneration.from_components(
            _paper_config(shared_path, "opus-mt-tc-big-he-en"),
            _paper_config(shared_path, llm),
            _paper_config(shared_path, "opus-mt-en-he"),
        )
    report = {row["stage"]: row for row in model.parameter_report()}
    for stage in report:
        assert report[stage]["total"] == expected[stage], stage
    summary = model.parameter_summary()
    assert summary["total"] == expected["total"]
    assert summary["trainable_as_in_paper"] == expected["trainable_paper"]
    assert summary["fixed_positions_in_trainable_stages"] == expected["positions"]
    assert summary["trainable"] == expected["trainable_paper"] - expected["positions"]
    assert f"{expected['trainable_paper']:,}" in model.parameter_table()
    model.print_trainable_parameters()
    assert f"all params: {expected['total']:,d}" in capsys.readouterr().out

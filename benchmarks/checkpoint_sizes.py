"""Sizes of TALL's two checkpoint kinds, measured on the tiny components and computed for the paper's components.

On the tiny components both kinds are saved and reloaded with `AutoModel`, their logits compared with the original
model's, and the files' sizes printed (a full checkpoint as `tall-hf train` writes it: with the decoder side of its
LR->HR translator in `translator/`). For the paper's components (`--paper_components`, the published configs), the
model is built on the `meta` device and the bytes each kind would hold are counted, without any download.

    python benchmarks/checkpoint_sizes.py [--paper_components ../shared/design/paper_components]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

import tall_hf.models  # noqa: F401  (registers TALL with the Auto classes)
from tall_hf import TallForCausalLM, TallProcessor
from tall_hf.adapters import ADAPTER_WEIGHTS_NAME
from tall_hf.data import save_translator
from tall_hf.testing import build_tiny_components

PAPER_LLMS = ("bloomz-560m", "qwen2.5-0.5b")


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def tiny(workdir: Path) -> None:
    paths = build_tiny_components(workdir / "components")
    processor = TallProcessor.from_components(**paths)
    torch.manual_seed(0)
    model = TallForCausalLM.from_components(**paths).eval()
    batch = processor(["שלום לכם", "הילד הלך אל"], ["hello to you", "the boy went to"])
    with torch.no_grad():
        expected = model(**batch).logits
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    print(f"tiny components: trainable parameters {trainable:,} bytes")
    for kind, adapters_only in (("full", False), ("adapters-only", True)):
        folder = workdir / kind
        model.save_pretrained(folder, adapters_only=adapters_only, processor=processor)
        if not adapters_only:
            save_translator(model, folder)
        with torch.no_grad():
            identical = torch.equal(AutoModel.from_pretrained(folder)(**batch).logits, expected)
        weights = folder / (ADAPTER_WEIGHTS_NAME if adapters_only else "model.safetensors")
        print(
            f"  {kind:>13}: weights {weights.stat().st_size:>9,} bytes ({weights.stat().st_size / trainable:.3f} x "
            f"trainable), folder {folder_bytes(folder):>9,} bytes (tokenizers included), identical logits: {identical}"
        )


def paper(components: Path) -> None:
    def config(name: str):
        fields = json.loads((components / f"{name}.json").read_text())
        return AutoConfig.for_model(**{key: value for key, value in fields.items() if not key.startswith("_")})

    for llm in PAPER_LLMS:
        with torch.device("meta"):
            model = TallForCausalLM.from_components(
                config("opus-mt-tc-big-he-en"), config(llm), config("opus-mt-en-he")
            )
        adapters = sum(t.numel() * t.element_size() for t in model.peft_adapter_state_dict().values())
        full = sum(t.numel() * t.element_size() for name, t in model.state_dict().items() if name != "lm_head.weight")
        print(
            f"paper components, {llm}: adapters-only {adapters / 2**20:,.1f} MiB, full {full / 2**20:,.1f} MiB (fp32), "
            f"ratio {adapters / full:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper_components", type=Path, default=None, help="folder of the paper components' configs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        tiny(Path(workdir))
    if args.paper_components is not None:
        paper(args.paper_components)


if __name__ == "__main__":
    main()

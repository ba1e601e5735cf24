"""Stages 1-4 computed once when nothing in them trains.

With the source side frozen (`TallRecipe.frozen_stages`, the `teacher` recipe) and the LLM frozen, what stage 5 reads
for a training row, the LLM's last hidden states of its bridge stream, is a fixed function of the row. Training then
needs stages 1-4 once per row, not once per row and epoch: `with_llm_states` adds them to the data set as a column
(`datasets`' own map cache, a file beside the run, read again on resume), and the model's forward takes them as
`llm_hidden_states` and runs stages 5-7 only (`TallDataCollator` passes the column on).

The states are computed with the model in eval mode: a frozen stage that trains with dropout (the pass-through of the
`teacher` recipe has none that reaches the LLM: its gate is 0) reads them without it.
"""

from __future__ import annotations

import os

import torch
from accelerate import PartialState
from datasets import Array2D, Dataset
from datasets.fingerprint import Hasher
from transformers.utils import logging

from ..data.collator import TallDataCollator
from ..models.tall.modeling_tall import STAGE_PATHS, TallForConditionalGeneration
from ..models.tall.processing_tall import TallProcessor

logger = logging.get_logger(__name__)

LLM_STATES = "llm_states"
# Stages 1-4, up to and with the LLM: nothing in them may train for their output to be cached.
_SOURCE_SIDE_AND_LLM = tuple(STAGE_PATHS)[: tuple(STAGE_PATHS).index("llm") + 1]


def llm_states_fixed(model: TallForConditionalGeneration) -> bool:
    """Whether no parameter of stages 1-4 trains (a LoRA tuner on the LLM counts as training), so their output for a
    row never changes during training."""
    return not any(
        parameter.requires_grad for stage in _SOURCE_SIDE_AND_LLM for parameter in getattr(model, stage).parameters()
    )


def with_llm_states(
    dataset: Dataset,
    model: TallForConditionalGeneration,
    processor: TallProcessor,
    cache_dir: str | os.PathLike,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> Dataset:
    """`dataset` (rows of `prepare_tall_dataset`) with a column `llm_states`: each row's stage-4 output,
    `(bridge tokens, LLM width)` float32, computed once in eval mode. Written to `cache_dir` as
    `llm_states-<the data set's fingerprint>.arrow` and read from there when it exists (a resumed run reuses it);
    returned with that column as torch tensors."""
    fingerprint = Hasher.hash((dataset._fingerprint, LLM_STATES))
    path = os.path.join(cache_dir, f"{LLM_STATES}-{fingerprint}.arrow")
    features = dataset.features.copy()
    features[LLM_STATES] = Array2D(shape=(None, model.config.llm_config.hidden_size), dtype="float32")
    collator = TallDataCollator(processor, loss_mode="last_token")  # the labels are not used here
    encoder = model.get_encoder()
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device

    def states(batch: dict[str, list]) -> dict[str, list]:
        inputs = collator([dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)])
        streams = ("input_ids", "attention_mask", "bridge_input_ids", "bridge_attention_mask")
        with torch.inference_mode():
            hidden = encoder.llm_states(*(inputs[name].to(device) for name in streams)).float().cpu()
        lengths = inputs["bridge_attention_mask"].sum(dim=1).tolist()
        return {LLM_STATES: [row[:length].numpy() for row, length in zip(hidden, lengths, strict=True)]}

    os.makedirs(cache_dir, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with PartialState().main_process_first():
            if os.path.exists(path):
                logger.info(f"The LLM's states of the training rows read from {path}.")
            else:
                logger.info(f"Stages 1-4 stay fixed: computing the LLM's states of {len(dataset)} rows once ({path}).")
            dataset = dataset.map(
                states,
                batched=True,
                batch_size=batch_size,
                features=features,
                cache_file_name=path,
                load_from_cache_file=True,
                new_fingerprint=fingerprint,
                desc="LLM states",
            )
    finally:
        model.train(was_training)
    return dataset.with_format("torch", columns=[LLM_STATES], output_all_columns=True)


__all__ = ["LLM_STATES", "llm_states_fixed", "with_llm_states"]

"""Optional adapter pre-training (the TALL reference's): each alignment adapter first learns to be the encoder half of
an autoencoder over frozen hidden states, then initialises TALL's adapter.

- adapter A (`source_alignment`) reads the frozen LR encoder's states of the source stream;
- adapter B (`target_alignment`) reads the frozen LLM's states of the bridge stream (its own token embeddings).

A mirror adapter decodes back to the input width, and the loss is the mean squared error over non-padding positions.
Training runs through `transformers.Trainer` on the rows of `prepare_tall_dataset`.
"""

from __future__ import annotations

import copy
import os

import torch
from datasets import Dataset
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.modeling_outputs import ModelOutput
from transformers.utils import logging

from ..data.collator import TallDataCollator
from ..models.tall.modeling_tall import TallForCausalLM
from ..models.tall.processing_tall import TallProcessor
from ..modules.alignment import AlignmentAdapter
from ..utils.progress import show_phase

logger = logging.get_logger(__name__)

ADAPTER_STAGES = ("source_alignment", "target_alignment")


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where `attention_mask` is 1 (all features of a position averaged)."""
    mask = attention_mask.unsqueeze(-1).to(prediction.dtype)
    squared = (prediction.float() - target.float()).pow(2) * mask
    return squared.sum() / (mask.sum() * prediction.shape[-1]).clamp(min=1)


class AdapterAutoencoder(nn.Module):
    """A copy of one of TALL's alignment adapters (the encoder) and its mirror (the decoder), trained to reconstruct
    the frozen hidden states that adapter reads in TALL. Only the two adapters train."""

    def __init__(self, model: TallForCausalLM, stage: str) -> None:
        super().__init__()
        if stage not in ADAPTER_STAGES:
            raise ValueError(f"stage must be one of {ADAPTER_STAGES}, got {stage!r}.")
        self.tall = [model]  # held outside the module tree: frozen, not saved, not optimized
        self.stage = stage
        self.encoder = copy.deepcopy(getattr(model, stage))
        config = model.config
        self.decoder = AlignmentAdapter(
            self.encoder.out_features,
            self.encoder.in_features,
            hidden_factor=config.adapter_hidden_factor,
            dropout=config.adapter_dropout,
        )

    @torch.no_grad()
    def frozen_states(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden states the adapter reads in TALL, and their attention mask."""
        model = self.tall[0]
        if self.stage == "source_alignment":
            mask = batch["attention_mask"]
            return model.lr_encoder(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state, mask
        mask = batch["bridge_attention_mask"]
        embeddings = model.get_input_embeddings()(batch["bridge_input_ids"])
        return model.llm(inputs_embeds=embeddings, attention_mask=mask, use_cache=False).last_hidden_state, mask

    def forward(self, **batch: torch.Tensor) -> ModelOutput:
        states, mask = self.frozen_states(batch)
        reconstruction = self.decoder(self.encoder(states, mask), mask)
        return ModelOutput(loss=masked_mse(reconstruction, states, mask))


def pretrain_alignment_adapters(
    model: TallForCausalLM,
    processor: TallProcessor,
    train_dataset: Dataset,
    args: TrainingArguments,
    stages: tuple[str, ...] = ADAPTER_STAGES,
) -> dict[str, list[float]]:
    """Pre-train the given adapters as autoencoder encoders and copy them into `model`; returns, per stage, the
    reconstruction losses logged every `args.logging_steps` steps.

    `args.output_dir` gets one sub-folder per stage for the Trainer's files (no checkpoints are needed: set
    `save_strategy="no"` to skip them).
    """
    losses = {}
    for stage in stages:
        autoencoder = AdapterAutoencoder(model, stage).to(model.device)
        stage_args = copy.deepcopy(args)
        stage_args.output_dir = os.path.join(args.output_dir, stage)
        stage_args.remove_unused_columns = False
        stage_args.load_best_model_at_end = False
        stage_args.eval_strategy = "no"
        trainer = Trainer(
            model=autoencoder,
            args=stage_args,
            train_dataset=train_dataset,
            data_collator=TallDataCollator(processor, loss_mode=model.config.loss_mode),
        )
        show_phase(trainer, f"Pre-training {stage}").train()
        losses[stage] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        getattr(model, stage).load_state_dict(autoencoder.encoder.state_dict())
        if losses[stage]:
            logger.info(f"Pre-trained {stage}: reconstruction loss {losses[stage][0]:.4f} -> {losses[stage][-1]:.4f}.")
    return losses


__all__ = ["AdapterAutoencoder", "masked_mse", "pretrain_alignment_adapters"]

"""Optional adapter pre-training (the TALL reference's): each alignment adapter first learns to be the encoder half of
an autoencoder over frozen hidden states, then initialises TALL's adapter.

- adapter A (`source_alignment`) reads the frozen LR encoder's states of the source stream;
- adapter B (`target_alignment`) reads the frozen LLM's states of the bridge stream (its own token embeddings).

A mirror adapter decodes back to the input width, and the loss is the mean squared error over non-padding positions.
Training runs through `transformers.Trainer` on the rows of `prepare_tall_dataset`.

Adapter B can also be pre-trained to read what the LLM predicts (`pretrain_next_token_reader`, part of `tall-hf
train` through a recipe's `next_token_reader_steps`): at every bridge position it learns to write what the HR->LR
translator's encoder reads for the token the frozen LLM predicts there.
"""

from __future__ import annotations

import copy
import os

import torch
from datasets import Dataset
from torch import nn
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
from transformers.modeling_outputs import ModelOutput
from transformers.utils import logging

from ..data.collator import TallDataCollator
from ..models.tall.modeling_tall import TallForConditionalGeneration
from ..models.tall.processing_tall import TallProcessor
from ..modules.alignment import AlignmentAdapter
from ..utils.progress import show_phase
from .checkpointing import CommitCheckpointCallback, last_complete_checkpoint

logger = logging.get_logger(__name__)

ADAPTER_STAGES = ("source_alignment", "target_alignment")
NEXT_TOKEN_READER = "next_token_reader"  # the sub-folder of a training run where adapter B's pre-training runs


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where `attention_mask` is 1 (all features of a position averaged)."""
    mask = attention_mask.unsqueeze(-1).to(prediction.dtype)
    squared = (prediction.float() - target.float()).pow(2) * mask
    return squared.sum() / (mask.sum() * prediction.shape[-1]).clamp(min=1)


class AdapterAutoencoder(nn.Module):
    """A copy of one of TALL's alignment adapters (the encoder) and its mirror (the decoder), trained to reconstruct
    the frozen hidden states that adapter reads in TALL. Only the two adapters train."""

    def __init__(self, model: TallForConditionalGeneration, stage: str) -> None:
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
    model: TallForConditionalGeneration,
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
        trainer = _stage_trainer(autoencoder, model, processor, train_dataset, stage_args, f"Pre-training {stage}")
        trainer.train()
        losses[stage] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        getattr(model, stage).load_state_dict(autoencoder.encoder.state_dict())
        if losses[stage]:
            logger.info(f"Pre-trained {stage}: reconstruction loss {losses[stage][0]:.4f} -> {losses[stage][-1]:.4f}.")
    return losses


def next_token_table(model: TallForConditionalGeneration, processor: TallProcessor) -> torch.Tensor:
    """`(LLM vocabulary, HR->LR width)`: each LLM token's text as the HR->LR translator's encoder reads it (the mean of
    its source pieces' scaled embeddings); zero for special tokens and tokens the translator reads as nothing."""
    llm_tokenizer, translator_tokenizer = processor.llm_tokenizer, processor.target_tokenizer
    encoder = model.config.hr_lr_config
    embeddings = model.lr_decoder.embed_tokens.weight.detach()  # Marian shares the encoder's and decoder's tables
    scale = encoder.d_model**0.5 if encoder.scale_embedding else 1.0
    vocab_size = model.get_input_embeddings().weight.shape[0]
    texts = [
        "" if index in llm_tokenizer.all_special_ids else llm_tokenizer.decode([index])
        for index in range(min(len(llm_tokenizer), vocab_size))
    ]
    pieces = translator_tokenizer(texts, add_special_tokens=False)["input_ids"]
    table = torch.zeros(vocab_size, embeddings.shape[1])
    for index, ids in enumerate(pieces):
        ids = [i for i in ids if i != translator_tokenizer.unk_token_id]
        if texts[index].strip() and ids:
            table[index] = embeddings[ids].float().mean(dim=0) * scale
    return table


class NextTokenReader(nn.Module):
    """A copy of adapter B (`target_alignment`) trained to turn the frozen LLM's state at each bridge position into
    what the HR->LR translator's encoder reads for the token the LLM predicts there: the expected translator
    embedding under the LLM's next-token distribution (`next_token_table`). Custom transformer 2 starting as that
    encoder (`target_transformer_init="translator"`) then reads the LLM's prediction as HR text. Dense (every
    position) and label-free: the targets come from the frozen LLM and translator."""

    def __init__(self, model: TallForConditionalGeneration, table: torch.Tensor, head: torch.Tensor) -> None:
        super().__init__()
        self.tall = [model]  # held outside the module tree: frozen, not saved, not optimized
        self.encoder = copy.deepcopy(model.target_alignment)
        self.register_buffer("table", table, persistent=False)
        self.register_buffer("head", head.detach(), persistent=False)  # the LLM's output layer, `(vocab, width)`

    @torch.no_grad()
    def targets(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model = self.tall[0]
        mask = batch["bridge_attention_mask"]
        embeddings = model.get_input_embeddings()
        states = model.llm(
            inputs_embeds=embeddings(batch["bridge_input_ids"]), attention_mask=mask, use_cache=False
        ).last_hidden_state
        predicted = torch.softmax((states @ self.head.T).float(), dim=-1)
        return states, predicted @ self.table, mask

    def forward(self, **batch: torch.Tensor) -> ModelOutput:
        states, target, mask = self.targets(batch)
        return ModelOutput(loss=masked_mse(self.encoder(states, mask), target, mask))


def llm_output_layer(model: TallForConditionalGeneration, llm: str | os.PathLike) -> torch.Tensor:
    """The LLM's output layer weights, `(vocab, width)`: its input embeddings when tied (TALL holds the LLM body
    only), else loaded from `llm` (a hub id or folder)."""
    if model.config.llm_config.tie_word_embeddings:
        return model.get_input_embeddings().weight
    head = AutoModelForCausalLM.from_pretrained(llm, dtype=model.dtype).get_output_embeddings()
    return head.weight.to(model.device)


def pretrain_next_token_reader(
    model: TallForConditionalGeneration,
    processor: TallProcessor,
    train_dataset: Dataset,
    args: TrainingArguments,
    llm: str | os.PathLike,
) -> list[float]:
    """Pre-train adapter B as a `NextTokenReader` with `Trainer` (in `args.output_dir`, resumable from its
    checkpoints) and copy it into `model`; `llm` is the LLM component (for an untied output layer). Returns the
    logged losses."""
    table = next_token_table(model, processor)
    reader = NextTokenReader(model, table, llm_output_layer(model, llm)).to(model.device)
    trainer = _stage_trainer(
        reader, model, processor, train_dataset, copy.deepcopy(args), "Pre-training adapter B to read the LLM"
    )
    trainer.add_callback(CommitCheckpointCallback())
    trainer.train(resume_from_checkpoint=last_complete_checkpoint(args.output_dir))
    model.target_alignment.load_state_dict(reader.encoder.state_dict())
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if losses:
        logger.info(
            f"Pre-trained target_alignment on the LLM's predictions: loss {losses[0]:.4f} -> {losses[-1]:.4f}."
        )
    return losses


def _stage_trainer(
    module: torch.nn.Module,
    model: TallForConditionalGeneration,
    processor: TallProcessor,
    train_dataset: Dataset,
    stage_args: TrainingArguments,
    description: str,
) -> Trainer:
    """A `Trainer` for one pre-training stage of `model`'s parts (`module` returns the loss): the TALL collator, no
    evaluation or best-checkpoint restore, shown as the phase `description`."""
    stage_args.remove_unused_columns = False
    stage_args.load_best_model_at_end = False
    stage_args.eval_strategy = "no"
    trainer = Trainer(
        model=module,
        args=stage_args,
        train_dataset=train_dataset,
        data_collator=TallDataCollator(processor, loss_mode=model.config.loss_mode),
    )
    return show_phase(trainer, description)


__all__ = [
    "NEXT_TOKEN_READER",
    "AdapterAutoencoder",
    "NextTokenReader",
    "masked_mse",
    "next_token_table",
    "pretrain_alignment_adapters",
    "pretrain_next_token_reader",
]

"""The bridge: a frozen multilingual encoder feeds a frozen English LLM through layer fusion and a projection
(LangBridge, and the multilingual encoder fusion paper that fuses all the encoder's layers).

Stage by stage, as `BridgeForCausalLM.forward` runs them:

1. `encoder`            frozen   the multilingual encoder reads the prompt, every layer's states kept
2. `fusion`             trains   the layers become one state per token (`last`, `global_softmax`, `token_softmax`)
3. `prompt_projection`  trains   encoder width -> the LLM's embedding space, plus a learned end-of-encoding vector
4. `llm`                frozen   the LLM reads [soft prompt, end-of-encoding, its own embeddings of the continuation]

Each row's real positions are packed together: right padding for training, left padding for generation (the
layout the LLM's `generate` expects).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForTextEncoding,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import ModelOutput
from transformers.models.auto.modeling_auto import MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES
from transformers.utils import logging

from ...modules.fusion import DEFAULT_FUSION, build_fusion
from ...modules.losses import IGNORE_INDEX, token_cross_entropy
from ...utils.loading import ComponentSpec, load_pretrained, resolve_component
from ..modeling_composite import ComposedPreTrainedModel, register_legacy_key_mapping
from .configuration_bridge import BridgeConfig

logger = logging.get_logger(__name__)

FROZEN_STAGES = ("encoder", "llm")
TRAINABLE_STAGES = ("fusion", "prompt_projection")
# Checkpoints written before the projection was renamed (PEFT matches `modules_to_save` by name suffix, and
# `projection` would also match the token-softmax fusion's `input_projection`).
LEGACY_KEY_MAPPING = {r"^projection\.": "prompt_projection."}
register_legacy_key_mapping(BridgeConfig.model_type, LEGACY_KEY_MAPPING)


@dataclass
class BridgeEncoderOutput(ModelOutput):
    """Output of stages 1-3: the soft prompt in the LLM's embedding space (end-of-encoding vector last) and its mask.
    The soft prompt keeps the encoder's right padding; the end-of-encoding vector is the last column."""

    soft_prompt: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None


@dataclass
class BridgeCausalLMOutput(ModelOutput):
    """Output of [`BridgeForCausalLM`].

    Args:
        loss: mean cross-entropy over the continuation's labelled tokens, when `labels` are given.
        logits: the LLM's scores over the packed sequence [soft prompt, end-of-encoding, continuation], right padded.
        labels: the labels aligned with `logits` (`-100` on the soft prompt, the end-of-encoding vector and padding):
            `logits[:, i]` predicts `labels[:, i + 1]`.
        attention_mask: the packed sequence's mask.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    labels: torch.LongTensor | None = None
    attention_mask: torch.LongTensor | None = None


class BridgeProjection(nn.Module):
    """LangBridge's projection: a linear map from the encoder's width into the LLM's embedding space, and a learned
    end-of-encoding vector appended after the soft prompt."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.end_of_encoding = nn.Parameter(torch.zeros(out_features))

    def forward(self, states: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(batch, length, in)` -> the soft prompt `(batch, length + 1, out)` with the end-of-encoding vector in the
        last column, and its mask."""
        projected = self.linear(states)
        end = self.end_of_encoding.to(projected.dtype).expand(projected.shape[0], 1, -1)
        mask = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=1)
        return torch.cat([projected, end], dim=1), mask


class BridgePreTrainedModel(ComposedPreTrainedModel):
    config: BridgeConfig
    config_class = BridgeConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    accepts_loss_kwargs = False
    _supports_sdpa = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, BridgeProjection):
            init.normal_(module.end_of_encoding, mean=0.0, std=self.config.initializer_range)


def encoder_auto_class(config: PretrainedConfig):
    """The Auto class that builds only the encoder where one exists (mT5 -> `MT5EncoderModel`), else `AutoModel`."""
    return AutoModelForTextEncoding if config.model_type in MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES else AutoModel


def encoder_of(model: PreTrainedModel) -> nn.Module:
    """The encoder of an encoder-decoder model (`get_encoder()`), or an encoder-only model itself."""
    return model.get_encoder() if model.config.is_encoder_decoder else model


def _resolve_encoder(spec: ComponentSpec, revision: str | None, **load_kwargs):
    """The encoder component: only the encoder of an encoder-decoder checkpoint is kept."""
    auto_class = AutoModel
    if isinstance(spec, (str, os.PathLike)):
        auto_class = encoder_auto_class(load_pretrained(AutoConfig, spec, role="encoder config", revision=revision))
    model, config, name = resolve_component(spec, auto_class, "encoder", revision, **load_kwargs)
    return (encoder_of(model) if model is not None else None), config, name


def pack_rows(
    embeds: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor | None = None, padding_side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Move each row's real positions together, in order, with the padding on `padding_side`."""
    key = mask.long() if padding_side == "left" else 1 - mask.long()
    order = torch.argsort(key, dim=1, stable=True)
    embeds = embeds.gather(1, order.unsqueeze(-1).expand_as(embeds))
    mask = mask.gather(1, order)
    if labels is not None:
        labels = labels.gather(1, order)
    return embeds, mask, labels


class BridgeForCausalLM(BridgePreTrainedModel):
    """A frozen English LLM that reads any language its frozen multilingual encoder knows; only the fusion and the
    projection train (on English text, with a prefix-LM objective).

    Checkpoints: `save_pretrained(dir)` (transformers') writes every weight; `tall_hf.adapters.save_checkpoint(model,
    dir, adapters_only=True)` writes only `fusion` and `prompt_projection` as a PEFT adapter folder, which
    `tall_hf.adapters.load_checkpoint` (or `PeftModel.from_pretrained` on a bridge from the same components) loads."""

    adapter_modules = TRAINABLE_STAGES
    frozen_modules = FROZEN_STAGES
    _checkpoint_conversion_mapping = LEGACY_KEY_MAPPING
    model_card_template = "bridge_model_card.md.j2"
    card_pipeline_tag = "text-generation"
    component_arguments = {"encoder": "encoder", "llm": "llm"}

    def __init__(
        self, config: BridgeConfig, encoder: nn.Module | None = None, llm: PreTrainedModel | None = None
    ) -> None:
        super().__init__(config)
        if encoder is None:
            encoder = encoder_of(encoder_auto_class(config.encoder_config).from_config(config.encoder_config))
        self.encoder = encoder
        self.fusion = build_fusion(
            config.fusion, config.encoder_num_layers, config.encoder_hidden_size, **config.fusion_options
        )
        self.prompt_projection = BridgeProjection(config.encoder_hidden_size, config.llm_config.hidden_size)
        self.llm = llm if llm is not None else AutoModelForCausalLM.from_config(config.llm_config)
        self.post_init()
        self.freeze_components()
        self.init_lora()

    # ------------------------------------------------------------------ assembly
    @classmethod
    def from_components(
        cls,
        encoder: ComponentSpec,
        llm: ComponentSpec,
        *,
        fusion: str = DEFAULT_FUSION,
        fusion_options: dict | None = None,
        encoder_revision: str | None = None,
        llm_revision: str | None = None,
        dtype: torch.dtype | None = None,
        **overrides,
    ) -> BridgeForCausalLM:
        """Assemble the bridge from a multilingual encoder and an LLM.

        Each component is a hub id, a local folder, a `PretrainedConfig` (random weights) or a loaded model. For an
        encoder-decoder checkpoint (mT5, Marian, NLLB/M2M100) the encoder is kept; an encoder-only one (XLM-R) is used
        whole. The fusion and projection start fresh. `overrides` are further `BridgeConfig` fields.

        ```python
        >>> model = BridgeForCausalLM.from_components(
        ...     encoder="google/mt5-xl", llm="Qwen/Qwen2.5-0.5B", fusion="token_softmax", dtype=torch.bfloat16
        ... )
        ```
        """
        load_kwargs = {"dtype": dtype} if dtype is not None else {}
        components = {
            "encoder": _resolve_encoder(encoder, encoder_revision, **load_kwargs),
            "llm": resolve_component(llm, AutoModelForCausalLM, "LLM", llm_revision, **load_kwargs),
        }
        revisions = {"encoder": encoder_revision, "llm": llm_revision}
        return cls.assemble(
            components, revisions, dtype=dtype, fusion=fusion, fusion_options=fusion_options, **overrides
        )

    def get_input_embeddings(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.llm.get_output_embeddings()

    def get_encoder(self) -> nn.Module:
        return self.encoder

    # ------------------------------------------------------------------ forward
    def encode(self, input_ids: torch.LongTensor, attention_mask: torch.LongTensor) -> BridgeEncoderOutput:
        """Stages 1-3: the prompt, in any language the encoder knows, becomes a soft prompt for the LLM."""
        encoder_outputs = self.encoder(  # 1
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=self.fusion.uses_all_layers
        )
        fused = self.fusion(encoder_outputs, attention_mask)  # 2
        soft_prompt, mask = self.prompt_projection(fused, attention_mask)  # 3
        return BridgeEncoderOutput(soft_prompt=soft_prompt, attention_mask=mask)

    def layer_weights(self, input_ids: torch.LongTensor, attention_mask: torch.LongTensor) -> torch.Tensor:
        """The fusion's weights over the encoder layers for each token, `(batch, length, num_layers)`."""
        encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return self.fusion.layer_weights(encoder_outputs, attention_mask)

    def llm_inputs(
        self,
        encoder_outputs: BridgeEncoderOutput,
        llm_input_ids: torch.LongTensor | None = None,
        llm_attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        padding_side: str = "right",
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The LLM's packed input: [soft prompt, end-of-encoding, the LLM's own embeddings of `llm_input_ids`], with
        `labels` moved alongside (`-100` on the soft part)."""
        embeds, mask = encoder_outputs.soft_prompt, encoder_outputs.attention_mask
        soft_labels = mask.new_full(mask.shape, IGNORE_INDEX) if labels is not None else None
        if llm_input_ids is not None:
            if llm_attention_mask is None:
                llm_attention_mask = torch.ones_like(llm_input_ids)
            text_embeds = self.llm.get_input_embeddings()(llm_input_ids).to(embeds.dtype)
            embeds = torch.cat([embeds, text_embeds], dim=1)
            mask = torch.cat([mask, llm_attention_mask.to(mask.dtype)], dim=1)
            if labels is not None:
                labels = torch.cat([soft_labels, labels.masked_fill(llm_attention_mask.eq(0), IGNORE_INDEX)], dim=1)
        elif labels is not None:
            raise ValueError("`labels` need `llm_input_ids`: the labelled continuation, in the LLM's tokens.")
        return pack_rows(embeds, mask, labels, padding_side=padding_side)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        llm_input_ids: torch.LongTensor | None = None,
        llm_attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        encoder_outputs: BridgeEncoderOutput | None = None,
    ) -> BridgeCausalLMOutput:
        r"""
        input_ids, attention_mask: the prompt (or the prefix, in training), in the encoder's tokens, right padded.
        llm_input_ids, llm_attention_mask: text the LLM reads after the end-of-encoding vector (the continuation, in
            training), in the LLM's tokens, right padded.
        labels: `llm_input_ids` with `-100` where no loss is taken; the loss covers only these tokens.
        encoder_outputs: stages 1-3 already computed by [`~BridgeForCausalLM.encode`].
        """
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("Pass `input_ids` (the prompt in the encoder's tokens) or `encoder_outputs`.")
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            encoder_outputs = self.encode(input_ids, attention_mask)
        embeds, mask, packed_labels = self.llm_inputs(encoder_outputs, llm_input_ids, llm_attention_mask, labels)
        logits = self.llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits  # 4
        loss = None
        if packed_labels is not None:
            loss = token_cross_entropy(logits[:, :-1], packed_labels[:, 1:])
        return BridgeCausalLMOutput(loss=loss, logits=logits, labels=packed_labels, attention_mask=mask)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        llm_input_ids: torch.LongTensor | None = None,
        llm_attention_mask: torch.LongTensor | None = None,
        **generate_kwargs,
    ) -> torch.LongTensor:
        """Continue each prompt with the LLM's own `generate` (and its KV cache) on the left-padded soft prompt;
        returns only the new tokens. `generate_kwargs` go to the LLM's `generate` (`max_new_tokens`, `do_sample`...)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoder_outputs = self.encode(input_ids, attention_mask)
        embeds, mask, _ = self.llm_inputs(encoder_outputs, llm_input_ids, llm_attention_mask, padding_side="left")
        return self.llm.generate(inputs_embeds=embeds, attention_mask=mask, **generate_kwargs)

    # ------------------------------------------------------------------ reporting
    def parameter_stages(self) -> list[tuple[str, Iterable[nn.Parameter]]]:
        """The stages in `forward` order: encoder, fusion, projection, LLM."""
        return [
            (stage, getattr(self, stage).parameters()) for stage in ("encoder", "fusion", "prompt_projection", "llm")
        ]


__all__ = [
    "BridgeCausalLMOutput",
    "BridgeEncoderOutput",
    "BridgeForCausalLM",
    "BridgePreTrainedModel",
    "BridgeProjection",
    "pack_rows",
]

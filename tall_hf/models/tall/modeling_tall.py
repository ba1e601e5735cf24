"""TALL: a frozen LLM between two frozen translators, joined by small trainable modules (Figure 1 of the paper).

TALL is shaped as transformers shapes an encoder-decoder: [`TallModel`] owns the [`TallEncoder`] (stages 1-6, run
once per input) and the LR decoder (stage 7, which `GenerationMixin.generate` runs token by token with its KV cache);
[`TallForConditionalGeneration`] puts the LR LM head on it. Stage by stage, as `TallEncoder.forward` and
`TallModel.forward` run them (paths inside `TallForConditionalGeneration`):

1. `model.encoder.lr_encoder`          frozen   the LR->HR translator's encoder reads the LR prefix (source stream);
   `model.encoder.encoder_fusion`      trains   its layers fused into one state per token (`last`, the paper's)
2. `model.encoder.source_alignment`    trains   alignment adapter A: translator width -> LLM width
3. `model.encoder.source_transformer`  trains   custom transformer 1 (a Marian decoder): the LLM's embeddings of the
                                                 HR translation (bridge stream) cross-attend to stage 2
4. `model.encoder.llm`                 frozen   the LLM body runs on stage 3's output as `inputs_embeds`
5. `model.encoder.target_alignment`    trains   alignment adapter B: LLM width -> HR->LR translator width
6. `model.encoder.target_transformer`  trains   custom transformer 2 (a Marian encoder)
7. `model.decoder`                     frozen   the HR->LR translator's decoder reads the target stream and
   `lm_head`, `final_logits_bias`      frozen   cross-attends to stage 6; its LM head and logits bias score it

Checkpoints written before this split (every stage a flat attribute of the head: `lr_encoder.*`, `lr_decoder.*`, ...)
load through transformers' checkpoint conversion mapping (`LEGACY_KEY_MAPPING`); `save_pretrained` writes that same
original layout (transformers' `save_original_format`), so checkpoints stay readable by earlier versions.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoModelForSeq2SeqLM, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutput, ModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from transformers.models.marian.modeling_marian import MarianDecoder, MarianEncoder
from transformers.utils import logging
from transformers.utils.generic import TransformersKwargs

from ...modules.alignment import AlignmentAdapter
from ...modules.fusion import build_fusion
from ...modules.logits import REDUCED_LOGITS_MODES, kept_cross_entropy, loss_positions
from ...modules.losses import check_label_shape, last_token_cross_entropy, token_cross_entropy
from ...utils.loading import ComponentSpec, resolve_component
from ..modeling_composite import ComposedPreTrainedModel, register_legacy_key_mapping
from .configuration_tall import TallConfig

logger = logging.get_logger(__name__)

# transformers 5.24 renamed the decoder cache, in model outputs and forward arguments, from `past_key_values` to `cache`:
# the name the installed version uses.
CACHE_NAME = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"
# Each stage of the paper's figure and where it lives in `TallForConditionalGeneration`.
STAGE_PATHS = {
    "lr_encoder": "model.encoder.lr_encoder",
    "encoder_fusion": "model.encoder.encoder_fusion",
    "source_alignment": "model.encoder.source_alignment",
    "source_transformer": "model.encoder.source_transformer",
    "llm": "model.encoder.llm",
    "target_alignment": "model.encoder.target_alignment",
    "target_transformer": "model.encoder.target_transformer",
    "lr_decoder": "model.decoder",
    "lm_head": "lm_head",
}
FROZEN_STAGES = ("lr_encoder", "llm", "lr_decoder", "lm_head")
TRAINABLE_STAGES = (
    "encoder_fusion",
    "source_alignment",
    "source_transformer",
    "target_alignment",
    "target_transformer",
)
# Weight names of checkpoints saved before `TallModel` existed (stages flat on the head) -> today's names.
LEGACY_KEY_MAPPING = {rf"^{stage}\.": f"{path}." for stage, path in STAGE_PATHS.items() if stage != "lm_head"}
register_legacy_key_mapping(TallConfig.model_type, LEGACY_KEY_MAPPING)
# Keyword arguments `GenerationMixin.generate` and `Trainer` may pass that TALL's forward does not use.
_IGNORED_FORWARD_KWARGS = frozenset(TransformersKwargs.__annotations__) | {"return_dict", "cache_position"}


def stage_of(parameter_name: str) -> str | None:
    """The stage (a key of `STAGE_PATHS`) a parameter or module name of `TallForConditionalGeneration` belongs to."""
    for stage, path in STAGE_PATHS.items():
        if parameter_name == path or parameter_name.startswith(path + "."):
            return stage
    return None


def _check_kwargs(kwargs: dict[str, Any], name: str) -> None:
    unknown = sorted(set(kwargs) - _IGNORED_FORWARD_KWARGS)
    if unknown:
        raise TypeError(f"{name} got unexpected keyword arguments {unknown}.")


@dataclass
class TallEncoderOutput(ModelOutput):
    """Output of stages 1-6: the states the LR decoder cross-attends to, and their mask (the bridge stream's)."""

    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None


@dataclass
class TallModelOutput(Seq2SeqModelOutput):
    """Output of [`TallModel`]: transformers' sequence-to-sequence output with the mask of stage 6's states.

    Args:
        last_hidden_state: the LR decoder's states of the target stream.
        cache (`past_key_values` before transformers 5.24, see `CACHE_NAME`): the LR decoder's cache.
        encoder_last_hidden_state: stage 6's output, reusable for every token of the next word.
        encoder_attention_mask: its mask.
    """

    encoder_attention_mask: torch.LongTensor | None = None


@dataclass
class TallSeq2SeqLMOutput(Seq2SeqLMOutput):
    """Output of [`TallForConditionalGeneration`]: transformers' sequence-to-sequence output with the mask of stage 6's
    states.

    Args:
        loss: the configured target-stream loss, when `labels` are given.
        logits: LR vocabulary scores at the target positions `logits_to_keep` selects: every position,
            `(batch, target_length, vocab)`, by default; with a boolean `(batch, target_length)` mask, only the
            positions it marks, `(kept positions, vocab)` in the order of `labels[mask]`.
        cache (`past_key_values` before transformers 5.24, see `CACHE_NAME`): the LR decoder's cache, when
            `use_cache=True` and no `labels` are given (training and evaluation forwards return none).
        encoder_last_hidden_state: stage 6's output, reusable for every token of the next word.
        encoder_attention_mask: its mask.
    """

    encoder_attention_mask: torch.LongTensor | None = None


class TallPreTrainedModel(ComposedPreTrainedModel):
    config: TallConfig
    config_class = TallConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    # The loss is a mean per batch (it ignores `num_items_in_batch`): Trainer must scale it for gradient accumulation.
    accepts_loss_kwargs = False


def _without_token_embeddings(transformer: PreTrainedModel) -> PreTrainedModel:
    """Custom transformers read `inputs_embeds` only: drop the token table their Marian class builds."""
    transformer.embed_tokens = None
    return transformer


def _component_models(
    config: TallConfig,
    lr_hr_model: PreTrainedModel | None,
    llm: PreTrainedModel | None,
    hr_lr_model: PreTrainedModel | None,
) -> tuple[PreTrainedModel, PreTrainedModel, PreTrainedModel]:
    """The three components, built with fresh weights from their configs where not given (translators first)."""
    if lr_hr_model is None:
        lr_hr_model = AutoModelForSeq2SeqLM.from_config(config.lr_hr_config)
    if hr_lr_model is None:
        hr_lr_model = AutoModelForSeq2SeqLM.from_config(config.hr_lr_config)
    llm = llm.base_model if llm is not None else AutoModel.from_config(config.llm_config)
    return lr_hr_model, llm, hr_lr_model


class TallEncoder(nn.Module):
    """Stages 1-6 of TALL: the LR prefix (source stream) and its HR translation (bridge stream) become the states the
    LR decoder cross-attends to. What `get_encoder()` returns, so `generate` runs it once.

    It owns the LR->HR translator's encoder and the LLM (frozen) and the fusion, alignment adapters and custom
    transformers (trained)."""

    def __init__(self, config: TallConfig, lr_encoder: nn.Module, llm: PreTrainedModel) -> None:
        super().__init__()
        self.config = config
        lr_width, llm_width = config.lr_hr_config.d_model, config.llm_config.hidden_size
        hr_lr_width = config.hr_lr_config.d_model
        adapter_kwargs = {"hidden_factor": config.adapter_hidden_factor, "dropout": config.adapter_dropout}
        self.lr_encoder = lr_encoder
        self.encoder_fusion = build_fusion(
            config.encoder_fusion, config.lr_hr_config.num_hidden_layers, lr_width, **config.encoder_fusion_options
        )
        self.source_alignment = AlignmentAdapter(lr_width, llm_width, **adapter_kwargs)
        self.source_transformer = _without_token_embeddings(MarianDecoder(config.source_transformer_config))
        if config.source_residual:  # its gate on the LLM's own embeddings (see `TallConfig.source_residual`)
            self.source_transformer.residual_gate = nn.Parameter(torch.zeros(()))
        self.llm = llm
        self.target_alignment = AlignmentAdapter(llm_width, hr_lr_width, **adapter_kwargs)
        self.target_transformer = _without_token_embeddings(MarianEncoder(config.target_transformer_config))

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        bridge_input_ids: torch.LongTensor,
        bridge_attention_mask: torch.LongTensor,
        lr_encoder_outputs: BaseModelOutput | None = None,
        llm_hidden_states: torch.FloatTensor | None = None,
        **kwargs,
    ) -> TallEncoderOutput:
        r"""
        lr_encoder_outputs: the LR encoder's output for `input_ids` (with `hidden_states` where the fusion reads every
            layer), already computed: stage 1's encoder is skipped. The LR->HR translator's encoder *is* stage 1, so
            the states it computed while translating the prefix serve here
            (`tall_hf.data.translate(..., return_encoder_outputs=True)`).
        llm_hidden_states: what `llm_states` returns for these inputs (stages 1-4), already computed, e.g. while
            stages 1-3 stay frozen (`tall_hf.training.frozen_states`): only stages 5-6 run.
        """
        _check_kwargs(kwargs, "TallEncoder.forward")
        if llm_hidden_states is None:
            llm_hidden_states = self.llm_states(
                input_ids, attention_mask, bridge_input_ids, bridge_attention_mask, lr_encoder_outputs
            )
        target_states = self.target_alignment(llm_hidden_states, bridge_attention_mask)  # 5
        target_states = self.target_transformer(  # 6
            inputs_embeds=target_states, attention_mask=bridge_attention_mask
        ).last_hidden_state
        return TallEncoderOutput(last_hidden_state=target_states, attention_mask=bridge_attention_mask)

    def llm_states(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        bridge_input_ids: torch.LongTensor,
        bridge_attention_mask: torch.LongTensor,
        lr_encoder_outputs: BaseModelOutput | None = None,
    ) -> torch.FloatTensor:
        """Stages 1-4: the LLM's last hidden states of the bridge stream, `(batch, bridge_length, llm_width)`
        (`lr_encoder_outputs`: see `forward`)."""
        check_lengths(self.config.max_stream_tokens, input_ids=input_ids, bridge_input_ids=bridge_input_ids)
        check_right_padded(attention_mask=attention_mask, bridge_attention_mask=bridge_attention_mask)
        if lr_encoder_outputs is None:  # 1: the LR encoder (unless it ran already), its layers fused (the last one)
            lr_encoder_outputs = self.lr_encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=self.encoder_fusion.uses_all_layers,
            )
        elif lr_encoder_outputs.last_hidden_state.shape[:2] != input_ids.shape:
            raise ValueError(
                f"lr_encoder_outputs has states of shape {tuple(lr_encoder_outputs.last_hidden_state.shape[:2])} for "
                f"input_ids of shape {tuple(input_ids.shape)}: pass the LR encoder's output for these very inputs."
            )
        source_states = self.encoder_fusion(lr_encoder_outputs, attention_mask)
        source_states = self.source_alignment(source_states, attention_mask)  # 2
        bridge_embeddings = self.llm.get_input_embeddings()(bridge_input_ids)
        llm_inputs = self.source_transformer(  # 3
            inputs_embeds=bridge_embeddings,
            attention_mask=bridge_attention_mask,
            encoder_hidden_states=source_states,
            encoder_attention_mask=attention_mask,
        ).last_hidden_state
        if self.config.source_residual:
            llm_inputs = bridge_embeddings + self.source_transformer.residual_gate * llm_inputs
        return self.llm(  # 4
            inputs_embeds=llm_inputs, attention_mask=bridge_attention_mask, use_cache=False
        ).last_hidden_state


class TallModel(TallPreTrainedModel):
    """TALL without its LM head: the [`TallEncoder`] (stages 1-6) and the HR->LR translator's decoder (stage 7), which
    returns the decoder's states of the target stream. What `AutoModel` gives for a TALL checkpoint."""

    _keys_to_ignore_on_load_unexpected = [r"^final_logits_bias$", r"^lm_head\."]

    def __init__(
        self,
        config: TallConfig,
        lr_hr_model: PreTrainedModel | None = None,
        llm: PreTrainedModel | None = None,
        hr_lr_model: PreTrainedModel | None = None,
    ) -> None:
        super().__init__(config)
        lr_hr_model, llm, hr_lr_model = _component_models(config, lr_hr_model, llm, hr_lr_model)
        self.encoder = TallEncoder(config, lr_hr_model.get_encoder(), llm)
        self.decoder = hr_lr_model.get_decoder()
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.llm.get_input_embeddings()

    def get_encoder(self) -> TallEncoder:
        """Stages 1-6 (what `generate` runs once before decoding)."""
        return self.encoder

    def get_decoder(self) -> nn.Module:
        return self.decoder

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        encoder_outputs: TallEncoderOutput | None = None,
        lr_encoder_outputs: BaseModelOutput | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        llm_hidden_states: torch.FloatTensor | None = None,
        **kwargs,
    ) -> TallModelOutput:
        r"""
        input_ids, attention_mask: the LR sentence without its last word, in the LR->HR translator's tokens.
        bridge_input_ids, bridge_attention_mask: its HR translation, in the LLM's tokens.
        decoder_input_ids, decoder_attention_mask: the LR sentence in the HR->LR translator's target tokens, shifted
            right behind the decoder start token.
        encoder_outputs: stages 1-6 already computed by the [`TallEncoder`] (skips them).
        lr_encoder_outputs: stage 1's LR encoder output already computed (skips that encoder; see
            [`TallEncoder.forward`]).
        cache: the LR decoder's cache during generation (`past_key_values`, the name before transformers 5.24).
        llm_hidden_states: stages 1-4 already computed (`TallEncoder.llm_states`; skips them, stages 5-6 run).
        """
        _check_kwargs(kwargs, "TallModel.forward")
        cache = cache if cache is not None else past_key_values
        if decoder_input_ids is None:
            raise ValueError("Pass `decoder_input_ids`: the target stream, shifted right behind the start token.")
        if encoder_outputs is None:
            check_streams(input_ids, attention_mask, bridge_input_ids, bridge_attention_mask, decoder_input_ids)
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask,
                bridge_input_ids,
                bridge_attention_mask,
                lr_encoder_outputs=lr_encoder_outputs,
                llm_hidden_states=llm_hidden_states,
            )
        past_length = cache.get_seq_length() if cache is not None else 0
        limit = self.config.hr_lr_config.max_position_embeddings - past_length
        check_lengths(limit, decoder_input_ids=decoder_input_ids)
        decoded = self.decoder(  # 7
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
            use_cache=use_cache,
            **{CACHE_NAME: cache},
        )
        return TallModelOutput(
            last_hidden_state=decoded.last_hidden_state,
            **{CACHE_NAME: getattr(decoded, CACHE_NAME)},
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
        )


def _stage_property(stage: str) -> property:
    path = STAGE_PATHS[stage]
    return property(lambda self: self.get_submodule(path), doc=f"Stage `{stage}` (`{path}`).")


class TallForConditionalGeneration(TallPreTrainedModel, GenerationMixin):
    """TALL for last-word prediction in a low-resource language: [`TallModel`] and the HR->LR translator's LM head;
    only the alignment adapters and custom transformers train.

    Each stage is also reachable by its name in the paper's figure (`model.llm` is `model.model.encoder.llm`, see
    `STAGE_PATHS`). `config.lora` adds a PEFT tuner to the LLM."""

    adapter_modules = tuple(STAGE_PATHS[stage] for stage in TRAINABLE_STAGES)
    frozen_modules = tuple(STAGE_PATHS[stage] for stage in FROZEN_STAGES)
    component_arguments = {"lr_hr": "lr_hr_model", "llm": "llm", "hr_lr": "hr_lr_model"}
    auto_classes = ("AutoModelForSeq2SeqLM",)  # `AutoModel` gives `TallModel`, the base model
    lora_target = STAGE_PATHS["llm"]
    _checkpoint_conversion_mapping = LEGACY_KEY_MAPPING
    model_card_template = "tall_model_card.md.j2"

    lr_encoder = _stage_property("lr_encoder")
    encoder_fusion = _stage_property("encoder_fusion")
    source_alignment = _stage_property("source_alignment")
    source_transformer = _stage_property("source_transformer")
    llm = _stage_property("llm")
    target_alignment = _stage_property("target_alignment")
    target_transformer = _stage_property("target_transformer")
    lr_decoder = _stage_property("lr_decoder")

    def __init__(
        self,
        config: TallConfig,
        lr_hr_model: PreTrainedModel | None = None,
        llm: PreTrainedModel | None = None,
        hr_lr_model: PreTrainedModel | None = None,
    ) -> None:
        super().__init__(config)
        lr_hr_model, llm, hr_lr_model = _component_models(config, lr_hr_model, llm, hr_lr_model)
        self.model = TallModel(config, lr_hr_model, llm, hr_lr_model)
        self.lm_head = hr_lr_model.get_output_embeddings()
        bias = getattr(hr_lr_model, "final_logits_bias", None)
        if bias is None:
            bias = torch.zeros(1, self.lm_head.out_features)
        self.register_buffer("final_logits_bias", bias.detach().clone(), persistent=True)
        if config.tie_word_embeddings:
            self._tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}
        self.post_init()
        self.init_from_components(hr_lr_model)
        self.freeze_components()
        self.init_lora()
        self.generation_config = default_generation_config(config)

    # ------------------------------------------------------------------ assembly
    @torch.no_grad()
    def init_from_components(self, hr_lr_model: PreTrainedModel) -> None:
        """Initialisations that read the components (`TallConfig.source_residual`, `target_transformer_init`)."""
        if self.config.source_residual:
            self.source_transformer.residual_gate.zero_()
        if self.config.target_transformer_init == "translator":
            translator_layers = hr_lr_model.get_encoder().layers
            if len(translator_layers) != len(self.target_transformer.layers):
                raise ValueError(
                    "target_transformer_init='translator' needs custom transformer 2 shaped like the HR->LR "
                    f"translator's encoder: {len(self.target_transformer.layers)} vs {len(translator_layers)} layers."
                )
            self.target_transformer.layers.load_state_dict(translator_layers.state_dict())

    @classmethod
    def from_components(
        cls,
        lr_hr: ComponentSpec,
        llm: ComponentSpec,
        hr_lr: ComponentSpec,
        *,
        lr_hr_revision: str | None = None,
        llm_revision: str | None = None,
        hr_lr_revision: str | None = None,
        dtype: torch.dtype | None = None,
        **overrides,
    ) -> TallForConditionalGeneration:
        """Assemble TALL from its three frozen components.

        Each component is a hub id, a local folder, a `PretrainedConfig` (random weights, e.g. under
        `with torch.device("meta")` for parameter counts) or an already loaded model. Pretrained weights go into the
        frozen stages, fresh weights into the trainable ones. `overrides` are `TallConfig` fields (`loss_mode`,
        `adapter_dropout`, `source_transformer_config`, ...).

        ```python
        >>> model = TallForConditionalGeneration.from_components(
        ...     lr_hr="Helsinki-NLP/opus-mt-tc-big-he-en", llm="Qwen/Qwen2.5-0.5B", hr_lr="Helsinki-NLP/opus-mt-en-he"
        ... )
        ```
        """
        load_kwargs = {"dtype": dtype} if dtype is not None else {}
        revisions = {"lr_hr": lr_hr_revision, "llm": llm_revision, "hr_lr": hr_lr_revision}
        components = {
            "lr_hr": resolve_component(
                lr_hr, AutoModelForSeq2SeqLM, "LR->HR translator", lr_hr_revision, **load_kwargs
            ),
            "llm": resolve_component(llm, AutoModel, "LLM", llm_revision, **load_kwargs),
            "hr_lr": resolve_component(
                hr_lr, AutoModelForSeq2SeqLM, "HR->LR translator", hr_lr_revision, **load_kwargs
            ),
        }
        llm_config = components["llm"][1]
        if llm_config.is_encoder_decoder:
            raise ValueError(
                f"The LLM must be a decoder-only model, got an encoder-decoder {llm_config.model_type!r}."
            )
        return cls.assemble(components, revisions, dtype=dtype, **overrides)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def get_encoder(self) -> TallEncoder:
        """Stages 1-6 (what `generate` runs once before decoding)."""
        return self.model.get_encoder()

    def get_decoder(self) -> nn.Module:
        return self.model.get_decoder()

    # ------------------------------------------------------------------ forward
    def encode(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        bridge_input_ids: torch.LongTensor,
        bridge_attention_mask: torch.LongTensor,
        lr_encoder_outputs: BaseModelOutput | None = None,
    ) -> TallEncoderOutput:
        """Stages 1-6 ([`TallEncoder`]): the LR prefix and its HR translation become the states the LR decoder reads
        (`lr_encoder_outputs`: stage 1's LR encoder output, already computed)."""
        return self.get_encoder()(
            input_ids, attention_mask, bridge_input_ids, bridge_attention_mask, lr_encoder_outputs
        )

    def decode(
        self,
        decoder_input_ids: torch.LongTensor,
        encoder_outputs: TallEncoderOutput,
        decoder_attention_mask: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
    ) -> tuple[torch.FloatTensor, Cache | None]:
        """Stage 7: the LR decoder reads the target stream; returns LR logits (at the positions `logits_to_keep`
        selects, see `forward`) and its cache."""
        outputs = self.model(
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            use_cache=use_cache,
        )
        return self.lm_logits(outputs.last_hidden_state, logits_to_keep), getattr(outputs, CACHE_NAME)

    def lm_logits(self, hidden: torch.Tensor, logits_to_keep: int | torch.Tensor = 0) -> torch.FloatTensor:
        """The LM head and final logits bias on the decoder's states at the positions `logits_to_keep` selects."""
        if isinstance(logits_to_keep, torch.Tensor) and logits_to_keep.dtype == torch.bool:
            hidden = hidden[logits_to_keep]  # (kept positions, width)
        elif isinstance(logits_to_keep, torch.Tensor):
            hidden = hidden[:, logits_to_keep]
        elif logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return self.lm_head(hidden) + self.final_logits_bias.to(hidden.dtype)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        encoder_outputs: TallEncoderOutput | None = None,
        lr_encoder_outputs: BaseModelOutput | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        logits_to_keep: int | torch.Tensor | None = None,
        llm_hidden_states: torch.FloatTensor | None = None,
        **kwargs,
    ) -> TallSeq2SeqLMOutput:
        r"""
        input_ids, attention_mask: the LR sentence without its last word, in the LR->HR translator's tokens.
        bridge_input_ids, bridge_attention_mask: its HR translation, in the LLM's tokens.
        decoder_input_ids, decoder_attention_mask: the LR sentence in the HR->LR translator's target tokens,
            shifted right behind the decoder start token (built from `labels` when omitted).
        labels: the unshifted target tokens, `-100` where no loss is taken.
        encoder_outputs: stages 1-6 already computed by [`~TallForConditionalGeneration.encode`] (skips them).
        lr_encoder_outputs: stage 1's LR encoder output already computed, e.g. by the LR->HR translator whose encoder
            it is (skips that encoder; see [`TallEncoder.forward`]).
        cache: the LR decoder's cache during generation (`past_key_values`, the name before transformers 5.24).
        use_cache: return the updated cache; never with `labels` (training and evaluation keep no cache).
        logits_to_keep: the target positions the LM head runs at: `0`, every one; an `int` n, the last n (as in
            transformers); a boolean `(batch, target_length)` mask, the marked ones, giving `(kept, vocab)` logits.
            `None` (the default) is every position, except in training mode with `labels` in loss mode `last_token`
            or `last_word`, where it is the positions the loss reads (`tall_hf.modules.logits.loss_positions`): the
            loss is the same, and `Trainer`, which switches the mode, gets the cheap one.
        llm_hidden_states: stages 1-4 already computed (`TallEncoder.llm_states`, e.g. the column training with a
            frozen source side caches, `tall_hf.training.frozen_states`): skips them, stages 5-7 run.
        """
        _check_kwargs(kwargs, f"{type(self).__name__}.forward")
        use_cache = False if labels is not None else use_cache
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("Pass `decoder_input_ids` (the target stream) or `labels` to build it from.")
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        if labels is not None:
            check_label_shape(decoder_input_ids, labels)
        if logits_to_keep is None:
            reduced = labels is not None and self.training and self.config.loss_mode in REDUCED_LOGITS_MODES
            logits_to_keep = loss_positions(labels, self.config.loss_mode) if reduced else 0
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            bridge_input_ids=bridge_input_ids,
            bridge_attention_mask=bridge_attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            lr_encoder_outputs=lr_encoder_outputs,
            cache=cache if cache is not None else past_key_values,
            use_cache=use_cache,
            llm_hidden_states=llm_hidden_states,
        )
        logits = self.lm_logits(outputs.last_hidden_state, logits_to_keep)
        loss = None
        if labels is not None:
            loss = self.loss(logits, labels, logits_to_keep)
        return TallSeq2SeqLMOutput(
            loss=loss,
            logits=logits,
            **{CACHE_NAME: getattr(outputs, CACHE_NAME)},
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_attention_mask=outputs.encoder_attention_mask,
        )

    def loss(self, logits: torch.Tensor, labels: torch.LongTensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
        """The loss of `config.loss_mode` on logits at the positions `logits_to_keep` selected."""
        if isinstance(logits_to_keep, torch.Tensor) and logits_to_keep.dtype == torch.bool:
            needed = loss_positions(labels, self.config.loss_mode)
            if bool((needed & ~logits_to_keep).any()):
                raise ValueError(f"logits_to_keep drops positions the {self.config.loss_mode!r} loss reads.")
            return kept_cross_entropy(logits[needed[logits_to_keep]], labels, needed)
        if logits.shape[1] != labels.shape[1]:
            raise ValueError("A loss needs the logits of every target position: pass logits_to_keep=0 or a mask.")
        if self.config.loss_mode == "last_token":
            return last_token_cross_entropy(logits, labels)
        return token_cross_entropy(logits, labels)

    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        encoder_outputs: TallEncoderOutput | None = None,
        lr_encoder_outputs: BaseModelOutput | None = None,
        **kwargs,
    ):
        """`GenerationMixin.generate` over the processor's batch: stages 1-6 once, then the LR decoder token by token
        with its KV cache, continuing each target prefix (`decoder_input_ids`); `lr_encoder_outputs` (stage 1's LR
        encoder output, e.g. from translating the prefixes) skip the LR encoder.

        The LR decoder places tokens by their count in its cache, so its stream is never padded: rows whose target
        prefixes differ in length (right padding in `decoder_attention_mask`) are generated in groups of one
        length, after one encoder pass for the whole batch, and returned right-padded with `pad_token_id`.
        """
        if encoder_outputs is None and input_ids is not None:
            encoder_outputs = self.encode(
                input_ids, attention_mask, bridge_input_ids, bridge_attention_mask, lr_encoder_outputs
            )
        lengths = None if decoder_attention_mask is None else decoder_attention_mask.sum(dim=1)
        if lengths is None or bool((lengths == decoder_input_ids.shape[1]).all()):
            return super().generate(decoder_input_ids=decoder_input_ids, encoder_outputs=encoder_outputs, **kwargs)
        if kwargs.get("return_dict_in_generate") or kwargs.get("num_return_sequences", 1) > 1:
            raise ValueError("Pass target prefixes of one length to return dicts or several sequences per row.")
        pad_token_id = kwargs.get("pad_token_id", self.generation_config.pad_token_id)
        rows_out: list[torch.LongTensor | None] = [None] * len(lengths)
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            mask = encoder_outputs.attention_mask[rows]
            width = int(mask.sum(dim=1).max())
            group = TallEncoderOutput(
                last_hidden_state=encoder_outputs.last_hidden_state[rows, :width], attention_mask=mask[:, :width]
            )
            # Each group is a generate call of its own: stateful stopping criteria start afresh (a copy per group).
            group_kwargs = {**kwargs, "stopping_criteria": copy.deepcopy(kwargs.get("stopping_criteria"))}
            generated = super().generate(
                decoder_input_ids=decoder_input_ids[rows, :length], encoder_outputs=group, **group_kwargs
            )
            for row, sequence in zip(rows.tolist(), generated, strict=True):
                rows_out[row] = sequence
        return nn.utils.rnn.pad_sequence(rows_out, batch_first=True, padding_value=pad_token_id)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.LongTensor:
        """Teacher forcing: the labels shifted right behind the HR->LR translator's decoder start token."""
        hr_lr = self.config.hr_lr_config
        shifted = labels.new_full(labels.shape, hr_lr.pad_token_id)
        shifted[:, 1:] = labels[:, :-1]
        shifted[:, 0] = hr_lr.decoder_start_token_id
        return shifted.masked_fill(shifted.eq(-100), hr_lr.pad_token_id)

    # ------------------------------------------------------------------ reporting
    # ------------------------------------------------------------------ reporting
    def parameter_stages(self) -> list[tuple[str, Iterable[nn.Parameter]]]:
        """The stages of the paper's Tables 3-4 in their order (the LLM split into embeddings and body, the LM head
        apart from the tied decoder). A trainable stage's total includes its fixed sinusoidal position table."""
        embeddings = self.llm.get_input_embeddings()
        embedding_ids = {id(p) for p in embeddings.parameters()}
        return [
            ("lr_encoder", self.lr_encoder.parameters()),
            *([("encoder_fusion", self.encoder_fusion.parameters())] if self.config.encoder_fusion != "last" else []),
            ("llm_embeddings", embeddings.parameters()),
            ("source_alignment", self.source_alignment.parameters()),
            ("source_transformer", self.source_transformer.parameters()),
            ("llm_body", (p for p in self.llm.parameters() if id(p) not in embedding_ids)),
            ("target_alignment", self.target_alignment.parameters()),
            ("target_transformer", self.target_transformer.parameters()),
            ("lr_decoder", self.lr_decoder.parameters()),
            ("lm_head", self.lm_head.parameters()),
        ]

    def parameter_summary(self) -> dict:
        """Totals that reconcile with the paper's Table 2 (tied LM head counted once)."""
        trainable, total = self.get_nb_trainable_parameters()
        stages = [row for row in self.parameter_report() if row["trains"]]
        in_trainable_stages = sum(row["total"] for row in stages)
        return {
            "total": total,
            "trainable": trainable,  # with LoRA on the LLM, its weights too
            "fixed_positions_in_trainable_stages": in_trainable_stages - sum(row["trainable"] for row in stages),
            "trainable_as_in_paper": in_trainable_stages,
        }

    def parameter_table(self) -> str:
        """The parameter report as a Markdown table, with a note on how the trainable count reconciles."""
        summary = self.parameter_summary()
        share = 100 * summary["trainable"] / summary["total"]
        paper_share = 100 * summary["trainable_as_in_paper"] / summary["total"]
        return (
            f"{super().parameter_table()}\n\n"
            f"Trainable here: {summary['trainable']:,} ({share:.2f}%). The custom transformers' sinusoidal position "
            f"tables ({summary['fixed_positions_in_trainable_stages']:,}) are kept fixed; counted as trainable, as in "
            f"the TALL paper, the figure is {summary['trainable_as_in_paper']:,} ({paper_share:.2f}%)."
        )


def default_generation_config(config: TallConfig) -> GenerationConfig:
    """Generation with the HR->LR translator's special tokens: start, end and padding; the start (padding) token is
    never generated; `max_new_tokens` defaults to a word's worth."""
    hr_lr = config.hr_lr_config
    return GenerationConfig(
        decoder_start_token_id=hr_lr.decoder_start_token_id,
        eos_token_id=hr_lr.eos_token_id,
        pad_token_id=hr_lr.pad_token_id,
        suppress_tokens=[hr_lr.decoder_start_token_id],
        max_new_tokens=8,
    )


def check_lengths(limit: int, **streams: torch.Tensor) -> None:
    """Every stream fits the position tables; a `ValueError` names the one that does not."""
    for name, stream in streams.items():
        if stream.shape[-1] > limit:
            raise ValueError(
                f"{name} has {stream.shape[-1]} tokens but this TALL reads at most {limit} (its smallest position "
                "table): shorten the input, or drop long sentences with PreparationArguments.max_tokens."
            )


def check_right_padded(**masks: torch.Tensor) -> None:
    """Padding only after each row's tokens (the Marian stages number positions from the first column, so a
    left-padded row would be read at shifted positions); a `ValueError` names the mask otherwise."""
    for name, mask in masks.items():
        if mask.shape[-1] > 1 and bool((mask[:, 1:] > mask[:, :-1]).any()):
            raise ValueError(
                f"{name} is padded on the left; TALL's streams must be padded on the right (as TallProcessor and "
                "TallDataCollator do), or the Marian stages read them at shifted positions."
            )


def check_streams(*streams: torch.Tensor | None) -> None:
    """All three streams are present, non-empty and of one batch size; raise a `ValueError` naming the problem."""
    names = ("input_ids", "attention_mask", "bridge_input_ids", "bridge_attention_mask", "decoder_input_ids")
    missing = [name for name, value in zip(names, streams, strict=True) if value is None]
    if missing:
        raise ValueError(
            f"Missing input streams: {', '.join(missing)}. TALL needs the source, bridge and target streams."
        )
    empty = [name for name, value in zip(names, streams, strict=True) if value.numel() == 0]
    if empty:
        raise ValueError(f"Empty batch: {', '.join(empty)} hold no tokens.")
    sizes = {name: value.shape[0] for name, value in zip(names, streams, strict=True)}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"The streams have different batch sizes: {sizes}.")


_DEPRECATED_NAMES = {"TallForCausalLM": "TallForConditionalGeneration", "TallCausalLMOutput": "TallSeq2SeqLMOutput"}


def __getattr__(name: str) -> Any:
    """The names before TALL was split into `TallModel` and its head, kept as deprecated aliases."""
    if name in _DEPRECATED_NAMES:
        new_name = _DEPRECATED_NAMES[name]
        warnings.warn(f"{name} is deprecated; use {new_name}.", FutureWarning, stacklevel=2)
        return globals()[new_name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LEGACY_KEY_MAPPING",
    "STAGE_PATHS",
    "TallEncoder",
    "TallEncoderOutput",
    "TallForConditionalGeneration",
    "TallModel",
    "TallModelOutput",
    "TallPreTrainedModel",
    "TallSeq2SeqLMOutput",
]

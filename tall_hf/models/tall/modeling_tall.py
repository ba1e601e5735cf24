"""TALL: a frozen LLM between two frozen translators, joined by small trainable modules (Figure 1 of the paper).

In transformers' terms TALL is an encoder-decoder: `get_encoder()` returns the [`TallEncoder`] (stages 1-6, run once
per input), and stage 7 is the decoder `GenerationMixin.generate` runs token by token with its KV cache. Stage by
stage, as `TallEncoder.forward` and `TallForCausalLM.forward` run them:

1. `lr_encoder`          frozen   the LR->HR translator's encoder reads the LR prefix (source stream);
   `encoder_fusion`      trains   its layers fused into one state per token (`last`, the paper's: no parameters)
2. `source_alignment`    trains   alignment adapter A: translator width -> LLM width
3. `source_transformer`  trains   custom transformer 1 (a Marian decoder): the LLM's embeddings of the HR
                                   translation (bridge stream) cross-attend to stage 2
4. `llm`                 frozen   the LLM body runs on stage 3's output as `inputs_embeds`
5. `target_alignment`    trains   alignment adapter B: LLM width -> HR->LR translator width
6. `target_transformer`  trains   custom transformer 2 (a Marian encoder)
7. `lr_decoder`          frozen   the HR->LR translator's decoder, `lm_head` and `final_logits_bias` read the target
                                   stream and cross-attend to stage 6
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, AutoModelForSeq2SeqLM, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import ModelOutput, Seq2SeqLMOutput
from transformers.models.marian.modeling_marian import MarianDecoder, MarianEncoder
from transformers.utils import logging

from ...adapters.mixin import AdapterMixin
from ...modules.alignment import AlignmentAdapter
from ...modules.fusion import build_fusion
from ...modules.logits import REDUCED_LOGITS_MODES, kept_cross_entropy, loss_positions
from ...modules.losses import check_label_shape, last_token_cross_entropy, token_cross_entropy
from ...utils.hub import ComponentSpec, resolve_component
from .configuration_tall import TallConfig

logger = logging.get_logger(__name__)

# transformers 5.24 renamed the decoder cache, in model outputs and forward arguments, from `past_key_values` to `cache`:
# the name the installed version uses.
CACHE_NAME = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"
FROZEN_STAGES = ("lr_encoder", "llm", "lr_decoder", "lm_head")
TRAINABLE_STAGES = (
    "encoder_fusion",
    "source_alignment",
    "source_transformer",
    "target_alignment",
    "target_transformer",
)


@dataclass
class TallEncoderOutput(ModelOutput):
    """Output of stages 1-6: the states the LR decoder cross-attends to, and their mask (the bridge stream's)."""

    last_hidden_state: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None


@dataclass
class TallCausalLMOutput(Seq2SeqLMOutput):
    """Output of [`TallForCausalLM`]: transformers' sequence-to-sequence output with the mask of stage 6's states.

    Args:
        loss: the configured target-stream loss, when `labels` are given.
        logits: LR vocabulary scores at every target position, `(batch, target_length, vocab)`; in training mode
            with `labels` and loss mode `last_token` or `last_word`, only at the positions the loss reads,
            `(kept positions, vocab)` in the order of `labels[keep]` (`tall_hf.modules.logits.loss_positions`).
        cache (`past_key_values` before transformers 5.24, see `CACHE_NAME`): the LR decoder's cache, when
            `use_cache=True` and no `labels` are given (training and evaluation forwards return none).
        encoder_last_hidden_state: stage 6's output, reusable for every token of the next word.
        encoder_attention_mask: its mask.
    """

    encoder_attention_mask: torch.LongTensor | None = None


class TallPreTrainedModel(PreTrainedModel):
    config: TallConfig
    config_class = TallConfig
    base_model_prefix = ""
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


class TallEncoder(nn.Module):
    """Stages 1-6 of TALL: the LR prefix (source stream) and its HR translation (bridge stream) become the states the
    LR decoder cross-attends to. What `TallForCausalLM.get_encoder()` returns, so `generate` runs it once.

    A view over the model's own stage modules (they stay registered, and named, on the model)."""

    def __init__(self, model: TallForCausalLM) -> None:
        super().__init__()
        object.__setattr__(self, "model", model)  # not a submodule: the stages belong to the model

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        bridge_input_ids: torch.LongTensor,
        bridge_attention_mask: torch.LongTensor,
        **kwargs,
    ) -> TallEncoderOutput:
        model = self.model
        check_lengths(model.config.max_stream_tokens, input_ids=input_ids, bridge_input_ids=bridge_input_ids)
        check_right_padded(attention_mask=attention_mask, bridge_attention_mask=bridge_attention_mask)
        source_states = model.encoder_fusion(  # 1: the LR encoder, its layers fused (the last one by default)
            model.lr_encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=model.encoder_fusion.uses_all_layers,
            ),
            attention_mask,
        )
        source_states = model.source_alignment(source_states, attention_mask)  # 2
        bridge_embeddings = model.llm.get_input_embeddings()(bridge_input_ids)
        llm_inputs = model.source_transformer(  # 3
            inputs_embeds=bridge_embeddings,
            attention_mask=bridge_attention_mask,
            encoder_hidden_states=source_states,
            encoder_attention_mask=attention_mask,
        ).last_hidden_state
        if model.config.source_residual:
            llm_inputs = bridge_embeddings + model.source_transformer.residual_gate * llm_inputs
        llm_states = model.llm(  # 4
            inputs_embeds=llm_inputs, attention_mask=bridge_attention_mask, use_cache=False
        ).last_hidden_state
        target_states = model.target_alignment(llm_states, bridge_attention_mask)  # 5
        target_states = model.target_transformer(  # 6
            inputs_embeds=target_states, attention_mask=bridge_attention_mask
        ).last_hidden_state
        return TallEncoderOutput(last_hidden_state=target_states, attention_mask=bridge_attention_mask)


class TallForCausalLM(AdapterMixin, TallPreTrainedModel, GenerationMixin):
    """TALL for last-word prediction in a low-resource language; only the alignment adapters and custom
    transformers train.

    Checkpoints ([`AdapterMixin`]): `save_pretrained(dir)` writes every weight; `save_pretrained(dir,
    adapters_only=True)` writes only the trainable stages (`adapter_config.json` + `adapter_model.safetensors`) and
    `from_pretrained` fetches the components from their recorded provenance. `config.lora` adds LoRA to the LLM."""

    adapter_modules = TRAINABLE_STAGES
    frozen_modules = FROZEN_STAGES
    component_arguments = {"lr_hr": "lr_hr_model", "llm": "llm", "hr_lr": "hr_lr_model"}
    auto_classes = ("AutoModel", "AutoModelForCausalLM", "AutoModelForSeq2SeqLM")
    model_card_template = "tall_model_card.md.j2"

    def __init__(
        self,
        config: TallConfig,
        lr_hr_model: PreTrainedModel | None = None,
        llm: PreTrainedModel | None = None,
        hr_lr_model: PreTrainedModel | None = None,
    ) -> None:
        super().__init__(config)
        lr_hr_model = (
            lr_hr_model if lr_hr_model is not None else AutoModelForSeq2SeqLM.from_config(config.lr_hr_config)
        )
        hr_lr_model = (
            hr_lr_model if hr_lr_model is not None else AutoModelForSeq2SeqLM.from_config(config.hr_lr_config)
        )
        llm = llm.base_model if llm is not None else AutoModel.from_config(config.llm_config)
        lr_width, llm_width = config.lr_hr_config.d_model, config.llm_config.hidden_size
        hr_lr_width = config.hr_lr_config.d_model
        adapter_kwargs = {"hidden_factor": config.adapter_hidden_factor, "dropout": config.adapter_dropout}

        self.lr_encoder = lr_hr_model.get_encoder()
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
        self.lr_decoder = hr_lr_model.get_decoder()
        self.lm_head = hr_lr_model.get_output_embeddings()
        bias = getattr(hr_lr_model, "final_logits_bias", None)
        if bias is None:
            bias = torch.zeros(1, self.lm_head.out_features)
        self.register_buffer("final_logits_bias", bias.detach().clone(), persistent=True)
        if config.tie_word_embeddings:
            self._tied_weights_keys = {"lm_head.weight": "lr_decoder.embed_tokens.weight"}
        self.post_init()
        if hr_lr_model is not None:
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
    ) -> TallForCausalLM:
        """Assemble TALL from its three frozen components.

        Each component is a hub id, a local folder, a `PretrainedConfig` (random weights, e.g. under
        `with torch.device("meta")` for parameter counts) or an already loaded model. Pretrained weights go into the
        frozen stages, fresh weights into the trainable ones. `overrides` are `TallConfig` fields (`loss_mode`,
        `adapter_dropout`, `source_transformer_config`, ...).

        ```python
        >>> model = TallForCausalLM.from_components(
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
        return self.llm.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def get_encoder(self) -> TallEncoder:
        """Stages 1-6 (what `generate` runs once before decoding)."""
        if "_encoder_view" not in self.__dict__:
            object.__setattr__(self, "_encoder_view", TallEncoder(self))
        return self.__dict__["_encoder_view"]

    def get_decoder(self) -> nn.Module:
        return self.lr_decoder

    # ------------------------------------------------------------------ forward
    def encode(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        bridge_input_ids: torch.LongTensor,
        bridge_attention_mask: torch.LongTensor,
    ) -> TallEncoderOutput:
        """Stages 1-6 ([`TallEncoder`]): the LR prefix and its HR translation become the states the LR decoder reads."""
        return self.get_encoder()(input_ids, attention_mask, bridge_input_ids, bridge_attention_mask)

    def decode(
        self,
        decoder_input_ids: torch.LongTensor,
        encoder_outputs: TallEncoderOutput,
        decoder_attention_mask: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        keep: torch.BoolTensor | None = None,
    ) -> tuple[torch.FloatTensor, Cache | None]:
        """Stage 7: the LR decoder reads the target stream; returns LR logits and its cache. With `keep` (a
        `(batch, length)` mask), the LM head runs only at those positions: logits `(kept positions, vocab)`."""
        past_length = cache.get_seq_length() if cache is not None else 0
        limit = self.config.hr_lr_config.max_position_embeddings - past_length
        check_lengths(limit, decoder_input_ids=decoder_input_ids)
        decoded = self.lr_decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
            use_cache=use_cache,
            **{CACHE_NAME: cache},
        )
        hidden = decoded.last_hidden_state if keep is None else decoded.last_hidden_state[keep]
        logits = self.lm_head(hidden) + self.final_logits_bias.to(hidden.dtype)
        return logits, getattr(decoded, CACHE_NAME)

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
        cache: Cache | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> TallCausalLMOutput:
        r"""
        input_ids, attention_mask: the LR sentence without its last word, in the LR->HR translator's tokens.
        bridge_input_ids, bridge_attention_mask: its HR translation, in the LLM's tokens.
        decoder_input_ids, decoder_attention_mask: the LR sentence in the HR->LR translator's target tokens,
            shifted right behind the decoder start token (built from `labels` when omitted).
        labels: the unshifted target tokens, `-100` where no loss is taken.
        encoder_outputs: stages 1-6 already computed by [`~TallForCausalLM.encode`] (skips them).
        cache: the LR decoder's cache during generation (`past_key_values`, the name before transformers 5.24).
        use_cache: return the updated cache; never with `labels` (training and evaluation keep no cache).
        """
        cache = cache if cache is not None else past_key_values
        use_cache = False if labels is not None else use_cache
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("Pass `decoder_input_ids` (the target stream) or `labels` to build it from.")
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        if encoder_outputs is None:
            check_streams(input_ids, attention_mask, bridge_input_ids, bridge_attention_mask, decoder_input_ids)
            encoder_outputs = self.encode(input_ids, attention_mask, bridge_input_ids, bridge_attention_mask)
        keep = None
        if labels is not None and self.training and self.config.loss_mode in REDUCED_LOGITS_MODES:
            check_label_shape(decoder_input_ids, labels)
            keep = loss_positions(labels, self.config.loss_mode)  # the LM head runs only where the loss reads
        logits, cache = self.decode(decoder_input_ids, encoder_outputs, decoder_attention_mask, cache, use_cache, keep)
        loss = None
        if labels is not None:
            if keep is not None:
                loss = kept_cross_entropy(logits, labels, keep)
            elif self.config.loss_mode == "last_token":
                loss = last_token_cross_entropy(logits, labels)
            else:
                loss = token_cross_entropy(logits, labels)
        return TallCausalLMOutput(
            loss=loss,
            logits=logits,
            **{CACHE_NAME: cache},
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_attention_mask=encoder_outputs.attention_mask,
        )

    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        bridge_input_ids: torch.LongTensor | None = None,
        bridge_attention_mask: torch.LongTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        encoder_outputs: TallEncoderOutput | None = None,
        **kwargs,
    ):
        """`GenerationMixin.generate` over the processor's batch: stages 1-6 once, then the LR decoder token by token
        with its KV cache, continuing each target prefix (`decoder_input_ids`).

        The LR decoder places tokens by their count in its cache, so its stream is never padded: rows whose target
        prefixes differ in length (right padding in `decoder_attention_mask`) are generated in groups of one
        length, after one encoder pass for the whole batch, and returned right-padded with `pad_token_id`.
        """
        if encoder_outputs is None and input_ids is not None:
            encoder_outputs = self.get_encoder()(input_ids, attention_mask, bridge_input_ids, bridge_attention_mask)
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


__all__ = ["TallCausalLMOutput", "TallEncoder", "TallEncoderOutput", "TallForCausalLM", "TallPreTrainedModel"]

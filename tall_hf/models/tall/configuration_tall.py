"""Configuration of TALL: three frozen components and the small trainable parts between them."""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PretrainedConfig
from transformers.activations import ACT2FN
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import logging

from ...modules.fusion import DEFAULT_FUSION, FUSION_METHODS

logger = logging.get_logger(__name__)

LOSS_MODES = ("last_token", "last_word", "all_tokens")
COMPONENT_ROLES = ("lr_hr", "llm", "hr_lr")
TARGET_TRANSFORMER_INITS = ("random", "translator")


@strict
class TallConfig(PretrainedConfig):
    r"""
    Configuration of [`TallForCausalLM`].

    Args:
        lr_hr_config: config of the LR->HR translator (its encoder is stage 1).
        llm_config: config of the frozen LLM (stage 4; its input embeddings embed the bridge stream).
        hr_lr_config: config of the HR->LR translator (its decoder and LM head are stage 7).
        source_transformer_config: Marian config of custom transformer 1 (stage 3, a decoder). When not given,
            derived as the paper's reference does (see `derive_source_transformer_config`): the LR->HR translator's
            decoder shape at the LLM's hidden size, Marian's defaults for the rest (`gelu`, 1,024 positions).
        source_transformer_activation: activation of a derived custom transformer 1: `None` (the reference's, Marian's
            default `gelu`), `"translator"` (the LR->HR translator's own) or any `transformers` activation name.
        target_transformer_config: Marian config of custom transformer 2 (stage 6, an encoder). Defaults to
            `hr_lr_config` as it is.
        adapter_hidden_factor: width of an alignment adapter's hidden layer, as a multiple of its output width.
        adapter_dropout: dropout inside the alignment adapters.
        transformer_dropout: dropout of the custom transformers (all three Marian dropouts); `None` keeps the
            translators' own.
        loss_mode: `"last_token"` (the paper's: cross-entropy at the last non-pad target position only),
            `"last_word"` (every sub-token of the missing word) or `"all_tokens"` (every target position). The
            processor builds `labels` for the mode; the model reads it to choose the reduction.
        encoder_fusion: how stage 1 turns the LR encoder's layers into one state per token before adapter A:
            `"last"` (the paper's: its last layer), `"global_softmax"` or `"token_softmax"` (the multilingual encoder
            fusion paper's; see `tall_hf.modules.fusion`). The fused layers are the encoder's transformer layers,
            not its embedding output.
        source_residual: stage 3 adds custom transformer 1's output to the LLM's own embeddings of the bridge stream,
            through a trainable gate that starts at 0: untrained, the LLM reads exactly its own embeddings of the HR
            translation (the paper's TALL feeds it custom transformer 1's output alone).
        target_transformer_init: `"random"` (the paper's) or `"translator"`: custom transformer 2 starts as a copy
            of the HR->LR translator's encoder layers, so stage 7 starts out reading states shaped like its own
            encoder's (needs the default `target_transformer_config`).
        encoder_fusion_options: the fusion method's own settings (e.g. `{"num_heads": 4}` for `token_softmax`).
        components: provenance of the frozen parts, `{"lr_hr": {"name_or_path": ..., "revision": ...}, ...}`.
        lora: a PEFT tuner config as a dict (`LoraConfig`, `IA3Config`, ...; see `tall_hf.adapters.get_tall_model`)
            injected into the frozen LLM, its `target_modules` named inside the LLM (e.g. `["q_proj", "v_proj"]`).
            `None`: no tuner.

    Example:

    ```python
    >>> from tall_hf import TallConfig, TallForCausalLM
    >>> from transformers import AutoConfig
    >>> config = TallConfig(
    ...     lr_hr_config=AutoConfig.for_model("marian"),
    ...     llm_config=AutoConfig.for_model("qwen2", hidden_size=64, num_attention_heads=4),
    ...     hr_lr_config=AutoConfig.for_model("marian"),
    ... )
    ```
    """

    model_type = "tall"
    sub_configs_defaults = {
        "lr_hr_config": SubConfigSpec(config_class=AutoConfig, model_type="marian"),
        "llm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
        "hr_lr_config": SubConfigSpec(config_class=AutoConfig, model_type="marian"),
        "source_transformer_config": SubConfigSpec(config_class=AutoConfig, model_type="marian", optional=True),
        "target_transformer_config": SubConfigSpec(config_class=AutoConfig, model_type="marian", optional=True),
    }

    lr_hr_config: dict | PretrainedConfig | None = None
    llm_config: dict | PretrainedConfig | None = None
    hr_lr_config: dict | PretrainedConfig | None = None
    source_transformer_config: dict | PretrainedConfig | None = None
    target_transformer_config: dict | PretrainedConfig | None = None
    source_transformer_activation: str | None = None
    adapter_hidden_factor: int = 2
    adapter_dropout: float = 0.1
    transformer_dropout: float | None = None
    loss_mode: Literal["last_token", "last_word", "all_tokens"] = "last_token"
    encoder_fusion: str = DEFAULT_FUSION
    encoder_fusion_options: dict | None = None
    source_residual: bool = False
    target_transformer_init: Literal["random", "translator"] = "random"
    components: dict | None = None
    lora: dict | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = True  # stages 1-6 encode, stage 7 decodes (what `generate` follows)

    def __post_init__(self, **kwargs):
        missing = [role for role in ("lr_hr_config", "llm_config", "hr_lr_config") if getattr(self, role) is None]
        if missing:  # the sub-configs' defaults would describe a 14B-parameter model nobody asked for
            raise ValueError(
                f"A TallConfig needs its three components' configs; {', '.join(missing)} missing. Build one with "
                "TallConfig.from_component_configs or TallForCausalLM.from_components, or load a saved model's "
                "config.json."
            )
        super().__post_init__(**kwargs)
        for role in ("lr_hr_config", "hr_lr_config"):
            if not getattr(getattr(self, role), "is_encoder_decoder", False):
                raise ValueError(
                    f"{role} must describe an encoder-decoder translator, got {getattr(self, role).model_type!r}."
                )
        if self.loss_mode not in LOSS_MODES:
            raise ValueError(f"loss_mode must be one of {LOSS_MODES}, got {self.loss_mode!r}.")
        if self.encoder_fusion not in FUSION_METHODS:
            raise ValueError(
                f"Unknown encoder_fusion {self.encoder_fusion!r}; choose one of {sorted(FUSION_METHODS)}."
            )
        if self.target_transformer_init not in TARGET_TRANSFORMER_INITS:
            raise ValueError(
                f"target_transformer_init must be one of {TARGET_TRANSFORMER_INITS}, got {self.target_transformer_init!r}."
            )
        activation = self.source_transformer_activation
        if activation not in (None, "translator") and activation not in ACT2FN:
            raise ValueError(
                f"source_transformer_activation must be None, 'translator' or an activation of transformers' ACT2FN, "
                f"got {activation!r}."
            )
        self.encoder_fusion_options = dict(self.encoder_fusion_options or {})
        if self.source_transformer_config is None:
            activation = self.source_transformer_activation
            if activation == "translator":
                activation = self.lr_hr_config.activation_function
            self.source_transformer_config = derive_source_transformer_config(
                self.lr_hr_config, self.llm_config, activation
            )
        if self.target_transformer_config is None:
            self.target_transformer_config = derive_target_transformer_config(self.hr_lr_config)
        if self.transformer_dropout is not None:
            for config in (self.source_transformer_config, self.target_transformer_config):
                config.dropout = config.attention_dropout = config.activation_dropout = self.transformer_dropout
        self.components = {role: dict((self.components or {}).get(role, {})) for role in COMPONENT_ROLES}
        self.tie_word_embeddings = bool(getattr(self.hr_lr_config, "tie_word_embeddings", True))
        self.validate_shapes()

    def validate_shapes(self) -> None:
        """Check that the parts fit together; raise a `ValueError` that names the mismatch."""
        llm_width = self.llm_config.hidden_size
        source = self.source_transformer_config
        if source.d_model != llm_width:
            raise ValueError(
                f"Custom transformer 1 must have the LLM's width: source_transformer_config.d_model={source.d_model}, "
                f"llm_config.hidden_size={llm_width}."
            )
        if source.d_model % source.decoder_attention_heads:
            raise ValueError(
                f"Custom transformer 1: d_model={source.d_model} is not divisible by "
                f"decoder_attention_heads={source.decoder_attention_heads}; override `source_transformer_config`."
            )
        target = self.target_transformer_config
        if target.d_model != self.hr_lr_config.d_model:
            raise ValueError(
                f"Custom transformer 2 must have the HR->LR translator's width: target_transformer_config.d_model="
                f"{target.d_model}, hr_lr_config.d_model={self.hr_lr_config.d_model}."
            )

    def get_text_config(self, decoder: bool | None = None, encoder: bool | None = None) -> PretrainedConfig:
        """Stage 7's decoder is the HR->LR translator's: its config describes the decoder (and the cache `generate`
        builds for it)."""
        if decoder:
            return self.hr_lr_config
        return super().get_text_config(decoder=decoder, encoder=encoder)

    @property
    def max_stream_tokens(self) -> int:
        """The longest stream TALL can read: the smallest position table on any stream's way (translators, custom
        transformers, LLM)."""
        limits = [
            self.lr_hr_config.max_position_embeddings,
            self.source_transformer_config.max_position_embeddings,
            self.target_transformer_config.max_position_embeddings,
            self.hr_lr_config.max_position_embeddings,
            getattr(self.llm_config, "max_position_embeddings", None),
        ]
        return min(limit for limit in limits if limit)

    @classmethod
    def from_component_configs(
        cls,
        lr_hr_config: PretrainedConfig,
        llm_config: PretrainedConfig,
        hr_lr_config: PretrainedConfig,
        **kwargs,
    ) -> TallConfig:
        """Build a TALL config from the configs of its three frozen components."""
        return cls(
            lr_hr_config=lr_hr_config.to_dict(),
            llm_config=llm_config.to_dict(),
            hr_lr_config=hr_lr_config.to_dict(),
            **kwargs,
        )


_SHARED_FIELDS = ("activation_function", "dropout", "attention_dropout", "activation_dropout", "scale_embedding")


def _marian_without_vocabulary(**fields) -> PretrainedConfig:
    """A Marian config for a custom transformer: it reads `inputs_embeds`, so it has no vocabulary of its own."""
    return AutoConfig.for_model(
        "marian", vocab_size=1, pad_token_id=0, eos_token_id=0, decoder_start_token_id=0, **fields
    )


def derive_source_transformer_config(
    lr_hr_config: PretrainedConfig, llm_config: PretrainedConfig, activation_function: str | None = None
) -> PretrainedConfig:
    """Custom transformer 1 as the paper's reference builds it: a fresh Marian config with the LLM's width and the
    LR->HR translator's decoder shape (layers, heads, FFN) and `scale_embedding`; every other field keeps Marian's
    default (`activation_function="gelu"`, `dropout=0.1`, 1,024 positions), whatever the translator uses.
    `activation_function` overrides the activation (e.g. the translator's own)."""
    fields = {"activation_function": activation_function} if activation_function else {}
    return _marian_without_vocabulary(
        d_model=llm_config.hidden_size,
        decoder_layers=lr_hr_config.decoder_layers,
        decoder_attention_heads=lr_hr_config.decoder_attention_heads,
        decoder_ffn_dim=lr_hr_config.decoder_ffn_dim,
        scale_embedding=lr_hr_config.scale_embedding,
        **fields,
    )


def derive_target_transformer_config(hr_lr_config: PretrainedConfig) -> PretrainedConfig:
    """Custom transformer 2: the HR->LR translator's encoder shape as it is."""
    return _marian_without_vocabulary(
        d_model=hr_lr_config.d_model,
        encoder_layers=hr_lr_config.encoder_layers,
        encoder_attention_heads=hr_lr_config.encoder_attention_heads,
        encoder_ffn_dim=hr_lr_config.encoder_ffn_dim,
        max_position_embeddings=hr_lr_config.max_position_embeddings,
        **{name: getattr(hr_lr_config, name) for name in _SHARED_FIELDS},
    )


__all__ = ["TallConfig", "LOSS_MODES", "TARGET_TRANSFORMER_INITS"]

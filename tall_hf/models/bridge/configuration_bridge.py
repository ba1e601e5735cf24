"""Configuration of the bridge: a frozen multilingual encoder, layer fusion, a projection, a frozen English LLM."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ...modules.fusion import DEFAULT_FUSION, FUSION_METHODS

COMPONENT_ROLES = ("encoder", "llm")


@strict
class BridgeConfig(PretrainedConfig):
    r"""
    Configuration of [`BridgeForCausalLM`].

    Args:
        encoder_config: config of the frozen multilingual encoder: an encoder-decoder checkpoint's (mT5, Marian,
            NLLB/M2M100: its encoder is used) or an encoder-only one's (XLM-R).
        llm_config: config of the frozen decoder-only LLM.
        fusion: how the encoder's layers become one state per token: `"last"` (LangBridge), `"global_softmax"` or
            `"token_softmax"` (see `tall_hf.modules.fusion`).
        fusion_options: the fusion method's own settings, e.g. `{"num_heads": 4, "width": 256}` for
            `token_softmax`.
        components: provenance of the frozen parts, `{"encoder": {"name_or_path": ..., "revision": ...}, "llm": ...}`.
        lora: an optional PEFT tuner config (as a dict, e.g. of a `peft.LoraConfig`) put on the frozen LLM.

    Example:

    ```python
    >>> from tall_hf import BridgeConfig
    >>> from transformers import AutoConfig
    >>> config = BridgeConfig(
    ...     encoder_config=AutoConfig.for_model("mt5", d_model=64, num_layers=4, num_heads=4, d_kv=16),
    ...     llm_config=AutoConfig.for_model("qwen2", hidden_size=64, num_attention_heads=4),
    ...     fusion="global_softmax",
    ... )
    ```
    """

    model_type = "tall_bridge"
    sub_configs_defaults = {
        "encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="mt5"),
        "llm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
    }

    encoder_config: dict | PretrainedConfig | None = None
    llm_config: dict | PretrainedConfig | None = None
    fusion: str = DEFAULT_FUSION  # TALL's `encoder_fusion`; the field names stay for saved checkpoints
    fusion_options: dict | None = None
    components: dict | None = None
    lora: dict | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.fusion not in FUSION_METHODS:
            raise ValueError(f"Unknown fusion method {self.fusion!r}; choose one of {sorted(FUSION_METHODS)}.")
        self.fusion_options = dict(self.fusion_options or {})
        self.components = {role: dict((self.components or {}).get(role, {})) for role in COMPONENT_ROLES}
        if self.llm_config.is_encoder_decoder:
            raise ValueError(
                f"The LLM must be a decoder-only model, got an encoder-decoder {self.llm_config.model_type!r}."
            )

    @property
    def encoder_num_layers(self) -> int:
        """The encoder's number of transformer layers (the layers the fusion weighs)."""
        return self.encoder_config.num_hidden_layers

    @property
    def encoder_hidden_size(self) -> int:
        return self.encoder_config.hidden_size

    @classmethod
    def from_component_configs(
        cls, encoder_config: PretrainedConfig, llm_config: PretrainedConfig, **kwargs
    ) -> BridgeConfig:
        """Build a bridge config from the configs of its two frozen components."""
        return cls(encoder_config=encoder_config.to_dict(), llm_config=llm_config.to_dict(), **kwargs)


__all__ = ["BridgeConfig"]

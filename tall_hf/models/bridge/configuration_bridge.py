"""Configuration of the bridge: a frozen multilingual encoder, layer fusion, a projection, a frozen English LLM."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from ...modules.fusion import DEFAULT_FUSION, FUSION_METHODS
from ..configuration_composite import ComposedConfig

COMPONENT_ROLES = ("encoder", "llm")


@strict
class BridgeConfig(ComposedConfig):
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
        components, lora, initializer_range: see [`ComposedConfig`] (roles `encoder` and `llm`).

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
    component_roles = COMPONENT_ROLES
    sub_configs_defaults = {
        "encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="mt5"),
        "llm_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2"),
    }

    encoder_config: dict | PretrainedConfig | None = None
    llm_config: dict | PretrainedConfig | None = None
    fusion: str = DEFAULT_FUSION  # TALL's `encoder_fusion`; the field names stay for saved checkpoints
    fusion_options: dict | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.fusion not in FUSION_METHODS:
            raise ValueError(f"Unknown fusion method {self.fusion!r}; choose one of {sorted(FUSION_METHODS)}.")
        self.fusion_options = dict(self.fusion_options or {})
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


__all__ = ["BridgeConfig"]

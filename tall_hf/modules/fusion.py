"""Fusion of a frozen encoder's layers into one state per token (the multilingual encoder fusion paper).

Every method is one `LayerFusion` subclass, registered under its name:

- `last`            the last layer only (LangBridge, and TALL as published); no parameters.
- `global_softmax`  one learned scalar per layer, softmax over the layers, the same weights for every token.
- `token_softmax`   a small transformer reads each token's stack of layer states (the layers are its sequence) and
                    gives that token its own softmax weights over the layers.

Which layers are fused: the outputs of the encoder's `num_layers` transformer layers, not its embedding output. The
last of them is the encoder's `last_hidden_state` (after any final layer norm, as in T5 and M2M100), so `last` is
exactly what a model without fusion reads. An encoder's `hidden_states` tuple holds `num_layers + 1` entries; the
first, the token embeddings, carries no context and is left out. In pre-norm encoders (T5/mT5) the intermediate
states are the unnormalised residual stream, on another scale than the normed last layer; the weights mix them as they
are (token softmax layer-norms them only to score them), and the projection that follows is trained on the mix.

A new method is a subclass that turns the stacked layer states into weights, and registers itself:

```python
@register_fusion("my_method")
class MyFusion(LayerFusion):
    def weights(self, states, real):
        # states: (batch, length, num_layers, width); real: (batch, length) bool, False on padding
        ...  # -> (batch, length, num_layers), summing to one on real tokens, zero on padding
```
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

FUSION_METHODS: dict[str, type[LayerFusion]] = {}
# The fusion both models start from: the encoder's last layer (LangBridge, and TALL's stage 1 in the paper).
DEFAULT_FUSION = "last"


def register_fusion(name: str):
    """Class decorator: make a `LayerFusion` subclass available to `build_fusion` under `name`."""

    def register(cls: type[LayerFusion]) -> type[LayerFusion]:
        if name in FUSION_METHODS:
            raise ValueError(
                f"A fusion method named {name!r} is already registered ({FUSION_METHODS[name].__name__})."
            )
        cls.method = name
        FUSION_METHODS[name] = cls
        return cls

    return register


def build_fusion(method: str, num_layers: int, hidden_size: int, **options) -> LayerFusion:
    """The fusion `method` (a name of `FUSION_METHODS`) for an encoder of `num_layers` layers of width `hidden_size`;
    `options` are the method's own settings (e.g. `num_heads` for `token_softmax`)."""
    if method not in FUSION_METHODS:
        raise ValueError(f"Unknown fusion method {method!r}; choose one of {sorted(FUSION_METHODS)}.")
    return FUSION_METHODS[method](num_layers, hidden_size, **options)


def stack_layer_states(encoder_outputs: BaseModelOutput, num_layers: int) -> torch.Tensor:
    """The fused layers' states, `(batch, length, num_layers, width)`: layers 1..L-1 of `hidden_states` and the
    encoder's `last_hidden_state` as layer L."""
    hidden_states = encoder_outputs.hidden_states
    if hidden_states is None:
        raise ValueError("Layer fusion needs every layer: call the encoder with `output_hidden_states=True`.")
    if len(hidden_states) != num_layers + 1:
        raise ValueError(
            f"The fusion was built for {num_layers} encoder layers, but the encoder returned {len(hidden_states)} "
            f"hidden states (expected the embedding output plus one per layer: {num_layers + 1})."
        )
    return torch.stack((*hidden_states[1:-1], encoder_outputs.last_hidden_state), dim=-2)


class LayerFusion(nn.Module):
    """Base class: fuse an encoder's layer states into `(batch, length, width)` with per-token layer weights.

    Args:
        num_layers: the encoder's number of transformer layers (the fused states are their outputs).
        hidden_size: the encoder's width.
    """

    method: ClassVar[str]
    uses_all_layers: ClassVar[bool] = True
    """Whether the encoder must be called with `output_hidden_states=True`."""

    def __init__(self, num_layers: int, hidden_size: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"An encoder to fuse needs at least one layer, got num_layers={num_layers}.")
        self.num_layers = num_layers
        self.hidden_size = hidden_size

    def weights(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The method itself: weights `(batch, length, num_layers)` over the stacked layer `states`
        `(batch, length, num_layers, width)`, summing to one where `real` `(batch, length)` is true, zero elsewhere."""
        raise NotImplementedError(f"{type(self).__name__} must implement `weights`.")

    def layer_weights(
        self, encoder_outputs: BaseModelOutput, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Weights over the layers for inspection, `(batch, length, num_layers)`: they sum to one on every real
        token and are zero on padding."""
        states = stack_layer_states(encoder_outputs, self.num_layers)
        return self.weights(states, _real_tokens(encoder_outputs, attention_mask))

    def forward(self, encoder_outputs: BaseModelOutput, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted sum of the layer states, `(batch, length, width)`; zero on padding."""
        states = stack_layer_states(encoder_outputs, self.num_layers)
        weights = self.weights(states, _real_tokens(encoder_outputs, attention_mask)).to(states.dtype)
        return torch.einsum("bsl,bsld->bsd", weights, states)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, num_layers={self.num_layers}, hidden_size={self.hidden_size}"


def _real_tokens(encoder_outputs: BaseModelOutput, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """A boolean `(batch, length)` mask of the real tokens (all of them without an attention mask)."""
    if attention_mask is None:
        return encoder_outputs.last_hidden_state.new_ones(
            encoder_outputs.last_hidden_state.shape[:2], dtype=torch.bool
        )
    return attention_mask.bool()


@register_fusion(DEFAULT_FUSION)
class LastLayerFusion(LayerFusion):
    """LangBridge: the encoder's last layer (`last_hidden_state`, as it is). No parameters."""

    uses_all_layers = False

    def weights(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        weights = states.new_zeros(states.shape[:-1])
        weights[..., -1] = real.to(weights.dtype)
        return weights

    def forward(self, encoder_outputs: BaseModelOutput, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return encoder_outputs.last_hidden_state


@register_fusion("global_softmax")
class GlobalSoftmaxFusion(LayerFusion):
    """Global Softmax: `softmax(layer_logits)` over the layers, one learned scalar per layer, shared by all tokens.
    The logits start at zero (every layer weighted equally)."""

    def __init__(self, num_layers: int, hidden_size: int) -> None:
        super().__init__(num_layers, hidden_size)
        self.layer_logits = nn.Parameter(torch.zeros(num_layers))

    def global_weights(self) -> torch.Tensor:
        """The learned weight of each layer, `(num_layers,)` (what the paper's Figure 2 plots)."""
        return self.layer_logits.softmax(dim=-1)

    def weights(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return real.unsqueeze(-1).to(self.layer_logits.dtype) * self.global_weights()


@register_fusion("token_softmax")
class TokenSoftmaxFusion(LayerFusion):
    """Transformer Softmax: each real token's `num_layers` states, layer-normed, narrowed to `width` and tagged with
    a learned layer embedding, go through a small `nn.TransformerEncoder` (attention across the layers of that
    token only); a linear score per layer, softmaxed over the layers, is the token's weighting.

    Tokens never attend to each other here, and padding is never read, so a token's weights do not depend on the
    padding or on the rest of the batch.

    Args:
        width: the small transformer's width (default: the encoder width, at most 256).
        num_heads: its attention heads; `width` must be divisible by them.
        num_transformer_layers: its depth.
        feedforward_factor: its feed-forward width as a multiple of `width`.
        dropout: its dropout.
    """

    def __init__(
        self,
        num_layers: int,
        hidden_size: int,
        width: int | None = None,
        num_heads: int = 4,
        num_transformer_layers: int = 1,
        feedforward_factor: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(num_layers, hidden_size)
        width = width or min(hidden_size, 256)
        if width % num_heads:
            raise ValueError(
                f"token_softmax: width={width} is not divisible by num_heads={num_heads}; pass `width` or `num_heads` "
                "in the fusion options."
            )
        self.width = width
        self.input_norm = nn.LayerNorm(hidden_size)
        self.input_projection = nn.Linear(hidden_size, width)
        self.layer_embeddings = nn.Embedding(num_layers, width)
        layer = nn.TransformerEncoderLayer(
            d_model=width,
            nhead=num_heads,
            dim_feedforward=feedforward_factor * width,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, num_transformer_layers, enable_nested_tensor=False)
        self.score = nn.Linear(width, 1, bias=False)  # a bias shared by every layer would cancel in the softmax

    def weights(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        tokens = states[real].to(self.input_projection.weight.dtype)  # (real tokens, num_layers, width)
        tokens = self.input_projection(self.input_norm(tokens)) + self.layer_embeddings.weight
        scores = self.score(self.transformer(tokens)).squeeze(-1)  # (real tokens, num_layers)
        weights = scores.new_zeros((*real.shape, self.num_layers))
        weights[real] = scores.softmax(dim=-1)
        return weights


__all__ = [
    "DEFAULT_FUSION",
    "FUSION_METHODS",
    "GlobalSoftmaxFusion",
    "LastLayerFusion",
    "LayerFusion",
    "TokenSoftmaxFusion",
    "build_fusion",
    "register_fusion",
    "stack_layer_states",
]

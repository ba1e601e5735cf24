"""Plots of the learned layer weights of an encoder fusion: the global weights as bars (the fusion paper's Figure 2),
for token softmax a heat map of each token's weights over the layers, and per-token weights averaged per language."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from ..modules.fusion import GlobalSoftmaxFusion


def _as_array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def plot_global_layer_weights(weights, path: str | os.PathLike, title: str | None = None) -> str:
    """A bar per encoder layer (1 = the first transformer layer) with its weight, and the uniform weight dashed."""
    weights = _as_array(weights)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"Expected one weight per layer (a 1-D sequence), got shape {weights.shape}.")
    layers = np.arange(1, weights.size + 1)
    # A bare `Figure` renders with Agg and leaves pyplot's global state (and the user's backend) alone.
    figure = Figure(figsize=(max(4.0, 0.35 * weights.size + 2), 3.5))
    axis = figure.subplots()
    axis.bar(layers, weights, color="tab:blue")
    return _save_layer_bars(figure, axis, layers, "weight", title or "Learned layer weights", path)


def plot_token_layer_weights(weights, tokens: Sequence[str], path: str | os.PathLike, title: str | None = None) -> str:
    """A heat map of `(tokens, layers)` weights: one row per token of a sentence, one column per encoder layer."""
    weights = _as_array(weights)
    if weights.ndim != 2 or weights.shape[0] != len(tokens):
        raise ValueError(f"Expected weights of shape (len(tokens)={len(tokens)}, layers), got {weights.shape}.")
    figure = Figure(figsize=(max(4.0, 0.4 * weights.shape[1] + 3), max(3.0, 0.3 * len(tokens) + 1.5)))
    axis = figure.subplots()
    image = axis.imshow(weights, aspect="auto", cmap="viridis", vmin=0.0)
    axis.set_xticks(np.arange(weights.shape[1]), labels=[str(layer) for layer in range(1, weights.shape[1] + 1)])
    axis.set_yticks(np.arange(len(tokens)), labels=list(tokens))
    axis.set_xlabel("encoder layer")
    axis.set_ylabel("token")
    axis.set_title(title or "Per-token layer weights")
    figure.colorbar(image, ax=axis, label="weight")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return str(path)


def plot_layer_weights_by_language(
    weights: dict[str, object], path: str | os.PathLike, title: str | None = None
) -> str:
    """Grouped bars: for each encoder layer, one bar per language with that language's mean weight."""
    arrays = {language: _as_array(values) for language, values in weights.items()}
    sizes = {array.shape for array in arrays.values()}
    if not arrays or len(sizes) != 1 or len(next(iter(sizes))) != 1:
        raise ValueError(f"Expected one 1-D weight vector of the same length per language, got shapes {sizes}.")
    num_layers = next(iter(arrays.values())).size
    layers = np.arange(1, num_layers + 1)
    width = 0.8 / len(arrays)
    figure = Figure(figsize=(max(4.0, 0.5 * num_layers * len(arrays) + 2), 3.5))
    axis = figure.subplots()
    for index, (language, array) in enumerate(arrays.items()):
        axis.bar(layers + (index - (len(arrays) - 1) / 2) * width, array, width=width, label=language)
    title = title or "Per-token layer weights, averaged per language"
    return _save_layer_bars(figure, axis, layers, "mean weight over tokens", title, path)


def _save_layer_bars(figure: Figure, axis, layers: np.ndarray, ylabel: str, title: str, path) -> str:
    """Finish a bar plot over encoder `layers` (a dashed line at the uniform weight, labels, legend) and save it."""
    axis.axhline(1 / layers.size, color="gray", linestyle="--", linewidth=1, label="uniform")
    axis.set_xticks(layers)
    axis.set_xlabel("encoder layer")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return str(path)


@torch.no_grad()
def mean_layer_weights_by_language(
    model, processor, texts: Sequence[str], languages: Sequence[str], batch_size: int = 32
) -> dict[str, torch.Tensor]:
    """Each language's layer weights `(num_layers,)`, averaged over all real tokens of its `texts` (the encoder
    tokenized with `processor.encoder_tokenizer`)."""
    if len(texts) != len(languages) or not texts:
        raise ValueError(f"Need one language per text and at least one text: {len(texts)} texts, {len(languages)}.")
    totals: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros(model.fusion.num_layers))
    counts: dict[str, int] = defaultdict(int)
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        batch = processor(chunk).to(model.device)
        weights = model.layer_weights(batch["input_ids"], batch["attention_mask"]).float().cpu()
        real = batch["attention_mask"].bool().cpu()
        for row, language in enumerate(languages[start : start + batch_size]):
            totals[language] += weights[row][real[row]].sum(dim=0)
            counts[language] += int(real[row].sum())
    return {language: totals[language] / counts[language] for language in dict.fromkeys(languages)}


@torch.no_grad()
def save_layer_weight_plots(
    model,
    processor,
    output_dir: str | os.PathLike,
    sentence: str,
    texts_by_language: dict[str, Sequence[str]] | None = None,
) -> list[str]:
    """The plots of a bridge's fusion (`model.fusion`, the encoder tokenized with `processor.encoder_tokenizer`):
    `layer_weights.png` (the global weights, or for a per-token fusion their mean over the tokens of `sentence`) and,
    for a per-token fusion, `token_layer_weights.png` (the heat map for `sentence`) and, given `texts_by_language`,
    `layer_weights_by_language.png` (the weights averaged over each language's tokens). Returns the written paths."""
    os.makedirs(output_dir, exist_ok=True)
    fusion = model.fusion
    method = fusion.method
    if isinstance(fusion, GlobalSoftmaxFusion):
        path = os.path.join(output_dir, "layer_weights.png")
        return [plot_global_layer_weights(fusion.global_weights(), path, title=f"Layer weights ({method})")]
    paths = []
    if texts_by_language and method != "last":
        texts = [text for language_texts in texts_by_language.values() for text in language_texts]
        languages = [language for language, group in texts_by_language.items() for _ in group]
        paths.append(
            plot_layer_weights_by_language(
                mean_layer_weights_by_language(model, processor, texts, languages),
                os.path.join(output_dir, "layer_weights_by_language.png"),
                title=f"Per-token layer weights averaged per language ({method})",
            )
        )
    batch = processor([sentence]).to(model.device)
    weights = model.layer_weights(batch["input_ids"], batch["attention_mask"])[0]
    paths.append(
        plot_global_layer_weights(
            weights.mean(dim=0),
            os.path.join(output_dir, "layer_weights.png"),
            title=f"Mean layer weights over a sentence ({method})",
        )
    )
    if method != "last":
        tokens = processor.encoder_tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
        paths.append(
            plot_token_layer_weights(
                weights, tokens, os.path.join(output_dir, "token_layer_weights.png"), title=f"Layer weights ({method})"
            )
        )
    return paths


__all__ = [
    "mean_layer_weights_by_language",
    "plot_global_layer_weights",
    "plot_layer_weights_by_language",
    "plot_token_layer_weights",
    "save_layer_weight_plots",
]

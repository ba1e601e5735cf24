"""Plots of results and learned weights (matplotlib, written to files)."""

from .accuracy_curves import cumulative_accuracy, plot_accuracy_curves
from .layer_weights import (
    mean_layer_weights_by_language,
    plot_global_layer_weights,
    plot_layer_weights_by_language,
    plot_token_layer_weights,
    save_layer_weight_plots,
)

__all__ = [
    "cumulative_accuracy",
    "mean_layer_weights_by_language",
    "plot_accuracy_curves",
    "plot_global_layer_weights",
    "plot_layer_weights_by_language",
    "plot_token_layer_weights",
    "save_layer_weight_plots",
]

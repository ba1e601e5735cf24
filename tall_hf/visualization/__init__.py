"""Plots of results and learned weights (matplotlib, written to files)."""

from .accuracy_curves import cumulative_accuracy, plot_accuracy_curves
from .layer_weights import plot_global_layer_weights, plot_token_layer_weights, save_layer_weight_plots

__all__ = [
    "cumulative_accuracy",
    "plot_accuracy_curves",
    "plot_global_layer_weights",
    "plot_token_layer_weights",
    "save_layer_weight_plots",
]

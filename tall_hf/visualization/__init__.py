"""Plots of results and learned weights (matplotlib, written to files)."""

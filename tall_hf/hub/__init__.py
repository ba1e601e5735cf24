"""Sharing checkpoints on the hub: model cards and uploads."""

from .model_card import ModelCardInfo, render_model_card
from .push import create_hub_repo, upload_checkpoint

__all__ = ["ModelCardInfo", "create_hub_repo", "render_model_card", "upload_checkpoint"]

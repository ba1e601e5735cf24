"""The package's models: TALL (`tall/`) and the multilingual encoder-fusion bridge (`bridge/`).

Importing this package registers both with transformers' Auto classes.
"""

from .auto import register_auto_classes

register_auto_classes()

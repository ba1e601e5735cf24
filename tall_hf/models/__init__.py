"""The package's models: TALL (`tall/`) and the multilingual encoder-fusion bridge (`bridge/`)."""

"""The package's models: TALL, and (as it lands) the encoder-fusion bridge."""

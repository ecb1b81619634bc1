"""Built-in decoding strategies."""

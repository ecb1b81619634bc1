"""Exporter of the ``speech`` family (Whisper-class encoder-decoders)."""

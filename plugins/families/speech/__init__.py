"""The speech family's torch-free front-end: reading audio (:mod:`.audio`) and Whisper's
log-mel features (:mod:`.features`).

The family itself (its ``Family`` registration, exporter and runtime) is not registered
yet: no ``edgert`` entry point names this package, so ``edgert export`` does not offer
speech until those parts land.
"""

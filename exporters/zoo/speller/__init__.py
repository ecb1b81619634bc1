"""Embedded T5 spelling corrector: data, training, weights."""

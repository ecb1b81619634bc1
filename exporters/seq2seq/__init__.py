"""Exporter of the ``seq2seq`` family (imports torch); its runtime is edgert.plugins.families.seq2seq."""

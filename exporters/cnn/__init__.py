"""Exporter of the ``cnn`` family (imports torch); its runtime is edgert.plugins.families.cnn."""

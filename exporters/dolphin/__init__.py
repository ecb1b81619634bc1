"""Exporter of the ``dolphin`` family (imports torch); its runtime is edgert.plugins.families.dolphin."""

"""Builders and references shared by the tests (test modules never import each other)."""

"""Small reference models that ship with edgert."""

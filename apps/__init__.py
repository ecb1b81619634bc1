"""On-device applications built on edgert's public API only (``import edgert``)."""

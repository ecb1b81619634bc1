"""The ``ofa`` family: Once-for-All subnets chosen by latency measured with edgert, exported
per device profile. Needs ``pip install 'edgert[export,ofa]'``."""

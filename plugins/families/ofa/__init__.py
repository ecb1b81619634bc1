"""The ``ofa`` family: Once-for-All subnets, exported as classifier bundles.

It adds ``edgert ofa ...`` commands (latency tables) through ``register_commands``. Its
bundles are ``cnn`` bundles (they run with ``Classifier``); the family only differs in how
the torch module is chosen and built. Sources are ``ofa:<net id>`` or ``ofa:<spec.json>``.
"""

from __future__ import annotations

from edgert.families import Family
from edgert.hookspecs import hookimpl
from edgert.plugins.families.ofa.options import OfaExport

OFA = Family(
    name="ofa",
    runtime="edgert.plugins.families.cnn.runtime:Classifier",
    exporter="edgert.exporters.ofa.export:export_ofa",
    options=OfaExport,
    detect=lambda source: False,  # its sources carry the prefix
    commands="edgert.plugins.families.ofa.commands:COMMANDS",
    prefixes=("ofa:",),
    quantization="static-qdq",
    description="Once-for-All subnets (ofa:<net id>), chosen by config or latency budget",
)


@hookimpl
def register_families(register):
    """Register the OFA family."""
    register(OFA, source=__name__)


@hookimpl
def register_commands(cli):
    """Add ``edgert ofa``."""
    from edgert.plugins.families.ofa.cli import ofa

    cli.add_command(ofa)

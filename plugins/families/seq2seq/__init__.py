"""The ``seq2seq`` family: T5 / BART / Marian, run by ``Seq2SeqModel``."""

from __future__ import annotations

from edgert.families import Family
from edgert.hookspecs import hookimpl

SEQ2SEQ = Family(
    name="seq2seq",
    runtime="edgert.plugins.families.seq2seq.runtime:Seq2SeqModel",
    exporter="edgert.exporters.seq2seq.export:export_seq2seq",
    quantization="dynamic",
    description="encoder-decoder text models (T5, BART, Marian) -> generate / stream",
)


@hookimpl
def register_families(register):
    """Register the seq2seq family."""
    register(SEQ2SEQ, source=__name__)

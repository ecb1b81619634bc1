"""The ``seq2seq`` family: T5 / BART / Marian, run by ``Seq2SeqModel``.

Runtime and commands live here (no torch); the exporter is ``edgert.exporters.seq2seq``.
It also loads folders written by ``optimum-cli export onnx`` (``opens``).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgert.families import BuiltinModel, Family
from edgert.hookspecs import hookimpl
from edgert.plugins.families.seq2seq.optimum import is_optimum_folder
from edgert.plugins.families.seq2seq.options import Seq2SeqExport

OTHER_FAMILIES = frozenset({"dolphin", "whisper"})  # model types other families export


def model_type(folder: Path) -> str | None:
    """``model_type`` of a Hugging Face folder's ``config.json``, or None."""
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None


def looks_like_hub_id(source: str) -> bool:
    """``org/name``: no scheme, no suffix, not a local path."""
    path = Path(source)
    return source.count("/") == 1 and ":" not in source and not path.suffix and not path.exists()


def detect(source: str) -> bool:
    """A Hugging Face folder (not a decoder-decoder or a speech one), or a hub id."""
    folder = Path(source)
    if (folder / "config.json").is_file():
        return model_type(folder) not in OTHER_FAMILIES
    return looks_like_hub_id(source) and "whisper" not in source.lower()


SEQ2SEQ = Family(
    name="seq2seq",
    runtime="edgert.plugins.families.seq2seq.runtime:Seq2SeqModel",
    exporter="edgert.exporters.seq2seq.export:export_seq2seq",
    options=Seq2SeqExport,
    detect=detect,
    commands="edgert.plugins.families.seq2seq.commands:COMMANDS",
    opens="edgert.plugins.families.seq2seq.optimum:load_folder",
    claims_folder=is_optimum_folder,
    quantization="dynamic",
    description="encoder-decoder text models (T5, BART, Marian) -> generate / stream",
)

MODELS = (
    BuiltinModel(
        "speller",
        "seq2seq",
        "edgert.exporters.zoo:speller/model",
        folder=True,
        description="spelling corrector, a tiny T5 trained on local text",
    ),
    BuiltinModel(
        "speller-draft",
        "seq2seq",
        "edgert.exporters.zoo:speller/draft",
        folder=True,
        description="the speller's draft model for --decoder speculative",
    ),
)


@hookimpl
def register_families(register):
    """Register the seq2seq family."""
    register(SEQ2SEQ, source=__name__)


@hookimpl
def register_models(register):
    """The speller and its draft model."""
    for model in MODELS:
        register(model, source=__name__)

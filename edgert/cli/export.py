"""``edgert export``: a model source -> a verified bundle for a device profile."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgert.cli.options import allow_fallback_option, devices_dir_option, devices_dirs, json_option
from edgert.errors import ExportError


def _shape(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a shape like 1,3,224,224") from None


def _budget(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    text = value.strip().lower().replace(" ", "")
    scale = 1000.0 if text.endswith("s") and not text.endswith("ms") else 1.0
    try:
        return float(text.removesuffix("ms").removesuffix("s")) * scale
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a latency like 8ms or 0.5s") from None


# Options that only some families take (the rest take every family): given for another
# family they would be ignored, and the user would not know.
FAMILY_OPTIONS = {
    "input_shape": ("cnn",),
    "calibration": ("cnn", "seq2seq", "ofa"),
    "eval_data": ("cnn", "ofa"),
    "labels": ("cnn", "ofa"),
    "revision": ("seq2seq", "dolphin"),
    "validation_text": ("seq2seq",),
    "words": ("seq2seq",),
    "max_chunks": ("dolphin",),
    **dict.fromkeys(
        ("subnet", "resolution", "latency_budget", "latency_table", "force_table",
         "accuracy_predictor", "checkpoint", "sha256"),
        ("ofa",),
    ),
}  # fmt: skip


def check_family_options(ctx: click.Context, family: str, source: str) -> None:
    """Refuse options given on the command line that ``family`` does not take."""
    from click.core import ParameterSource

    for name, families in FAMILY_OPTIONS.items():
        if family in families or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        flag = "--" + name.replace("_", "-")
        raise ExportError(
            f"{flag} does not apply to {source}, a {family} model: it is for "
            f"{', '.join(families)} models",
            hint=f"drop {flag}, or pass --family if {source} is not a {family} model",
        )


@click.command()
@click.argument("source")
@click.option(
    "--device", "-d", default="auto", show_default=True, help="Profile id, .toml path, or auto."
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    help="Bundle folder [default: <model>-<device>].",
)
@click.option("--family", help="Model family [default: from the source; see below].")
@click.option("--input-shape", callback=_shape, help="Classifiers: input shape, e.g. 1,3,224,224.")
@click.option(
    "--calibration",
    type=click.Path(path_type=Path),
    help="int8: images, .npy or .npz (classifiers); a text file, one input per line (text models).",
)
@click.option(
    "--eval-data", type=click.Path(path_type=Path), help="Classifiers: .npz with x, y for accuracy."
)
@click.option("--labels", type=click.Path(path_type=Path), help="Classifiers: one label per line.")
@click.option("--revision", help="Hugging Face models: hub revision (branch, tag, commit).")
@click.option(
    "--validation-text",
    type=click.Path(path_type=Path),
    help="Text models: validation inputs, one per line.",
)
@click.option(
    "--words",
    type=click.Path(path_type=Path),
    help="Text models: a dictionary for input-guided decoding, one word per line, most frequent "
    "first [default: words.txt beside a local model].",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing bundle once the new one is complete."
)
@click.option(
    "--keep-intermediate", type=click.Path(path_type=Path), help="Copy each step's output here."
)
@click.option(
    "--max-chunks",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Decoder-decoder: context windows one prompt may hold (--context-policy chunk).",
)
@click.option("--subnet", help='OFA: subnet config as JSON, e.g. \'{"ks": 3, "e": 4, "d": 2}\'.')
@click.option("--resolution", type=int, default=224, show_default=True, help="OFA: input size.")
@click.option("--latency-budget", callback=_budget, help="OFA: search a subnet within e.g. 8ms.")
@click.option(
    "--latency-table", type=click.Path(path_type=Path), help="OFA: from edgert ofa table."
)
@click.option("--force-table", is_flag=True, help="OFA: use a table measured for another target.")
@click.option("--accuracy-predictor", help="OFA: module:function(config, resolution) -> score.")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="OFA: supernet weights file.")
@click.option("--sha256", help="OFA: trusted hash of the published weights to download.")
@allow_fallback_option
@devices_dir_option
@json_option
def export(source: str, device: str, out: Path | None, family: str | None, input_shape, calibration,
           eval_data, labels, revision, validation_text, words, force, keep_intermediate, max_chunks,
           subnet, resolution, latency_budget, latency_table, force_table, accuracy_predictor,
           checkpoint, sha256, allow_fallback, devices_dir, as_json) -> None:  # fmt: skip
    """Export SOURCE to a bundle for a device profile, validated against the source.

    SOURCE is a Hugging Face model folder or hub id (T5, BART, Marian), a Dolphin
    decoder-decoder folder or a composition .toml (family dolphin), a classifier as
    package.module:factory, a .pt2 (torch.export) or TorchScript file, a built-in model
    (zoo:digits, zoo:mobilenet-v3-small, zoo:speller, zoo:speller-draft: the speller's
    draft model for --decoder speculative), or a Once-for-All supernet (ofa:<net id> or
    ofa:<spec.json>; see edgert ofa nets).

    \b
    Examples:
      edgert export zoo:digits --device auto
      edgert export zoo:digits --device snapdragon-8-gen3-npu --out digits-npu
      edgert export ./my-t5 --device x86-avx2-int8 --out t5-int8
      edgert export ./dolphin.toml --device x86-avx512-vnni-int8 --out qa-int8
      edgert export mypkg.models:build --input-shape 1,3,224,224 \\
          --device x86-avx2-int8 --calibration ./images
      edgert export ofa:ofa_mbv3_d234_e346_k357_w1.0 --subnet '{"ks": 5, "e": 4, "d": 3}' \\
          --resolution 160 --device cpu-generic --calibration ./images --checkpoint w.pth
      edgert export ofa:ofa_mbv3_d234_e346_k357_w1.0 --latency-budget 8ms \\
          --latency-table mbv3.json --resolution 160 --calibration ./images --checkpoint w.pth
    """
    from edgert import resolve_device
    from edgert.catalog import get_catalog
    from edgert.export import check_output

    profile, reason = resolve_device(device, devices_dirs=devices_dirs(devices_dir))
    if reason and not as_json:
        click.echo(f"device auto -> {profile.id} ({reason})")
    catalog = get_catalog()
    given, source = source, _zoo_path(source)
    family = family or detect_family(source)
    fam = catalog.families.get(family)
    check_family_options(click.get_current_context(), family, given)
    out = out or Path(f"{_stem(source)}-{profile.id}")
    check_output(out, force)
    if family == "cnn":
        from edgert.exporters.cnn.export import CnnExport

        options = CnnExport(source=source, out=out, input_shape=input_shape, calibration=calibration,
                            eval_data=eval_data, labels=labels, force=force,
                            allow_fallback=allow_fallback, keep_intermediate=keep_intermediate)  # fmt: skip
    elif family == "seq2seq":
        from edgert.exporters.seq2seq.export import Seq2SeqExport

        texts = _lines(validation_text) if validation_text else ()
        options = Seq2SeqExport(
            source=source, out=out, revision=revision, force=force, allow_fallback=allow_fallback,
            keep_intermediate=keep_intermediate, validation_texts=texts,
            calibration_texts=_lines(calibration, "calibration text") if calibration else (),
            dictionary=_lines(words, "dictionary") if words else (),
        )  # fmt: skip

    elif family == "dolphin":
        from edgert.exporters.dolphin.export import DolphinExport

        options = DolphinExport(source=source, out=out, revision=revision, force=force,
                                allow_fallback=allow_fallback, keep_intermediate=keep_intermediate,
                                max_chunks=max_chunks)  # fmt: skip
    elif family == "ofa":
        from edgert.exporters.ofa.export import OfaExport

        options = OfaExport(
            source=source, out=out, resolution=resolution, subnet=subnet,
            latency_budget_ms=latency_budget, latency_table=latency_table,
            force_table=force_table, accuracy_predictor=accuracy_predictor,
            checkpoint=checkpoint, sha256=sha256, calibration=calibration, eval_data=eval_data,
            labels=labels, force=force, allow_fallback=allow_fallback,
            keep_intermediate=keep_intermediate,
        )  # fmt: skip
    else:
        raise ExportError(
            f"family {family!r} has no command-line exporter", hint="use its Python API"
        )
    bundle = fam.exporter_function()(options, profile, catalog)
    _report(bundle.manifest, out, profile.id, as_json)


def detect_family(source: str) -> str:
    """ofa for ofa:..., dolphin for Dolphin checkpoints and composition .toml files,
    seq2seq for other Hugging Face folders and hub ids, cnn for everything else."""
    if source.startswith("ofa:"):
        return "ofa"
    folder = Path(source)
    if folder.suffix == ".toml":
        return "dolphin"
    if (folder / "config.json").is_file():
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return "dolphin" if config.get("model_type") == "dolphin" else "seq2seq"
    looks_like_hub_id = source.count("/") == 1 and ":" not in source and not folder.suffix
    return "seq2seq" if looks_like_hub_id and not folder.exists() else "cnn"


# Built-in Hugging Face folders inside the package: the speller and its draft model.
_ZOO_FOLDERS = {"zoo:speller": "model", "zoo:speller-draft": "draft"}


def _zoo_path(source: str) -> str:
    """``zoo:speller`` and ``zoo:speller-draft`` are Hugging Face folders inside the package."""
    if source in _ZOO_FOLDERS:
        from importlib import resources

        return str(resources.files("edgert.exporters.zoo") / "speller" / _ZOO_FOLDERS[source])
    return source


def _stem(source: str) -> str:
    path = Path(source)
    if path.name == "model" and path.parent.name:
        return path.parent.name
    if path.name == "draft" and path.parent.name:
        return f"{path.parent.name}-draft"
    return source.split(":")[-1].rstrip("/").split("/")[-1].split(".")[0] or "model"


def _lines(path: Path, what: str = "validation text") -> tuple[str, ...]:
    from edgert.exporters.seq2seq.export import read_lines

    lines = read_lines(path, what)
    if not lines:  # a file named on the command line is meant to hold something
        raise ExportError(f"{what} file {path} is empty", hint="write one entry per line")
    return lines


def _report(manifest: dict, out: Path, device: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"bundle": str(out), "device": device, "family": manifest["family"],
                               "precision": manifest["precision"], "validation": manifest["validation"],
                               "quantization": manifest.get("quantization"),
                               "steps": manifest["steps"], "ofa": manifest.get("ofa"),
                               "dictionary_words": manifest.get("dictionary_words")},
                              indent=2))  # fmt: skip
        return
    v = manifest["validation"]
    click.echo(f"wrote {out} ({manifest['family']}, {manifest['precision']}, device {device})")
    click.echo("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f}s" for s in manifest["steps"]))
    if manifest["family"] in ("seq2seq", "dolphin"):
        click.echo(f"validated on {v['ran_on']}: next-token agreement {v['next_token_agreement']:.2%} "
                   f"over {v['positions']} positions, greedy identical {v['greedy_identical']}, "
                   f"max relative logit diff {v['max_relative_logit_diff']:.3g}")  # fmt: skip
    else:
        line = (f"validated on {v['ran_on']}: top-1 agreement {v['top1_agreement']:.2%} over "
                f"{v['inputs']} inputs, max abs diff {v['max_abs_diff']:.3g}")  # fmt: skip
        if "accuracy_exported" in v:
            line += (f"; accuracy {v['accuracy_source']:.2%} -> {v['accuracy_exported']:.2%}"
                     f" (drop {v['accuracy_drop']:+.2%})")  # fmt: skip
        click.echo(line)
    words = manifest.get("dictionary_words")
    if words:
        click.echo(f"dictionary {manifest['dictionary']}: {words['spelt']} of {words['listed']} "
                   "words spelt by the tokenizer, for input-guided drafts")  # fmt: skip
    if manifest.get("ofa"):
        _report_ofa(manifest["ofa"])
    quantization = manifest.get("quantization") or {}
    per_graph = {"model": quantization} if "nodes" in quantization else quantization
    for role, q in per_graph.items():
        where = "" if role == "model" else f" {role}"
        if q.get("note"):
            click.echo(f"quantization{where}: {q['note']}")
        else:
            click.echo(
                f"quantization{where}: {q['method']}, {q['quantized_nodes']} of {q['nodes']} nodes"
            )


def _report_ofa(section: dict) -> None:
    click.echo(f"subnet {json.dumps(section['subnet'])} at {section['resolution']} px, "
               f"BN recalibrated on {section['bn_recalibration']['images']} images")  # fmt: skip
    search = section.get("search")
    if search:
        click.echo(f"chosen by {search['scorer']} among {search['evaluated']} candidates "
                   f"within {search['budget_ms']:g} ms (smallest: {search['smallest_ms']:.3f} ms)")  # fmt: skip
    measured = section.get("measured") or {}
    predicted = section.get("predicted_ms")
    line = f"predicted {predicted:.3f} ms, " if predicted is not None else ""
    if measured.get("ms") is not None:
        where = measured["provider"] + (" (simulated)" if measured.get("simulated") else "")
        click.echo(f"{line}measured {measured['ms']:.3f} ms on {where}")
    elif measured.get("note"):
        click.echo(f"{line}not measured: {measured['note']}")

"""``edgert export``: a model source -> a verified bundle for a device profile.

The command's own flags are the ones every family takes (``edgert.export.ExportOptions``);
the others are built from the registered families' options classes, so a family plugin's
flags appear here like the built-in ones, and a flag of another family is refused.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from edgert.cli.options import allow_fallback_option, devices_dir_option, devices_dirs, json_option
from edgert.errors import ExportError, PluginError
from edgert.families import ZOO, Family, detect_family

OWN = {"--device", "--out", "--family", "--force", "--keep-intermediate", "--allow-fallback",
       "--devices-dir", "--json", "--help", "-h"}  # fmt: skip


def family_flags(families: list[Family]) -> dict[str, dict[str, dataclasses.Field]]:
    """``--flag`` -> {family name: field}, over every family's options."""
    flags: dict[str, dict[str, dataclasses.Field]] = {}
    for family in families:
        for name, f in family.flags().items():
            if name in OWN:
                raise PluginError(
                    f"family {family.name!r} declares the export option {name}, which "
                    "edgert export itself defines",
                    hint="rename the field, or give it flag(name=...)",
                )
            flags.setdefault(name, {})[family.name] = f
    return flags


def _click_option(name: str, fields: dict[str, dataclasses.Field]) -> click.Option:
    helps = {}
    for family, f in fields.items():
        helps.setdefault(f.metadata.get("help", ""), []).append(family)
    text = "; ".join(f"{', '.join(fams)}: {h}" for h, fams in helps.items())
    dest = name[2:].replace("-", "_")
    if all(f.default is False for f in fields.values()):
        return click.Option([name, dest], is_flag=True, default=None, help=text)
    return click.Option([name, dest], default=None, help=text)


HELP = """Export SOURCE to a bundle for a device profile, validated against the source.

    SOURCE is whatever a model family recognises (``edgert plugins list`` shows them):
    a Hugging Face model folder or hub id, a decoder-decoder folder or composition .toml,
    a classifier as package.module:factory, a .pt2 or TorchScript file, a Once-for-All
    supernet (ofa:<net id>), or a built-in model, zoo:<name>. Flags marked with family
    names apply to those families only.

    \b
    Examples:
      edgert export zoo:digits --device auto
      edgert export zoo:digits --device snapdragon-8-gen3-npu --out digits-npu
      edgert export ./my-t5 --device x86-avx2-int8 --out t5-int8
      edgert export ./dolphin.toml --device x86-avx512-vnni-int8 --out qa-int8
      edgert export mypkg.models:build --input-shape 1,3,224,224 \\
          --device x86-avx2-int8 --calibration ./images
      edgert export ofa:ofa_mbv3_d234_e346_k357_w1.0 --latency-budget 8ms \\
          --latency-table mbv3.json --resolution 160 --calibration ./images --checkpoint w.pth
    """


def build_command(catalog: Any) -> click.Command:
    """The ``export`` command with every registered family's flags."""
    flags = family_flags(list(catalog.families))

    @click.command("export", help=HELP)
    @click.argument("source")
    @click.option("--device", "-d", default="auto", show_default=True,
                  help="Profile id, .toml path, or auto.")  # fmt: skip
    @click.option("--out", "-o", type=click.Path(path_type=Path),
                  help="Bundle folder [default: <model>-<device>].")  # fmt: skip
    @click.option("--family", help="Model family [default: the one that recognises SOURCE].")
    @click.option("--force", is_flag=True,
                  help="Replace an existing bundle once the new one is complete.")  # fmt: skip
    @click.option("--keep-intermediate", type=click.Path(path_type=Path),
                  help="Copy each step's output here.")  # fmt: skip
    @allow_fallback_option
    @devices_dir_option
    @json_option
    def export(source, device, out, family, force, keep_intermediate, allow_fallback,
               devices_dir, as_json, **given) -> None:  # fmt: skip
        run_export(catalog, source, device, out, family, force, keep_intermediate,
                   allow_fallback, devices_dir, as_json, flags, given)  # fmt: skip

    for name, fields in sorted(flags.items()):
        export.params.append(_click_option(name, fields))
    return export


def run_export(catalog, source, device, out, family, force, keep_intermediate, allow_fallback,
               devices_dir, as_json, flags, given) -> None:  # fmt: skip
    from edgert import resolve_device
    from edgert.export import check_output

    profile, reason = resolve_device(device, devices_dirs=devices_dirs(devices_dir))
    if reason and not as_json:
        click.echo(f"device auto -> {profile.id} ({reason})")
    original, located = source, source
    if source.startswith(ZOO):
        model = catalog.models.get(source.removeprefix(ZOO))
        family = family or model.family
        located = model.locate() if model.folder else source
    family = family or detect_family(iter(catalog.families), located)
    fam = catalog.families.get(family)
    values = _family_values(fam, flags, given, original)
    out = out or Path(f"{_stem(original)}-{profile.id}")
    check_output(out, force)
    options = fam.options(source=located, out=out, force=force, allow_fallback=allow_fallback,
                          keep_intermediate=keep_intermediate, **values)  # fmt: skip
    bundle = fam.exporter_function()(options, profile, catalog)
    _report(fam, bundle.manifest, out, profile.id, as_json)


def _family_values(fam: Family, flags: dict, given: dict, source: str) -> dict[str, Any]:
    """The family's options from the flags given; a flag of another family is an error."""
    own = fam.flags()
    values = {}
    for dest, value in given.items():
        if value is None:
            continue
        name = "--" + dest.replace("_", "-")
        f = own.get(name)
        if f is None:
            owners = ", ".join(sorted(flags[name]))
            raise ExportError(
                f"{name} does not apply to {source}, a {fam.name} model: it is for {owners} models",
                hint=f"drop {name}, or pass --family if {source} is not a {fam.name} model",
            )
        parse = f.metadata.get("parse")
        if parse is not None and not isinstance(value, bool):
            try:
                value = parse(value)
            except ValueError as exc:
                raise ExportError(f"{name} {value!r}: {exc}") from exc
        values[f.name] = value
    return values


def _stem(source: str) -> str:
    return source.split(":")[-1].rstrip("/").split("/")[-1].split(".")[0] or "model"


def _report(fam: Family, manifest: dict, out: Path, device: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"bundle": str(out), "device": device, "family": manifest["family"],
                               "precision": manifest["precision"], "validation": manifest["validation"],
                               "quantization": manifest.get("quantization"),
                               "steps": manifest["steps"], fam.name: manifest.get(fam.name),
                               "report": fam.cli().export_lines(manifest)},
                              indent=2))  # fmt: skip
        return
    click.echo(f"wrote {out} ({manifest['family']}, {manifest['precision']}, device {device})")
    click.echo("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f}s" for s in manifest["steps"]))
    for line in fam.cli().export_lines(manifest):
        click.echo(line)
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

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
@click.option(
    "--family", default="cnn", show_default=True, help="Model family ('edgert plugins list')."
)
@click.option("--input-shape", callback=_shape, help="Model input shape, e.g. 1,3,224,224.")
@click.option(
    "--calibration", type=click.Path(path_type=Path), help="Images folder, .npy or .npz for int8."
)
@click.option(
    "--eval-data", type=click.Path(path_type=Path), help=".npz with x, y: report accuracy."
)
@click.option(
    "--labels", type=click.Path(path_type=Path), help="Text file with one label per line."
)
@click.option(
    "--force", is_flag=True, help="Replace an existing bundle once the new one is complete."
)
@click.option(
    "--keep-intermediate", type=click.Path(path_type=Path), help="Copy each step's output here."
)
@allow_fallback_option
@devices_dir_option
@json_option
def export(
    source: str,
    device: str,
    out: Path | None,
    family: str,
    input_shape,
    calibration,
    eval_data,
    labels,
    force,
    keep_intermediate,
    allow_fallback,
    devices_dir,
    as_json,
) -> None:
    """Export SOURCE to a bundle for a device profile, validated against the source.

    SOURCE is package.module:factory, a .pt2 (torch.export) or TorchScript file, or a
    built-in model (zoo:digits, zoo:mobilenet-v3-small).

    \b
    Examples:
      edgert export zoo:digits --device auto
      edgert export zoo:digits --device snapdragon-8-gen3-npu --out digits-npu
      edgert export mypkg.models:build --input-shape 1,3,224,224 \\
          --device x86-avx2-int8 --calibration ./images
    """
    from edgert import resolve_device
    from edgert.catalog import get_catalog

    profile, reason = resolve_device(device, devices_dirs=devices_dirs(devices_dir))
    if reason and not as_json:
        click.echo(f"device auto -> {profile.id} ({reason})")
    catalog = get_catalog()
    fam = catalog.families.get(family)
    if family != "cnn":
        raise ExportError(
            f"family {family!r} has no command-line exporter yet", hint="use --family cnn"
        )
    from edgert.exporters.cnn import CnnExport

    stem = source.split(":")[-1].split("/")[-1].split(".")[0] or "model"
    out = out or Path(f"{stem}-{profile.id}")
    if out.exists() and not force:
        raise ExportError(
            f"output {out} already exists", hint="choose another --out, or pass --force"
        )
    bundle = fam.exporter_function()(
        CnnExport(
            source=source,
            out=out,
            input_shape=input_shape,
            calibration=calibration,
            eval_data=eval_data,
            labels=labels,
            force=force,
            allow_fallback=allow_fallback,
            keep_intermediate=keep_intermediate,
        ),
        profile,
        catalog,
    )
    manifest = bundle.manifest
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bundle": str(out),
                    "device": profile.id,
                    "precision": manifest["precision"],
                    "validation": manifest["validation"],
                    "steps": manifest["steps"],
                },
                indent=2,
            )
        )
        return
    v = manifest["validation"]
    click.echo(f"wrote {out} ({manifest['precision']}, device {profile.id})")
    click.echo("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f}s" for s in manifest["steps"]))
    line = f"validated on {v['ran_on']}: top-1 agreement {v['top1_agreement']:.2%} over {v['inputs']} inputs, max abs diff {v['max_abs_diff']:.3g}"
    if "accuracy_exported" in v:
        line += (
            f"; accuracy {v['accuracy_source']:.2%} -> {v['accuracy_exported']:.2%}"
            f" (drop {v['accuracy_drop']:+.2%})"
        )
    click.echo(line)
    quantization = manifest.get("quantization") or {}
    if quantization.get("note"):
        click.echo(f"quantization: {quantization['note']}")
    elif quantization:
        click.echo(
            f"quantization: {quantization['quantized_nodes']} of {quantization['nodes']} nodes int8"
        )

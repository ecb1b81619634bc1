"""``edgert run``: run a bundle on inputs and say what ran where."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from edgert.cli.options import allow_fallback_option, json_option
from edgert.errors import InputError


def _read_inputs(path: Path, tail: tuple) -> np.ndarray:
    if not path.exists():
        raise InputError(
            f"input not found: {path}", hint="pass an .npy/.npz array or an image file"
        )
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return archive["x"] if "x" in archive else archive[archive.files[0]]
    from PIL import Image, UnidentifiedImageError

    channels, height, width = tail
    try:
        with Image.open(path) as image:
            pixels = np.asarray(
                image.convert("L" if channels == 1 else "RGB").resize((width, height)), np.float32
            )
    except UnidentifiedImageError as exc:
        raise InputError(f"{path} is neither an array (.npy/.npz) nor an image") from exc
    pixels = pixels / 255.0
    return pixels[None, None] if channels == 1 else pixels.transpose(2, 0, 1)[None]


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "-i",
    "input_path",
    type=click.Path(path_type=Path),
    required=True,
    help="An .npy/.npz batch shaped like the model input, or an image file.",
)
@click.option("--top-k", default=3, show_default=True, help="Classes to print per input.")
@click.option("--device", "-d", help="Run with this profile's providers instead of the bundle's.")
@click.option("--threads", type=int, help="Intra-op threads (default: the profile's).")
@allow_fallback_option
@json_option
def run(
    bundle: Path, input_path: Path, top_k: int, device, threads, allow_fallback, as_json
) -> None:
    """Run BUNDLE on inputs and print predictions, the provider that ran and the time.

    \b
    Examples:
      edgert run digits-bundle --input batch.npy
      edgert run digits-bundle --input seven.png --top-k 1 --json
    """
    import edgert

    model = edgert.load(bundle, device=device, allow_fallback=allow_fallback, threads=threads)
    x = _read_inputs(input_path, model.input_shape[1:])
    started = time.perf_counter()
    predictions = model.classify(x, top_k=top_k)
    elapsed_ms = (time.perf_counter() - started) * 1000
    info = model.session_info
    report = {
        "provider": info.active,
        "simulated": info.simulated,
        "fallback": info.fallback,
        "placement": info.placement,
        "ms": elapsed_ms,
        "predictions": [{"labels": p.labels, "scores": p.scores} for p in predictions],
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for i, p in enumerate(predictions):
        click.echo(
            f"{i}: "
            + ", ".join(
                f"{label} {score:.3f}" for label, score in zip(p.labels, p.scores, strict=True)
            )
        )
    label = " (simulated: timing not representative)" if info.simulated else ""
    click.echo(f"ran {len(predictions)} input(s) on {info.active}{label} in {elapsed_ms:.2f} ms")
    for note in info.fallback:
        click.secho(f"fallback: {note}", fg="yellow", err=True)

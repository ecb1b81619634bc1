"""What ``edgert run``, ``profile`` and ``export`` do with a classifier bundle."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
import numpy as np

from edgert.cli.report import fallback, ms
from edgert.errors import InputError
from edgert.families import RunRequest
from edgert.profiler import percentiles

TEXT_FLAGS = ("--decoder", "--max-new-tokens", "--num-beams", "--temperature", "--seed",
              "--draft", "--stop", "--truncate", "--option", "--context", "--stats")  # fmt: skip


def read_inputs(path: Path, tail: tuple) -> np.ndarray:
    """An ``.npy`` / ``.npz`` batch, or one image resized to the model's input."""
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
            mode = "L" if channels == 1 else "RGB"
            pixels = np.asarray(image.convert(mode).resize((width, height)), np.float32)
    except UnidentifiedImageError as exc:
        raise InputError(f"{path} is neither an array (.npy/.npz) nor an image") from exc
    pixels = pixels / 255.0
    return pixels[None, None] if channels == 1 else pixels.transpose(2, 0, 1)[None]


class ClassifierCommands:
    """Classify ``--input``; time batches of the example input; top-1 agreement lines."""

    default_runs = (100, 10)

    def run(self, model: Any, request: RunRequest) -> None:
        """Print the top-k classes of every input, and where they ran."""
        if request.input_path is None:
            raise InputError(
                "classifier bundles need --input", hint="--input batch.npy or an image"
            )
        text_only = [f for f in TEXT_FLAGS if f in request.given]
        if text_only:
            raise InputError(
                f"{', '.join(text_only)} {'is' if len(text_only) == 1 else 'are'} for text "
                f"models; {request.bundle} is a classifier",
                hint="classifiers take --input and --top-k",
            )
        x = read_inputs(Path(request.input_path), model.input_shape[1:])
        started = time.perf_counter()
        predictions = model.classify(x, top_k=request.top_k)
        elapsed_ms = (time.perf_counter() - started) * 1000
        info = model.session_info
        if request.as_json:
            click.echo(json.dumps({
                "provider": info.active, "simulated": info.simulated, "fallback": info.fallback,
                "placement": info.placement, "ms": elapsed_ms,
                "predictions": [{"labels": p.labels, "scores": p.scores} for p in predictions],
            }, indent=2))  # fmt: skip
            return
        for i, p in enumerate(predictions):
            pairs = zip(p.labels, p.scores, strict=True)
            click.echo(f"{i}: " + ", ".join(f"{label} {score:.3f}" for label, score in pairs))
        label = " (simulated: timing not representative)" if info.simulated else ""
        click.echo(
            f"ran {len(predictions)} input(s) on {info.active}{label} in {elapsed_ms:.2f} ms"
        )
        fallback(info)

    def profile(self, model: Any, options: Any, tick: Callable[[], None] | None) -> dict:
        """Latency of ``options.batch`` example inputs per run, and throughput."""
        x = model.example_input(options.batch)
        for _ in range(options.warmup):
            model.logits(x)
        samples = []
        for _ in range(options.runs):
            started = time.perf_counter()
            model.logits(x)
            samples.append((time.perf_counter() - started) * 1000)
            if tick:
                tick()
        stats = percentiles(samples)
        rate = float(x.shape[0] * 1000 / stats["mean"])
        return {
            "batch": int(x.shape[0]),
            "latency_ms": stats,
            "throughput_per_s": rate,
            "stages": {"inference": stats},
            "throughput": {"value": rate, "unit": "inputs/s"},
        }

    def profile_rows(self, report: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [
            ("latency p50 / p90 / p99", ms(report["latency_ms"])),
            ("throughput", f"{report['throughput_per_s']:.1f} inputs/s (batch {report['batch']})"),
        ]

    def export_lines(self, manifest: Mapping[str, Any]) -> list[str]:
        v = manifest["validation"]
        line = (f"validated on {v['ran_on']}: top-1 agreement {v['top1_agreement']:.2%} over "
                f"{v['inputs']} inputs, max abs diff {v['max_abs_diff']:.3g}")  # fmt: skip
        if "accuracy_exported" in v:
            line += (f"; accuracy {v['accuracy_source']:.2%} -> {v['accuracy_exported']:.2%}"
                     f" (drop {v['accuracy_drop']:+.2%})")  # fmt: skip
        return [line]


COMMANDS = ClassifierCommands()

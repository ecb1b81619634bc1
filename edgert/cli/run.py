"""``edgert run``: run a bundle on inputs and say what ran where."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from edgert.cli.options import (
    allow_fallback_option,
    decoder_options,
    decoder_options_option,
    draft_option,
    json_option,
)
from edgert.errors import InputError
from edgert.speculation import STAT_KEYS


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
            mode = "L" if channels == 1 else "RGB"
            pixels = np.asarray(image.convert(mode).resize((width, height)), np.float32)
    except UnidentifiedImageError as exc:
        raise InputError(f"{path} is neither an array (.npy/.npz) nor an image") from exc
    pixels = pixels / 255.0
    return pixels[None, None] if channels == 1 else pixels.transpose(2, 0, 1)[None]


# generate() arguments that run sets from its own flags, not decoder options.
RESERVED = {"decoder": "--decoder", "stop": "--stop", "truncate": "--truncate",
            "text": "the TEXT argument", "input_ids": "the TEXT argument",
            "context": "--context", "context_policy": "--context-policy"}  # fmt: skip


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("text", required=False)
@click.option("--input", "-i", "input_path", type=click.Path(path_type=Path),
              help="Classifiers: an .npy/.npz batch or an image file.")  # fmt: skip
@click.option("--top-k", default=3, show_default=True, help="Classifiers: classes per input.")
@click.option("--decoder", default="greedy", show_default=True, help="Text: decoding plugin.")
@click.option("--max-new-tokens", type=int, help="Text: cap on generated tokens.")
@click.option("--num-beams", type=int, help="Text: beams (with --decoder beam).")
@click.option("--temperature", type=float, help="Text: sampling temperature.")
@click.option("--seed", type=int, help="Text: sampling seed.")
@draft_option
@click.option("--stop", multiple=True, help="Text: stop at this string (repeatable).")
@click.option("--truncate", is_flag=True, help="Text: cut inputs longer than the profile allows.")
@decoder_options_option
@click.option(
    "--context",
    "context_path",
    type=click.Path(path_type=Path),
    help="Decoder-decoder models: file with the long context the question is about.",
)
@click.option(
    "--context-policy",
    type=click.Choice(["reject", "chunk"]),
    default="reject",
    show_default=True,
    help="Contexts longer than the context encoder's window.",
)
@click.option("--stats", is_flag=True, help="Text: print timing and decoder statistics.")
@click.option("--device", "-d", help="Run with this profile's providers instead of the bundle's.")
@click.option("--threads", type=int, help="Intra-op threads (default: the profile's).")
@allow_fallback_option
@json_option
def run(bundle: Path, text: str | None, input_path: Path | None, top_k: int, decoder: str,
        max_new_tokens, num_beams, temperature, seed, draft, stop, truncate, extra, context_path,
        context_policy, stats, device, threads, allow_fallback, as_json) -> None:  # fmt: skip
    """Run BUNDLE: classify inputs, or generate from TEXT ("-" reads standard input).

    \b
    Examples:
      edgert run digits-bundle --input batch.npy
      edgert run speller-bundle "teh cat sat in teh garden" --stats
      edgert run speller-bundle "some text" --decoder beam --num-beams 4
      edgert run speller-bundle "teh cat" --decoder aggressive --stats
      edgert run speller-bundle "teh cat" --decoder speculative --draft speller-draft
      edgert run speller-bundle "teh cat" --decoder speculative --draft speller-draft \\
          -O sample=true --temperature 0.8 --seed 1
      echo "some text" | edgert run speller-bundle - --decoder sampling --seed 1
      edgert run qa-bundle "Who wrote the report?" --context report.txt --stats
    """
    import edgert

    model = edgert.load(bundle, device=device, allow_fallback=allow_fallback, threads=threads)
    if model.bundle.family == "cnn":
        if input_path is None:
            raise InputError(
                "classifier bundles need --input", hint="--input batch.npy or an image"
            )
        _classify(model, input_path, top_k, as_json)
        return
    if text is None or text == "-":
        text = sys.stdin.read()
    options = {k: v for k, v in (("max_new_tokens", max_new_tokens), ("num_beams", num_beams),
                                 ("temperature", temperature), ("seed", seed),
                                 ("draft", str(draft) if draft else None)) if v is not None}  # fmt: skip
    options.update(decoder_options(extra, RESERVED))
    if model.bundle.family == "dolphin":
        if context_path is None:
            raise InputError(
                "decoder-decoder bundles answer questions about a context: pass --context FILE",
                hint=f'edgert run {bundle} "your question" --context document.txt',
            )
        if not Path(context_path).is_file():
            raise InputError(f"context file not found: {context_path}")
        options["context"] = Path(context_path).read_text(encoding="utf-8")
        options["context_policy"] = context_policy
    elif context_path is not None:
        raise InputError(f"--context is for decoder-decoder bundles; {bundle} is a "
                         f"{model.bundle.family} bundle")  # fmt: skip
    _generate(model, text, decoder, tuple(stop), truncate, options, stats, as_json)


def _classify(model: Any, input_path: Path, top_k: int, as_json: bool) -> None:
    x = _read_inputs(input_path, model.input_shape[1:])
    started = time.perf_counter()
    predictions = model.classify(x, top_k=top_k)
    elapsed_ms = (time.perf_counter() - started) * 1000
    info = model.session_info
    if as_json:
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
    click.echo(f"ran {len(predictions)} input(s) on {info.active}{label} in {elapsed_ms:.2f} ms")
    _fallback(info)


def _generate(model: Any, text: str, decoder: str, stop: tuple[str, ...], truncate: bool,
              options: dict, stats: bool, as_json: bool) -> None:  # fmt: skip
    info = model.session_info
    if as_json:
        result = model.generate(text, decoder=decoder, stop=stop, truncate=truncate, **options)
        click.echo(json.dumps({"text": result.text, "token_ids": result.token_ids,
                               "provider": info.active, "simulated": info.simulated,
                               "fallback": info.fallback, "stats": result.stats}, indent=2))  # fmt: skip
        return
    report: dict = {}
    for piece in model.stream(
        text, decoder=decoder, stop=stop, truncate=truncate, stats=report, **options
    ):
        click.echo(piece, nl=False)
    click.echo()
    if stats:
        _print_stats(report, info)
    _fallback(info)


def _print_stats(report: dict, info: Any) -> None:
    sim = " (simulated)" if info.simulated else ""
    lines = [f"provider {info.active}{sim}; {report.get('new_tokens', 0)} tokens"]
    if report.get("first_token_ms") is not None:
        lines.append(f"first token {report['first_token_ms']:.1f} ms")
    if report.get("per_token_median_ms") is not None:
        lines.append(f"per token p50 {report['per_token_median_ms']:.2f} ms, "
                     f"{report['tokens_per_s']:.1f} tokens/s")  # fmt: skip
    if "memory_ms" in report:
        hit = "cache hit" if report["memory_cache_hit"] else "encoded"
        lines.append(f"context {report['context_tokens']} tokens ({hit}, "
                     f"{report['memory_ms']:.1f} ms)")  # fmt: skip
    for key in STAT_KEYS:
        if key in report:
            value = report[key]
            lines.append(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}")
    click.echo("; ".join(lines), err=True)


def _fallback(info: Any) -> None:
    for note in info.fallback:
        click.secho(f"fallback: {note}", fg="yellow", err=True)

"""What ``edgert run``, ``profile`` and ``export`` do with a text-generation bundle."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import click
import numpy as np

from edgert.cli.report import fallback, ms
from edgert.errors import InputError
from edgert.families import RunRequest
from edgert.profiler import percentiles
from edgert.speculation import STAT_KEYS


class TextCommands:
    """Generate from TEXT (streamed, or as JSON); time generations of seeded inputs."""

    default_runs = (10, 2)

    def run(self, model: Any, request: RunRequest) -> None:
        """Stream the answer to standard output (statistics and fallbacks to stderr)."""
        for name in ("--input", "--top-k"):
            if name in request.given:
                raise InputError(
                    f"{name} is for classifier bundles; {request.bundle} generates text",
                    hint=f'pass the text instead: edgert run {request.bundle} "some text"',
                )
        text = request.text
        if text is None or text == "-":
            text = sys.stdin.read()
        options = dict(request.options)
        options.update(self.extra_options(model, request))
        self.generate(model, text, request, options)

    def extra_options(self, model: Any, request: RunRequest) -> dict[str, Any]:
        """Generation arguments this family adds from the request (none here)."""
        if request.context_path is not None:
            raise InputError(f"--context is for decoder-decoder bundles; {request.bundle} is a "
                             f"{model.bundle.family} bundle")  # fmt: skip
        return {}

    def generate(self, model: Any, text: str, request: RunRequest, options: dict) -> None:
        info = model.session_info
        common = {"decoder": request.decoder, "stop": request.stop, "truncate": request.truncate}
        if request.as_json:
            result = model.generate(text, **common, **options)
            click.echo(json.dumps({"text": result.text, "token_ids": result.token_ids,
                                   "provider": info.active, "simulated": info.simulated,
                                   "fallback": info.fallback, "stats": result.stats}, indent=2))  # fmt: skip
            return
        report: dict = {}
        for piece in model.stream(text, **common, stats=report, **options):
            click.echo(piece, nl=False)
        click.echo()
        if request.stats:
            print_stats(report, info)
        fallback(info)

    def prompt(self, model: Any, options: Any) -> dict[str, Any]:
        """The input every timed generation decodes: ``--text`` or seeded random tokens."""
        if options.text:
            return {"text": options.text}
        rng = np.random.default_rng(0)
        vocab = model.core.vocab_size
        ids = [int(t) for t in rng.integers(min(4, vocab - 1), vocab, options.input_tokens - 1)]
        return {"input_ids": [*ids, *model.defaults["eos_token_ids"][:1]]}

    def before_run(self, model: Any) -> None:
        """Called before every timed generation (a family may drop caches here)."""

    def profile(self, model: Any, options: Any, tick: Callable[[], None] | None) -> dict:
        """Time to first token and per-token latency over ``runs`` generations."""
        kwargs = self.prompt(model, options)
        kwargs.update(dict(options.decoder_options), decoder=options.decoder,
                      max_new_tokens=options.new_tokens, min_new_tokens=options.new_tokens)  # fmt: skip
        for _ in range(options.warmup):
            model.generate(**kwargs)
        first, steps, rates, decoder_stats, memory, series = [], [], [], [], [], []
        for _ in range(options.runs):
            self.before_run(model)
            result = model.generate(**kwargs)
            if "memory_ms" in result.stats:
                memory.append(result.stats["memory_ms"])
            first.append(result.stats["first_token_ms"] + result.stats.get("memory_ms", 0.0))
            steps.extend(result.stats["per_token_ms"])
            series.append(result.stats["per_token_ms"])
            rates.append(result.stats["tokens_per_s"])
            decoder_stats.append({k: v for k, v in result.stats.items() if k in STAT_KEYS})
            if tick:
                tick()
        report = {
            "decoder": options.decoder,
            "decoder_options": dict(options.decoder_options),
            "new_tokens": options.new_tokens,
            "encoder_placement": model.encoder_info.placement,
            "first_token_ms": percentiles(first),
            "per_token_ms": percentiles(steps) if steps else None,
            "tokens_per_s": float(np.median(rates)),
            "decoder_stats": _mean(decoder_stats),
        }
        stages = {"first_token": report["first_token_ms"]}
        encoder = self.encoder_stage(model, kwargs, options.runs)
        if encoder:
            stages["encoder"] = encoder
        if memory:
            report["memory_ms"] = stages["context_encoder"] = percentiles(memory)
        if steps:
            stages["per_token"] = report["per_token_ms"]
        # median latency of the i-th token over the runs: how it moves along the sequence
        length = min((len(s) for s in series), default=0)
        report["per_token_series_ms"] = [float(np.median([s[i] for s in series]))
                                         for i in range(length)]  # fmt: skip
        report["stages"] = stages
        report["throughput"] = {"value": report["tokens_per_s"], "unit": "tokens/s"}
        if model.verify_info is not None:  # a static bundle's verify graph
            report["verify_placement"] = model.verify_info.placement
        return report

    def encoder_stage(self, model: Any, prompt: dict[str, Any], runs: int) -> dict | None:
        """The encoder alone on the timed input, ``runs`` times (it is part of the first
        token's time too): ``first_token - encoder`` is the first decoder step's share."""
        if "input_ids" in prompt:
            ids = list(prompt["input_ids"])
        else:
            ids = model.encode_text(prompt["text"], truncate=bool(prompt.get("truncate")))
        samples = []
        with model.exclusive():
            for _ in range(runs):
                started = time.perf_counter()
                model.core.encode(ids)
                samples.append((time.perf_counter() - started) * 1000)
        return percentiles(samples)

    def profile_rows(self, report: Mapping[str, Any]) -> list[tuple[str, str]]:
        chosen = report.get("decoder_options") or {}
        details = ", ".join(f"{key}={value}" for key, value in chosen.items())
        decoder = f"{report['decoder']} ({details})" if details else report["decoder"]
        rows = [
            ("decoder", decoder),
            ("first token p50 / p90 / p99", ms(report["first_token_ms"])),
            ("per token p50 / p90 / p99", ms(report["per_token_ms"])),
            ("tokens/s", f"{report['tokens_per_s']:.1f} ({report['new_tokens']} tokens per run)"),
        ]
        return rows + [(key, f"{value:.3f}") for key, value in report["decoder_stats"].items()]

    def export_lines(self, manifest: Mapping[str, Any]) -> list[str]:
        v = manifest["validation"]
        lines = [f"validated on {v['ran_on']}: next-token agreement {v['next_token_agreement']:.2%} "
                 f"over {v['positions']} positions, greedy identical {v['greedy_identical']}, "
                 f"max relative logit diff {v['max_relative_logit_diff']:.3g}"]  # fmt: skip
        words = manifest.get("dictionary_words")
        if words:
            lines.append(f"dictionary {manifest['dictionary']}: {words['spelt']} of "
                         f"{words['listed']} words spelt by the tokenizer, for input-guided "
                         "drafts")  # fmt: skip
        return lines


def print_stats(report: dict, info: Any) -> None:
    """``--stats``: one line of timings and decoder statistics on standard error."""
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
    if report.get("overridden"):
        changes = ", ".join(f"{name} {c['given']!r} (bundle default {c['bundle']!r})"
                            for name, c in report["overridden"].items())  # fmt: skip
        lines.append(f"overriding the checkpoint's defaults: {changes}")
    elif "decoder" in report:
        lines.append(f"decoder {report['decoder']} (the checkpoint's defaults)")
    for key in STAT_KEYS:
        if key in report:
            value = report[key]
            lines.append(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}")
    click.echo("; ".join(lines), err=True)


def _mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = {k for row in rows for k in row}
    return {k: float(np.mean([row[k] for row in rows if k in row])) for k in sorted(keys)}


COMMANDS = TextCommands()

"""What ``edgert run``, ``profile`` and ``export`` do with a speech bundle."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import click
import numpy as np

from edgert.cli.report import fallback, ms
from edgert.errors import InputError
from edgert.families import RunRequest
from edgert.plugins.families.speech.audio import seeded_speech
from edgert.profiler import percentiles

NOT_FOR_SPEECH = ("--top-k", "--stop", "--truncate", "--context")


class SpeechCommands:
    """Transcribe an audio file; time feature extraction, encoder and decoding."""

    default_runs = (5, 1)

    def run(self, model: Any, request: RunRequest) -> None:
        """Print the transcript (segments with times under ``--json``)."""
        wrong = [name for name in NOT_FOR_SPEECH if name in request.given]
        if wrong:
            raise InputError(f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not for "
                             f"speech bundles; {request.bundle} transcribes audio",
                             hint=f"edgert run {request.bundle} speech.wav")  # fmt: skip
        audio = request.input_path or request.text
        if not audio:
            raise InputError("speech bundles need an audio file",
                             hint=f"edgert run {request.bundle} speech.wav")  # fmt: skip
        options = dict(request.options)
        result = model.transcribe(audio, decoder=request.decoder, **options)
        info = model.session_info
        if request.as_json:
            segments = [{"start": s.start, "end": s.end, "text": s.text,
                         "token_ids": list(s.token_ids)} for s in result.segments]  # fmt: skip
            click.echo(json.dumps({"text": result.text, "token_ids": list(result.token_ids),
                                   "language": result.language, "segments": segments,
                                   "provider": info.active, "simulated": info.simulated,
                                   "fallback": info.fallback, "stats": result.stats}, indent=2))  # fmt: skip
            return
        click.echo(result.text.strip())
        if request.stats:
            s = result.stats
            click.echo(f"provider {info.active}; {s['audio_s']:.1f} s of audio in {s['windows']} "
                       f"window(s); features {s['feature_ms']:.1f} ms; {s['new_tokens']} tokens "
                       f"in {s['decode_ms']:.1f} ms; real-time factor {s['real_time_factor']:.3f}",
                       err=True)  # fmt: skip
        fallback(info)

    def profile(self, model: Any, options: Any, tick: Callable[[], None] | None) -> dict:
        """Feature extraction, encoder, first token and per-token times, and the
        real-time factor, over ``runs`` transcriptions of the given or a seeded signal."""
        audio = options.text or seeded_speech(5.0, 0, model.settings.sampling_rate)
        kwargs = dict(options.decoder_options)
        kwargs.update(decoder=options.decoder, max_new_tokens=options.new_tokens)
        for _ in range(options.warmup):
            model.transcribe(audio, **kwargs)
        features, encoder, first, steps, factors = [], [], [], [], []
        for _ in range(options.runs):
            result = model.transcribe(audio, **kwargs)
            features.append(result.stats["feature_ms"])
            factors.append(result.stats["real_time_factor"])
            with model.exclusive():
                window = model.features(audio)[:, : model.settings.frames]
                if window.shape[1] < model.settings.frames:
                    window = np.pad(window, ((0, 0), (0, model.settings.frames - window.shape[1])))
                model.core.listen(window)
                begun = time.perf_counter()
                model.core.encode(result.stats["prompt"])
                encoder.append((time.perf_counter() - begun) * 1000)
                begun = time.perf_counter()
                logits = model.core.step(result.stats["prompt"])[-1]
                first.append((time.perf_counter() - begun) * 1000 + encoder[-1])
                token = int(np.argmax(logits))
                for _ in range(max(0, options.new_tokens - 1)):
                    begun = time.perf_counter()
                    token = int(np.argmax(model.core.step([token])[-1]))
                    steps.append((time.perf_counter() - begun) * 1000)
            if tick:
                tick()
        stages = {"features": percentiles(features), "encoder": percentiles(encoder),
                  "first_token": percentiles(first)}  # fmt: skip
        if steps:
            stages["per_token"] = percentiles(steps)
        factor = float(np.median(factors))
        return {
            "decoder": options.decoder or model.default_decoder,
            "decoder_options": dict(options.decoder_options),
            "new_tokens": options.new_tokens,
            "audio_s": result.stats["audio_s"],
            "encoder_placement": model.encoder_info.placement,
            "features_ms": stages["features"],
            "encoder_ms": stages["encoder"],
            "first_token_ms": stages["first_token"],
            "per_token_ms": stages.get("per_token"),
            "real_time_factor": factor,
            "stages": stages,
            "throughput": {"value": 1.0 / factor if factor else None, "unit": "x real time"},
        }

    def profile_rows(self, report: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [
            ("decoder", report["decoder"]),
            ("audio", f"{report['audio_s']:.1f} s"),
            ("features p50 / p90 / p99", ms(report["features_ms"])),
            ("encoder p50 / p90 / p99", ms(report["encoder_ms"])),
            ("first token p50 / p90 / p99", ms(report["first_token_ms"])),
            ("per token p50 / p90 / p99", ms(report["per_token_ms"])),
            ("real-time factor", f"{report['real_time_factor']:.3f} (lower is faster)"),
        ]

    def export_lines(self, manifest: Mapping[str, Any]) -> list[str]:
        v = manifest["validation"]
        f = manifest["features"]
        return [
            f"validated on {v['ran_on']}: next-token agreement {v['next_token_agreement']:.2%} over "
            f"{v['positions']} positions of {v['inputs']} audio windows, greedy identical "
            f"{v['greedy_identical']}, max relative logit diff {v['max_relative_logit_diff']:.3g}",
            f"front-end: {f['feature_size']} mel bins, {f['chunk_samples'] / f['sampling_rate']:.0f} s "
            f"window at {f['sampling_rate']} Hz",
        ]


COMMANDS = SpeechCommands()

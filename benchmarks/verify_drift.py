"""How far a bundle's logits move when positions are computed in multi-token calls.

Greedy decoding computes every position in a one-token call; lossless decoders verify
drafts several positions per call. Kernels take other code paths for other shapes, so the
logits differ a little (fp32: summation order; weight-only int8 with int8 compute: some
activations round differently; TF32 on CUDA). Lossless decoders recompute a position
alone when its top two logits are closer than the bound the provider declares for the
bundle's precision (``verify_drift``, see ``edgert.plugins.families.seq2seq.runtime.verify_bound``); this script
measures the drift that bound must cover, absolute and relative to each row's largest
``|logit|``, on:

- the embedded speller (small logits) at fp32, int8 and int4;
- its random-weight copy (the open-ended model of ``benchmarks/decoding.py``);
- a random-weight T5 v1.1 of the same shape (gated FF, untied head: logits reach ~50).

For each held-out input, greedy's tokens are fed one per call and then all in one call
(and half of them, so both call shapes of a verification are seen).

    python benchmarks/verify_drift.py [--inputs 300] [--workdir DIR] [--out ...]
    python benchmarks/verify_drift.py --devices nvidia-cuda-fp16,cpu-generic \
        --run-device nvidia-cuda-fp16  # on a GPU: fp16 and fp32 bundles on CUDA

``--devices``: export every model for each of these profiles (by default the speller at
fp32, int4 and int8, the random models at int8); ``--run-device``: run the bundles with
this profile's providers instead of their own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from decoding import export, host, int8_device, random_copy, speller_dir, workload

import edgert


def random_t5v11(source: Path, out: Path) -> Path:
    """The speller's shape and tokenizer as a seeded random T5 v1.1 (large logits)."""
    import shutil

    import torch
    from transformers import AutoConfig, T5ForConditionalGeneration

    if not out.exists():
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(source)
        config.feed_forward_proj, config.tie_word_embeddings = "gated-gelu", False
        config.is_gated_act, config.dense_act_fn = True, "gelu_new"
        T5ForConditionalGeneration(config).save_pretrained(out)
        shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    return out


def drift(
    bundle: Path, inputs: list[str], new_tokens: int, device: str | None = None
) -> dict[str, Any]:
    """Max and 99th-percentile drift over every verified row of every input."""
    model = edgert.load(bundle, device=device, threads=1)
    core = model.core
    absolute, relative = [], []
    for text in inputs:
        tokens = model.generate(text, max_new_tokens=new_tokens).token_ids
        ids = model.encode_text(text)
        single = np.stack([core.start(ids)[-1]] + [core.step([t])[-1] for t in tokens[:-1]])
        for cut in (len(tokens) - 1, (len(tokens) - 1) // 2):
            rows = np.abs(core.start_with(ids, tokens[:cut]) - single[: cut + 1]).max(axis=1)
            absolute.extend(rows)
            relative.extend(rows / np.abs(single[: cut + 1]).max(axis=1))
    precision = model.bundle.manifest["precision"]
    bound = core.info.verify_tolerance  # the providers' for this precision (see verify_bound)
    return {
        "precision": precision,
        "provider": model.provider,
        "rows": len(absolute),
        "max_abs": float(np.max(absolute)),
        "p99_abs": float(np.quantile(absolute, 0.99)),
        "max_rel": float(np.max(relative)),
        "p99_rel": float(np.quantile(relative, 0.99)),
        "bound": {"absolute": bound.absolute, "relative": bound.relative},
        "relative_margin": bound.relative / max(float(np.max(relative)), 1e-12),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=300)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument(
        "--devices", type=lambda text: text.split(","),
        help="comma-separated profiles to export every model for",
    )  # fmt: skip
    parser.add_argument("--run-device", help="run every bundle with this profile's providers")
    parser.add_argument("--workdir", type=Path, help="keep exports here between runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/verify_drift.json"))
    args = parser.parse_args()
    inputs, work = workload(args.inputs, 99, args.workdir, "edgert-drift-")
    source = speller_dir()
    models = {
        "speller": source,
        "random speller": random_copy(source, work / "open-ended-src"),
        "random t5 v1.1": random_t5v11(source, work / "t5v11-src"),
    }
    if args.devices:
        cases = [(name, device) for name in models for device in args.devices]
    else:
        cases = [("speller", "cpu-generic"), ("speller", "x86-avx512-vnni-int4")]
        cases += [(name, int8_device()) for name in models]
    results: dict[str, Any] = {
        "host": host(),
        "inputs": len(inputs),
        "run_device": args.run_device,
        "cases": {},
    }
    print(f"{'model':<16} {'device':<22} {'provider':<26} {'max |d|':>8} {'p99 |d|':>8} "
          f"{'max rel':>8} {'p99 rel':>8} {'bound rel':>9} {'margin':>7}")  # fmt: skip
    for name, device in cases:
        bundle = export(models[name], work / f"{name.replace(' ', '-')}-{device}", device)
        row = drift(bundle, inputs, args.new_tokens, args.run_device)
        results["cases"][f"{name} ({device})"] = row
        print(f"{name:<16} {device:<22} {row['provider']:<26} {row['max_abs']:>8.4f} {row['p99_abs']:>8.4f} "
              f"{row['max_rel']:>8.4f} {row['p99_rel']:>8.4f} {row['bound']['relative']:>9.4f} "
              f"{row['relative_margin']:>6.1f}x")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

"""Lossless decoding plugins vs greedy, on the embedded speller task and on open-ended text.

One interleaved run: for every input, each decoder runs once, in rotating order, so drift
on a shared machine hits all of them alike. The inputs are run ``--passes`` times; each
pass gives every decoder a rate and a ratio to greedy, and the table shows the medians
(and the range of the ratio over the passes). For each precision (fp32, int8):

- copy-heavy: >= 200 held-out spelling-correction inputs of the embedded model's task;
- open-ended: the same inputs through a model of the same shape with random weights, whose
  output does not copy its input (drafts fail: this measures the cost of trying).

Every plugin's tokens are compared with greedy's on every input. ``replay``: the share of
target calls that recomputed a near-tie one token at a time (see ``speculate``). With a
draft, speculative sampling (``sample=True``) is also timed against plain sampling (input
i sampled with seed i by both; the outputs differ, their distributions do not: see
``tests/unit/test_speculative_sampling.py``); ``--no-sampling`` skips that. After the timed
passes, one more pass shows where each decoder's time goes per input (``breakdown``): the
target's encoder and decoder calls, the draft model, and the rest (tokenizer, Python), with
the ratio each decoder would reach if its target decoder calls cost nothing (``ceiling``).

    python benchmarks/decoding.py [--inputs 200] [--passes 3] [--draft DRAFT_MODEL_DIR] [--out ...]
    python benchmarks/decoding.py --devices nvidia-cuda-fp16 --draft-device match  # on a GPU

``--devices``: the profiles to export for (default: ``cpu-generic`` and this machine's int8
profile); ``--run-device``: a profile whose providers run every bundle instead of its own
(an fp32 bundle on CUDA: ``--devices cpu-generic --run-device nvidia-cuda-fp16``).

``--draft`` is a Hugging Face folder of a smaller model trained for the same task with the
same tokenizer; by default the embedded ``zoo:speller-draft``
(``python tools/train_speller.py --draft``). On open-ended inputs the
same draft drafts for the random-weight target (same tokenizer): its drafts fail there,
which is the cost being measured. The draft is exported for this machine's int8 profile
in every case (``--draft-device match``: the target's profile): the target verifies every
drafted token, so a draft's precision moves only how many it gets right, and the int8
draft is the faster one here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import edgert
from edgert.catalog import get_catalog
from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq
from edgert.plugins.decoding.lexicon import DICTIONARY

DECODERS = ("greedy", "aggressive", "lookup", "speculative")


def speller_dir(folder: str = "model") -> Path:
    return Path(str(resources.files("edgert.exporters.zoo") / "speller" / folder))


def int8_device() -> str:
    profile, _ = edgert.resolve_device("auto")
    return profile.id if profile.export.precision == "int8" else "x86-avx2-int8"


def export(source: Path, out: Path, device: str) -> Path:
    if not out.exists():
        profile, _ = edgert.resolve_device(device)
        export_seq2seq(Seq2SeqExport(source=str(source), out=out), profile, get_catalog())
    return out


def host() -> dict[str, Any]:
    """Where the numbers come from: a ratio means little without the machine and build."""
    import platform

    import onnxruntime as ort

    from edgert.host import this_host

    return {
        "cpu": this_host().cpu_name,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def workload(count: int, seed: int, workdir: Path | None, prefix: str) -> tuple[list[str], Path]:
    """``count`` held-out misspelt inputs of the speller's task, and the folder for exports
    (``workdir``, kept between runs, or a new temporary one)."""
    from edgert.exporters.zoo.speller.data import heldout_pairs

    work = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    return [noisy for noisy, _ in heldout_pairs(count, seed=seed)], work


def random_copy(source: Path, out: Path) -> Path:
    """The speller's architecture and tokenizer with seeded random weights (open-ended)."""
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    if not out.exists():
        torch.manual_seed(0)
        model = AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(source))
        model.generation_config = AutoModelForSeq2SeqLM.from_pretrained(source).generation_config
        model.save_pretrained(out)
        for name in ("tokenizer.json", DICTIONARY):  # the same tokenizer and dictionary
            shutil.copy(source / name, out / name)
    return out


def run_case(
    target: Path, contenders: dict[str, tuple[str, dict[str, Any]]], inputs: list[str],
    new_tokens: int, passes: int, exact: bool = True, device: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``passes`` interleaved passes over ``inputs``; rates and ratios are per-pass medians.

    ``contenders``: name -> (decoder, options); the first is the baseline. ``exact``: every
    contender must emit the baseline's tokens (lossless decoders vs greedy); otherwise
    (sampling) input ``i`` is sampled with seed ``i`` and nothing is compared. ``device``:
    run with this profile's providers instead of the bundle's.
    """
    model = edgert.load(target, device=device, threads=1)
    names = list(contenders)
    baseline = names[0]

    def generate(name: str, text: str, index: int) -> Any:
        decoder, options = contenders[name]
        seeded = {} if exact else {"seed": index}
        return model.generate(text, decoder=decoder, max_new_tokens=new_tokens, **options, **seeded)

    for name in names:  # warm-up, and load the draft once
        generate(name, inputs[0], 0)
    totals = {name: {"tokens": 0, "identical": 0, "stats": [], "rates": []} for name in names}
    for _ in range(passes):
        seconds, tokens = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0)
        for index, text in enumerate(inputs):
            order = names[index % len(names) :] + names[: index % len(names)]
            outputs = {}
            for name in order:
                started = time.perf_counter()
                result = generate(name, text, index)
                seconds[name] += time.perf_counter() - started
                tokens[name] += len(result.token_ids)
                outputs[name] = result.token_ids
                totals[name]["stats"].append(result.stats)
            for name in names:
                totals[name]["identical"] += int(outputs[name] == outputs[baseline])
        for name in names:
            totals[name]["rates"].append(tokens[name] / seconds[name])
            totals[name]["tokens"] += tokens[name]
    base_rates = totals[baseline]["rates"]
    rows = {}
    for name, t in totals.items():
        ratios = [rate / base for rate, base in zip(t["rates"], base_rates, strict=True)]
        stats = [s for s in t["stats"] if "target_calls" in s]
        checked = len(inputs) * passes
        rows[name] = {
            "tokens_per_s": float(np.median(t["rates"])),
            "baseline": baseline,
            "speedup": float(np.median(ratios)),
            "speedup_per_pass": ratios,
            "provider": model.provider,
            "identical_to_baseline": f"{t['identical']}/{checked}" if exact else None,
            "all_identical": t["identical"] == checked if exact else None,
            "acceptance_rate": float(np.mean([s["acceptance_rate"] for s in stats]))
            if stats
            else None,
            "tokens_per_target_call": (
                t["tokens"] / sum(s["target_calls"] for s in stats) if stats else 1.0
            ),
            "replayed_share": (  # target calls that recomputed a near-tie one token at a time
                sum(s.get("replayed", 0) for s in stats) / sum(s["target_calls"] for s in stats)
                if stats
                else None
            ),
        }
    return rows


def breakdown(
    target: Path, contenders: dict[str, tuple[str, dict[str, Any]]], inputs: list[str],
    new_tokens: int, device: str | None = None,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """Where each decoder's time goes, per input (one untimed pass with the sessions'
    ``run`` wrapped): the target's encoder and decoder, the draft model's sessions, and
    the rest (tokenizer, Python). Calls on a worker thread (speculative's target encodes
    while the draft drafts) are ``overlapped``, outside the others. ``ceiling``: the ratio
    to the baseline the decoder would reach if its target decoder calls cost nothing;
    what it shares with the baseline (encoder, tokenizer, Python) bounds every ratio."""
    from edgert.plugins.decoding.speculative import draft_for

    model = edgert.load(target, device=device, threads=1)
    spent: dict[str, float] = {}
    sessions = [(model.core.encoder, "encoder"), (model.core.decoder, "decoder")]
    for _, options in contenders.values():
        if options.get("draft"):  # the cached draft the decoder will use: restored below
            draft = draft_for(options["draft"], model.core)
            sessions += [(draft.encoder, "draft"), (draft.decoder, "draft")]

    def timed(run: Any, part: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return run(*args, **kwargs)
            finally:  # a worker thread's calls overlap the caller's: not part of its time
                key = part if threading.current_thread() is main else "overlapped"
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - started

        return wrapper

    main = threading.current_thread()
    sessions = list({id(session): (session, part) for session, part in sessions}.values())
    rows = {}
    try:
        for session, part in sessions:
            session.run = timed(session.run, part)
        for name, (decoder, options) in contenders.items():
            model.generate(inputs[0], decoder=decoder, max_new_tokens=new_tokens, **options)
            spent.clear()
            started = time.perf_counter()
            for text in inputs:
                model.generate(text, decoder=decoder, max_new_tokens=new_tokens, **options)
            total = time.perf_counter() - started
            row = {part: seconds * 1000 / len(inputs) for part, seconds in spent.items()}
            row["rest"] = total * 1000 / len(inputs) - sum(
                ms for part, ms in row.items() if part != "overlapped"
            )
            row["total"] = total * 1000 / len(inputs)
            rows[name] = row
    finally:
        for session, _ in sessions:
            vars(session).pop("run", None)  # the class's method again
    baseline = rows[next(iter(rows))]["total"]
    for row in rows.values():
        row["ceiling"] = baseline / max(row["total"] - row.get("decoder", 0.0), 1e-9)
    return rows


def lossless(draft: Path | None) -> dict[str, tuple[str, dict[str, Any]]]:
    """Greedy first, then every lossless decoder (speculative only with a draft)."""
    contenders = {name: (name, {}) for name in DECODERS if name != "speculative"}
    if draft:
        contenders["speculative"] = ("speculative", {"draft": str(draft)})
    return contenders


def sampling(draft: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Plain sampling first, then speculative sampling with the draft."""
    return {
        "sampling": ("sampling", {}),
        "spec. sampling": ("speculative", {"draft": str(draft), "sample": True}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument(
        "--passes", type=int, default=3, help="interleaved passes (medians: a shared machine)"
    )
    parser.add_argument(
        "--draft", type=Path, default=speller_dir("draft"), help="Hugging Face folder of the draft"
    )
    parser.add_argument(
        "--draft-device", default="int8", help="int8 (default), match (the target's), or a profile"
    )
    parser.add_argument(
        "--no-sampling", dest="sampling", action="store_false",
        help="skip speculative sampling vs plain sampling",
    )  # fmt: skip
    parser.add_argument(
        "--devices", type=lambda text: text.split(","),
        help="comma-separated profiles to export for (default: cpu-generic and the int8 one)",
    )  # fmt: skip
    parser.add_argument("--run-device", help="run every bundle with this profile's providers")
    parser.add_argument("--workdir", type=Path, help="keep exports here between runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decoding.json"))
    args = parser.parse_args()
    inputs, work = workload(args.inputs, 1234, args.workdir, "edgert-decoding-")
    source = speller_dir()
    open_ended = random_copy(source, work / "open-ended-src")
    results: dict[str, Any] = {
        "host": host(),
        "inputs": len(inputs),
        "passes": args.passes,
        "draft_device": args.draft_device,
        "run_device": args.run_device,
        "new_tokens_cap": args.new_tokens,
        "load_average_before": os.getloadavg(),  # a shared machine: ratios, not absolutes
        "cases": {},
        "breakdown": {},  # ms per input by where it is spent (see ``breakdown``)
    }
    for device in args.devices or ["cpu-generic", int8_device()]:
        precision = edgert.resolve_device(device)[0].export.precision
        target = export(source, work / f"speller-{device}", device)
        draft = None
        if args.draft and (args.draft / "config.json").is_file():
            draft_device = {"int8": int8_device(), "match": device}.get(
                args.draft_device, args.draft_device
            )
            draft = export(args.draft, work / f"draft-{draft_device}", draft_device)
        else:
            results["speculative"] = "skipped: no draft model (train one: speller.train --draft)"
            print(results["speculative"])
        noise = export(open_ended, work / f"open-ended-{device}", device)
        ran = f" on {args.run_device}" if args.run_device else ""
        for case, bundle in (("copy-heavy", target), ("open-ended", noise)):
            key = f"{case} {precision} ({device}{ran})"
            results["cases"][key] = run_case(
                bundle, lossless(draft), inputs, args.new_tokens, args.passes,
                exact=True, device=args.run_device,
            )  # fmt: skip
            report(key, results["cases"][key])
            results["breakdown"][key] = breakdown(
                bundle, lossless(draft), inputs, args.new_tokens, args.run_device
            )
            report_breakdown(results["breakdown"][key])
            if draft and args.sampling:
                key = f"{case} {precision} ({device}{ran}), sampling"
                results["cases"][key] = run_case(
                    bundle, sampling(draft), inputs, args.new_tokens, args.passes,
                    exact=False, device=args.run_device,
                )  # fmt: skip
                report(key, results["cases"][key])
    results["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def report(key: str, rows: dict[str, Any]) -> None:
    baseline = next(iter(rows))
    print(f"\n{key}, on {rows[baseline]['provider']}")
    print(f"  {'decoder':<15} {'tokens/s':>9} {'x ' + baseline:>10} {'range':>11} {'accept':>7} "
          f"{'tok/call':>8} {'replay':>6} {'= ' + baseline:>10}")  # fmt: skip
    for name, row in rows.items():
        accept = f"{row['acceptance_rate']:.2f}" if row["acceptance_rate"] is not None else "-"
        spread = f"{min(row['speedup_per_pass']):.2f}-{max(row['speedup_per_pass']):.2f}"
        replay = f"{row['replayed_share']:.2f}" if row["replayed_share"] is not None else "-"
        same = row["identical_to_baseline"] or "-"
        print(f"  {name:<15} {row['tokens_per_s']:>9.1f} {row['speedup']:>10.2f} {spread:>11} "
              f"{accept:>7} {row['tokens_per_target_call']:>8.2f} {replay:>6} {same:>10}")  # fmt: skip


def report_breakdown(rows: dict[str, dict[str, float]]) -> None:
    print(f"  {'ms per input':<15} {'encoder':>9} {'decoder':>9} {'draft':>9} {'rest':>9} "
          f"{'total':>9} {'ceiling':>8} {'overlapped':>10}")  # fmt: skip
    for name, row in rows.items():
        print(f"  {name:<15} {row.get('encoder', 0):>9.3f} {row.get('decoder', 0):>9.3f} "
              f"{row.get('draft', 0):>9.3f} {row['rest']:>9.3f} {row['total']:>9.3f} "
              f"{row['ceiling']:>7.2f}x {row.get('overlapped', 0):>10.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

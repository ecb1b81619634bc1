"""Each shipped CPU profile's speller bundle on this CPU: same tokens as fp32, or refused.

Bundles are exported here, then loaded by a second process, optionally under qemu's model
of another x86 CPU (``--cpu-model Haswell``: AVX2 without AVX-512 or VNNI), whose int8
kernels are then really that CPU's. For each bundle it prints the share of held-out inputs
whose greedy tokens equal the fp32 bundle's, or edgert's refusal. ``--unchecked`` also
loads refused bundles past the check, to show what that CPU's kernels make of them.
Timings under qemu mean nothing; only tokens are compared.

    python benchmarks/int8_portability.py [--inputs 50] [--workdir DIR] [--out ...]
    python benchmarks/int8_portability.py --cpu-model Haswell --unchecked  # needs qemu-user
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from decoding import export, host, speller_dir, workload

import edgert

DEVICES = ("cpu-generic", "x86-avx2-int8", "x86-avx512-vnni-int8", "x86-avx512-vnni-int4",
           "raspberry-pi-5")  # fmt: skip


def compare(work: Path, inputs: list[str], unchecked: bool) -> dict[str, Any]:
    """Load every bundle in ``work`` on this CPU and compare its tokens with fp32's."""
    from edgert import kernels
    from edgert.host import this_host

    def tokens(device: str) -> list[list[int]]:
        model = edgert.load(work / device)
        return [model.generate(text, max_new_tokens=24).token_ids for text in inputs]

    reference = tokens("cpu-generic")
    rows = {}
    for device in DEVICES[1:]:
        try:
            got, refused = tokens(device), None
        except edgert.BundleError as exc:
            got, refused = None, exc.message
            if unchecked:
                check, kernels.plan = kernels.plan, lambda *a, **k: False
                try:
                    got = tokens(device)
                finally:
                    kernels.plan = check
        same = None if got is None else sum(a == b for a, b in zip(reference, got, strict=True))
        rows[device] = {"identical": same, "refused": refused}
    flags = sorted(f for f in this_host().cpu_flags if f.startswith(("avx", "amx")))
    return {"cpu_flags": flags, "inputs": len(inputs), "bundles": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=50)
    parser.add_argument("--workdir", type=Path, help="keep exports here between runs")
    parser.add_argument("--cpu-model", help="load under qemu-x86_64 -cpu MODEL (e.g. Haswell)")
    parser.add_argument("--unchecked", action="store_true", help="also run refused bundles")
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/int8_portability.json")
    )
    args = parser.parse_args()
    inputs, work = workload(args.inputs, 0, args.workdir, "edgert-int8-portability-")
    if args.load_only:
        print(json.dumps(compare(work, inputs, args.unchecked)))
        return
    for device in DEVICES:
        export(speller_dir(), work / device, device)
    command = [sys.executable, __file__, "--load-only", "--workdir", str(work),
               "--inputs", str(args.inputs)] + (["--unchecked"] if args.unchecked else [])  # fmt: skip
    if args.cpu_model:
        command = ["qemu-x86_64", "-cpu", args.cpu_model, *command]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(host=host(), cpu_model=args.cpu_model or "this CPU")
    print(f"{result['cpu_model']} (flags: {', '.join(result['cpu_flags'])}), "
          f"{result['inputs']} inputs, greedy tokens vs the fp32 bundle:")  # fmt: skip
    for device, row in result["bundles"].items():
        same = "-" if row["identical"] is None else f"{row['identical']}/{result['inputs']}"
        verdict = f"refused: {row['refused'][:90]}..." if row["refused"] else "loaded"
        print(f"  {device:22} identical {same:>7}  {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Where an int8 seq2seq bundle's memory goes, by ONNX Runtime session setting.

Each variant runs in a process of its own: import onnxruntime, create the bundle's encoder
and decoder sessions (one thread), run the encoder once over 128 positions and 64 decoder
steps over a growing cache (seeded random inputs), and read ``/proc/self/status``: RSS
after the import, what loading added, what the runs added, the file-backed part, the
high-water mark, and the median decoder step. Variants:

- ``default``: edgert's settings (arena on, prepacking on, weights inside the .onnx);
- ``no-arena``: ``enable_cpu_mem_arena = False``;
- ``no-prepack``: ``session.disable_prepacking = 1`` (kernels keep the stored layout);
- ``external``: the same graphs saved with their weights as external data (ORT maps them);
- ``external-no-prepack``: both.

    python benchmarks/session_memory.py BUNDLE [--out benchmarks/results/session_memory.json]

BUNDLE: an int8 seq2seq bundle, e.g. the T5-small-shaped ``edgert-int8`` export that
``python benchmarks/seq2seq.py --workdir DIR`` leaves in ``DIR/edgert-int8``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("default", "no-arena", "no-prepack", "external", "external-no-prepack")
DIMS = {"batch": 1, "bias_batch": 1, "source": 128, "new": 1}


def status() -> dict[str, float]:
    """MiB figures of this process from ``/proc/self/status``."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssFile"):
            found[key] = int(value.split()[0]) / 1024
    return found


def worker(variant: str, folder: Path) -> dict[str, float]:
    """One variant's figures (runs in its own process)."""
    import time

    import numpy as np
    import onnxruntime as ort

    imported = status()
    sessions = {}
    for role in ("encoder", "decoder"):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        if "no-arena" in variant:
            options.enable_cpu_mem_arena = False
        if "no-prepack" in variant:
            options.add_session_config_entry("session.disable_prepacking", "1")
        sessions[role] = ort.InferenceSession(str(folder / f"{role}.onnx"), options,
                                              providers=["CPUExecutionProvider"])  # fmt: skip
    loaded = status()
    rng = np.random.default_rng(0)

    def feed(session: object, dims: dict[str, int]) -> dict[str, np.ndarray]:
        return {i.name: (rng.standard_normal([d if isinstance(d, int) else dims[d]
                                              for d in i.shape]) * 0.1).astype(np.float32)
                for i in session.get_inputs()}  # type: ignore[attr-defined]  # fmt: skip

    sessions["encoder"].run(None, feed(sessions["encoder"], DIMS))
    steps = []
    for past in range(64):
        inputs = feed(sessions["decoder"], DIMS | {"past": past, "total": past + 1})
        started = time.perf_counter()
        sessions["decoder"].run(None, inputs)
        steps.append((time.perf_counter() - started) * 1000)
    end = status()
    return {
        "import_mib": imported["VmRSS"], "load_mib": loaded["VmRSS"] - imported["VmRSS"],
        "runs_mib": end["VmRSS"] - loaded["VmRSS"], "file_backed_mib": end["RssFile"],
        "peak_mib": end["VmHWM"], "step_ms": float(np.median(steps)),
    }  # fmt: skip


def external_copy(bundle: Path, into: Path) -> Path:
    """The bundle's graphs with their weights saved as external data."""
    import onnx

    for role in ("encoder", "decoder"):
        model = onnx.load(str(bundle / f"{role}.onnx"))
        onnx.save_model(model, str(into / f"{role}.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=f"{role}.data", size_threshold=1024)  # fmt: skip
    return into


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], Path(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "session_memory.json")
    args = parser.parse_args()
    from _peers import cpu_name

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        external = external_copy(args.bundle, Path(tmp))
        for variant in VARIANTS:
            folder = external if variant.startswith("external") else args.bundle
            done = subprocess.run([sys.executable, __file__, "--worker", variant, str(folder)],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{args.bundle}, {cpu_name()}, 1 thread; MiB of RSS")
    print(
        f"  {'variant':<22} {'import':>7} {'load':>6} {'runs':>6} {'file':>6} {'peak':>6} {'step ms':>8}"
    )
    for variant, r in results.items():
        print(f"  {variant:<22} {r['import_mib']:>7.1f} {r['load_mib']:>6.1f} {r['runs_mib']:>6.1f} "
              f"{r['file_backed_mib']:>6.1f} {r['peak_mib']:>6.1f} {r['step_ms']:>8.3f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bundle": str(args.bundle), "cpu": cpu_name(),
                                    "variants": results}, indent=2))  # fmt: skip
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()

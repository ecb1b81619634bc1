"""How edgert holds up: fuzzed loaders, killed exports, threads, and memory over a long run.

One run prints four tables and writes JSON:

- cases tried per loader (mutated manifests, damaged files with matching checksums,
  mutated device profiles) and how each ended: loaded and ran, refused with edgert's own
  error, or anything else (a defect);
- exports killed with SIGKILL at each point, and how many left the path holding the
  previous bundle or nothing loadable, with the next export working untouched;
- threads x calls on one loaded embedded speller per decoder, against each call alone;
- RSS over 1,000 generations (100 distinct inputs or contexts), drift after warm-up.

    python benchmarks/reliability.py [--cases 2000] [--kills 2] [--threads 8] [--calls 64]

Needs the dev and export extras (hypothesis, torch): the test models are built here.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import edgert  # noqa: E402

DECODERS = {
    "greedy": {},
    "beam": {"decoder": "beam"},
    "lookup": {"decoder": "lookup"},
    "aggressive": {"decoder": "aggressive"},
    "speculative": {"decoder": "speculative"},  # the draft is filled in below
    "stream": {},
}


def fuzz(cases: int, work: Path) -> list[dict[str, Any]]:
    """Each loader's outcomes over ``cases`` seeded hypothesis cases."""
    import tomllib

    from helpers.bundles import make_bundle
    from helpers.mutations import DAMAGE, VALUES, damaged, exercise, mutate, paths, with_manifest
    from helpers.seq2seq_models import make_source
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from edgert.bundle import MANIFEST
    from edgert.catalog import get_catalog
    from edgert.errors import DeviceProfileError
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq
    from edgert.profiles import parse_profile

    profile, _ = edgert.resolve_device("cpu-generic")
    originals = {"cnn": make_bundle(work / "cnn"), "seq2seq": work / "t5"}
    source = make_source("t5", work / "t5-source")
    export_seq2seq(Seq2SeqExport(source=str(source), out=originals["seq2seq"]), profile,
                   get_catalog())  # fmt: skip
    run = settings(max_examples=cases, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))  # fmt: skip
    rows = []

    def tally(name: str, strategy: Any, body: Any) -> None:
        """Run ``body(*case)`` on each case ``strategy`` draws; count how each ended."""
        outcomes: Counter[str] = Counter()
        failures: list[str] = []

        def attempt(case: Any) -> None:
            try:
                outcomes[body(*case)] += 1
            except Exception as exc:  # the defect being looked for: kept, not raised
                outcomes["other exception"] += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                failures.append(f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})")

        started = time.perf_counter()
        run(given(strategy)(attempt))()
        rows.append({"loader": name, "cases": sum(outcomes.values()), **dict(outcomes),
                     "seconds": round(time.perf_counter() - started, 1),
                     "failures": failures[:5]})  # fmt: skip

    for kind, original in originals.items():
        manifest = json.loads((original / MANIFEST).read_text())
        every = list(paths(manifest))

        def mutated(path: Any, value: Any, delete: bool, original: Path = original,
                    manifest: Any = manifest) -> str:  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                copy = with_manifest(
                    original, Path(tmp) / "b", mutate(manifest, path, value, delete)
                )
                return exercise(copy)

        def broken(name: str, damage: Any, original: Path = original) -> str:
            with tempfile.TemporaryDirectory() as tmp:
                return exercise(damaged(original, Path(tmp) / "b", name, damage))

        tally(
            f"manifest ({kind})", st.tuples(st.sampled_from(every), VALUES, st.booleans()), mutated
        )
        files = sorted(manifest["files"])
        tally(f"damaged file ({kind})", st.tuples(st.sampled_from(files), DAMAGE), broken)

    profiles = [tomllib.loads(p.read_text()) for p in sorted((ROOT / "devices").glob("*.toml"))]

    def profile_case(index: int, path: Any, value: Any, delete: bool) -> str:
        try:
            parse_profile(mutate(profiles[index], path, value, delete), "fuzzed.toml")
        except DeviceProfileError:
            return "refused"
        return "ran"

    strategy = st.sampled_from(range(len(profiles))).flatmap(
        lambda i: st.tuples(st.just(i), st.sampled_from(list(paths(profiles[i]))), VALUES,
                            st.booleans())
    )  # fmt: skip
    tally("device profile", strategy, profile_case)
    return rows


def kills(rounds: int, work: Path) -> list[dict[str, Any]]:
    """Per kill point: rounds tried, kills that landed, rounds where nothing broke."""
    from helpers.bundles import full_int8_profile
    from helpers.kills import POINTS, kill_round

    if not hasattr(signal, "SIGKILL"):
        return []
    device = full_int8_profile(work / "devices")
    rows = []
    for point in POINTS:
        landed = survived = 0
        problems: list[str] = []
        for i in range(rounds):
            killed, broken = kill_round(point, work / f"kill-{point.replace(' ', '-')}-{i}", device)
            landed += killed
            survived += killed and not broken
            problems += broken
        rows.append({"point": point, "rounds": rounds, "kills": landed, "survived": survived,
                     "problems": problems[:5]})  # fmt: skip
    return rows


def threads(workers: int, calls: int, work: Path) -> tuple[Path, list[dict[str, Any]]]:
    """One loaded embedded speller, ``calls`` calls on ``workers`` threads per decoder."""
    from decoding import speller_dir

    from edgert.catalog import get_catalog
    from edgert.exporters.seq2seq.export import Seq2SeqExport, export_seq2seq
    from edgert.exporters.zoo.speller.data import heldout_pairs

    bundle = work / "speller"
    profile, _ = edgert.resolve_device("cpu-generic")
    source = str(speller_dir())
    export_seq2seq(Seq2SeqExport(source=source, out=bundle), profile, get_catalog())
    model = edgert.load(bundle)
    texts = [noisy for noisy, _ in heldout_pairs(16, seed=3)]
    rows = []
    for name, options in DECODERS.items():
        if name == "speculative":
            options = {**options, "draft": str(bundle), "confidence": 0}

        def call(text: str, name: str = name, options: dict = options) -> list[int] | str:
            try:
                if name == "stream":
                    return ["".join(model.stream(text, max_new_tokens=24))]  # type: ignore[list-item]
                return list(model.generate(text, max_new_tokens=24, **options).token_ids)
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"[:200]

        inputs = [texts[i % len(texts)] for i in range(calls)]
        alone = {text: call(text) for text in texts}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            got = list(pool.map(call, inputs))
        errors = sum(isinstance(g, str) for g in got)
        wrong = sum(
            not isinstance(g, str) and g != alone[t] for g, t in zip(got, inputs, strict=True)
        )
        rows.append({"decoder": name, "threads": workers, "calls": calls, "same_as_alone":
                     calls - errors - wrong, "wrong": wrong, "errors": errors})  # fmt: skip
    return bundle, rows


def memory(speller: Path, work: Path) -> list[dict[str, Any]]:
    """RSS over a long run, each in a process of its own (the runtime's RSS alone)."""
    from helpers.dolphin_models import export, make_dolphin

    dolphin = work / "dolphin"
    export(make_dolphin(work / "dolphin-source"), dolphin)
    runner = ROOT / "tests" / "helpers" / "long_run.py"
    rows = []
    for bundle, extra in ((speller, []), (dolphin, []), (dolphin, ["--cache-bytes", "20000"])):
        done = subprocess.run([sys.executable, str(runner), str(bundle), *extra],
                              capture_output=True, text=True, check=True)  # fmt: skip
        report = json.loads(done.stdout)
        report["run"] = bundle.name + (" (evicting cache)" if extra else "")
        report["drift"] = f"{report['max_drift']:.2%}"
        rows.append(report)
    return rows


def show(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*(str(row.get(c, 0)) for c in columns))
    Console(width=120).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="fuzz cases per loader")
    parser.add_argument("--kills", type=int, default=2, help="rounds per kill point")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/reliability.json")
    args = parser.parse_args()

    from decoding import host

    with tempfile.TemporaryDirectory(prefix="edgert-reliability-") as tmp:
        work = Path(tmp)
        loaders = fuzz(args.cases, work)
        show("fuzzed loaders", loaders,
             ["loader", "cases", "ran", "refused", "other exception", "seconds"])  # fmt: skip
        killed = kills(args.kills, work)
        show("killed exports", killed, ["point", "rounds", "kills", "survived"])
        speller, threaded = threads(args.threads, args.calls, work)
        show("one model, many threads (embedded speller, fp32)", threaded,
             ["decoder", "threads", "calls", "same_as_alone", "wrong", "errors"])  # fmt: skip
        long = memory(speller, work)
        show("RSS over a long run", long,
             ["run", "generations", "distinct_inputs", "rss_warm_mib", "drift", "seconds"])  # fmt: skip
    report = {"host": host(), "fuzz": loaders, "kills": killed, "threads": threaded,
              "memory": long}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

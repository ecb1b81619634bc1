"""``edgert profile BUNDLE --fleet fleet.toml``: one bundle on many targets, in parallel.

A fleet file names targets (``"local"``: this machine, or an ``ssh://`` URL; see
``edgert.remote``)::

    [targets.laptop]
    url = "local"

    [targets.pi]
    url = "ssh://pi@raspberry.local/?edgert=/home/pi/venv/bin/edgert"
    accept_new_host_key = false

Each target is a Ray task (a local cluster unless ``--ray-address`` names one) that needs one
unit of a custom resource named after the target, ``edgert-target:<name>``, so two jobs
never share a device however many fleets run on the cluster. On a local cluster those
resources are declared here; an existing cluster's nodes declare them
(``ray start --resources '{"edgert-target:pi": 1}'``). A target that fails is reported with
its error and the others finish. Each report is written to ``OUT/<target>.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgert.errors import EdgertError, InputError

RESOURCE = "edgert-target:{}"


@dataclass(frozen=True)
class FleetTarget:
    """One device of a fleet."""

    name: str
    url: str  # "local" or ssh://...
    accept_new_host_key: bool = False


def load_fleet(path: Path) -> list[FleetTarget]:
    """The targets of a fleet TOML file, checked."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the fleet file {path}: {exc}",
                         hint="see `edgert profile --help` for the format") from exc  # fmt: skip
    tables = data.get("targets")
    if not isinstance(tables, dict) or not tables:
        raise InputError(f"{path} names no [targets.<name>] table",
                         hint='e.g. [targets.laptop] url = "local"')  # fmt: skip
    targets = []
    for name, table in tables.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or name == "comparison":
            raise InputError(f"{path}: target name {name!r} cannot name its report file",
                             hint="use letters, digits, '_', '-' and '.' (not 'comparison')")  # fmt: skip
        known = {"url", "accept_new_host_key"}
        if not isinstance(table, dict) or not isinstance(table.get("url"), str):
            raise InputError(f'{path}: targets.{name} needs a url ("local" or ssh://...)')
        if extra := set(table) - known:
            raise InputError(f"{path}: targets.{name} has unknown keys {sorted(extra)}",
                             hint=f"valid keys: {sorted(known)}")  # fmt: skip
        if table["url"] != "local":
            from edgert.remote import parse_target

            parse_target(table["url"])  # a bad URL is refused before anything runs
        targets.append(FleetTarget(name, table["url"], bool(table.get("accept_new_host_key"))))
    return targets


def profile_target(target: FleetTarget, bundle: str, arguments: list[str],
                   draft: str | None) -> dict[str, Any]:  # fmt: skip
    """One target's report, or ``{"error": ..., "hint": ...}``; runs inside a Ray task."""
    try:
        if target.url == "local":
            return _local(bundle, arguments, draft)
        from edgert.remote import parse_target, profile_remote

        return profile_remote(Path(bundle), parse_target(target.url), arguments,
                              draft=Path(draft) if draft else None,
                              accept_new_host_key=target.accept_new_host_key)  # fmt: skip
    except EdgertError as exc:
        return {"error": exc.message, "hint": exc.hint}


def _local(bundle: str, arguments: list[str], draft: str | None) -> dict[str, Any]:
    """This machine's report, from an ``edgert profile`` process of its own."""
    command = [sys.executable, "-m", "edgert", "profile", bundle, *arguments, "--json"]
    command += ["--draft", draft] if draft else []
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        said = "\n".join(line for line in done.stderr.splitlines() if line.strip())
        return {"error": f"this machine refused to profile the bundle:\n{said}", "hint": None}
    report = json.loads(done.stdout)
    report["target"] = "local"
    return report


def run_fleet(
    targets: list[FleetTarget], bundle: Path, arguments: list[str], out: Path, *,
    draft: Path | None = None, ray_address: str | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Profile ``bundle`` on every target in parallel on Ray; write ``out/<name>.json``.

    Returns name -> report (or ``{"error", "hint"}``), in the fleet file's order."""
    try:
        import ray
    except ImportError as exc:
        raise InputError("--fleet runs targets on Ray, which is not installed",
                         hint="pip install 'edgert[fleet]'") from exc  # fmt: skip
    resources = {RESOURCE.format(t.name): 1.0 for t in targets}
    if ray_address:
        ray.init(address=ray_address, logging_level="ERROR", log_to_driver=False)
        declared = ray.cluster_resources()
        missing = [t.name for t in targets if RESOURCE.format(t.name) not in declared]
        if missing:  # such a task could never be scheduled: it would wait forever
            ray.shutdown()
            raise InputError(
                f"no node of the Ray cluster at {ray_address} declares "
                + ", ".join(RESOURCE.format(n) for n in missing),
                hint="start the node that reaches each device with ray start --resources "
                f"'{{\"{RESOURCE.format(missing[0])}\": 1}}'; the bundle path must exist on it too",
            )
    else:
        ray.init(resources=resources, num_cpus=max(1, len(targets)), include_dashboard=False,
                 logging_level="ERROR", log_to_driver=False)  # fmt: skip
    try:
        task = ray.remote(profile_target)
        started = time.perf_counter()
        pending = {
            task.options(num_cpus=0, resources={RESOURCE.format(t.name): 1.0}).remote(
                t, str(bundle.resolve()), arguments, str(draft.resolve()) if draft else None
            ): t.name
            for t in targets
        }
        for t in targets:
            progress(f"[{t.name}] profiling on {t.url}")
        results: dict[str, dict[str, Any]] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ready[0])
            try:
                results[name] = ray.get(ready[0])
            except Exception as exc:  # a crashed worker: reported, the others go on
                results[name] = {"error": f"{type(exc).__name__}: {exc}", "hint": None}
            seconds = time.perf_counter() - started
            state = "failed: " + results[name]["error"] if "error" in results[name] else "done"
            progress(f"[{name}] {state} ({seconds:.1f} s)")
    finally:
        ray.shutdown()
    out.mkdir(parents=True, exist_ok=True)
    for name, report in results.items():
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return {t.name: results[t.name] for t in targets}

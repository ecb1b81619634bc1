"""Latency tables measured with edgert: every candidate unit of a supernet, exported through
the device profile's own steps and timed on the profile's provider, precision and threads.

A subnet's latency is predicted as the sum of its units' latencies. Each timed graph also
pays ONNX Runtime's fixed per-call cost, which a whole subnet pays once, not once per unit:
that cost is timed on a graph that does nothing and subtracted from every unit
(``overhead_ms``). Optionally a few whole subnets are timed too and the median ratio
measured/predicted is stored as ``correction.scale``: it absorbs what a sum of isolated
units misses (measured on x86 with one thread: whole subnets ran ~5% slower than the sum
of their units, whose weights stay in cache between repeated calls). It is off by default:
on a busy machine the few whole subnets can be timed during a burst of other work while
the units were not (measured: a ratio of 4.2 instead of ~1.05), and every prediction would
inherit that. The benchmark reports the error on other, randomly drawn subnets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import edgert
from edgert.errors import ExportError
from edgert.exporters.ofa import subnets, units
from edgert.exporters.ofa.supernets import SupernetSpec

if TYPE_CHECKING:
    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile

KIND = "edgert-ofa-latency-table"
SCHEMA = 1


@dataclass(frozen=True)
class TimingOptions:
    """How each graph is timed: ``runs`` calls after ``warmup`` calls, split into ``rounds``;
    the result is the lowest per-round median.

    On a shared machine a burst of other work inflates every call of a round; the least
    disturbed round's median is the figure that describes the device, and the same
    statistic is used for units and whole subnets so predictions and measurements agree.
    """

    runs: int = 40
    warmup: int = 5
    rounds: int = 4
    passes: int = 2  # tables: every graph is timed again after all were timed once; min kept


@dataclass(frozen=True)
class TableOptions:
    """What ``edgert ofa table`` measures.

    Args:
        resolutions: input resolutions to cover (each multiplies the work).
        timing: runs and warm-up per graph.
        fit_subnets: whole random subnets timed to fit the correction line (0 = none).
        seed: seed of those subnets.
    """

    resolutions: tuple[int, ...] = (224,)
    timing: TimingOptions = TimingOptions()
    fit_subnets: int = 0
    seed: int = 0


def target_of(profile: DeviceProfile, threads: int | None = None) -> dict[str, Any]:
    """What a table's numbers are valid for: device, provider, precision, threads."""
    return {
        "device": profile.id,
        "provider": profile.runtime.providers[0],
        "precision": profile.export.precision,
        "threads": profile.runtime.threads if threads is None else threads,
    }


class UnitTimer:
    """Exports modules through the profile's steps and times them: the pipeline's last step
    (``validate``) calls this timer instead of comparing numerics, since a unit with fresh
    weights has no reference worth matching; the timing is its result."""

    def __init__(self, profile: DeviceProfile, catalog: Catalog, timing: TimingOptions) -> None:
        self.profile = profile
        self.catalog = catalog
        self.timing = timing
        self.simulated = False

    def module_ms(self, module: Any, shape: tuple[int, ...], keep: Path | None = None) -> float:
        """Latency of ``module`` on input ``shape``, exported as the profile says; ``keep``
        receives a copy of the exported graph (to time it again later)."""
        from edgert.export import ExportContext, run_steps
        from edgert.exporters.cnn.export import to_onnx
        from edgert.exporters.cnn.sources import TorchSource

        def timed(artifacts: dict[str, Any], _ctx: Any) -> dict[str, float]:
            if keep is not None:
                shutil.copy2(artifacts["model"].path, keep)
            return {"ms": self.onnx_ms(artifacts["model"].path, shape)}

        with tempfile.TemporaryDirectory(prefix="edgert-ofa-unit-") as tmp:
            workdir = Path(tmp)
            first = to_onnx(TorchSource(model=module.eval(), spec="unit"), shape,
                            self.profile.export.opset, workdir / "00-torch-to-onnx")  # fmt: skip
            rng = np.random.default_rng(0)
            ctx = ExportContext(
                profile=self.profile, catalog=self.catalog,
                family=self.catalog.families.get("cnn"), workdir=workdir, validator=timed,
                calibration=rng.standard_normal((16, *shape[1:])).astype(np.float32),
                static_dims={"batch": shape[0]} if self.profile.export.static_shapes else {},
            )  # fmt: skip
            run_steps({"model": first}, ctx)
            return float(ctx.report["validation"]["ms"])

    def onnx_ms(self, path: Path, shape: tuple[int, ...]) -> float:
        """Median latency of an ONNX graph with one float input of ``shape``."""
        return time_onnx(path, shape, self.profile, self.catalog, self.timing, self)


def time_onnx(path: Path, shape: tuple[int, ...], profile: DeviceProfile, catalog: Catalog,
              timing: TimingOptions, note: Any = None) -> float:  # fmt: skip
    """Median milliseconds of ``session.run`` on the profile's provider (strict placement)."""
    from edgert.providers import create_session

    info = create_session(path, profile, catalog)
    if note is not None:
        note.simulated = note.simulated or bool(info.simulated)
    session = info.session
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, np.float32)}
    for _ in range(timing.warmup):
        session.run(None, feed)
    rounds = max(1, min(timing.rounds, timing.runs))
    medians = []
    for _ in range(rounds):
        samples = []
        for _ in range(max(1, timing.runs // rounds)):
            started = time.perf_counter()
            session.run(None, feed)
            samples.append(time.perf_counter() - started)
        medians.append(np.median(samples))
    return float(min(medians) * 1000)


def _overhead_module() -> Any:
    import torch

    class Nothing(torch.nn.Module):
        """One element-wise op on a single value: what any session.run costs."""

        def forward(self, x: Any) -> Any:
            return torch.relu(x)

    return Nothing()


def build_table(spec: SupernetSpec, profile: DeviceProfile, catalog: Catalog,
                options: TableOptions, progress: Callable[[int, int], None] | None = None,
                ) -> dict[str, Any]:  # fmt: skip
    """Measure every unit of ``spec``'s choice space at ``options.resolutions``.

    Every graph is timed once right after its export and again in later passes over all
    graphs; the lowest time is kept, so a burst of other work on the machine during one
    part of the build does not end up in the table.
    """
    from edgert.exporters.ofa.supernets import build_supernet

    net = build_supernet(spec)
    timer = UnitTimer(profile, catalog, options.timing)
    todo = _unique_units(net, options.resolutions)
    graphs = {"": (_overhead_module(), (1, 1, 1, 1))}
    for key, (unit, net_config, position) in todo.items():
        module = units.unit_modules(net_config)[position]
        graphs[key] = (module, (1, _channels_in(module, unit), unit.resolution, unit.resolution))
    fits = _fit_configs(net, options)
    for index, (config, resolution) in enumerate(fits):
        graphs[f"fit-{index}"] = (_calibrated_subnet(net, config, resolution),
                                  (1, 3, resolution, resolution))  # fmt: skip
    ms = _time_all(graphs, timer, options.timing.passes, progress)
    overhead = ms.pop("")
    measured = {
        key: {"role": unit.role, "ms": round(max(ms[key] - overhead, 0.0), 5),
              "macs": units.macs(graphs[key][0], graphs[key][1])}
        for key, (unit, _, _) in todo.items()
    }  # fmt: skip
    table = {
        "kind": KIND, "schema": SCHEMA,
        "supernet": spec.to_dict(),
        **target_of(profile),
        "simulated": timer.simulated,
        "edgert_version": edgert.__version__,
        "onnxruntime_version": _ort_version(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "resolutions": sorted(options.resolutions),
        "timing": dataclasses.asdict(options.timing),
        "overhead_ms": round(overhead, 5),
        "correction": None,
        "units": measured,
    }  # fmt: skip
    if fits:
        table["correction"] = _correction(net, table, fits, [ms[f"fit-{i}"] for i in range(len(fits))],
                                          options.seed)  # fmt: skip
    return table


def _time_all(graphs: dict[str, tuple[Any, tuple[int, ...]]], timer: UnitTimer, passes: int,
              progress: Callable[[int, int], None] | None) -> dict[str, float]:  # fmt: skip
    """Export and time every module, then time the kept graphs again; the minimum wins."""
    with tempfile.TemporaryDirectory(prefix="edgert-ofa-table-") as tmp:
        kept = {key: Path(tmp) / f"{i}.onnx" for i, key in enumerate(graphs)}
        best = {}
        for done, (key, (module, shape)) in enumerate(graphs.items(), start=1):
            best[key] = timer.module_ms(module, shape, keep=kept[key])
            if progress:
                progress(done, len(graphs))
        for _ in range(passes - 1):
            for key, (_, shape) in graphs.items():
                best[key] = min(best[key], timer.onnx_ms(kept[key], shape))
    return best


def _channels_in(module: Any, unit: units.Unit) -> int:
    if unit.role == "stem":
        return 3
    import torch

    first = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    return first.in_channels if isinstance(first, torch.nn.Conv2d) else first.in_features


def _unique_units(net: Any, resolutions: tuple[int, ...]) -> dict[str, tuple[Any, dict, int]]:
    """key -> (unit, a net config containing it, its position), over the covering configs."""
    found: dict[str, tuple[Any, dict, int]] = {}
    for config in subnets.covering_configs(net):
        net_config = units.active_net_config(net, config)
        for resolution in resolutions:
            for position, unit in enumerate(units.units(net_config, resolution)):
                found.setdefault(unit.key, (unit, net_config, position))
    return found


def _fit_configs(net: Any, options: TableOptions) -> list[tuple[dict, int]]:
    import random

    rng = random.Random(options.seed)
    return [(subnets.random_config(net, rng), options.resolutions[i % len(options.resolutions)])
            for i in range(options.fit_subnets)]  # fmt: skip


def _correction(net: Any, table: dict[str, Any], fits: list[tuple[dict, int]],
                measured: list[float], seed: int) -> dict[str, Any]:  # fmt: skip
    """The median ratio measured/predicted over the whole subnets timed with the units.

    A median, not a least-squares line: on a shared machine one disturbed subnet can tilt a
    line fitted on a handful of points, while the median ignores it.
    """
    predicted = [predict(table, net, c, r, corrected=False) for c, r in fits]
    scale = float(np.median(np.asarray(measured) / np.asarray(predicted)))
    return {"scale": round(scale, 5), "offset_ms": 0.0, "fitted_on": len(fits), "seed": seed}


def _calibrated_subnet(net: Any, config: dict, resolution: int) -> Any:
    """A subnet with BN statistics recalibrated on random images, as an export does.

    With the supernet's initial statistics, activations of untrained weights shrink layer
    after layer into denormal floats, which CPUs process many times slower (measured:
    whole subnets 2-3x slower than the sum of their units), a cost no trained subnet pays.
    """
    subnet = subnets.extract(net, config)
    images = np.random.default_rng(0).random((8, 3, resolution, resolution), np.float32)
    subnets.recalibrate_bn(subnet, images, batch_size=8)
    return subnet


def whole_subnet_ms(net: Any, config: dict, resolution: int, timer: UnitTimer) -> float:
    """A whole subnet exported through the profile's steps and timed, as units are."""
    subnet = _calibrated_subnet(net, config, resolution)
    return timer.module_ms(subnet, (1, 3, resolution, resolution))


def predict(table: dict[str, Any], net: Any, config: dict, resolution: int,
            *, corrected: bool = True) -> float:  # fmt: skip
    """Predicted milliseconds of ``config`` at ``resolution`` from the table."""
    keys = [u.key for u in units.units(units.active_net_config(net, config), resolution)]
    return predict_keys(table, keys, corrected=corrected)


def predict_keys(table: dict[str, Any], keys: list[str], *, corrected: bool = True) -> float:
    """Sum of unit latencies plus one call overhead (and the correction line if any)."""
    entries = table["units"]
    missing = [k for k in keys if k not in entries]
    if missing:
        raise ExportError(
            f"the latency table has no entry for {len(missing)} unit(s) of this subnet, e.g. "
            f"{missing[0][:200]}",
            hint="rebuild it with edgert ofa table for this supernet and resolution",
        )
    total = sum(entries[k]["ms"] for k in keys) + table["overhead_ms"]
    fit = table.get("correction") if corrected else None
    return total * fit["scale"] + fit["offset_ms"] if fit else total


def total_macs(table: dict[str, Any], keys: list[str]) -> int:
    """Multiply-accumulates of a subnet, from its units' table entries."""
    return sum(table["units"][k]["macs"] for k in keys)


def save_table(table: dict[str, Any], path: Path) -> str:
    """Write the table as JSON; returns its sha256."""
    text = json.dumps(table, indent=1, sort_keys=True) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def load_table(path: Path) -> dict[str, Any]:
    """Read a table written by :func:`save_table`, refusing anything else."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"latency table not found: {path}",
                          hint="build one with: edgert ofa table --supernet ... --device ...")  # fmt: skip
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path} is not a JSON latency table: {exc}") from exc
    if not isinstance(table, dict) or table.get("kind") != KIND:
        raise ExportError(f"{path} is not an edgert OFA latency table",
                          hint="build one with: edgert ofa table --supernet ... --device ...")  # fmt: skip
    if table.get("schema") != SCHEMA:
        raise ExportError(f"{path} has table schema {table.get('schema')}, this edgert reads "
                          f"{SCHEMA}", hint="rebuild it with this edgert: edgert ofa table ...")  # fmt: skip
    table["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    table["path"] = str(path)
    return table


def check_table(table: dict[str, Any], spec: SupernetSpec, profile: DeviceProfile,
                resolution: int, *, force: bool = False) -> None:  # fmt: skip
    """Refuse a table measured for another supernet or resolution, or (unless ``force``)
    on another device, provider, precision or thread count."""
    where = table.get("path", "the latency table")
    got = table["supernet"].get("fingerprint")
    if got != spec.fingerprint():
        raise ExportError(
            f"{where} was measured for supernet {table['supernet'].get('name')!r} "
            f"(fingerprint {got}), not {spec.name!r} ({spec.fingerprint()})",
            hint=f"build a table for it: edgert ofa table --supernet {spec.name} "
            f"--device {profile.id} --resolution {resolution}",
        )
    if resolution not in table["resolutions"]:
        raise ExportError(
            f"{where} covers resolutions {table['resolutions']}, not {resolution}",
            hint=f"rebuild it with --resolution {resolution}, or export at one of those",
        )
    wanted = target_of(profile)
    differs = {k: (table.get(k), v) for k, v in wanted.items() if table.get(k) != v}
    if differs and not force:
        raise ExportError(
            f"{where} was measured for another target: "
            + ", ".join(f"{k} {a!r} (this export: {b!r})" for k, (a, b) in differs.items()),
            hint=f"build a table for this target: edgert ofa table --supernet {spec.name} "
            f"--device {profile.id} --resolution {resolution} --out TABLE.json; or pass "
            "--force-table to use it anyway (its predictions will not hold here)",
        )


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__

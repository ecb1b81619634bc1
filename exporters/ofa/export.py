"""Exporter of the ``ofa`` family: a Once-for-All subnet -> a verified classifier bundle.

supernet (+ weights) -> subnet chosen by config or by search under a latency budget ->
``get_active_subnet`` -> BN statistics recalibrated on the calibration images -> the CNN
exporter's steps for the profile (fp32 / int8 QDQ / NPU static) -> measured with edgert.
The bundle is an ordinary ``cnn`` bundle (it runs with ``Classifier``); its manifest adds an
``ofa`` section with the supernet, subnet config, resolution, table, prediction and
measurement.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgert.errors import ExportError
from edgert.exporters.cnn.calibration import load_inputs
from edgert.exporters.cnn.export import CnnExport, export_torch_classifier
from edgert.exporters.cnn.sources import TorchSource
from edgert.exporters.ofa import latency, search, subnets, supernets

if TYPE_CHECKING:
    from edgert.bundle import Bundle
    from edgert.catalog import Catalog
    from edgert.export import Artifact, ExportContext
    from edgert.profiles import DeviceProfile


from edgert.plugins.families.ofa.options import OfaExport


def export_ofa(options: OfaExport, profile: DeviceProfile, catalog: Catalog) -> Bundle:
    """Export the chosen subnet for ``profile``; returns the verified bundle."""
    _check(options)
    spec = supernets.load_spec(options.source)
    net = supernets.build_supernet(spec)
    shape = (1, 3, options.resolution, options.resolution)
    images = _images(options, shape)
    table = _table(options, spec, profile, catalog)
    chosen = _choose(options, net, table)
    config = chosen.config if chosen else subnets.parse_config(options.subnet or "", net)
    supernets.load_weights(net, _weights(options, spec), spec)
    model = _normalized(subnets.extract(net, config), spec)
    layers = subnets.recalibrate_bn(model, images)
    section = {
        "supernet": spec.to_dict(),
        "subnet": config,
        "resolution": options.resolution,
        "bn_recalibration": {"images": len(images), "layers": layers},
    }
    if table is not None:
        section["table"] = _table_identity(table)
        section["predicted_ms"] = round(latency.predict(table, net, config, options.resolution), 4)
    if chosen:
        section["search"] = _search_report(options, chosen)
    source = TorchSource(model=model, spec=options.source, input_shape=shape)
    cnn = CnnExport(source=options.source, out=options.out, input_shape=shape,
                    calibration=options.calibration, eval_data=options.eval_data,
                    labels=options.labels, force=options.force,
                    allow_fallback=options.allow_fallback,
                    keep_intermediate=options.keep_intermediate)  # fmt: skip

    def annotate(final: Artifact, ctx: ExportContext) -> dict[str, Any]:
        section["measured"] = _measure(final, shape, ctx)
        return {"ofa": section}

    return export_torch_classifier(source, cnn, profile, catalog, annotate)


def _check(options: OfaExport) -> None:
    if (options.subnet is None) == (options.latency_budget_ms is None):
        raise ExportError(
            "an OFA export needs exactly one of --subnet and --latency-budget",
            hint='e.g. --subnet \'{"ks": 3, "e": 4, "d": 2}\' or --latency-budget 8ms',
        )
    if options.resolution < 32:
        raise ExportError(f"--resolution {options.resolution} is too small",
                          hint="OFA supernets take 32 px or more (trained at 128-224)")  # fmt: skip
    if options.latency_budget_ms is not None and options.latency_budget_ms <= 0:
        raise ExportError(f"--latency-budget must be positive, got {options.latency_budget_ms}")


def _images(options: OfaExport, shape: tuple[int, ...]) -> Any:
    if options.calibration is None:
        raise ExportError(
            "an OFA subnet needs calibration images: its batch-norm statistics are "
            "re-estimated on them after extraction",
            hint="pass --calibration with a folder of images (RGB) or an .npy shaped "
            f"(N, 3, {shape[2]}, {shape[3]}) with pixels in [0, 1]",
        )
    return load_inputs(options.calibration, shape)


def _table(options: OfaExport, spec: supernets.SupernetSpec, profile: DeviceProfile,
           catalog: Catalog) -> dict[str, Any] | None:  # fmt: skip
    if options.latency_table is not None:
        table = latency.load_table(options.latency_table)
        latency.check_table(table, spec, profile, options.resolution, force=options.force_table)
        return table
    if options.latency_budget_ms is None:
        return None
    table_options = latency.TableOptions(resolutions=(options.resolution,))
    return latency.build_table(spec, profile, catalog, table_options)


def _choose(options: OfaExport, net: Any, table: dict[str, Any] | None
            ) -> search.SearchResult | None:  # fmt: skip
    if options.latency_budget_ms is None or table is None:
        return None
    predictor = (search.load_predictor(options.accuracy_predictor)
                 if options.accuracy_predictor else None)  # fmt: skip
    scorer = f"accuracy predictor {options.accuracy_predictor}" if predictor else search.PROXY
    evaluate = search.Evaluator(net, table, options.resolution, predictor)
    settings = options.evolution or search.SearchOptions(budget_ms=options.latency_budget_ms)
    settings = search.SearchOptions(**{**asdict(settings), "budget_ms": options.latency_budget_ms})
    return search.search(net, evaluate, settings, scorer)


def _search_report(options: OfaExport, chosen: search.SearchResult) -> dict[str, Any]:
    settings = options.evolution or search.SearchOptions(budget_ms=options.latency_budget_ms or 0)
    return {
        "budget_ms": options.latency_budget_ms,
        "margin": settings.margin,
        "scorer": chosen.scorer,
        "score": chosen.score,
        "predicted_ms": round(chosen.predicted_ms, 4),
        "smallest_ms": round(chosen.smallest_ms, 4),
        "evaluated": chosen.evaluated,
        "population": settings.population,
        "generations": settings.generations,
        "seed": settings.seed,
    }


def _weights(options: OfaExport, spec: supernets.SupernetSpec) -> Path:
    if options.checkpoint is not None:
        return Path(options.checkpoint)
    return supernets.published_weights(spec, options.sha256)


def _table_identity(table: dict[str, Any]) -> dict[str, Any]:
    keys = ("path", "sha256", "device", "provider", "precision", "threads", "edgert_version",
            "simulated", "created_at", "correction")  # fmt: skip
    return {k: table.get(k) for k in keys} | {"units": len(table["units"])}


def _normalized(subnet: Any, spec: supernets.SupernetSpec) -> Any:
    """The subnet behind per-channel normalisation, so bundles take RGB pixels in [0, 1]."""
    import torch

    class Normalized(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.subnet = subnet
            self.register_buffer("mean", torch.tensor(spec.normalize["mean"]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(spec.normalize["std"]).view(1, 3, 1, 1))

        def forward(self, x: Any) -> Any:
            return self.subnet((x - self.mean) / self.std)

    return Normalized().eval()


def _measure(final: Artifact, shape: tuple[int, ...], ctx: ExportContext) -> dict[str, Any]:
    """The exported graph timed on the profile's provider, as the latency table was."""
    provider = ctx.catalog.providers.get(ctx.profile.runtime.providers[0])()
    if not provider.is_available():
        return {"ms": None, "note": f"{provider.name} is not available on this host"}
    timing = latency.TimingOptions(runs=100, warmup=10)
    started = time.perf_counter()
    timer = latency.UnitTimer(ctx.profile, ctx.catalog, timing)
    ms = timer.onnx_ms(final.path, shape)
    return {"ms": round(ms, 4), "provider": provider.name, "simulated": timer.simulated,
            "threads": ctx.profile.runtime.threads, "runs": timing.runs,
            "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip

"""Device profiles: TOML files validated into frozen dataclasses.

A profile says which providers to run on (in priority order), whether fallback is allowed,
and how to export for that target (precision, quantization, static shapes, steps). Device
differences live here as data, so exporters and runtimes never branch on device names.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgert.errors import DeviceProfileError, UnknownNameError, did_you_mean
from edgert.kernels import presets
from edgert.schema import build, to_dict

if TYPE_CHECKING:
    from edgert.catalog import Catalog

Precision = Literal["fp32", "fp16", "int8", "int4"]


@dataclass(frozen=True)
class RuntimeSection:
    """How sessions are created on the device."""

    providers: tuple[str, ...]  # priority order; names of registered providers
    allow_fallback: bool = False  # True: may fall back to later providers / CPU, always reported
    threads: int = 0  # intra-op threads; 0 = ONNX Runtime's default (one per physical core)
    spinning: bool = True  # idle worker threads spin; turn off when several sessions share cores
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per provider
    # Run int8 QDQ graphs unfused (products in float from the int8 values): exact on any
    # CPU, slower. Set at load for full-range int8 on a CPU without VNNI (edgert.kernels).
    emulate_int8: bool = False
    # What a loaded model may keep between generations to reuse (e.g. encodings of inputs
    # it is asked about again), in MiB; 0 = nothing. A device with little memory sets it
    # low; one that asks many questions of one input sets it high.
    cache_mib: int = 64


@dataclass(frozen=True)
class QuantizationSection:
    """Settings of the ``quantize`` export step (ignored for fp32/fp16)."""

    method: Literal["static-qdq", "dynamic", "weight-only", "family-default"] = "family-default"
    graph_methods: Mapping[str, str] = field(default_factory=dict)  # per graph, e.g. decoder
    recipe: Literal["ort", "qnn"] = "ort"  # qnn: onnxruntime's QNN QDQ config (NPU graphs)
    activation_type: Literal["uint8", "int8", "uint16"] = "uint8"
    graph_activation_types: Mapping[str, str] = field(default_factory=dict)  # per graph role
    weight_type: Literal["int8", "uint8"] = "int8"
    per_channel: bool = True
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calibration_samples: int = 256
    isa: str = "any"  # instruction-set preset of edgert/isa.toml (the weights' int8 range)
    op_types: tuple[str, ...] = ()  # op types to quantize; empty = every op the recipe can
    min_weight_elements: int = 0  # nodes with smaller weights stay float (Q/DQ would cost more)
    keep_float_ops: tuple[str, ...] = ()  # op types always left in float (e.g. HardSwish)
    float_outputs: tuple[str, ...] = ()  # op types whose outputs stay float (e.g. logits Gemm)
    block_size: int = 32  # weight-only: weights per scale (MatMulNBits)
    accuracy_level: int = 4  # weight-only: 4 = int8 compute (VNNI / dot-product), 0 = fp32


@dataclass(frozen=True)
class ExportSection:
    """How ``edgert export`` builds a bundle for the device."""

    precision: Precision = "fp32"
    opset: int = 17
    static_shapes: bool = False  # NPU: no dynamic dimension anywhere
    batch_size: int = 1  # fixed batch for static shapes
    max_input_length: int = 512  # text families: encoder length bucket
    max_total_length: int = 1024  # text families: KV buffer size
    # static shapes: tokens one verify graph checks per call (lossless decoders verify
    # drafts with it; 0: no verify graph, those decoders are refused). 8 by measurement on
    # the HTP simulator (``benchmarks/static_verify.py``): on the speller 0.36 decoder calls
    # per token against 0.46 at K = 4, for a verify call of 1.18 one-token steps (1.02)
    verify_width: int = 8
    steps: tuple[str, ...] = ("optimize", "validate")
    quantization: QuantizationSection = field(default_factory=QuantizationSection)


@dataclass(frozen=True)
class HostSection:
    """What a host needs for ``--device auto`` to consider the profile."""

    os: tuple[str, ...] = ()  # empty = any
    arch: tuple[str, ...] = ()  # normalized: x86_64, aarch64
    cpu_flags: tuple[str, ...] = ()  # all required, as /proc/cpuinfo spells them
    priority: int = 0  # higher wins among profiles this host can run


@dataclass(frozen=True)
class DeviceProfile:
    """One device target. ``id`` equals the file stem."""

    id: str
    name: str
    device_class: Literal["cpu", "gpu", "npu"] = field(metadata={"key": "class"})
    description: str = ""
    arch: str = "any"
    runtime: RuntimeSection = field(default_factory=lambda: RuntimeSection(providers=("ort-cpu",)))
    export: ExportSection = field(default_factory=ExportSection)
    host: HostSection = field(default_factory=HostSection)
    source: str = field(default="", compare=False, metadata={"key": "_source"}, init=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the TOML layout (stored in bundle manifests)."""
        return to_dict(self)

    def with_runtime(self, **changes: Any) -> DeviceProfile:
        """A copy with runtime fields replaced (e.g. ``allow_fallback=True``)."""
        copy = dataclasses.replace(self, runtime=dataclasses.replace(self.runtime, **changes))
        object.__setattr__(copy, "source", self.source)
        return copy


def _bounded(profile: DeviceProfile) -> list[tuple[str, int, int, int]]:
    """Integer settings and the range a real device can use: a value outside is a damaged or
    mistyped profile, refused here instead of reaching ONNX Runtime (or an allocation)."""
    export, quant = profile.export, profile.export.quantization
    return [
        ("runtime.threads", profile.runtime.threads, 0, 1024),
        ("runtime.cache_mib", profile.runtime.cache_mib, 0, 1 << 20),
        ("export.opset", export.opset, 7, 30),
        ("export.batch_size", export.batch_size, 0, 1 << 16),
        ("export.max_input_length", export.max_input_length, 1, 1 << 20),
        ("export.max_total_length", export.max_total_length, 2, 1 << 20),
        ("export.verify_width", export.verify_width, 0, 64),
        ("export.quantization.calibration_samples", quant.calibration_samples, 1, 1 << 20),
        ("export.quantization.block_size", quant.block_size, 16, 4096),
        ("export.quantization.accuracy_level", quant.accuracy_level, 0, 4),
        ("export.quantization.min_weight_elements", quant.min_weight_elements, 0, 1 << 40),
    ]


def parse_profile(data: Mapping[str, Any], where: str) -> DeviceProfile:
    """Validate a parsed TOML table into a ``DeviceProfile``."""
    profile = build(DeviceProfile, data, where)
    if profile.export.static_shapes and profile.export.batch_size < 1:
        raise DeviceProfileError(f"{where}: export.batch_size must be >= 1 for static shapes")
    if profile.export.static_shapes and profile.export.verify_width == 1:
        raise DeviceProfileError(
            f"{where}: export.verify_width is 1; a verify call checks the fed token and at "
            "least one drafted token",
            hint="use 0 (no verify graph) or 2..64 (8 is the default)",
        )
    for name, value, low, high in _bounded(profile):
        if not low <= value <= high:
            raise DeviceProfileError(
                f"{where}: {name} must be between {low} and {high}, got {value}",
                hint="use 0 for ONNX Runtime's default" if name == "runtime.threads" else None,
            )
    if not profile.runtime.providers:
        raise DeviceProfileError(f"{where}: runtime.providers is empty", hint="e.g. ['ort-cpu']")
    isa = profile.export.quantization.isa
    if isa not in presets():
        raise DeviceProfileError(
            f"{where}: export.quantization.isa {isa!r} is not a known preset{did_you_mean(isa, presets())}",
            hint=f"valid presets: {', '.join(sorted(presets()))} (edgert/isa.toml)",
        )
    object.__setattr__(profile, "source", where)
    return profile


def load_profile_file(path: Path) -> DeviceProfile:
    """Read and validate one TOML profile; the id must equal the file stem."""
    path = Path(path)
    if not path.is_file():
        raise DeviceProfileError(
            f"device profile file not found: {path}",
            hint="pass an existing .toml file, or an id from 'edgert devices list'",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeviceProfileError(
            f"{path}: not valid TOML: {exc}", hint="fix the syntax; see devices/*.toml"
        ) from exc
    profile = parse_profile(data, str(path))
    if profile.id != path.stem:
        raise DeviceProfileError(
            f"{path}: id {profile.id!r} differs from the file name {path.stem!r}",
            hint=f"set id = {path.stem!r} or rename the file to {profile.id}.toml",
        )
    return profile


def builtin_devices_dir() -> Path:
    """The folder of profiles shipped with edgert."""
    return Path(str(resources.files("edgert.devices")))


def check_against_catalog(profile: DeviceProfile, catalog: Catalog) -> DeviceProfile:
    """Check that providers, steps and provider options name registered things."""
    where = profile.source or profile.id
    for name in profile.runtime.providers:
        if name not in catalog.providers:
            raise UnknownNameError(
                "provider", name, catalog.providers.names(), hint=f"in {where} [runtime].providers"
            )
    for name, options in profile.runtime.options.items():
        if name not in catalog.providers:
            raise UnknownNameError(
                "provider", name, catalog.providers.names(), hint=f"in {where} [runtime.options]"
            )
        build(catalog.providers.get(name).Options, options, f"{where} [runtime.options.{name}]")
    for name in profile.export.steps:
        if name not in catalog.export_steps:
            raise UnknownNameError(
                "export step", name, catalog.export_steps.names(), hint=f"in {where} [export].steps"
            )
    check_steps(profile)
    return profile


def check_steps(profile: DeviceProfile) -> None:
    """Refuse step lists that contradict the profile's precision."""
    steps, precision = profile.export.steps, profile.export.precision
    if precision in ("int8", "int4") and "quantize" not in steps:
        raise DeviceProfileError(
            f"profile {profile.id!r} has precision {precision!r} but no 'quantize' step",
            hint="add 'quantize' to [export].steps before 'validate'",
        )
    if precision == "fp16" and "fp16" not in steps:
        raise DeviceProfileError(
            f"profile {profile.id!r} has precision 'fp16' but no 'fp16' step",
            hint="add 'fp16' to [export].steps before 'validate'",
        )
    if steps and steps[-1] != "validate":
        raise DeviceProfileError(
            f"profile {profile.id!r}: the last export step must be 'validate', got {steps[-1]!r}",
            hint="every bundle is checked against its source model; end [export].steps with it",
        )


class ProfileSet:
    """All profiles visible to this process: user folders, then plugins' folders.

    The first folder that defines an id wins, so a user can override a shipped profile by
    putting a file with the same name in their own folder.
    """

    def __init__(self, catalog: Catalog, extra_dirs: tuple[Path, ...] = ()) -> None:
        self.catalog = catalog
        self._paths: dict[str, Path] = {}
        for folder, _source in catalog.device_paths(extra_dirs):
            if not folder.is_dir():
                raise DeviceProfileError(
                    f"device profile folder not found: {folder}",
                    hint="pass an existing folder with --devices-dir / EDGERT_DEVICES_PATH",
                )
            for path in sorted(folder.glob("*.toml")):
                self._paths.setdefault(path.stem, path)

    def ids(self) -> list[str]:
        """Known profile ids, sorted."""
        return sorted(self._paths)

    def get(self, name_or_path: str | Path) -> DeviceProfile:
        """A profile by id, or from a ``.toml`` path, checked against the catalog."""
        text = str(name_or_path)
        if text.endswith(".toml") or Path(text).is_file():
            return check_against_catalog(load_profile_file(Path(text)), self.catalog)
        if text not in self._paths:
            raise UnknownNameError(
                "device", text, self._paths, hint="run 'edgert devices list', or pass a .toml path"
            )
        return check_against_catalog(load_profile_file(self._paths[text]), self.catalog)

    def all(self) -> list[DeviceProfile]:
        """Every profile, loaded and checked."""
        return [self.get(name) for name in self.ids()]

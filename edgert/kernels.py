"""Whether this CPU computes a bundle's int8 products the way its target CPU does.

An int8 bundle is only as right as the integer kernels that run it. Full-range 8-bit
weights are exact on CPUs with an int32-accumulating dot product (x86 VNNI / AMX, Arm64)
and overflow on other x86 CPUs, which add pairs of products in saturating int16: there the
outputs are garbage, not a little noisier. So an export records which of its graphs hold
full-range int8 products (``manifest["kernels"]``), and loading checks that record against
this host before any session exists. Which preset uses which range, and which CPU flags make
full-range products exact, is data (``isa.toml``).

A host that cannot compute them exactly either runs a variant that is correct there or the
load is refused:

- QDQ graphs (static int8) can run with ONNX Runtime's int8 fusion turned off: every
  product is then computed in float from the same quantized values, which equals the exact
  integer result up to float rounding (slower). That needs ``allow_fallback`` and is
  reported like any other fallback.
- Graphs with integer operators (dynamic int8: ``MatMulInteger``, ``ConvInteger``) have no
  such switch: they are refused, with the profile to export for instead.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from edgert import host as hosts
from edgert.errors import BundleError, DeviceProfileError
from edgert.host import Host

if TYPE_CHECKING:
    from edgert.profiles import DeviceProfile

QDQ = "qdq"  # full-range int8 weights behind DequantizeLinear (fused by ORT at load)
INTEGER = "integer"  # integer operators (MatMulInteger, ConvInteger)


@functools.cache
def _data() -> dict[str, Any]:
    text = (resources.files("edgert") / "isa.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def presets() -> dict[str, dict[str, Any]]:
    """The ``[export.quantization].isa`` presets: name -> ``reduce_range``, description."""
    return _data()["presets"]


def reduce_range(isa: str) -> bool:
    """Whether preset ``isa`` quantizes weights to 7 bits (exact on every CPU)."""
    return bool(presets()[isa]["reduce_range"])


def exact_with() -> dict[str, list[str]]:
    """Per architecture, the CPU flags of which any one makes full-range int8 exact (an
    architecture not listed always computes it exactly)."""
    return dict(_data()["exact_full_range"])


def full_range_int8(profile: DeviceProfile) -> bool:
    """Whether exporting for ``profile`` may write full-range int8 products (CPU kernels:
    u8/s8 activations x s8 weights, quantized by onnxruntime, not weight-only blocks)."""
    q = profile.export.quantization
    return (
        profile.export.precision in ("int8", "int4")
        and "quantize" in profile.export.steps
        and q.recipe == "ort"
        and q.weight_type == "int8"
        and q.activation_type in ("uint8", "int8")
        and not reduce_range(q.isa)
    )


def wrong_here(host: Host, exact_with: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """The CPU flags, any one of which ``host`` lacks, that would make its full-range int8
    products exact (``exact_with``: per architecture, as ``isa.toml`` and manifests hold
    them); None when ``host`` computes them exactly."""
    flags = exact_with.get(host.arch)
    if flags is None or any(flag in host.cpu_flags for flag in flags):
        return None
    return tuple(flags)


def _flags_text(flags: tuple[str, ...]) -> str:
    return ", ".join(flags[:-1]) + f" or {flags[-1]}" if len(flags) > 1 else flags[0]


def profile_problem(profile: DeviceProfile, host: Host) -> str | None:
    """Why ``host`` would compute the int8 kernels of ``profile``'s bundles wrongly, or None
    (for ``--device auto`` and ``edgert devices list``)."""
    flags = wrong_here(host, exact_with()) if full_range_int8(profile) else None
    if flags is None:
        return None
    return (
        f"its int8 kernels with full 8-bit weights (isa {profile.export.quantization.isa!r}) "
        f"need {_flags_text(flags)}: without them this CPU's int8 products overflow"
    )


def record(graphs: Mapping[str, str], profile: DeviceProfile) -> dict[str, Any]:
    """The manifest's ``kernels`` entry for the graphs (role -> ``qdq`` | ``integer``) whose
    int8 products use the full 8-bit weight range."""
    return {
        "isa": profile.export.quantization.isa,
        "full_range_int8": dict(graphs),
        "exact_with": exact_with() if graphs else {},
    }


def requirement(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle's ``kernels`` entry; for bundles written before it existed, what their
    stored profile and quantization report imply (any graph quantized at full range by
    integer operators or QDQ counts)."""
    if isinstance(manifest.get("kernels"), Mapping):
        return dict(manifest["kernels"])
    from edgert.profiles import parse_profile

    try:
        profile = parse_profile(manifest["device"]["profile"], "manifest.json")
    except (KeyError, TypeError, DeviceProfileError):
        profile = None
    if profile is None or not full_range_int8(profile):
        return {"full_range_int8": {}, "exact_with": {}}
    reports = manifest.get("quantization") or {}
    if "method" in reports:  # one graph: the report itself
        reports = {"model": reports}
    graphs = {
        role: QDQ if report.get("method") == "static-qdq" else INTEGER
        for role, report in reports.items()
        if isinstance(report, Mapping)
        and report.get("method") in ("static-qdq", "dynamic")
        and report.get("quantized_nodes")
    }
    return record(graphs, profile)


def plan(
    manifest: Mapping[str, Any],
    *,
    allow_fallback: bool,
    host: Host | None = None,
) -> bool:
    """Check a bundle's int8 kernels against ``host`` (this one by default); True when its
    QDQ graphs must run unfused (``runtime.emulate_int8``) to be right here.

    Raises:
        BundleError: the host would compute them wrongly and no correct variant is allowed
            (``allow_fallback`` false) or exists (integer operators).
    """
    host = host or hosts.this_host()  # looked up at call time: tests fake other CPUs
    needs = requirement(manifest)
    graphs = needs.get("full_range_int8") or {}
    flags = wrong_here(host, needs.get("exact_with") or {})
    if not graphs or flags is None:
        return False
    device = (manifest.get("device") or {}).get("id", "?")
    has = [f for f in ("avx512f", "avx2", "avx") if f in host.cpu_flags][:1]
    what = (
        f"this bundle was exported for {device!r}: its int8 graphs "
        f"({', '.join(f'{role}: {kind}' for role, kind in sorted(graphs.items()))}) multiply "
        f"full-range 8-bit weights, which are exact only on CPUs with {_flags_text(flags)}"
        f". This CPU ({host.cpu_name or host.arch}{', ' + has[0] if has else ''}) has none of "
        "them: its int8 kernels would overflow and give wrong outputs"
    )
    export_hint = (
        f"export the model for this CPU: edgert export SOURCE --device {_suggestion(host)}"
    )
    if any(kind != QDQ for kind in graphs.values()):
        raise BundleError(
            what + "; --allow-fallback cannot help: integer operators have no exact variant here",
            hint=export_hint,
        )
    if not allow_fallback:
        raise BundleError(
            what,
            hint=export_hint + "; or pass --allow-fallback to run its int8 products in float "
            "(the same results, slower; reported)",
        )
    return True


def _suggestion(host: Host) -> str:
    """The profile ``--device auto`` picks for ``host``, for hints."""
    from edgert.autoselect import pick_auto
    from edgert.catalog import get_catalog
    from edgert.errors import EdgertError
    from edgert.profiles import ProfileSet

    try:
        return pick_auto(ProfileSet(get_catalog()), host).profile.id + " (what --device auto picks)"
    except EdgertError:
        return "cpu-generic"

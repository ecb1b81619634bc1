"""Execution providers: the base class plugins subclass, and session creation that never
falls back silently.

ONNX Runtime quietly runs a graph on CPU when an accelerator fails to load or rejects
nodes. edgert checks after every session creation which provider took the graph, and
treats a mismatch as an error unless the profile or the user allowed fallback; then the
fallback is reported in stats and in every CLI report.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgert.errors import BundleError, ProviderFallbackError, ProviderUnavailableError
from edgert.schema import build

if TYPE_CHECKING:
    import onnxruntime as ort

    from edgert.catalog import Catalog
    from edgert.profiles import DeviceProfile

CPU = "CPUExecutionProvider"
LOOSEST_DRIFT = (0.5, 0.1)  # int8's bound on the CPU: for what nobody measured
# While ``recording_ops`` is active: where traces go, and the (graph, session) pairs.
_RECORDING: contextvars.ContextVar[tuple[Path, list] | None] = contextvars.ContextVar(
    "recording_ops", default=None
)


@contextlib.contextmanager
def recording_ops(folder: Path) -> Iterator[list[tuple[Path, Any]]]:
    """Every session created inside runs with ONNX Runtime's own profiler on, writing its
    trace under ``folder``; yields the ``(graph path, session)`` pairs, for
    ``edgert.op_profile``. Profiling slows a session down: ``edgert profile --ops`` runs it
    in a pass of its own, apart from the timed runs."""
    sessions: list[tuple[Path, Any]] = []
    token = _RECORDING.set((Path(folder), sessions))
    try:
        yield sessions
    finally:
        _RECORDING.reset(token)


EMULATED_INT8 = (
    "int8 QDQ nodes run unfused, their products in float (runtime.emulate_int8): exact where "
    "this CPU's fused int8 kernels would overflow, and slower"
)


@dataclass(frozen=True)
class NoOptions:
    """For providers without options."""


class Provider:
    """An ONNX Runtime execution provider as edgert sees it.

    Subclasses set the class attributes and, where needed, override ``provider_options``
    (options -> ORT's string dict) or ``attach`` (plugin-library providers).
    """

    name: ClassVar[str]
    ort_name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    capabilities: ClassVar[frozenset[str]] = frozenset()
    device_class: ClassVar[str] = "cpu"  # cpu | gpu | npu
    install_hint: ClassVar[str] = "pip install onnxruntime"
    # How far a decoder's logits may move on this provider between a one-token and a
    # multi-token call, by bundle precision: (absolute, relative to the row's largest
    # |logit|). Lossless decoders recompute a verified position alone when its top two
    # logits are closer than this (``edgert.speculation.VerifyTolerance``). It depends on
    # the kernels (summation order per call shape, int8 activations rounding differently,
    # TF32 on CUDA), so it is measured per provider: ``benchmarks/verify_drift.py
    # --run-device``. A precision nobody measured on the provider gets ``LOOSEST_DRIFT``,
    # which costs speed (more recomputed positions), never tokens.
    verify_drift: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def is_available(self) -> bool:
        """Whether this ONNX Runtime build can create sessions with the provider."""
        import onnxruntime as ort

        return self.ort_name in ort.get_available_providers()

    def simulated(self) -> bool:
        """True when the provider runs a simulator of its hardware (timings are not real)."""
        return False

    def unavailable_reason(self) -> str:
        """Why ``is_available()`` is false, for error messages."""
        import onnxruntime as ort

        return (
            f"{self.ort_name} is not in this onnxruntime build's providers "
            f"({', '.join(ort.get_available_providers())})"
        )

    def options_from(self, profile: DeviceProfile) -> Any:
        """This provider's typed options from the profile's ``[runtime.options.<name>]``."""
        raw = profile.runtime.options.get(self.name, {})
        return build(self.Options, raw, f"{profile.id} [runtime.options.{self.name}]")

    def provider_options(self, options: Any) -> dict[str, str]:
        """ORT provider options: every set field as a string (booleans as "1"/"0").

        ``device_id`` 0 is left out: it is ONNX Runtime's default, and given any
        ``device_id`` ONNX Runtime first looks for a plugin library of the provider and
        logs a warning at every session it creates when there is none (seen with CUDA).
        """
        out = {}
        for f in dataclasses.fields(options):
            value = getattr(options, f.name)
            if value is None or value == "" or (f.name == "device_id" and value == 0):
                continue
            out[f.metadata.get("ort_key", f.name)] = (
                ("1" if value else "0") if isinstance(value, bool) else str(value)
            )
        return out

    def attach(self, session_options: ort.SessionOptions, options: Any) -> tuple[str, dict] | None:
        """Add the provider to a session: return ``(ort_name, options)`` for ORT's
        ``providers=`` list, or configure ``session_options`` directly and return None."""
        return self.ort_name, self.provider_options(options)


@dataclass
class SessionInfo:
    """A created session and what really happened while creating it."""

    session: ort.InferenceSession
    requested: list[str]  # edgert provider names, priority order
    active: str  # edgert provider name that took (most of) the graph
    placement: dict[str, int] = field(default_factory=dict)  # provider -> nodes it was assigned
    fallback: list[str] = field(default_factory=list)  # human notes; empty = no fallback
    simulated: bool = False

    @property
    def fell_back(self) -> bool:
        """Whether any of the graph runs elsewhere than on the first requested provider."""
        return bool(self.fallback)


def _session_options(profile: DeviceProfile, threads: int | None) -> ort.SessionOptions:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    n = profile.runtime.threads if threads is None else threads
    if n:
        so.intra_op_num_threads = n
    so.inter_op_num_threads = 1
    # Spinning threads steal cores from other sessions in the same process (measured:
    # encoder time doubled with two sessions on two cores); profiles choose deliberately.
    so.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if profile.runtime.spinning else "0"
    )
    if profile.runtime.emulate_int8:
        # QDQ nodes stay unfused: each product runs in float on the int8 values, which is
        # exact where the CPU's fused int8 kernels would overflow (edgert.kernels).
        so.add_session_config_entry("session.disable_quant_qdq", "1")
    # Lets us read, right after creation, which provider each node was assigned to.
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    so.log_severity_level = 3
    return so


def _attach_providers(
    so: ort.SessionOptions, profile: DeviceProfile, catalog: Catalog, allowed: bool
) -> tuple[list[Provider], list[tuple[str, dict]], list[str]]:
    chosen: list[Provider] = []
    legacy: list[tuple[str, dict]] = []
    notes: list[str] = []
    for name in profile.runtime.providers:
        provider = catalog.providers.get(name)()
        if not provider.is_available():
            if not allowed:
                raise ProviderUnavailableError(
                    f"device {profile.id!r} needs provider {name!r} ({provider.ort_name}), which "
                    f"is not available here: {provider.unavailable_reason()}",
                    hint=f"{provider.install_hint}; or allow fallback with --allow-fallback "
                    "(reported), or pick another --device ('edgert devices list')",
                )
            notes.append(f"{name} unavailable ({provider.unavailable_reason()})")
            continue
        spec = provider.attach(so, provider.options_from(profile))
        if spec:
            legacy.append(spec)
        chosen.append(provider)
    return chosen, legacy, notes


def create_session(
    model: str | Path,
    profile: DeviceProfile,
    catalog: Catalog,
    *,
    allow_fallback: bool | None = None,
    threads: int | None = None,
    configure: Any = None,
) -> SessionInfo:
    """Create an ORT session on the profile's providers and verify where the graph went.

    Args:
        model: path to an ONNX model.
        profile: the device profile; its ``[runtime]`` section is used.
        catalog: provides the provider classes.
        allow_fallback: override ``profile.runtime.allow_fallback``.
        threads: override ``profile.runtime.threads``.
        configure: optional callable(session_options) for extra settings (profiling).

    Raises:
        ProviderUnavailableError: a required provider cannot run here.
        ProviderFallbackError: ORT placed the graph (or part of it) elsewhere.
    """
    import onnxruntime as ort

    allowed = profile.runtime.allow_fallback if allow_fallback is None else allow_fallback
    so = _session_options(profile, threads)
    if configure:
        configure(so)
    recording = _RECORDING.get()
    if recording:
        so.enable_profiling = True
        so.profile_file_prefix = str(recording[0] / f"{len(recording[1]):02d}-{Path(model).stem}")
    chosen, legacy, notes = _attach_providers(so, profile, catalog, allowed)
    if profile.runtime.emulate_int8:
        notes.append(EMULATED_INT8)
    primary = chosen[0] if chosen else catalog.providers.get("ort-cpu")()
    if primary.ort_name != CPU and not allowed:
        # Strict mode: ORT fails session creation instead of placing nodes on CPU.
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    by_device = len(legacy) < len(chosen)  # plugin-library providers were attached to `so`
    providers = [spec for spec in legacy if not by_device or spec[0] == CPU]
    if allowed and not by_device and not any(name == CPU for name, _ in providers):
        providers.append((CPU, {}))  # the reported fallback target
    try:
        session = ort.InferenceSession(
            str(model), sess_options=so, providers=None if by_device else providers
        )
    except Exception as exc:
        if any(mark in str(exc) for mark in ("INVALID_PROTOBUF", "INVALID_GRAPH", "NO_MODEL")):
            raise BundleError(
                f"{Path(model).name} is not a valid ONNX model: {exc}",
                hint="re-export the bundle; if the export itself wrote it, report the source model",
            ) from exc
        if "fallback to cpu" in str(exc).lower():
            raise ProviderFallbackError(
                f"provider {primary.name!r} cannot run the whole graph of {Path(model).name} and "
                f"CPU fallback is disabled for device {profile.id!r}: {exc}",
                hint=f"export the bundle for this device (edgert export ... --device {profile.id}),"
                " or allow fallback with --allow-fallback (reported)",
            ) from exc
        raise
    # ONNX Runtime's Python session would otherwise switch to CPU on its own when a
    # provider fails during a run, and say so only on stdout: the placement reported here
    # would then be wrong. A provider failure surfaces as an error instead.
    session.disable_fallback()
    placement = graph_placement(session, catalog)
    active = (
        max(placement, key=placement.get)
        if placement
        else _edgert_name(session.get_providers()[0], catalog)
    )
    foreign = {name: n for name, n in placement.items() if name != primary.name}
    if active != primary.name or foreign or primary.name != profile.runtime.providers[0]:
        if not allowed:
            raise ProviderFallbackError(
                f"asked for {profile.runtime.providers[0]!r} but ONNX Runtime placed nodes on "
                f"{', '.join(f'{k}: {v}' for k, v in placement.items()) or active}",
                hint=f"{catalog.providers.get(profile.runtime.providers[0]).install_hint}; "
                "or allow fallback with --allow-fallback (reported)",
            )
        total = sum(placement.values()) or 1
        notes.extend(
            f"{n} of {total} nodes run on {name}, not {profile.runtime.providers[0]}"
            for name, n in foreign.items()
        )
    if recording:
        recording[1].append((Path(model), session))
    return SessionInfo(
        session=session,
        requested=list(profile.runtime.providers),
        active=active,
        placement=placement,
        fallback=notes,
        simulated=primary.simulated() and active == primary.name,
    )


def graph_placement(session: ort.InferenceSession, catalog: Catalog) -> dict[str, int]:
    """Nodes assigned to each provider (edgert names), read right after session creation.

    ``session.get_providers()`` is no evidence: it lists an accelerator even when ORT gave
    it no node. Older ONNX Runtime builds without the assignment API return ``{}``.
    """
    if not hasattr(session, "get_provider_graph_assignment_info"):
        return {}
    counts: Counter[str] = Counter()
    for subgraph in session.get_provider_graph_assignment_info():
        counts[_edgert_name(subgraph.ep_name, catalog)] += len(subgraph.get_nodes())
    return dict(counts)


def _edgert_name(ort_name: str, catalog: Catalog) -> str:
    for provider_cls in catalog.providers:
        if provider_cls.ort_name == ort_name:
            return provider_cls.name
    return ort_name

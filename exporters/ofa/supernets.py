"""Once-for-All supernets: what to build (a published net id or a JSON spec file) and where
the weights come from (a local checkpoint, or a download pinned by sha256 and cached).

The ``ofa`` package's own model zoo downloads at import of a net, unpickles whatever it
gets and has no hashes; here a checkpoint is read with ``torch.load(weights_only=True)`` or
safetensors, and a published file is used only when its sha256 matches a pin.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from edgert.errors import ExportError, UnknownNameError

CACHE_ENV = "EDGERT_CACHE"
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

# Constructor arguments each supernet class accepts from a spec (dropout is always 0:
# an exported subnet runs in inference mode).
_MOBILE_ARGS = {"n_classes", "width_mult", "ks_list", "expand_ratio_list", "depth_list"}
SUPERNET_ARGS = {
    "OFAMobileNetV3": _MOBILE_ARGS,
    "OFAProxylessNASNets": _MOBILE_ARGS,
    "OFAResNets": {"n_classes", "depth_list", "expand_ratio_list", "width_mult_list"},
}


@dataclass(frozen=True)
class SupernetSpec:
    """Which supernet to build.

    Args:
        name: the published net id, or the spec file's path.
        supernet: ofa class name (``OFAMobileNetV3``, ``OFAProxylessNASNets``, ``OFAResNets``).
        args: constructor arguments (choice lists, width, classes).
        url: where published weights are (None for local specs).
        sha256: pinned hash of the published weights (None: not verified by edgert).
        normalize: per-channel mean/std the net was trained with; applied inside the graph
            so bundles take RGB pixels in [0, 1].
    """

    name: str
    supernet: str
    args: Mapping[str, Any]
    url: str | None = None
    sha256: str | None = None
    normalize: Mapping[str, list[float]] = field(default_factory=lambda: dict(IMAGENET))

    def fingerprint(self) -> str:
        """A short hash of the architecture (class + args): tables are valid per fingerprint."""
        text = json.dumps({"supernet": self.supernet, "args": dict(self.args)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in manifests and latency tables)."""
        return {"name": self.name, "supernet": self.supernet, "args": dict(self.args),
                "fingerprint": self.fingerprint()}  # fmt: skip


def published_nets() -> dict[str, dict[str, Any]]:
    """The published net ids and their specs (``nets.json``)."""
    text = resources.files("edgert.exporters.ofa").joinpath("nets.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def load_spec(source: str) -> SupernetSpec:
    """``ofa:<net id>`` or ``ofa:<spec.json>`` (the ``ofa:`` prefix is optional)."""
    name = source.removeprefix("ofa:")
    if name.endswith(".json"):
        return _spec_file(Path(name))
    nets = published_nets()
    if name not in nets:
        raise UnknownNameError(
            "OFA net id", name, nets,
            hint="or describe your own supernet in a JSON file and pass ofa:path/to/spec.json "
            '({"supernet": "OFAMobileNetV3", "args": {...}})',
        )  # fmt: skip
    return _spec(name, nets[name], f"net id {name!r}")


def _spec_file(path: Path) -> SupernetSpec:
    if not path.is_file():
        raise ExportError(f"supernet spec file not found: {path}", hint="check the path")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ExportError(f"{path} must hold a JSON object with 'supernet' and 'args'")
    return _spec(str(path), data, str(path))


def _spec(name: str, data: Mapping[str, Any], where: str) -> SupernetSpec:
    kind = data.get("supernet")
    if kind not in SUPERNET_ARGS:
        raise UnknownNameError("OFA supernet class", str(kind), SUPERNET_ARGS,
                               hint=f"set 'supernet' in {where}")  # fmt: skip
    args = dict(data.get("args") or {})
    unknown = sorted(set(args) - SUPERNET_ARGS[kind])
    if unknown:
        raise ExportError(
            f"{where}: {kind} takes no argument {', '.join(map(repr, unknown))}",
            hint=f"allowed: {', '.join(sorted(SUPERNET_ARGS[kind]))}",
        )
    return SupernetSpec(name=name, supernet=kind, args=args, url=data.get("url"),
                        sha256=data.get("sha256"),
                        normalize=data.get("normalize") or dict(IMAGENET))  # fmt: skip


def build_supernet(spec: SupernetSpec) -> Any:
    """The supernet with freshly initialised weights (enough for latency tables)."""
    try:
        from ofa.imagenet_classification.elastic_nn import networks
    except ModuleNotFoundError as exc:
        raise ExportError(
            f"OFA supernets need the ofa package ({exc})",
            hint="pip install 'edgert[export,ofa]'",
        ) from exc
    net = getattr(networks, spec.supernet)(dropout_rate=0, **spec.args)
    return net.eval()


def load_weights(net: Any, path: Path, spec: SupernetSpec) -> None:
    """Load a checkpoint into ``net``; anything but a state dict of this supernet is refused.

    Accepted: safetensors, or a ``torch.save`` file of tensors only (a state dict, possibly
    under ``"state_dict"`` as the published files have it), read with ``weights_only=True``.
    """
    state = _read_state(Path(path))
    expected = _tensor_keys(net.state_dict())
    got = _tensor_keys(state)
    what = f"{spec.supernet} {spec.name!r}"
    if len(got) != len(expected):
        raise _not_this_supernet(path, what, f"it has {len(got)} tensors, the supernet "
                                 f"{len(expected)}")  # fmt: skip
    try:
        net.load_state_dict(state)
    except (ValueError, AssertionError, RuntimeError, KeyError) as exc:
        raise _not_this_supernet(path, what, f"first mismatch: {_first_problem(exc)}") from exc


def _first_problem(exc: Exception) -> str:
    """The first concrete line of a load error (torch starts with a generic header)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    concrete = [line for line in lines if not line.startswith("Error(s) in loading")]
    return (concrete or lines or [type(exc).__name__])[0][:300]


def _not_this_supernet(path: Path, what: str, detail: str) -> ExportError:
    return ExportError(
        f"{path} is not a state dict of {what} ({detail})",
        hint="pass the checkpoint trained for this supernet, or the net id / spec file that "
        "matches the checkpoint",
    )


def _tensor_keys(state: Mapping[str, Any]) -> set[str]:
    # Older checkpoints lack BN batch counters; they carry no weights.
    return {k for k in state if not k.endswith("num_batches_tracked")}


def _read_state(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise ExportError(f"checkpoint not found: {path}", hint="check the path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise ExportError(f"{path} is not a safetensors file: {exc}") from exc
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(
            f"{path} is not a weights-only torch checkpoint ({type(exc).__name__}); edgert "
            "never unpickles arbitrary objects",
            hint="save the weights with torch.save(net.state_dict(), path) or safetensors",
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(
            f"{path} holds a {type(state).__name__}, not a state dict of tensors",
            hint="save the weights with torch.save(net.state_dict(), path) or safetensors",
        )
    return state


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$EDGERT_CACHE/ofa`` or ``~/.cache/edgert/ofa``."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edgert"
    return Path(root) / "ofa"


def published_weights(spec: SupernetSpec, sha256: str | None = None) -> Path:
    """The published weights of ``spec``: from the cache, else downloaded once and verified.

    Args:
        spec: a published net (it has a ``url``).
        sha256: a hash the user trusts, overriding the pin in ``nets.json``.
    """
    if not spec.url:
        raise ExportError(
            f"{spec.name} has no published weights",
            hint="pass --checkpoint FILE (safetensors or a torch state dict)",
        )
    expected = (sha256 or spec.sha256 or "").lower()
    if not expected:
        raise ExportError(
            f"edgert has no verified sha256 for the published weights of {spec.name}, so it "
            "will not download them unpinned",
            hint=f"download {spec.url} yourself and pass --checkpoint FILE, or pass "
            "--sha256 HEX with the hash you trust",
        )
    target = cache_dir() / f"{spec.name}-{expected[:16]}"
    if target.is_file() and _sha256(target) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        urllib.request.urlretrieve(spec.url, partial)  # checked against the pin below
    except OSError as exc:
        raise ExportError(f"cannot download {spec.url}: {exc}",
                          hint="check the network, or pass --checkpoint FILE") from exc  # fmt: skip
    got = _sha256(partial)
    if got != expected:
        partial.unlink()
        raise ExportError(f"{spec.url} has sha256 {got}, expected {expected}",
                          hint="the file changed or the download was cut; nothing was cached")  # fmt: skip
    partial.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

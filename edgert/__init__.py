"""edgert: export small models for a device profile, run them, profile them.

Public API::

    import edgert
    model = edgert.load("bundle-dir")          # verified, on the bundle's device profile
    model.generate("some text")                # a text family's runtime

Plugins implement the hooks in :mod:`edgert.hookspecs` with ``@edgert.hookimpl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgert.errors import (
    BundleError,
    DeviceProfileError,
    EdgertError,
    ExportError,
    InputError,
    PluginError,
    ProviderFallbackError,
    ProviderUnavailableError,
    UnknownNameError,
)
from edgert.hookspecs import hookimpl

if TYPE_CHECKING:
    from edgert.families import LoadedModel

__version__ = "0.1.0"

__all__ = [
    "BundleError",
    "DeviceProfileError",
    "EdgertError",
    "ExportError",
    "InputError",
    "PluginError",
    "ProviderFallbackError",
    "ProviderUnavailableError",
    "UnknownNameError",
    "__version__",
    "decoders",
    "hookimpl",
    "load",
    "profile",
    "resolve_device",
]


def resolve_device(device: str | Path | None, *, devices_dirs: tuple[Path, ...] = ()) -> Any:
    """A ``DeviceProfile`` from an id, a ``.toml`` path or ``"auto"`` (with its reason).

    Returns ``(profile, reason)``; ``reason`` is None unless ``device == "auto"``.
    """
    from edgert.autoselect import pick_auto
    from edgert.catalog import get_catalog
    from edgert.profiles import ProfileSet

    profiles = ProfileSet(get_catalog(), devices_dirs)
    if device is None or str(device) == "auto":
        choice = pick_auto(profiles)
        return choice.profile, choice.reason
    return profiles.get(device), None


def decoders() -> dict[str, type]:
    """The registered decoding plugins: name -> its frozen ``Options`` dataclass.

    What an application offers its user to pick from (``generate(decoder=name, **options)``),
    third-party decoders included; the dataclass fields are the options and their defaults.
    """
    from edgert.catalog import get_catalog

    registry = get_catalog().decoders
    return {name: registry.get(name).Options for name in registry.names()}


def profile(bundle: str | Path, **options: Any) -> dict[str, Any]:
    """Profile a bundle as ``edgert profile BUNDLE --json`` does and return the report.

    ``options`` are those of :class:`edgert.profiler.ProfileOptions` (``runs``, ``warmup``,
    ``decoder``, ``new_tokens``, ``text``, ``device``, ...); the report follows the versioned
    schema ``edgert/profile_report.schema.json``.
    """
    from edgert.profiler import ProfileOptions, profile_bundle

    try:
        chosen = ProfileOptions(**options)
    except TypeError as exc:
        import dataclasses

        valid = ", ".join(f.name for f in dataclasses.fields(ProfileOptions))
        raise InputError(f"profile(): {exc}", hint=f"valid options: {valid}") from exc
    return profile_bundle(bundle, chosen)


def load(
    bundle: str | Path,
    *,
    device: str | Path | None = None,
    allow_fallback: bool | None = None,
    threads: int | None = None,
) -> LoadedModel:
    """Load a bundle (checksums verified) and create its sessions once.

    Args:
        bundle: the directory written by ``edgert export``.
        device: a profile id or ``.toml`` path to run with instead of the profile the
            bundle was exported for (its ``[runtime]`` section is used).
        allow_fallback: allow running elsewhere than the profile's first provider; the
            fallback is always reported (``model.session_info.fallback``).
        threads: intra-op threads, overriding the profile.

    Returns:
        The runtime object of the bundle's family (its ``Family.runtime`` class): a
        :class:`edgert.families.LoadedModel` with the family's own calls added.

    Raises:
        BundleError: among other things, when this CPU would compute the bundle's int8
            kernels wrongly (:mod:`edgert.kernels`); with ``allow_fallback`` a QDQ bundle
            runs unfused there instead (exact, slower, reported).
    """
    from edgert.bundle import open_bundle
    from edgert.catalog import get_catalog

    catalog = get_catalog()
    foreign = _load_foreign(Path(bundle), catalog, device, allow_fallback, threads)
    if foreign is not None:
        return foreign
    opened = open_bundle(bundle)
    try:
        return _open_runtime(opened, catalog, device, allow_fallback, threads)
    except EdgertError:
        raise
    except Exception as exc:  # what a damaged file makes a parser raise: never unhandled
        raise BundleError(
            f"cannot load {bundle} ({opened.manifest.get('family')!r} bundle): "
            f"{type(exc).__name__}: {exc}",
            hint="the bundle is damaged or from an incompatible edgert: `edgert verify "
            f"{bundle}` lists changed files; re-export it",
        ) from exc


def _open_runtime(opened: Any, catalog: Any, device: Any, allow_fallback: Any, threads: Any) -> Any:
    """The family runtime of an opened bundle, on its profile or ``device``."""
    from edgert import kernels
    from edgert.profiles import check_against_catalog, parse_profile

    family = catalog.families.get(opened.family)
    if device is None:
        stored = opened.manifest["device"]
        if not isinstance(stored, dict) or not isinstance(stored.get("profile"), dict):
            raise BundleError(f"the manifest of {opened.path} has no device profile",
                              hint="re-export the bundle, or pass --device")  # fmt: skip
        profile = parse_profile(stored["profile"], f"{opened.path}/manifest.json")
        profile = check_against_catalog(profile, catalog)
    else:
        profile, _ = resolve_device(device)
    fallback = profile.runtime.allow_fallback if allow_fallback is None else allow_fallback
    if kernels.plan(opened.manifest, allow_fallback=fallback):
        profile = profile.with_runtime(emulate_int8=True)
    return family.runtime_class()(
        opened, profile, catalog, allow_fallback=allow_fallback, threads=threads
    )


def _load_foreign(path: Path, catalog: Any, device: Any, allow_fallback: Any, threads: Any) -> Any:
    """A folder that is not an edgert bundle but that a family opens (another tool's
    export), or None."""
    if not path.is_dir() or (path / "manifest.json").exists():
        return None
    for family in catalog.families:
        if family.opens and family.claims_folder and family.claims_folder(path):
            from edgert.families import resolve

            return resolve(family.opens, f"folder loader of family {family.name!r}")(
                path, device, allow_fallback, threads
            )
    return None

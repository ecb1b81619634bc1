"""``--device auto``: the best profile this host can really run, and why.

A profile qualifies when the host matches its ``[host]`` requirements (OS, architecture,
CPU flags), computes its int8 kernels exactly (:mod:`edgert.kernels`: a profile that writes
full-range int8 weights needs VNNI on x86, whatever its ``[host]`` says) and every provider
it lists is available and real (never a simulator). Among those the highest ``[host].priority`` wins; the reasons for skipping the others are kept so
the choice can be explained.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgert.catalog import Catalog
from edgert.errors import DeviceProfileError
from edgert.host import Host, this_host
from edgert.kernels import profile_problem
from edgert.profiles import DeviceProfile, ProfileSet


@dataclass(frozen=True)
class AutoChoice:
    """The chosen profile, why, and why each other profile was skipped."""

    profile: DeviceProfile
    reason: str
    skipped: dict[str, str]


def host_mismatch(profile: DeviceProfile, host: Host) -> str | None:
    """Why ``host`` cannot run ``profile`` by its ``[host]`` section, or None."""
    req = profile.host
    if req.os and host.os not in req.os:
        return f"needs OS {'/'.join(req.os)}, this is {host.os}"
    if req.arch and host.arch not in req.arch:
        return f"needs {'/'.join(req.arch)}, this is {host.arch}"
    missing = [flag for flag in req.cpu_flags if flag not in host.cpu_flags]
    kernels = profile_problem(profile, host)
    if missing:
        return f"CPU lacks {', '.join(missing)}" + (f"; {kernels}" if kernels else "")
    return kernels


def provider_problem(profile: DeviceProfile, catalog: Catalog) -> str | None:
    """Why the profile's providers cannot really run here, or None."""
    for name in profile.runtime.providers:
        provider = catalog.providers.get(name)()
        if not provider.is_available():
            return f"{name} unavailable"
        if provider.simulated():
            return f"{name} is a simulator on this host (use --device {profile.id} to validate)"
    return None


def pick_auto(profiles: ProfileSet, host: Host | None = None) -> AutoChoice:
    """Choose the best runnable profile for ``host`` (this machine by default)."""
    host = host or this_host()
    skipped: dict[str, str] = {}
    candidates = []
    for profile in profiles.all():
        problem = host_mismatch(profile, host) or provider_problem(profile, profiles.catalog)
        if problem:
            skipped[profile.id] = problem
        else:
            candidates.append(profile)
    if not candidates:
        raise DeviceProfileError(
            "no device profile can run on this host",
            hint="pass --device with a profile id ('edgert devices list'), or add a profile",
        )
    best = max(candidates, key=lambda p: (p.host.priority, p.id))
    flags = [f for f in best.host.cpu_flags if f in host.cpu_flags]
    reason = (
        f"{host.arch} {host.os}"
        + (f" with {', '.join(flags)}" if flags else "")
        + f"; providers {', '.join(best.runtime.providers)} available"
        + f"; highest priority ({best.host.priority}) of {len(candidates)} runnable profiles"
    )
    return AutoChoice(best, reason, skipped)

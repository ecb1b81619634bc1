"""What this host is: OS, CPU architecture and the CPU features profiles can require."""

from __future__ import annotations

import functools
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8": "aarch64"}
_OS_NAMES = {"linux": "linux", "darwin": "darwin", "win32": "windows"}


@dataclass(frozen=True)
class Host:
    """This machine, as device-profile requirements see it."""

    os: str
    arch: str
    cpu_flags: frozenset[str]
    cpu_name: str


def normalize_arch(arch: str) -> str:
    """Map the spellings of the same architecture onto one name."""
    arch = arch.lower()
    return _ARCH_ALIASES.get(arch, arch)


def _linux_cpuinfo() -> tuple[frozenset[str], str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset(), ""
    flags: set[str] = set()
    name = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features"):
            flags.update(value.split())
        elif key in ("model name", "Model", "Hardware") and not name:
            name = value.strip()
    return frozenset(flags), name


@functools.cache
def this_host() -> Host:
    """Describe this host (cached: it does not change while the process runs)."""
    flags, name = _linux_cpuinfo() if sys.platform.startswith("linux") else (frozenset(), "")
    arch = normalize_arch(platform.machine())
    if arch == "aarch64":
        flags = flags | {"neon"}  # Armv8-A mandates Advanced SIMD
    return Host(
        os=_OS_NAMES.get(sys.platform, sys.platform),
        arch=arch,
        cpu_flags=flags,
        cpu_name=name or platform.processor() or arch,
    )

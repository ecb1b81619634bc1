"""What this host is: OS, CPU architecture and the CPU features profiles can require."""

from __future__ import annotations

import functools
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8": "aarch64"}
_OS_NAMES = {"linux": "linux", "darwin": "darwin", "win32": "windows"}
# numpy's CPUID feature names -> the /proc/cpuinfo spelling profiles use.
_CPUID_NAMES = {
    "AVX": "avx", "AVX2": "avx2", "FMA3": "fma", "F16C": "f16c", "AVX512F": "avx512f",
    "AVX512BW": "avx512bw", "AVX512VNNI": "avx512_vnni", "AVX512BF16": "avx512_bf16",
    "ASIMD": "asimd", "ASIMDDP": "asimddp", "ASIMDHP": "asimdhp",
}  # fmt: skip


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


def _cpuid_features() -> dict[str, bool]:
    """What the CPU reports to this process (CPUID, checked against what the OS enabled), as
    numpy's dispatcher detected it; {} where numpy does not expose it."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features = getattr(__import__(module, fromlist=["_"]), "__cpu_features__", None)
        except ImportError:
            continue
        if isinstance(features, dict):
            return features
    return {}


def _with_cpuid(flags: frozenset[str]) -> frozenset[str]:
    """``/proc/cpuinfo``'s flags corrected by what CPUID tells this process.

    The kernels ONNX Runtime picks follow CPUID, which can say less than ``/proc/cpuinfo``
    (an emulator or a hypervisor that masks features) and is the only source on Windows and
    macOS: a flag CPUID denies is dropped (all AVX-512 ones when it denies AVX-512F), one it
    reports is added.
    """
    features = _cpuid_features()
    known = {flag: features[name] for name, flag in _CPUID_NAMES.items() if name in features}
    kept = {f for f in flags if known.get(f, True)}
    if known.get("avx512f") is False:
        kept = {f for f in kept if not f.startswith("avx512")}
    return frozenset(kept | {f for f, on in known.items() if on})


@functools.cache
def this_host() -> Host:
    """Describe this host (cached: it does not change while the process runs)."""
    flags, name = _linux_cpuinfo() if sys.platform.startswith("linux") else (frozenset(), "")
    flags = _with_cpuid(flags)
    arch = normalize_arch(platform.machine())
    if arch == "aarch64":
        flags = flags | {"neon"}  # Armv8-A mandates Advanced SIMD
    return Host(
        os=_OS_NAMES.get(sys.platform, sys.platform),
        arch=arch,
        cpu_flags=flags,
        cpu_name=name or platform.processor() or arch,
    )

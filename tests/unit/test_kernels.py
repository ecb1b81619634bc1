"""Full-range int8 bundles on CPUs that compute them wrongly: refused, or run exactly.

Hosts are faked: the rules must hold on every CPU, whichever one runs the tests.
"""

from __future__ import annotations

import pytest

import edgert
from edgert import kernels
from edgert.autoselect import host_mismatch, pick_auto
from edgert.catalog import get_catalog
from edgert.errors import BundleError, DeviceProfileError
from edgert.host import Host
from edgert.profiles import ProfileSet, parse_profile

AVX2 = Host(os="linux", arch="x86_64", cpu_flags=frozenset({"avx", "avx2"}), cpu_name="Zen 3")
SKYLAKE_X = Host("linux", "x86_64", frozenset({"avx2", "avx512f", "avx512bw"}), "Skylake-X")
ALDER_LAKE = Host("linux", "x86_64", frozenset({"avx2", "avx_vnni"}), "Alder Lake")
ICE_LAKE = Host("linux", "x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}), "Ice Lake")
PI = Host("linux", "aarch64", frozenset({"neon", "asimddp"}), "Cortex-A76")


def _manifest(graphs: dict[str, str], device: str = "x86-avx512-vnni-int8") -> dict:
    profile, _ = edgert.resolve_device(device)
    return {
        "device": {"id": profile.id, "profile": profile.to_dict()},
        "kernels": kernels.record(graphs, profile),
    }


@pytest.mark.parametrize("host", [AVX2, SKYLAKE_X], ids=["avx2", "avx512-without-vnni"])
def test_integer_ops_at_full_range_are_refused_even_with_fallback(host):
    manifest = _manifest({"encoder": kernels.INTEGER})
    for allow in (False, True):
        with pytest.raises(BundleError) as info:
            kernels.plan(manifest, allow_fallback=allow, host=host)
        message = str(info.value)
        assert "'x86-avx512-vnni-int8'" in message  # what the bundle was made for
        assert "avx512_vnni, avx_vnni or amx_int8" in message  # what it needs
        assert host.cpu_name in message and "has none of them" in message  # what this CPU has
        assert "--device x86-avx2-int8" in info.value.hint  # what to export for instead
        assert "cannot help" in message


def test_qdq_at_full_range_runs_unfused_only_when_fallback_is_allowed():
    manifest = _manifest({"model": kernels.QDQ})
    with pytest.raises(BundleError) as info:
        kernels.plan(manifest, allow_fallback=False, host=AVX2)
    assert "--allow-fallback" in info.value.hint
    assert kernels.plan(manifest, allow_fallback=True, host=AVX2) is True


@pytest.mark.parametrize("host", [ICE_LAKE, ALDER_LAKE, PI], ids=["vnni", "avx-vnni", "arm64"])
def test_cpus_that_compute_full_range_exactly_run_it_natively(host):
    manifest = _manifest({"encoder": kernels.INTEGER, "decoder": kernels.QDQ})
    assert kernels.plan(manifest, allow_fallback=False, host=host) is False


def test_a_vnni_profile_bundle_without_full_range_products_runs_anywhere():
    """Weight-only decoders and float encoders need no VNNI, whatever the profile's name."""
    assert kernels.plan(_manifest({}), allow_fallback=False, host=AVX2) is False


def test_bundles_without_a_kernel_record_are_judged_by_their_profile_and_report():
    old = _manifest({})
    del old["kernels"]
    old["quantization"] = {
        "encoder": {"method": "dynamic", "quantized_nodes": 4},
        "decoder": {"method": "weight-only int8", "quantized_nodes": 9},
    }
    with pytest.raises(BundleError, match="encoder: integer"):
        kernels.plan(old, allow_fallback=True, host=AVX2)
    old["quantization"]["encoder"]["quantized_nodes"] = 0
    assert kernels.plan(old, allow_fallback=False, host=AVX2) is False
    reduced = _manifest({}, "x86-avx2-int8")
    del reduced["kernels"]
    reduced["quantization"] = {"method": "static-qdq", "quantized_nodes": 3}
    assert kernels.plan(reduced, allow_fallback=False, host=AVX2) is False


def test_presets_say_which_range_they_quantize_to():
    assert kernels.reduce_range("avx2") and kernels.reduce_range("any")
    assert not kernels.reduce_range("avx512-vnni") and not kernels.reduce_range("arm64")


@pytest.mark.parametrize("device", ["x86-avx512-vnni-int8", "x86-avx512-vnni-int4"])
def test_auto_and_devices_list_never_offer_full_range_profiles_to_cpus_without_vnni(device):
    profile, _ = edgert.resolve_device(device)
    assert "overflow" in host_mismatch(profile, AVX2)
    assert "lacks avx512_vnni" in host_mismatch(profile, SKYLAKE_X)
    assert pick_auto(ProfileSet(get_catalog()), SKYLAKE_X).profile.id == "x86-avx2-int8"
    # whatever its [host] section says: a user's profile with the preset alone
    data = profile.to_dict()
    data["host"] = {"priority": 99}
    assert "avx512_vnni, avx_vnni or amx_int8" in kernels.profile_problem(
        parse_profile(data, "mine.toml"), AVX2
    )
    assert kernels.profile_problem(parse_profile(data, "mine.toml"), ALDER_LAKE) is None


def test_an_unknown_isa_preset_is_refused_with_the_choices():
    profile, _ = edgert.resolve_device("x86-avx2-int8")
    data = profile.to_dict()
    data["export"]["quantization"]["isa"] = "avx2-vnni"
    with pytest.raises(DeviceProfileError, match="not a known preset") as info:
        parse_profile(data, "mine.toml")
    assert "avx512-vnni" in info.value.hint and "any" in info.value.hint


def test_cpuid_corrects_cpuinfo(monkeypatch):
    """An emulator or hypervisor can hide what /proc/cpuinfo lists; kernels follow CPUID."""
    from edgert import host as hosts

    monkeypatch.setattr(hosts, "_cpuid_features", lambda: {"AVX2": True, "AVX512F": False})
    flags = hosts._with_cpuid(frozenset({"avx2", "avx512f", "avx512_vnni", "sse4_2"}))
    assert flags == {"avx2", "sse4_2"}
    monkeypatch.setattr(hosts, "_cpuid_features", lambda: {"ASIMDDP": True})
    assert "asimddp" in hosts._with_cpuid(frozenset())

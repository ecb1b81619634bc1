"""Device profiles: every shipped file, validation messages, user folders, --device auto."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgert.autoselect import host_mismatch, pick_auto
from edgert.errors import DeviceProfileError, UnknownNameError
from edgert.host import Host
from edgert.profiles import ProfileSet, check_against_catalog, load_profile_file

DEVICES = sorted((Path(__file__).resolve().parents[2] / "devices").glob("*.toml"))
REQUIRED_TARGETS = {
    "cpu-generic", "x86-avx2-int8", "x86-avx512-vnni-int8", "raspberry-pi-5", "nvidia-cuda-fp16",
    "jetson-orin-trt-fp16", "snapdragon-8-gen3-npu", "intel-npu-openvino", "apple-coreml",
    "windows-directml",
}  # fmt: skip
MINIMAL = 'id = "{id}"\nname = "Board"\nclass = "cpu"\n[runtime]\nproviders = ["ort-cpu"]\n'


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", DEVICES, ids=lambda p: p.stem)
def test_every_shipped_profile_loads_and_names_registered_things(path, catalog):
    profile = check_against_catalog(load_profile_file(path), catalog)
    assert profile.id == path.stem
    for name in profile.runtime.providers:
        catalog.providers.get(name)().options_from(profile)


def test_the_required_targets_ship():
    assert {p.stem for p in DEVICES} >= REQUIRED_TARGETS


def test_npu_profiles_are_static_and_strict():
    profile = load_profile_file(Path(DEVICES[0]).with_name("snapdragon-8-gen3-npu.toml"))
    assert profile.export.static_shapes and not profile.runtime.allow_fallback
    assert profile.export.quantization.method == "static-qdq"


def test_profiles_are_frozen():
    profile = load_profile_file(DEVICES[0])
    with pytest.raises(AttributeError):
        profile.id = "x"


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, "b", MINIMAL.format(id="b").replace("providers", "provider"))
    with pytest.raises(DeviceProfileError) as info:
        load_profile_file(path)
    assert "unknown key 'provider' (did you mean 'providers'?)" in str(info.value)
    assert str(path) in str(info.value)


def test_bad_enum_value_lists_choices(tmp_path):
    text = MINIMAL.format(id="b") + '[export]\nprecision = "fp8"\n'
    with pytest.raises(DeviceProfileError) as info:
        load_profile_file(write(tmp_path, "b", text))
    assert "invalid value 'fp8'" in str(info.value)
    assert "'fp16'" in info.value.hint


def test_wrong_type_is_reported(tmp_path):
    text = MINIMAL.format(id="b").replace("[runtime]\n", '[runtime]\nthreads = "four"\n')
    with pytest.raises(DeviceProfileError, match="expected int, got str 'four'"):
        load_profile_file(write(tmp_path, "b", text))


def test_malformed_toml_names_the_file(tmp_path):
    with pytest.raises(DeviceProfileError, match="not valid TOML"):
        load_profile_file(write(tmp_path, "b", "id = \n"))


def test_id_must_match_file_name(tmp_path):
    with pytest.raises(DeviceProfileError, match="differs from the file name"):
        load_profile_file(write(tmp_path, "b", MINIMAL.format(id="c")))


def test_missing_file(tmp_path):
    with pytest.raises(DeviceProfileError, match="not found"):
        load_profile_file(tmp_path / "nope.toml")


def test_unknown_provider_and_provider_options_are_checked(tmp_path, catalog):
    text = MINIMAL.format(id="b").replace('"ort-cpu"', '"ort-cdua"')
    with pytest.raises(UnknownNameError, match="did you mean 'ort-cuda'"):
        check_against_catalog(load_profile_file(write(tmp_path, "b", text)), catalog)
    text = MINIMAL.format(id="c") + '[runtime.options.ort-qnn]\nbackend = "hpt"\n'
    with pytest.raises(DeviceProfileError, match="did you mean 'htp'"):
        check_against_catalog(load_profile_file(write(tmp_path, "c", text)), catalog)


def test_precision_without_its_step_is_refused(tmp_path, catalog):
    text = MINIMAL.format(id="b") + '[export]\nprecision = "int8"\nsteps = ["validate"]\n'
    with pytest.raises(DeviceProfileError, match="no 'quantize' step"):
        check_against_catalog(load_profile_file(write(tmp_path, "b", text)), catalog)


def test_unknown_device_id_suggests(catalog):
    with pytest.raises(UnknownNameError) as info:
        ProfileSet(catalog).get("cpu-generc")
    assert "did you mean 'cpu-generic'?" in str(info.value)


def test_user_folder_overrides_and_adds(tmp_path, catalog):
    write(tmp_path, "cpu-generic", MINIMAL.format(id="cpu-generic").replace("Board", "Mine"))
    write(tmp_path, "my-board", MINIMAL.format(id="my-board"))
    profiles = ProfileSet(catalog, (tmp_path,))
    assert profiles.get("cpu-generic").name == "Mine"
    assert "my-board" in profiles.ids() and "x86-avx2-int8" in profiles.ids()


def test_missing_user_folder(tmp_path, catalog):
    with pytest.raises(DeviceProfileError, match="folder not found"):
        ProfileSet(catalog, (tmp_path / "nope",))


def test_host_requirements():
    profile = load_profile_file(Path(DEVICES[0]).with_name("x86-avx512-vnni-int8.toml"))
    arm = Host(os="linux", arch="aarch64", cpu_flags=frozenset({"neon"}), cpu_name="a76")
    old_x86 = Host(os="linux", arch="x86_64", cpu_flags=frozenset({"avx2"}), cpu_name="x")
    assert "needs x86_64" in host_mismatch(profile, arm)
    assert "lacks avx512f, avx512_vnni" in host_mismatch(profile, old_x86)


def test_auto_never_picks_a_simulator_and_explains(catalog):
    x86 = Host(os="linux", arch="x86_64", cpu_flags=frozenset({"avx2"}), cpu_name="x")
    choice = pick_auto(ProfileSet(catalog), x86)
    assert choice.profile.id == "x86-avx2-int8"
    assert "avx2" in choice.reason
    # A phone-class Arm host with the QNN simulator installed is still not an NPU.
    arm = Host(os="linux", arch="aarch64", cpu_flags=frozenset({"neon", "asimddp"}), cpu_name="a")
    choice = pick_auto(ProfileSet(catalog), arm)
    assert choice.profile.device_class == "cpu"
    assert "snapdragon-8-gen3-npu" in choice.skipped


def test_auto_on_a_bare_host_falls_back_to_generic(catalog):
    bare = Host(os="linux", arch="riscv64", cpu_flags=frozenset(), cpu_name="r")
    assert pick_auto(ProfileSet(catalog), bare).profile.id == "cpu-generic"

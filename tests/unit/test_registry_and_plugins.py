"""Plugin manager, registries and hook contracts."""

from __future__ import annotations

import inspect
import sys
import textwrap

import pytest

from edgert import hookimpl, hookspecs
from edgert.catalog import load_catalog
from edgert.errors import PluginError, UnknownNameError
from edgert.plugin_manager import builtin_plugins, get_plugin_manager
from edgert.registry import Registry

HOOKS = [
    name
    for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("register_")
]


def test_every_hook_is_documented():
    assert set(HOOKS) == {
        "register_decoders",
        "register_providers",
        "register_export_steps",
        "register_families",
        "register_models",
        "register_device_dirs",
        "register_commands",
    }
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"


def test_every_hook_has_a_test():
    here = inspect.getsource(sys.modules[__name__])
    for name in HOOKS:
        assert f"def test_hook_{name}" in here, f"no test_hook_{name}"


def test_builtins_register_through_the_same_hooks(catalog):
    names = {catalog.pm.get_name(p) for p in catalog.pm.get_plugins()}
    assert set(builtin_plugins()) <= names
    assert "ort-cpu" in catalog.providers
    assert catalog.providers.source("ort-cpu") == "edgert.plugins.providers.ort_cpu"


class _Decoder:
    name = "counting"
    Options = object

    def decode(self, model, input_ids, options):
        yield from ()


class _DecoderPlugin:
    @hookimpl
    def register_decoders(self, register):
        register(_Decoder)


def test_hook_register_decoders():
    catalog = load_catalog(get_plugin_manager(entry_points=False, extra=[_DecoderPlugin()]))
    assert catalog.decoders.get("counting") is _Decoder
    assert "greedy" in catalog.decoders


def test_hook_register_providers():
    from edgert.providers import Provider

    class Fake(Provider):
        name = "fake-npu"
        ort_name = "FakeExecutionProvider"

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register(Fake)

    catalog = load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))
    assert catalog.providers.get("fake-npu") is Fake
    assert not Fake().is_available()


def test_hook_register_export_steps():
    class Step:
        name = "noop"

        def run(self, artifact, ctx, out_dir):
            return artifact

    class Plugin:
        @hookimpl
        def register_export_steps(self, register):
            register(Step)

    catalog = load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))
    assert catalog.export_steps.get("noop") is Step


def test_hook_register_families():
    from edgert.export import ExportOptions
    from edgert.families import Family

    family = Family("toy", runtime="json:dumps", exporter="json:loads", options=ExportOptions,
                    detect=lambda source: source.endswith(".toy"), commands="json:JSONDecoder")  # fmt: skip

    class Plugin:
        @hookimpl
        def register_families(self, register):
            register(family)

    catalog = load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))
    import json

    assert catalog.families.get("toy").runtime_class() is json.dumps


def test_hook_register_models():
    from edgert.families import BuiltinModel

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register(BuiltinModel("toy-model", "cnn", "json:dumps"))

    catalog = load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))
    assert catalog.models.get("toy-model").locate() == "json:dumps"
    assert {"digits", "speller", "speller-draft"} <= set(catalog.models.names())


def test_hook_register_device_dirs(tmp_path):
    (tmp_path / "my-board.toml").write_text(
        'id = "my-board"\nname = "My board"\nclass = "cpu"\n[runtime]\nproviders = ["ort-cpu"]\n'
    )

    class Plugin:
        @hookimpl
        def register_device_dirs(self, register):
            register(tmp_path)

    from edgert.profiles import ProfileSet

    catalog = load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))
    profiles = ProfileSet(catalog)
    assert profiles.get("my-board").name == "My board"
    assert "cpu-generic" in profiles.ids()


def test_hook_register_commands():
    import click
    from click.testing import CliRunner

    group = click.Group("edgert")

    class Plugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command()
            def hello():
                click.echo("hello from a plugin")

    pm = get_plugin_manager(entry_points=False, extra=[Plugin()])
    pm.hook.register_commands(cli=group)
    assert CliRunner().invoke(group, ["hello"]).output == "hello from a plugin\n"


def test_duplicate_names_are_an_error_naming_both_sources():
    class Again:
        name = "greedy"
        Options = object
        decode = None
        __module__ = "thirdparty.greedy"

    class Plugin:
        @hookimpl
        def register_decoders(self, register):
            register(Again)

    with pytest.raises(PluginError) as info:
        load_catalog(get_plugin_manager(entry_points=False, extra=[Plugin()]))
    assert "edgert.plugins.decoding.greedy" in str(info.value)
    assert "thirdparty.greedy" in str(info.value)


def test_misspelled_hook_fails_at_load():
    class Plugin:
        @hookimpl
        def register_decoder(self, register):  # missing "s"
            pass

    with pytest.raises(PluginError, match="register_decoder"):
        get_plugin_manager(entry_points=False, extra=[Plugin()])


def test_disable_plugins_env_blocks_by_name(monkeypatch):
    monkeypatch.setenv(
        "EDGERT_DISABLE_PLUGINS", "edgert.plugins.providers.ort_qnn, edgert.plugins.decoding.greedy"
    )
    catalog = load_catalog(get_plugin_manager(entry_points=False))
    assert "ort-qnn" not in catalog.providers
    assert "greedy" not in catalog.decoders
    assert "ort-cpu" in catalog.providers


def test_registry_rejects_items_without_required_attributes():
    registry = Registry("decoder", ("name", "decode"))

    class Broken:
        name = "broken"

    with pytest.raises(PluginError, match="lacks decode"):
        registry(Broken)


def test_registry_rejects_bad_names():
    registry = Registry("decoder")

    class Bad:
        name = "Not Valid"

    with pytest.raises(PluginError, match="lowercase"):
        registry(Bad)


def test_unknown_name_suggests_the_closest():
    registry = Registry("decoder")

    class Greedy:
        name = "greedy"

    registry(Greedy)
    with pytest.raises(UnknownNameError) as info:
        registry.get("gredy")
    assert "did you mean 'greedy'?" in str(info.value)
    assert "known decoders: greedy" in str(info.value)


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    package = tmp_path / "edgert_hello_plugin.py"
    package.write_text(
        textwrap.dedent(
            """
            import edgert

            class Hello:
                name = "hello"
                Options = object
                def decode(self, model, input_ids, options):
                    yield 1

            @edgert.hookimpl
            def register_decoders(register):
                register(Hello)
            """
        )
    )
    dist = tmp_path / "edgert_hello_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: edgert-hello-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[edgert]\nhello = edgert_hello_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    catalog = load_catalog(get_plugin_manager())
    assert catalog.decoders.source("hello") == "edgert_hello_plugin"
    monkeypatch.setenv("EDGERT_DISABLE_PLUGINS", "hello")
    assert "hello" not in load_catalog(get_plugin_manager()).decoders

"""A family installed as a user installs one: a dist-info with an ``edgert`` entry point in a
folder on ``sys.path``. Export, run, profile and ``plugins list`` work with it through the
CLI, and ``edgert export`` refuses its flags on another family's source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
"""A family of "scale" models: y = x * factor, exported as one Mul graph."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

import edgert
from edgert.export import ExportOptions, export_bundle, flag
from edgert.families import Family
from edgert.providers import create_session


@dataclass(frozen=True)
class ScaleExport(ExportOptions):
    size: int = flag(4, "Vector length.", parse=int)


def detect(source):
    return source.endswith(".scale")


def export_scale(options, profile, catalog):
    import onnx
    from onnx import TensorProto, helper

    factor = float(Path(options.source).read_text())

    def graphs(out_dir):
        node = helper.make_node("Mul", ["x", "factor"], ["y"])
        const = helper.make_tensor("factor", TensorProto.FLOAT, [1], [factor])
        graph = helper.make_graph(
            [node], "scale",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, options.size])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, options.size])],
            [const],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, out_dir / "model.onnx")
        return {"model": out_dir / "model.onnx"}

    def validator(artifacts, ctx):
        info = create_session(artifacts["model"].path, ctx.profile, ctx.catalog)
        x = np.arange(options.size, dtype=np.float32)[None]
        y = info.session.run(None, {"x": x})[0]
        return {"ran_on": info.active, "max_abs_diff": float(np.abs(y - x * factor).max())}

    def files(staging, final, ctx):
        return {"graphs": [{"role": "model", "file": "model.onnx"}], "size": options.size,
                "provenance": {"source": options.source}}

    return export_bundle(options, profile, catalog, family="scale", graphs=graphs,
                         validator=validator, files=files)


class ScaleModel:
    def __init__(self, bundle, profile, catalog, *, allow_fallback=None, threads=None):
        self.bundle, self.profile = bundle, profile
        self.session_info = create_session(bundle.file("model.onnx"), profile, catalog,
                                           allow_fallback=allow_fallback, threads=threads)

    def __call__(self, x):
        return self.session_info.session.run(None, {"x": np.asarray(x, np.float32)})[0]


class Commands:
    default_runs = (5, 1)

    def run(self, model, request):
        values = [float(v) for v in request.text.split(",")]
        click.echo(json.dumps(model([values]).tolist()[0]))

    def profile(self, model, options, tick):
        x = np.ones((1, model.bundle.manifest["size"]), np.float32)
        for _ in range(options.runs):
            model(x)
        return {"calls": options.runs}

    def profile_rows(self, report):
        return [("calls", str(report["calls"]))]

    def export_lines(self, manifest):
        return [f"scale graph of size {manifest['size']}, max abs diff "
                f"{manifest['validation']['max_abs_diff']}"]


COMMANDS = Commands()
SCALE = Family(name="scale", runtime="scale_family:ScaleModel",
               exporter="scale_family:export_scale", options=ScaleExport, detect=detect,
               commands="scale_family:COMMANDS", description="y = x * factor")


@edgert.hookimpl
def register_families(register):
    register(SCALE)

'''


@pytest.fixture
def installed(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "scale_family.py").write_text(PLUGIN)
    info = site / "scale_family-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: scale-family\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[edgert]\nscale = scale_family\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path]))
    return tmp_path, env


def edgert(env, *args, check=True):
    done = subprocess.run([sys.executable, "-c", "from edgert.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_a_third_party_family_exports_runs_and_profiles(installed):
    tmp, env = installed
    (tmp / "double.scale").write_text("2.0")
    bundle = tmp / "double-bundle"
    done = edgert(env, "export", str(tmp / "double.scale"), "--device", "cpu-generic",
                  "--out", str(bundle), "--size", "3")  # fmt: skip
    assert "scale graph of size 3, max abs diff 0.0" in done.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["family"] == "scale"
    assert manifest["validation"]["ran_on"] == "ort-cpu"

    assert json.loads(edgert(env, "run", str(bundle), "1,2,3").stdout) == [2.0, 4.0, 6.0]

    report = json.loads(edgert(env, "profile", str(bundle), "--json").stdout)
    assert report["family"] == "scale"
    assert report["calls"] == 5 and report["runs"] == 5
    assert set(report["load_ms"]) == {"first", "warm"}
    assert "calls" in edgert(env, "profile", str(bundle)).stdout

    listed = json.loads(edgert(env, "plugins", "list", "--json").stdout)["items"]
    assert {"kind": "family", "name": "scale", "source": "scale_family"}.items() <= next(
        row for row in listed if row["name"] == "scale"
    ).items()


def test_its_flags_are_refused_on_another_familys_source(installed):
    tmp, env = installed
    done = edgert(env, "export", "zoo:digits", "--out", str(tmp / "b"), "--size", "3",
                  check=False)  # fmt: skip
    assert done.returncode == 1
    assert "--size does not apply to zoo:digits" in done.stderr
    assert "it is for scale" in done.stderr
    assert not (tmp / "b").exists()


def test_its_python_api_loads_like_a_built_in(installed, tmp_path):
    tmp, env = installed
    (tmp / "half.scale").write_text("0.5")
    edgert(env, "export", str(tmp / "half.scale"), "--device", "cpu-generic",
           "--out", str(tmp / "half"))  # fmt: skip
    code = textwrap.dedent(f"""
        import edgert
        model = edgert.load({str(tmp / "half")!r})
        print(model([[2.0, 4.0, 6.0, 8.0]]).tolist())
    """)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.strip() == "[[1.0, 2.0, 3.0, 4.0]]"

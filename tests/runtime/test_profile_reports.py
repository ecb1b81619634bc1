"""Profile reports: one versioned schema, operators from ONNX Runtime's profiler, comparison,
plots and the regression gate."""

from __future__ import annotations

import json
import re

import pytest
from helpers.bundles import make_bundle
from helpers.cli import run

from edgert.profiler import ISA_FLAGS, SCHEMA_VERSION, load_report, report_schema


@pytest.fixture(scope="module")
def reports(tmp_path_factory, seq2seq_bundles):
    """``edgert profile --output`` of a classifier and a text bundle, with ``--ops``."""
    import contextlib

    from edgert.cli import main

    root = tmp_path_factory.mktemp("reports")
    found = {}
    for name, argv in (
        ("cnn", [str(make_bundle(root / "cnn")), "--runs", "5", "--ops", "3"]),
        ("seq2seq", [str(seq2seq_bundles["t5"]), "--runs", "3", "--input-tokens", "10",
                     "--new-tokens", "6", "--ops", "4"]),
    ):  # fmt: skip
        with contextlib.redirect_stdout(None):
            main(["profile", *argv, "--json", "--output", str(root / f"{name}.json")])
        found[name] = root / f"{name}.json"
    return found


@pytest.mark.parametrize("kind", ["cnn", "seq2seq"])
def test_reports_follow_the_shipped_json_schema(kind, reports):
    jsonschema = pytest.importorskip("jsonschema")
    report = load_report(reports[kind])
    jsonschema.validate(report, report_schema())
    assert report["schema_version"] == SCHEMA_VERSION
    host = report["host"]
    assert host["cores"] >= 1 and host["memory_bytes"] > 0 and host["cpu"]
    assert set(host["cpu_flags"]) <= set(ISA_FLAGS)
    assert "onnxruntime" in report["versions"]["packages"]
    assert report["simulated"] is False
    expected = {"cnn": {"inference"}, "seq2seq": {"encoder", "first_token", "per_token"}}[kind]
    assert set(report["stages"]) == expected
    assert report["throughput"]["value"] > 0


def test_text_reports_keep_per_token_latency_along_the_sequence(reports):
    report = load_report(reports["seq2seq"])
    assert len(report["per_token_series_ms"]) == 5  # tokens 2..6
    assert all(ms > 0 for ms in report["per_token_series_ms"])


@pytest.mark.parametrize(
    ("kind", "graphs"), [("cnn", {"model"}), ("seq2seq", {"encoder", "decoder"})]
)
def test_ops_lists_the_costliest_operators_of_each_graph(kind, graphs, reports):
    ops = load_report(reports[kind])["ops"]
    assert set(ops["graphs"]) == graphs
    for graph in ops["graphs"].values():
        assert 0 < len(graph["ops"]) <= ops["top"]
        times = [op["ms"] for op in graph["ops"]]
        assert times == sorted(times, reverse=True) and graph["total_ms"] >= sum(times) * 0.999
        assert all(op["provider"] == "ort-cpu" and op["calls"] > 0 for op in graph["ops"])
        assert 0 < sum(op["share"] for op in graph["ops"]) <= 1.0 + 1e-9


def test_ops_are_printed_per_graph(tiny_bundle, capsys):
    code, out, _ = run(capsys, "profile", str(tiny_bundle), "--runs", "3", "--ops", "2")
    assert code == 0
    assert "model: top 2 operators" in out and "ort-cpu" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"bundle": "x"}, "no schema_version"),
        ({"schema_version": 99}, "schema version 99; edgert .* reads version 1"),
        ({"schema_version": 1}, "lacks bundle"),
        ("not json", "cannot read the profile report"),
    ],
)
def test_reports_of_another_version_are_refused(content, message, tmp_path, capsys):
    path = tmp_path / "old.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, _, err = run(capsys, "profile", "compare", str(path))
    assert code == 1
    assert re.search(message, err), err
    assert "hint:" in err


def slower(source, target, factor):
    report = json.loads(source.read_text())
    for stage in report["stages"].values():
        for key in stage:
            stage[key] *= factor
    report["throughput"]["value"] /= factor
    target.write_text(json.dumps(report))
    return target


def test_compare_gives_ratios_against_the_first(reports, tmp_path, capsys):
    other = slower(reports["seq2seq"], tmp_path / "other.json", 2.0)
    code, out, _ = run(capsys, "profile", "compare", str(reports["seq2seq"]), str(other), "--json")
    assert code == 0
    table = {row["metric"]: row for row in json.loads(out)["rows"]}
    assert table["per_token p50"]["ratios"][1] == pytest.approx(2.0)
    assert table["throughput"]["ratios"][1] == pytest.approx(0.5)
    assert table["throughput"]["unit"] == "tokens/s"
    code, out, _ = run(capsys, "profile", "compare", str(reports["seq2seq"]), str(other))
    assert code == 0 and "(2.00x)" in out


def test_the_regression_gate_fails_naming_the_stage_and_passes_within_the_bound(
    reports, tmp_path, capsys
):
    base = reports["seq2seq"]
    worse = slower(base, tmp_path / "worse.json", 1.25)
    code, _, err = run(capsys, "profile", "compare", str(worse), "--baseline", str(base),
                       "--max-regression", "10%")  # fmt: skip
    assert code == 1
    assert "regression in worse" in err and "per_token p50" in err and "+25.0%" in err
    assert "throughput" in err
    code, _, err = run(capsys, "profile", "compare", str(worse), "--baseline", str(base),
                       "--max-regression", "30%")  # fmt: skip
    assert code == 0, err
    better = slower(base, tmp_path / "better.json", 0.5)
    assert run(capsys, "profile", "compare", str(better), "--baseline", str(base))[0] == 0
    for bound in ("ten", "10"):  # "10" could mean 10% or 1000%: refused, not guessed
        code, _, err = run(capsys, "profile", "compare", str(worse), "--baseline", str(base),
                           "--max-regression", bound)  # fmt: skip
        assert code == 1 and "is not a bound" in err


def test_the_gate_judges_reports_with_the_same_name_each(reports, tmp_path, capsys):
    base = reports["seq2seq"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    worse = slower(base, tmp_path / "a" / "new.json", 1.5)
    fine = slower(base, tmp_path / "b" / "new.json", 1.0)
    code, _, err = run(capsys, "profile", "compare", str(worse), str(fine), "--baseline", str(base))
    assert (
        code == 1 and err.count("regression in new") >= 1 and "#2" not in err.split("regression")[1]
    )


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_plots_draw_stages_and_per_token_latency(suffix, reports, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    other = slower(reports["seq2seq"], tmp_path / "other.json", 1.5)
    out = tmp_path / f"latency{suffix}"
    code, _, err = run(capsys, "profile", "compare", str(reports["seq2seq"]), str(other),
                       "--plot", str(out))  # fmt: skip
    assert code == 0, err
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        assert b"data:image/png;base64," in data and b"per_token p50" in data
    code, _, err = run(capsys, "profile", "compare", str(other), "--plot", str(tmp_path / "x.svg"))
    assert code == 1 and ".png or .html" in err


def test_a_bundle_is_still_profiled_as_before(tiny_bundle, capsys):
    code, out, _ = run(capsys, "profile", str(tiny_bundle), "--runs", "3", "--json")
    assert code == 0 and json.loads(out)["family"] == "cnn"
    code, out, _ = run(capsys, "profile", "--help")
    assert code == 0 and "BUNDLE" in out and "profile compare" in out


def test_progress_is_plain_lines_when_not_on_a_terminal(tiny_bundle, capsys):
    code, _, err = run(capsys, "profile", str(tiny_bundle), "--runs", "20")
    assert code == 0
    assert "profiling: 2/20 runs" in err and "profiling: 20/20 runs" in err

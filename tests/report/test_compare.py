"""`gpumon compare`: the pure comparison table-driven, the inputs it reads, and bad input."""

from __future__ import annotations

import json

import pytest

from gpumon.report.compare import (
    CellKey,
    CellSide,
    Side,
    compare,
    delta,
    pair,
    throughput_verdict,
)
from gpumon.stats import fisher_exact

from .conftest import FIXTURES, SESSIONS

KEY = CellKey("mlx", "cpu", "per-thread", "generate", 64, "float32", 2)


def cell(
    median: float | None,
    lo: float | None = None,
    hi: float | None = None,
    runs: int = 3,
    measured: int | None = None,
    crashes: int = 0,
    key: CellKey = KEY,
    pool: str = "p",
    version: str = "0.31.1",
) -> CellSide:
    return CellSide(
        key=key,
        pool=pool,
        version=version,
        runs=runs,
        measured_runs=runs - crashes if measured is None else measured,
        ops_per_s=median,
        ops_per_s_min=lo if lo is not None else median,
        ops_per_s_max=hi if hi is not None else median,
        crashes=crashes,
    )


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        (cell(100, 90, 110), cell(105, 100, 120), "within noise"),
        (cell(100, 90, 110), cell(200, 190, 210), "faster"),
        (cell(100, 90, 110), cell(50, 40, 60), "slower"),
        (cell(100, 90, 110), cell(200, runs=1), "too few runs"),
        (cell(100, runs=1), cell(100, runs=1), "within noise"),  # the same point overlaps
        (cell(100, runs=1), cell(101, runs=1), "too few runs"),
        (cell(None, runs=3, crashes=3), cell(100, 90, 110), "not measured"),
        (cell(100, 90, 110), cell(111, 111, 130), "faster"),  # touching is not overlapping
        (cell(100, 90, 110), cell(110, 110, 130), "within noise"),  # sharing an end is
    ],
)
def test_throughput_verdicts(a: CellSide, b: CellSide, verdict: str) -> None:
    assert throughput_verdict(a, b) == verdict


@pytest.mark.parametrize(
    ("ca", "ra", "cb", "rb"),
    [(5, 5, 0, 5), (3, 3, 0, 3), (0, 5, 0, 5), (1, 10, 2, 10), (0, 1, 1, 1)],
)
def test_crash_rates_use_fishers_exact_test(ca: int, ra: int, cb: int, rb: int) -> None:
    d = delta(cell(None, runs=ra, crashes=ca), cell(None, runs=rb, crashes=cb))
    assert d.crash_p == fisher_exact(ca, ra - ca, cb, rb - cb)
    assert d.crash_rate_a == ca / ra and d.crash_rate_b == cb / rb
    lo, hi = d.crash_ci_a
    assert 0 <= lo <= ca / ra <= hi <= 1


def test_five_of_five_against_none_of_five_is_significant() -> None:
    d = delta(cell(None, runs=5, crashes=5), cell(100, runs=5))
    assert d.crash_p == pytest.approx(0.00794, abs=1e-5) and d.change is None


def test_cells_pair_by_what_was_measured_not_by_pool_or_version() -> None:
    k1 = CellKey("mlx", "cpu", "per-thread", "generate", 64, "float32", 1)
    a = [cell(1, key=KEY, pool="mlx@0.31.1:cpu"), cell(2, key=k1, pool="mlx@0.31.1:cpu")]
    b = [cell(3, key=k1, pool="mlx:cpu", version="0.32.4")]
    pairs, only_a, only_b = pair(a, b)
    assert [(x.ops_per_s, y.ops_per_s) for x, y in pairs] == [(2, 3)]
    assert [c.ops_per_s for c in only_a] == [1] and only_b == []


def test_two_versions_in_one_side_pair_by_pool_then_by_version() -> None:
    a = [cell(1, pool="old", version="0.31.1"), cell(2, pool="new", version="0.32.4")]
    b = [
        cell(3, pool="other", version="0.32.4"),
        cell(4, pool="old", version="0.31.2"),
        cell(5, pool="x", version="9"),
    ]
    pairs, only_a, only_b = pair(a, b)
    assert sorted((x.ops_per_s, y.ops_per_s) for x, y in pairs) == [(1, 4), (2, 3)]
    assert only_a == [] and [c.ops_per_s for c in only_b] == [5]


def test_cells_that_differ_only_by_policy_are_named() -> None:
    other = CellKey("mlx", "cpu", "shared", "generate", 64, "float32", 2)
    c = compare(Side("a", "sweep", [cell(1)]), Side("b", "sweep", [cell(2, key=other)]))
    assert c.cells == [] and len(c.policy_only) == 1


def test_environment_rows_mark_what_differs() -> None:
    c = compare(
        Side("a", "sweep", [], {"mlx (worker)": "0.31.1", "OS": "Linux"}),
        Side("b", "sweep", [], {"mlx (worker)": "0.32.4", "OS": "Linux", "cuda (worker)": "12"}),
    )
    rows = {r.what: (r.a, r.b, r.same) for r in c.env}
    assert rows == {
        "mlx (worker)": ("0.31.1", "0.32.4", False),
        "OS": ("Linux", "Linux", True),
        "cuda (worker)": ("—", "12", False),
    }


def test_a_session_and_a_sweep_json_can_be_compared(gpumon) -> None:
    r = gpumon(
        "compare", FIXTURES / "sweep-mlx-0.31.1", FIXTURES / "sweep-mlx-0.32.4.json", "--json"
    )
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["a"]["kind"] == "session" and out["b"]["kind"] == "sweep"
    _, two = out["cells"]
    assert two["key"]["threads"] == 2 and two["a"]["crashes"] == 5 and two["b"]["crashes"] == 0
    assert two["crash_p"] == pytest.approx(0.00794, abs=1e-5)
    env = {e["what"]: e for e in out["environment"]}
    assert env["mlx (worker)"]["a"] == "0.31.1" and env["mlx (worker)"]["b"] == "0.32.4"


def test_untrusted_names_are_sanitised(gpumon, tmp_path) -> None:
    data = json.loads((FIXTURES / "sweep-mlx-0.32.4.json").read_text())
    data["cells"][0]["pool"] = "evil\x1b]52;c;aGk=\x07"
    data["cells"][0]["device"] = "cpu\x1b[2J"
    data["host"]["chip"] = "\u202eCPU"
    bad = tmp_path / "evil.json"
    bad.write_text(json.dumps(data))
    r = gpumon("compare", FIXTURES / "sweep-mlx-0.32.4.json", bad)
    assert r.code == 0
    assert "\x1b" not in r.out and "\u202e" not in r.out and "\\x1b" in r.out
    js = gpumon("compare", FIXTURES / "sweep-mlx-0.32.4.json", bad, "--json")
    assert js.out.isascii()


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p / "missing.jsonl", "no such"),
        (lambda p: p, "without a session.jsonl"),
        (lambda p: _write(p / "x.json", "{not json"), "neither a gpumon session log nor a sweep"),
        (lambda p: _write(p / "x.json", '{"cells": [], "schema": 1}'), "schema 1"),
        (lambda p: _write(p / "x.json", '{"a": 1}'), "neither a gpumon session log nor a sweep"),
        (lambda p: _write(p / "x.json", '{"schema": 2, "cells": [{"pool": 1}]}'), "not a readable"),
        (lambda p: _write(p / "x.jsonl", "hello\n"), "not a gpumon session log"),
        (lambda p: _write(p / "x.bin", "\x00\x01"), "not a gpumon session log"),
    ],
)
def test_an_unreadable_input_is_one_line_and_exit_1(gpumon, tmp_path, make, needle) -> None:
    r = gpumon("compare", SESSIONS / "torch-cpu", make(tmp_path))
    assert r.code == 1, r.out
    assert needle in r.err and r.err.count("\n") == 1 and "Traceback" not in r.err


def _write(path, text: str):
    path.write_text(text)
    return path


def test_sessions_are_found_by_latest_and_id_prefix(gpumon, tmp_path, monkeypatch) -> None:
    import shutil

    root = tmp_path / "sessions"
    for name in ("sweep-mlx-0.31.1", "sweep-mlx-0.32.4"):
        shutil.copytree(FIXTURES / name, root / name)
    r = gpumon("compare", "latest", "cb3f", "--session-dir", root, "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["a"]["label"], out["b"]["label"]) == ("sweep-mlx-0.31.1", "sweep-mlx-0.32.4")
    r = gpumon("compare", "latest", "zzz", "--session-dir", root)
    assert r.code == 1 and "is not a file, `latest`, or the start of a session id" in r.err

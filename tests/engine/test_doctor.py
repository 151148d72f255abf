"""`gpumon doctor`'s exit status and its output when piped (real probe child processes)."""

from __future__ import annotations

import json

import pytest

from .test_commands import gpumon

pytestmark = pytest.mark.timeout(300)


def test_a_bad_spec_is_one_line_and_exit_2_before_any_probe() -> None:
    for argv, needle in (
        (["--pool", "nope"], "unknown backend 'nope'"),
        (["--json", "--pool", "fault", "--pool", "torch:tpu"], "no device 'tpu'"),
    ):
        r = gpumon("doctor", *argv)
        assert r.returncode == 2 and r.stdout == "", r.stdout
        assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


def test_a_requested_pool_that_cannot_run_here_exits_1_and_still_reports() -> None:
    r = gpumon("doctor", "--json", "--pool", "fault", "--pool", "mlx:metal")
    assert r.returncode == 1, r.stderr
    f = json.loads(r.stdout)
    assert [b["ok"] for b in f["backends"]] == [True, False]
    ok = gpumon("doctor", "--json", "--pool", "fault")
    assert ok.returncode == 0 and json.loads(ok.stdout)["backends"][0]["ok"]


def test_piped_output_keeps_each_line_whole_and_names_nvml_and_the_env_cache() -> None:
    r = gpumon("doctor", "--pool", "fault")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # rich wraps at 80 columns when it cannot ask a terminal; a piped doctor must not
    native = next(x for x in lines if x.strip().startswith("native stacks"))
    assert native.rstrip().endswith(("fault", "stacks", "off", ")")), native
    assert not any(x.startswith("fault") or x.startswith("used: gdb") for x in lines)
    assert any(x.strip().startswith("NVIDIA ") for x in lines)
    assert any(x.strip().startswith("cache ") for x in lines)
    f = json.loads(gpumon("doctor", "--json", "--pool", "fault").stdout)
    assert {"root", "count", "uv", "index_url"} <= set(f["envs"])
    assert "nvml" in f["host"] or f["host"].get("driver_version")

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


def test_a_probe_that_dies_is_named_by_its_signal_and_last_words_and_spares_the_others() -> None:
    import subprocess
    import sys

    from gpumon import machine

    # a real child that dies the way a framework's import can (two CUDA stacks in one process)
    dying = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; print('\\x1b]52;c;eA==\\x07boom', file=sys.stderr); "
            "sys.stderr.flush(); os.abort()",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answer = machine._probe_answer("mlx", dying)
    assert not answer["ok"] and "killed by SIGABRT" in answer["message"], answer
    assert "boom" in answer["message"] and "\x1b" not in answer["message"]
    assert "gpumon.worker.probe mlx" in answer["fix"]
    quiet = subprocess.Popen(
        [sys.executable, "-c", "raise SystemExit(3)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "exit status 3" in machine._probe_answer("torch", quiet)["message"]
    # each spec has its own child: a bad one beside a good one answers for itself, in order
    found = machine.probe_backends(["fault", "mlx:metal", "fault,workload=nope"])
    assert [b["spec"] for b in found] == ["fault", "mlx:metal", "fault,workload=nope"]
    assert found[0]["ok"] and not found[1]["ok"] and not found[2]["ok"]

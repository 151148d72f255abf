"""`gpumon envs` through argparse (it is not wired into the CLI yet): output and exit codes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpumon.commands import envs as command
from gpumon.envs import ensure, layout, request_for

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpumon envs")
    command.configure(p)
    return p


def envs(*argv: str) -> int:
    return command.run(_parser().parse_args(list(argv)))


@pytest.fixture
def root(index: str, mlx_request, fresh_root: Path) -> Path:
    ensure(request_for("mlx@0.31.1", device="cpu"), root=fresh_root)
    return fresh_root


def test_table(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(root)) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:4] == ["framework", "version", "build", "python"]
    row = out.splitlines()[1].split()
    assert row[:2] == ["mlx", "0.31.1"]
    assert "1 environment," in out and str(root) in out and "MiB" in out


def test_json_listing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(root), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["root"] == str(root)
    (env,) = data["envs"]
    assert (env["framework"], env["version"], env["complete"]) == ("mlx", "0.31.1", True)
    assert env["installed"]["mlx"] == "0.31.1" and env["size_bytes"] > 0
    assert env["created"] and env["last_used"]


def test_empty_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(tmp_path / "none")) == 0
    assert capsys.readouterr().out.startswith("no cached environments in ")
    assert envs("--env-dir", str(tmp_path / "none"), "--json") == 0
    assert json.loads(capsys.readouterr().out)["envs"] == []


def test_remove(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(root), "--remove", "mlx@0.31.1") == 0
    assert capsys.readouterr().out.startswith("removed mlx-0.31.1-")
    assert envs("--env-dir", str(root), "--remove", "mlx@0.31.1") == 1
    err = capsys.readouterr().err
    assert err.startswith("gpumon envs: no cached environment matches 'mlx@0.31.1'")
    assert err.count("\n") == 1


def test_remove_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(root), "--remove", "mlx@0.31.1", "--json") == 0
    removed = json.loads(capsys.readouterr().out)["removed"]
    assert [r["version"] for r in removed] == ["0.31.1"]


def test_bad_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(tmp_path), "--remove", "mlx@>=0.31") == 2
    assert "version range" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["--days", "3"], ["--all"], ["--prune", "--days", "3", "--all"], ["--prune", "--days", "-1"]],
)
def test_option_misuse_exits_2(argv: list[str], tmp_path: Path, capsys) -> None:
    assert envs("--env-dir", str(tmp_path), *argv) == 2
    assert capsys.readouterr().err.startswith("gpumon envs: ")


def test_remove_and_prune_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["--remove", "mlx@0.31.1", "--prune"])
    assert e.value.code == 2


def test_prune(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(root), "--prune") == 0
    assert capsys.readouterr().out.startswith("pruned 0 environments (unused for 30 days)")
    (name,) = [p.name for p in root.iterdir() if not p.name.startswith(".")]
    long_ago = time.time() - 8 * 86400
    os.utime(layout.last_used_path(root / name), (long_ago, long_ago))
    assert envs("--env-dir", str(root), "--prune", "--days", "7", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in data["removed"]] == [name] and data["skipped"] == []


def test_prune_all(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert envs("--env-dir", str(root), "--prune", "--all") == 0
    out = capsys.readouterr().out
    assert "pruned 1 environment (every environment)" in out


def test_in_a_process_errors_are_one_line(tmp_path: Path) -> None:
    code = (
        "import argparse, sys\n"
        "from gpumon.commands.envs import configure, run\n"
        "p = argparse.ArgumentParser(prog='gpumon envs'); configure(p)\n"
        "sys.exit(run(p.parse_args(sys.argv[1:])))\n"
    )
    env = {**os.environ, "GPUMON_ENV_DIR": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-c", code, "--remove", "torch@9.9.9"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-c", code, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["root"] == str(tmp_path)

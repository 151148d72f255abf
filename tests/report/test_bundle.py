"""`gpumon export -f bundle`: what is inside, the size budget, redaction, and refusals.

Decimation is tested as a pure fold over events; the bundle itself from copies of committed
sessions (a large artifact is real file content appended to a copy)."""

from __future__ import annotations

import os
import shutil
import zipfile

import pytest

from gpumon import control, facts
from gpumon import events as ev
from gpumon.report.decimate import decimate
from gpumon.session.export import render
from gpumon.session.log import load
from gpumon.spec import parse_pool

from .conftest import SESSIONS

CFG = parse_pool("torch:cpu,threads=2")


def _sample(t: float, ops: int = 10, threads: int = 2) -> ev.Sample:
    return ev.Sample(
        t=t,
        pool="torch:cpu",
        interval=0.1,
        threads=threads,
        ops=[ops] * threads,
        flop_per_op=2.0,
        policy="per-thread",
        workload="matmul",
        lat_hist={40: ops},
    )


def long_session() -> list[ev.Event]:
    """120 s of one pool at 10 samples a second, a thread change at 60 s, a crash at 119 s."""
    host = ev.HostInfo(
        hostname="h", user="u", home="/home/u", os="Linux", os_version="x", machine="x86_64",
        chip="c", cpu_count=2, mem_total=1, python="3.11",
    )  # fmt: skip
    events: list[ev.Event] = [
        ev.SessionStart(
            t=0,
            session_id="0123456789ab",
            gpumon_version="0",
            mode="test",
            argv=[],
            cwd="/",
            host=host,
        ),
        ev.PoolStarting(t=0.1, pool="torch:cpu", config=CFG),
        ev.PoolReady(
            t=0.5,
            pool="torch:cpu",
            pid=9,
            backend="torch",
            device="cpu",
            device_name="c",
            device_reason="r",
            framework="torch 2.13.0",
            size=64,
            dtype="float32",
            flop_per_op=2.0,
            policy="per-thread",
        ),
    ]
    t = 0.6
    while t < 119:
        if abs(t - 60) < 0.05:
            events.append(
                ev.Control(t=t, pool="torch:cpu", command=control.SetThreads(threads=3), config=CFG)
            )
        events.append(_sample(round(t, 1), threads=2 if t < 60 else 3))
        if int(t * 10) % 10 == 0:
            events.append(ev.HostSample(t=t, cpu_percent=50, mem_used=1, mem_total=2))
        t += 0.1
    events.append(
        ev.Crash(
            t=119.0, crash_id="c", pool="torch:cpu", pid=9, signal="SIGSEGV", threads=3,
            uptime=118.5, ops_total=1, policy="per-thread", workload="matmul", backend="torch",
            device="cpu",
        )
    )  # fmt: skip
    events.append(ev.SessionEnd(t=120))
    return events


@pytest.mark.parametrize("window", [1.0, 5.0, 30.0])
def test_decimation_keeps_incidents_and_totals(window: float) -> None:
    events = long_session()
    out, d = decimate(events, window, keep_near=5.0)
    assert d.samples_after < d.samples_before / (2 if window == 1.0 else 4)
    assert d.host_after <= d.host_before

    # every event that is not a sample is kept, in order
    def others(es: list[ev.Event]) -> list[ev.Event]:
        return [e for e in es if not isinstance(e, ev.Sample | ev.HostSample)]

    assert others(out) == others(events)
    assert isinstance(out[-1], ev.SessionEnd)
    samples = [e for e in out if isinstance(e, ev.Sample)]
    assert sum(s.total_ops for s in samples) == sum(
        s.total_ops for s in events if isinstance(s, ev.Sample)
    )
    # the samples near the thread change and the crash are as recorded
    near = [s for s in samples if 55.5 <= s.t <= 64.5 or s.t >= 114.5]
    assert near and all(s.interval == pytest.approx(0.1) for s in near)
    assert [round(s.t, 1) for s in samples] == sorted(round(s.t, 1) for s in samples)
    # and the figures every report prints do not move
    before = {(c.threads, round(c.ops_per_s or 0, 6)) for c in facts.cells(events)}
    after = {(c.threads, round(c.ops_per_s or 0, 6)) for c in facts.cells(out)}
    assert before == after


def test_a_bundle_holds_the_folder_the_report_and_the_script(gpumon, tmp_path) -> None:
    out = tmp_path / "b.zip"
    r = gpumon("export", SESSIONS / "h200-mlx-shrink", "-f", "bundle", "-o", out)
    assert r.code == 0, r.err
    assert f"wrote {out}:" in r.out and "of a 10.0 MiB budget, 13 files" in r.out
    size = os.path.getsize(out)
    assert f"({size} bytes)" in r.out
    s = load(SESSIONS / "h200-mlx-shrink")
    with zipfile.ZipFile(out) as z:
        top = "h200-mlx-shrink/"
        assert z.read(top + "report.md").decode() == render(s, "md")
        md = gpumon("export", SESSIONS / "h200-mlx-shrink", "-f", "repro")
        assert z.read(top + "repro.py").decode() == md.out
        assert (
            z.read(top + "session.jsonl")
            == (SESSIONS / "h200-mlx-shrink/session.jsonl").read_bytes()
        )
        assert oct(z.getinfo(top + "session.jsonl").external_attr >> 16) == "0o100600"


def test_over_budget_samples_are_decimated_and_big_artifacts_cut_never_dropped(
    gpumon, tmp_path, session_copy
) -> None:
    folder = session_copy("h200-mlx-shrink")
    big = folder / "artifacts" / "mlx_gpu-1" / "stdout.log"
    with open(big, "a") as f:  # 3 MB of distinct lines: compresses, but not to nothing
        for i in range(60_000):
            f.write(f"line {i} {i * 7919 % 100003:06d} frame 0x{i * 2654435761 % 2**32:08x}\n")
    out = tmp_path / "b.zip"
    r = gpumon("export", folder, "-f", "bundle", "-o", out, "--max-size", "0.5")
    assert r.code == 0, r.err
    assert os.path.getsize(out) <= 0.5 * 1024 * 1024
    assert "was cut to" in r.err
    with zipfile.ZipFile(out) as z:
        top = f"{folder.name}/"
        names = set(z.namelist())
        on_disk = {top + p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert on_disk <= names  # nothing dropped
        cut = z.read(top + "artifacts/mlx_gpu-1/stdout.log")
        assert b"[gpumon bundle: cut to fit the size budget" in cut
        assert cut.startswith(big.read_bytes()[:1000]) and cut.endswith(big.read_bytes()[-100:])
        manifest = z.read(top + "MANIFEST.txt").decode()
        assert "Cut to fit: artifacts/mlx_gpu-1/stdout.log keeps" in manifest


def test_a_budget_that_cannot_be_met_still_writes_and_says_so(gpumon, tmp_path) -> None:
    out = tmp_path / "b.zip"
    r = gpumon("export", SESSIONS / "fault-off", "-f", "bundle", "-o", out, "--max-size", "0.01")
    assert r.code == 0 and out.exists()
    assert "warning: still over the 10.2 KiB budget; nothing was dropped" in r.err
    assert "no repro.py: the session's crashes are of the synthetic fault pool" in r.err


def test_a_redacted_bundle_has_no_trace_of_the_user_and_still_loads(gpumon, tmp_path) -> None:
    out = tmp_path / "b.zip"
    r = gpumon("export", SESSIONS / "redact-home", "-f", "bundle", "--redact", "-o", out)
    assert r.code == 0 and ", redacted" in r.out
    with zipfile.ZipFile(out) as z:
        for name in z.namelist():
            text = z.read(name).decode("utf-8", "replace").lower()
            assert "alice" not in text, name
        z.extractall(tmp_path / "x")
    (folder,) = (tmp_path / "x").iterdir()
    s = load(folder)
    assert not s.warnings and len(s.events) == len(load(SESSIONS / "redact-home").events)
    assert gpumon("export", folder, "-f", "md").code == 0


def test_an_existing_zip_is_not_replaced_without_force(gpumon, tmp_path) -> None:
    out = tmp_path / "b.zip"
    out.write_bytes(b"earlier")
    r = gpumon("export", SESSIONS / "torch-cpu", "-f", "bundle", "-o", out)
    assert r.code == 1 and "exists: give --force" in r.err and r.err.count("\n") == 1
    assert out.read_bytes() == b"earlier"
    r = gpumon("export", SESSIONS / "torch-cpu", "-f", "bundle", "-o", out, "--force")
    assert r.code == 0 and zipfile.is_zipfile(out)


def test_the_default_name_is_the_session_folders(gpumon, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = gpumon("export", SESSIONS / "torch-cpu", "-f", "bundle")
    assert r.code == 0 and (tmp_path / "torch-cpu.zip").exists()


def test_links_in_the_folder_are_not_followed(gpumon, tmp_path, session_copy) -> None:
    folder = session_copy("torch-cpu")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not ship me")
    os.symlink(secret, folder / "artifacts" / "link.txt")
    out = tmp_path / "b.zip"
    assert gpumon("export", folder, "-f", "bundle", "-o", out).code == 0
    with zipfile.ZipFile(out) as z:
        assert not any(n.endswith("link.txt") for n in z.namelist())


def test_a_report_exported_into_the_folder_is_kept_beside_the_new_one(
    gpumon, tmp_path, session_copy
) -> None:
    import warnings

    folder = session_copy("torch-cpu")
    (folder / "report.md").write_text("an earlier export, edited by hand\n")
    out = tmp_path / "b.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zipfile warns on a duplicate name
        assert gpumon("export", folder, "-f", "bundle", "-o", out).code == 0
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert len(names) == len(set(names))
        assert z.read("torch-cpu/report.kept.md") == b"an earlier export, edited by hand\n"
        assert z.read("torch-cpu/report.md").decode() == render(load(folder), "md")
        assert "report.kept.md" in z.read("torch-cpu/MANIFEST.txt").decode()


@pytest.mark.parametrize("size", ["0", "abc", "-1"])
def test_a_bad_budget_is_a_usage_error(gpumon, size) -> None:
    r = gpumon("export", SESSIONS / "torch-cpu", "-f", "bundle", "--max-size", size)
    assert r.code == 2 and "--max-size" in r.err


@pytest.fixture
def session_copy(tmp_path):
    def copy(name: str):
        dest = tmp_path / "copies" / name
        shutil.copytree(SESSIONS / name, dest)
        return dest

    return copy


def test_a_bundle_can_go_to_a_pipe(tmp_path) -> None:
    import io
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpumon",
            "export",
            SESSIONS / "torch-cpu",
            "-f",
            "bundle",
            "-o",
            "-",
        ],
        capture_output=True,
        cwd=root,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert zipfile.is_zipfile(io.BytesIO(out.stdout))
    assert b"wrote stdout:" in out.stderr


def test_the_manifest_says_whether_the_kept_script_was_verified(gpumon, tmp_path) -> None:
    import sys

    folder = tmp_path / "s"
    shutil.copytree(SESSIONS / "fault-off", folder)
    script = folder / "repro.py"
    script.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    assert gpumon("repro", script, "--runs", 2, "--python", sys.executable).code == 0

    def manifest() -> str:
        out = tmp_path / "b.zip"
        assert gpumon("export", folder, "-f", "bundle", "-o", out, "--force").code == 0
        with zipfile.ZipFile(out) as z:
            return z.read("s/MANIFEST.txt").decode()

    assert "kept in the session folder; gpumon repro reproduced it 2/2" in manifest()
    script.write_text(script.read_text() + "# edited after the count\n")
    assert "kept in the session folder; not verified by gpumon repro" in manifest()

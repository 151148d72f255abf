"""The macOS report locator, on real report files written into temporary directories the way
ReportCrash writes them (names say the process, the body says the pid)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from gpumon.crash.locate import (
    default_report_dirs,
    find_reports,
    report_pid,
    wait_for_report,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crash-reports"
IPS = (FIXTURES / "llvm__multithread-test.ips").read_text()  # pid 22511
CRASH = (FIXTURES / "llvm__multithread-test.crash").read_text()  # pid 22511


def with_pid(text: str, pid: int) -> str:
    return text.replace("22511", str(pid))


def write(path: Path, text: str, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_default_dirs_include_retired() -> None:
    dirs = [str(d) for d in default_report_dirs()]
    assert str(Path.home() / "Library/Logs/DiagnosticReports") in dirs
    assert "/Library/Logs/DiagnosticReports/Retired" in dirs


def test_report_pid_reads_the_body_not_the_name(tmp_path: Path) -> None:
    assert report_pid(write(tmp_path / "python3-1.ips", with_pid(IPS, 4242))) == 4242
    assert report_pid(write(tmp_path / "python3-2.crash", with_pid(CRASH, 777))) == 777
    assert report_pid(write(tmp_path / "junk.ips", "nothing here")) is None
    assert report_pid(tmp_path / "missing.ips") is None


def test_find_reports_by_pid_and_age(tmp_path: Path) -> None:
    now = time.time()
    a, b = tmp_path / "a", tmp_path / "b" / "Retired"
    old = write(a / "python3-old.ips", with_pid(IPS, 100), mtime=now - 3600)
    ours = write(b / "python3-new.ips", with_pid(IPS, 100), mtime=now)
    write(a / "python3-other.ips", with_pid(IPS, 101), mtime=now)
    write(a / "python3-note.txt", with_pid(IPS, 100), mtime=now)  # not a report suffix
    (a / "dir.ips").mkdir()
    found = find_reports(100, since=now - 10, dirs=[a, b, tmp_path / "absent"])
    assert found == [ours]
    assert old not in found
    assert find_reports(100, since=now - 7200, dirs=[a, b]) == [ours, old]  # newest first


async def test_wait_for_report_sees_a_report_written_later(tmp_path: Path) -> None:
    since = time.time()
    target = tmp_path / "python3.11-2026-06-16-141000.ips"

    async def macos_writes_it() -> None:
        await asyncio.sleep(0.3)
        write(tmp_path / "python3.11-2026-06-16-140959.ips", with_pid(IPS, 9))  # another pid
        write(target, with_pid(IPS, 31337))

    writer = asyncio.create_task(macos_writes_it())
    t0 = time.monotonic()
    found = await wait_for_report(31337, since, dirs=[tmp_path], timeout=10, poll=0.05)
    await writer
    assert found == target
    assert time.monotonic() - t0 < 5


async def test_wait_for_report_waits_for_a_complete_file(tmp_path: Path) -> None:
    since = time.time()
    target = tmp_path / "python3.ips"
    full = with_pid(IPS, 555)
    write(target, full[: len(full) // 2])  # still being written

    async def finish() -> None:
        await asyncio.sleep(0.3)
        write(target, full)

    writer = asyncio.create_task(finish())
    found = await wait_for_report(555, since, dirs=[tmp_path], timeout=10, poll=0.05)
    await writer
    assert found == target
    assert target.read_text() == full  # it returned only once the file was complete


async def test_wait_for_report_times_out(tmp_path: Path) -> None:
    since = time.time()
    write(tmp_path / "python3.ips", with_pid(IPS, 1))
    t0 = time.monotonic()
    assert await wait_for_report(2, since, dirs=[tmp_path], timeout=0.3, poll=0.05) is None
    assert 0.25 < time.monotonic() - t0 < 3


async def test_wait_for_report_returns_a_partial_report_at_the_deadline(tmp_path: Path) -> None:
    since = time.time()
    target = write(tmp_path / "python3.ips", with_pid(IPS, 8)[:3000])
    assert await wait_for_report(8, since, dirs=[tmp_path], timeout=0.3, poll=0.05) == target

"""Real macOS crash reports (tests/fixtures/crash-reports) against the facts in MANIFEST.json,
plus the .ips variants the parser must accept (text before the header, compact bodies, text
bodies, frames without symbols, images without names, truncation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from crash_corpus import FIXTURES, MANIFEST, mismatches

from gpumon.crash import compose, ips
from gpumon.crash.classify import driver_threads, verdict
from gpumon.crash.model import DRIVER, SYSTEM, CrashParseError
from gpumon.crash.parse import parse_file, parse_report


def is_agx(image: str | None) -> bool:
    return bool(image) and image.startswith("AGX")


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_every_manifest_fact(entry: dict[str, Any]) -> None:
    report = parse_file(FIXTURES / entry["file"])
    assert mismatches(entry, report) == []


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_agx_frames_are_driver_frames_and_system_frames_are_system(entry: dict[str, Any]) -> None:
    report = parse_file(FIXTURES / entry["file"])
    for t in report.threads:
        for f in t.frames:
            if is_agx(f.image) or f.image == "IOGPU":
                assert f.kind == DRIVER, f
            if f.image and f.image.startswith("libsystem_"):
                assert f.kind == SYSTEM, f
    expected = entry["expected"].get("agx_frame_thread_indices", [])
    in_driver = [t.index for t in driver_threads(report)]
    assert set(expected) <= set(in_driver)


def test_ips_and_crash_twins_agree() -> None:
    a = parse_file(FIXTURES / "llvm__multithread-test.ips")
    b = parse_file(FIXTURES / "llvm__multithread-test.crash")
    for key in (
        "process_name",
        "pid",
        "exception_type",
        "signal",
        "exception_subtype",
        "crashed_thread_index",
    ):
        assert getattr(a, key) == getattr(b, key), key
    assert [len(t.frames) for t in a.threads] == [len(t.frames) for t in b.threads]
    for ta, tb in zip(a.threads, b.threads, strict=True):
        assert (ta.index, ta.name, ta.queue is None) == (tb.index, tb.name, tb.queue is None)
        for fa, fb in zip(ta.frames, tb.frames, strict=True):
            assert (fa.image, fa.symbol, fa.offset, fa.address, fa.file, fa.line, fa.kind) == (
                fb.image,
                fb.symbol,
                fb.offset,
                fb.address,
                fb.file,
                fb.line,
                fb.kind,
            )
    assert verdict(a) == verdict(b)
    # The text names the main thread's dispatch queue; the JSON twin has no queue for it.
    assert b.threads[0].queue == "com.apple.main-thread"


def test_verdicts_state_the_facts() -> None:
    limina = parse_file(FIXTURES / "limina__gputoolscapture-segv-on-commit.ips")
    line = verdict(limina)
    assert line.startswith("SIGSEGV (KERN_INVALID_ADDRESS at 0x0000000000000008) in ")
    assert "GTMTLSMCommandEncoder_processTraceFunc (GPUToolsCapture)" in line
    assert 'on thread 22 "limina-vm:zfq0"' in line
    assert "thread 20 (queue com.apple.dt.GPUTools.downloader) was inside AGXMetalG13X" in line
    ember = parse_file(FIXTURES / "embershard__error.md")
    assert verdict(ember) == (
        "SIGABRT (abort() called) in ggml_abort (libggml-base.0.15.1.dylib) on thread 0"
    )
    assert driver_threads(ember) == []  # AGX image loaded, but no thread is in it


def test_embedded_full_report_wins_but_text_fills_gaps() -> None:
    raw = (FIXTURES / "embershard__error.md").read_text()
    report = parse_report(raw)
    # Thread ids only exist in the JSON part.
    assert report.threads[1].id == 521341
    # Without the JSON part the text alone gives the same facts (and no ids).
    text_only, json_part = compose.split_full_report(raw)
    assert json_part is not None and json_part.startswith('{"app_name":"Embershard"')
    alone = parse_report(text_only)
    assert alone.format == "text-macos26"
    assert [len(t.frames) for t in alone.threads] == [len(t.frames) for t in report.threads]
    assert alone.threads[1].id is None and alone.threads[1].name == "com.apple.NSEventThread"
    assert alone.application_specific_information == "abort() called"
    assert "AGXMetalG16G_B0" in [i.name for i in alone.images]


def test_damaged_embedded_json_falls_back_to_the_text() -> None:
    raw = (FIXTURES / "embershard__error.md").read_text()
    cut = raw.index('"threads"')
    report = parse_report(raw[:cut] + "\n{ broken")
    assert report.format == "text-macos26"
    assert len(report.threads) == 8 and report.crashed_thread_index == 0
    assert report.threads[1].name == "com.apple.NSEventThread"
    assert any("embedded Full Report" in w for w in report.warnings)


def _llvm_parts() -> tuple[str, dict[str, Any]]:
    raw = (FIXTURES / "llvm__multithread-test.ips").read_text()
    header, body = raw.split("\n", 1)
    return header, json.loads(body)


def test_text_before_the_header_and_compact_body() -> None:
    header, body = _llvm_parts()
    raw = "Here is the crash I got:\n\n" + header + "\n" + json.dumps(body, separators=(",", ":"))
    report = parse_report(raw)
    assert report.format == "ips-json"
    assert (report.pid, report.crashed_thread_index, len(report.threads)) == (22511, 2, 3)
    assert report.warnings == []


def test_header_followed_by_a_text_body_is_read_as_text() -> None:
    header, _ = _llvm_parts()
    header = header.replace('"bug_type":"309"', '"bug_type":"109"')
    body = (FIXTURES / "llvm__multithread-test.crash").read_text()
    report = parse_report(header + "\n" + body)
    assert report.format == "ips-text"
    assert report.bug_type == "109"
    assert (report.pid, report.signal, report.crashed_thread_index) == (22511, "SIGSEGV", 2)
    assert [len(t.frames) for t in report.threads] == [5, 17, 8]


def test_frames_without_symbols_and_images_without_names() -> None:
    header, body = _llvm_parts()
    for t in body["threads"]:
        for f in t["frames"]:
            f.pop("symbol", None)
            f.pop("symbolLocation", None)
    del body["usedImages"][3]["name"]  # multithread-test: the name comes from its path
    body["usedImages"][0] = {"source": "A", "base": 0, "size": 0}  # no name, no path
    report = ips.parse_ips(header + "\n" + json.dumps(body, indent=2))
    crashed = report.crashed_thread
    assert crashed is not None and crashed.frames[0].symbol is None
    assert crashed.frames[0].image == "multithread-test"
    assert crashed.frames[0].offset == 6388  # imageOffset when there is no symbol
    assert crashed.frames[0].address == body["usedImages"][3]["base"] + 6388
    assert report.threads[0].frames[0].image is None
    assert "multithread-test" in verdict(report)


def test_truncated_ips_is_partial_and_says_so() -> None:
    raw = (FIXTURES / "limina__gputoolscapture-segv-on-commit.ips").read_text()
    report = parse_report(raw[: len(raw) // 2])
    assert report.warnings and "truncated" in report.warnings[0]
    assert 0 < len(report.threads) < 59
    assert report.pid == 82340 and report.signal == "SIGSEGV"
    only_header = parse_report(raw.split("\n", 1)[0] + "\n{")
    assert only_header.process_name == "limina-vmm" and only_header.threads == []
    assert only_header.warnings


def test_text_report_missing_parts_is_partial() -> None:
    raw = (FIXTURES / "llvm__multithread-test.crash").read_text()
    cut = raw.index("Thread 2 Crashed:")
    report = parse_report(raw[:cut])
    assert report.crashed_thread_index == 2 and len(report.threads) == 2
    assert any("crashed thread 2" in w for w in report.warnings)
    assert any("Binary Images" in w for w in report.warnings)


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    header, _ = _llvm_parts()
    deep = parse_report(header + "\n" + '{"a":' * 100_000 + "1" + "}" * 100_000)
    assert deep.threads == [] and any("nested too deeply" in w for w in deep.warnings)
    with pytest.raises(CrashParseError):
        parse_report("[" * 200_000 + "]" * 200_000)
    with pytest.raises(CrashParseError):
        parse_report('{"a":' * 100_000 + "1" + "}" * 100_000)  # no header, nothing usable
    report = parse_report(header + "\n" + '{"threads": ' + "[" * 100_000)
    assert report.threads == [] and report.warnings

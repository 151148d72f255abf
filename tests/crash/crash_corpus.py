"""The real-report corpus (tests/fixtures/crash-reports) and the facts MANIFEST.json records
for each report, computed from a parsed report. Shared by the fixture tests and by
benchmarks/crash_corpus.py, which prints the corpus figures.

Facts were written by reading each report (or, for JSON reports, with a JSON parser), never by
running gpumon on it. `complete` says whether the report is whole (exit 0) or a partial paste
(exit 4); `reasons_include` are words the partial result's reasons must contain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crash-reports"
MANIFEST: list[dict[str, Any]] = json.loads((FIXTURES / "MANIFEST.json").read_text())
SIMPLE = {
    "process_name",
    "pid",
    "bug_type",
    "os_version",
    "exception_type",
    "signal",
    "exception_subtype",
    "termination_reason",
    "crashed_thread_index",
    "application_specific_information",
    "message",
}


def _is_agx(image: str | None) -> bool:
    return bool(image) and str(image).startswith("AGX")


def _images_of_kind(report: Any, kind: str) -> list[str]:
    return sorted({f.image for t in report.threads for f in t.frames if f.kind == kind and f.image})


def fact(report: Any, key: str, expected: Any = None) -> Any:
    """The value of one MANIFEST fact, computed from the parsed report (works with older
    CrashReport versions too: a field they lack reads as None)."""
    from gpumon.crash.classify import verdict

    crashed = report.crashed_thread
    if key in SIMPLE:
        return getattr(report, key, None)
    if key == "crashed_thread_name":
        return crashed.name if crashed else getattr(report, "crashed_thread_name", None)
    if key == "crashed_thread_queue":
        return crashed.queue if crashed else getattr(report, "crashed_thread_queue", None)
    if key == "thread_count":
        return len(report.threads)
    if key == "named_thread_count":
        return sum(1 for t in report.threads if t.name)
    if key == "named_threads":
        return {str(t.index): t.name for t in report.threads if t.name}
    if key == "frames_per_thread":
        return {str(t.index): len(t.frames) for t in report.threads}
    if key == "crashed_thread_frame_count":
        return len(crashed.frames) if crashed else None
    if key == "crashed_thread_frame0_image":
        return crashed.frames[0].image if crashed and crashed.frames else None
    if key == "crashed_thread_frame0_symbol":
        return crashed.frames[0].symbol if crashed and crashed.frames else None
    if key == "crashed_thread_symbols_include":
        symbols = {f.symbol for f in crashed.frames} if crashed else set()
        return [s for s in expected if s in symbols]
    if key == "agx_frames_present":
        return any(_is_agx(f.image) for t in report.threads for f in t.frames)
    if key == "agx_frame_thread_indices":
        return sorted(t.index for t in report.threads if any(_is_agx(f.image) for f in t.frames))
    if key == "agx_frames_in_crashed_thread":
        return [f.index for f in crashed.frames if _is_agx(f.image)] if crashed else []
    if key == "agx_images_loaded":
        return sorted(i.name for i in report.images if _is_agx(i.name))
    if key == "driver_images":
        return _images_of_kind(report, "driver")
    if key == "framework_images":
        return _images_of_kind(report, "framework")
    if key == "verdict_includes":
        line = verdict(report)
        return [s for s in expected if s in line]
    raise AssertionError(f"MANIFEST fact {key!r} is not known to crash_corpus.fact: add it")


def mismatches(entry: dict[str, Any], report: Any) -> list[tuple[str, Any, Any]]:
    """(fact, expected, got) for every fact of `entry` that `report` gets wrong, the format,
    completeness and the partial result's reasons included."""
    wrong: list[tuple[str, Any, Any]] = []
    if report.format != entry["format"]:
        wrong.append(("format", entry["format"], report.format))
    complete = not report.warnings
    if complete != entry.get("complete", True):
        wrong.append(("complete", entry.get("complete", True), list(report.warnings)))
    for word in entry.get("reasons_include", []):
        if not any(word in w for w in report.warnings):
            wrong.append(("reasons_include", word, list(report.warnings)))
    for key, expected in entry["expected"].items():
        try:
            got = fact(report, key, expected)
        except (AttributeError, IndexError, TypeError) as e:
            got = f"<{type(e).__name__}>"
        if got != expected:
            wrong.append((key, expected, got))
    return wrong


def fact_count(entry: dict[str, Any]) -> int:
    """Facts checked for `entry`: format, completeness, each reason word, each expected fact."""
    return 2 + len(entry.get("reasons_include", [])) + len(entry["expected"])

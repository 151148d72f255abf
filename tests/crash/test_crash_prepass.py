"""The pre-pass (gpumon/crash/prepass.py) and the streaming reader, with hypothesis: wrapping a
real report in what people paste it into (fences, HTML, quotes, per-line prefixes,
indentation) gives the same facts; the pre-pass never raises; streamed lines are the lines."""

from __future__ import annotations

import html
import io
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpumon.crash import parse, prepass
from gpumon.crash.model import CrashReport
from gpumon.crash.parse import parse_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crash-reports"
REPORTS = {
    name: (FIXTURES / name).read_text()
    for name in (
        "llvm__multithread-test.crash",
        "llvm__multithread-test.ips",
        "gpumon__mlx0311-cpu-2threads.gdb-all.txt",
        "gpumon__mlx0311-cpu-2threads.faulthandler.txt",
        "gpumon__mlx0311-cpu-2threads.lldb-btall.txt",
        "gpumon__torch213-cpu-2threads.gdb-all.txt",
    )
}
PREFIXES = {
    "rank": "[rank0]: ",
    "timestamp": "2026-03-01T06:25:28.123Z ",
    "journal": "Oct 02 19:41:31 host python3[8800]: ",
    "ray": "(MegatronPolicyWorker[rank=8] pid=3294808, ip=10.109.19.209) ",
    "quote": "> ",
    "compose": "worker-1  | ",
}
SETTINGS = settings(
    max_examples=int(os.environ.get("GPUMON_PREPASS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def facts(r: CrashReport) -> tuple[object, ...]:
    crashed = r.crashed_thread
    return (
        r.format,
        r.signal,
        r.pid,
        r.crashed_thread_index,
        crashed.name if crashed else None,
        [(t.index, t.name, len(t.frames)) for t in r.threads],
        [(f.image, f.symbol, f.offset, f.line) for f in crashed.frames] if crashed else None,
        r.warnings,
    )


def _each_line(text: str, prefix: str) -> str:
    return "".join(prefix + line + "\n" for line in text.splitlines())


@st.composite
def wrapped(draw: st.DrawFn) -> tuple[str, str]:
    """(report name, the report wrapped the way pastes wrap it)."""
    name = draw(st.sampled_from(sorted(REPORTS)))
    text = REPORTS[name]
    if draw(st.booleans()):
        text = _each_line(text, " " * draw(st.integers(1, 8)))  # indented as a whole
    if draw(st.booleans()):
        lang = draw(st.sampled_from(["", "text", "gdb", "python", "console"]))
        text = f"```{lang}\n{text}```\n"
    if draw(st.booleans()):
        text = f'<pre><code class="lang-auto">{html.escape(text)}</code></pre>\n'
    for key in draw(st.lists(st.sampled_from(sorted(PREFIXES)), max_size=2, unique=True)):
        text = _each_line(text, PREFIXES[key])
    if draw(st.booleans()):
        prose = "Here is what I got when running the script:\n\n"
        text = prose + text + "\nAny idea?\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return name, text


@SETTINGS
@given(wrapped())
def test_a_wrapped_report_gives_the_same_facts(case: tuple[str, str]) -> None:
    name, text = case
    plain = parse_report(REPORTS[name])
    assert facts(parse_report(text)) == facts(plain)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_the_pre_pass_never_raises(text: str) -> None:
    cleaned, notes = prepass.clean(text)
    assert isinstance(cleaned, str) and all(isinstance(n, str) for n in notes)
    assert list(prepass.plan(text).apply(text.splitlines())) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["> ", "[rank1]: ", "<pre>", "&lt;", "```", "  ", "\t", "x"])))
def test_the_pre_pass_never_raises_on_wrapping_fragments(parts: list[str]) -> None:
    text = "\n".join("".join(parts[i:]) for i in range(len(parts)))
    prepass.clean(text)


def test_a_prefix_on_a_few_lines_is_content() -> None:
    text = REPORTS["gpumon__mlx0311-cpu-2threads.gdb-all.txt"]
    lines = text.splitlines()
    some = "\n".join(("> " + line if i % 5 == 0 else line) for i, line in enumerate(lines))
    assert prepass.plan(some).prefixes == ()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab\r\n\u00e9\u2603")), st.integers(1, 9))
def test_streamed_lines_are_the_lines(text: str, chunk: int) -> None:
    raw = text.encode()
    head, rest = raw[:chunk], raw[chunk:]
    saved = parse._CHUNK
    parse._CHUNK = chunk
    try:
        got = list(parse._lines(io.BytesIO(rest), head))
    finally:
        parse._CHUNK = saved
    assert got == text.replace("\r\n", "\n").replace("\r", "\n").splitlines()

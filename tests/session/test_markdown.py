"""What the Markdown evidence report promises beyond its golden bytes: findings first, a pivot
and a chart that draw only what was measured, intervals, attribution of a crash to the change
before it, folded timelines and stacks, one source note, escaped summaries, elided symbols."""

from __future__ import annotations

import re

from gpumon.crash.model import CrashReport, Frame, Thread
from gpumon.crash.render import markdown_summary
from gpumon.session.export import render
from gpumon.session.log import load
from gpumon.session.markdown import blocks

from .conftest import FIXTURES


def _md(name: str) -> str:
    return render(load(FIXTURES / name), "md")


def _section(md: str, title: str) -> str:
    start = md.index(f"\n## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end != -1 else len(md)]


def test_findings_come_first_and_restate_the_rates_with_intervals() -> None:
    md = _md("h200-mlx-policies")
    heads = re.findall(r"^## (.+)$", md, flags=re.M)
    assert heads[0] == "Findings" and heads.index("Environment") == 1
    findings = _section(md, "Findings")
    assert "mlx 0.32.4 gpu, shared, matmul 4096 bfloat16: 4 of 6 runs failed" in findings
    assert "2/2 at 2 threads" in findings
    rates = _section(md, "Crash rate per configuration")
    assert "| 2/2 (34%–100%) |" in rates  # Wilson 95% for 2 of 2
    assert "| 0/2 (0%–66%) |" in rates


def test_a_crash_right_after_a_shrink_is_told_as_following_it() -> None:
    md = _md("h200-mlx-shrink")
    # Recorded on an H200: MLX aborted 0.22 s after the pool went from 8 threads to 1.
    assert "at 1 thread, 0.22 s after threads 8→1" in _section(md, "Findings")
    assert "| 0.22 s after threads 8→1 |" in _section(md, "Crashes")


def test_the_pivot_and_chart_draw_only_clean_measurements() -> None:
    part = _section(_md("h200-mlx-policies"), "Throughput vs threads")
    header = next(line for line in part.splitlines() if line.startswith("| Threads"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == [
        "Threads",
        "mlx 0.32.4 gpu, locked",
        "mlx 0.32.4 gpu, per-thread",
        "mlx 0.32.4 gpu, shared",
    ]
    row2 = next(line for line in part.splitlines() if line.startswith("| 2 |"))
    # shared crashed in both runs at 2 threads (and one thread raised before its process died)
    assert row2.rstrip().endswith("| crash 2/2 · 1 thread failed |")
    chart = part[part.index("```mermaid") : part.index("```", part.index("xychart-beta"))]
    xs = re.search(r'x-axis "threads" \[(.+)\]', chart)
    assert xs is not None and xs.group(1) == "1, 2, 8"
    lines = re.findall(r"line \[(.+)\]", chart)
    assert len(lines) == 2 and all(len(v.split(", ")) == 3 for v in lines)
    assert "Not drawn: mlx 0.32.4 gpu, shared (no clean measurement at 2, 8 threads)" in part
    assert "blue — mlx 0.32.4 gpu, locked; orange — mlx 0.32.4 gpu, per-thread" in part


def test_sweep_runs_fold_and_the_timeline_is_folded_away() -> None:
    md = _md("h200-mlx-policies")
    repro = _section(md, "Reproduce")
    folded = repro[repro.index("The runs, in order") : repro.index("<details>")]
    rows = [line for line in folded.splitlines() if line.startswith("| +")]
    timeline = repro[repro.index("<details>") :]
    events = [line for line in timeline.splitlines() if line.startswith("| +")]
    assert 0 < len(rows) < len(events) / 3
    assert any("| 2 | SIGSEGV ×2 |" in r for r in rows)  # two runs that crashed, one row


def test_every_figure_names_its_source_once() -> None:
    md = _md("h200-mlx-policies")
    assert md.count("Source: ops counted by the worker threads") == 1
    assert md.count("Failed = crashed or hung while measuring") == 1


def test_stacks_and_artifacts_are_folded_under_a_plain_summary() -> None:
    crashes = _section(_md("fault-gdb"), "Crashes")
    assert "**Verdict:** SIGABRT" in crashes  # the verdict stays in view
    summaries = re.findall(r"<summary>(.*)</summary>", crashes)
    assert any(s.startswith("Stacks of fault-1-") for s in summaries)
    assert any(s.startswith("Artifacts in the session folder") for s in summaries)
    assert all("`" not in s for s in summaries)  # HTML: Markdown would show as written


def test_a_summary_cannot_open_html() -> None:
    out = blocks.details("<img src=x onerror=alert(1)> `x`", ["body"])
    assert out[1] == "<summary>&lt;img src=x onerror=alert(1)&gt; x</summary>"


def test_optional_columns_appear_only_when_a_row_has_something() -> None:
    rows = [["a", "—", "0"], ["b", "—", "3"]]
    got = blocks.table(["Name", "Soon after", "Raised"], rows, optional=("Soon after", "Raised"))
    assert got[0] == "| Name | Raised |" and got[3] == "| b | 3 |"


def test_long_cpp_symbols_are_elided_in_the_middle() -> None:
    symbol = "mlx::core::eval_impl<" + ", ".join(f"std::vector<T{i}>" for i in range(40)) + ">(x)"
    report = CrashReport(
        format="gdb",
        signal="SIGSEGV",
        threads=[
            Thread(index=0, crashed=True, frames=[Frame(index=0, image="libmlx.so", symbol=symbol)])
        ],
    )
    assert symbol in markdown_summary(report)
    short = markdown_summary(report, elide=True)
    assert symbol not in short and "mlx::core::eval_impl<…>(x)" in short


def test_chart_labels_cannot_break_out_of_their_quotes() -> None:
    out = blocks.xychart('a "b" `c`', "x", ["1", "2"], "y", [[1.0, 2.0]])
    assert "title \"a 'b' 'c'\"" in "\n".join(out)
    assert out[-2] == "    line [1, 2]" and "0 --> 3" in out[-3]


def test_verified_counts_of_this_sessions_script_are_in_the_findings(tmp_path) -> None:
    import shutil

    from gpumon.session import repro_runs

    folder = tmp_path / "h200-mlx-shrink"
    shutil.copytree(FIXTURES / "h200-mlx-shrink", folder)
    sid = load(folder).start.session_id

    def record(session_id: str, reproduced: int) -> repro_runs.ReproRunRecord:
        return repro_runs.ReproRunRecord(
            script="repro.py",
            sha256="ab" * 32,
            session_id=session_id,
            runs=5,
            reproduced=reproduced,
            signals=["SIGABRT"] * reproduced + [None] * (5 - reproduced),
            exit_codes=[None] * reproduced + [0] * (5 - reproduced),
            outcomes=["signal"] * reproduced + ["clean"] * (5 - reproduced),
            run_seconds=[1.0] * 5,
            recorded="SIGABRT",
            same_as_recorded=reproduced,
            timeout_s=30,
            python="/usr/bin/python3",
            framework="mlx 0.32.4",
            build="cuda",
            started_utc="2026-12-02T08:00:00.000Z",
            seconds=5.0,
        )

    repro_runs.append(folder, record(sid, 3))
    repro_runs.append(folder, record("another-session", 5))
    with open(repro_runs.runs_path(folder), "a", encoding="utf-8") as f:
        f.write('{"torn": \n')
    findings = _section(render(load(folder), "md"), "Findings")
    assert (
        "reproduced 3/5 (SIGABRT ×3, as recorded; Wilson 95% 23%–88%) by repro.py "
        "(sha256 abababababab…) under mlx 0.32.4 (cuda)" in findings
    )
    assert "5/5" not in findings  # another session's script is not this session's evidence


def test_threads_that_raised_are_neither_clean_runs_nor_a_throughput_of_zero() -> None:
    # Real: MLX CUDA on an H200, where every generate thread raised at 1 thread
    md = render(load(FIXTURES / "h200-mlx-cuda-shared"), "md", None)
    runs = next(x for x in md.splitlines() if "| 1 thread, shared, generate" in x)
    assert "clean" not in runs and "1 thread failed ×2" in runs
    pivot = next(x for x in md.splitlines() if x.startswith("| 1 |"))
    assert pivot == "| 1 | 2 threads failed |"
    findings = md.split("## Findings")[1].split("## Environment")[0]
    assert "raised in 2 worker threads of `mlx:gpu`" in findings
    assert 'cannot open source file "cuda/std/tuple"' in findings

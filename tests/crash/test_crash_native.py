"""Linux captures: gpumon's gdb driver output (tests/fixtures/native/gdb-*.txt, real), plain
gdb backtraces, and faulthandler dumps from CPython 3.10-3.14 (tests/fixtures/native and
tests/crash/samples: real ones, and constructed 3.14 ones marked as such)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpumon.crash.classify import crash_frames, first_interesting, short_symbol, verdict
from gpumon.crash.faulthandler import parse_faulthandler
from gpumon.crash.gdb import parse_frame_line, parse_gdb
from gpumon.crash.model import DRIVER, FRAMEWORK, PYTHON, SYSTEM, CrashParseError
from gpumon.crash.parse import parse_file, parse_report, sniff

NATIVE = Path(__file__).resolve().parents[1] / "fixtures" / "native"
SAMPLES = Path(__file__).parent / "samples"
GDB_SEGV = NATIVE / "gdb-segv-py311-3threads.txt"
GDB_ABRT = NATIVE / "gdb-sigabrt-torch-mlx-7threads.txt"


# --- gdb: the driver's capture format -------------------------------------------------------


def test_gdb_segv_capture() -> None:
    r = parse_file(GDB_SEGV)
    assert r.format == "gdb" and r.warnings == []
    assert (r.pid, r.process_name, r.signal) == (2241, "python3", "SIGSEGV")
    assert r.exception_subtype == "fault address 0x0"
    assert [t.index for t in r.threads] == [1, 2, 3]
    assert [t.name for t in r.threads] == ["python3", "fault_worker-0", "fault_worker-1"]
    assert [t.id for t in r.threads] == [2241, 2244, 2245]
    crashed = r.crashed_thread
    assert crashed is not None and crashed.index == 3 and crashed.id == 2245
    assert r.crashed_thread_index == 3 and [t.crashed for t in r.threads] == [0, 0, 1]
    assert crashed.frames[0].symbol == "__strlen_evex" and crashed.frames[0].kind == SYSTEM
    assert crashed.frames[3].image == "libffi.so.8" and crashed.frames[3].symbol is None
    assert verdict(r) == 'SIGSEGV (fault address 0x0) in string_at on thread 3 "fault_worker-1"'


def test_gdb_sigabrt_capture_with_torch_and_mlx_threads() -> None:
    r = parse_file(GDB_ABRT)
    assert r.warnings == [] and (r.pid, r.signal) == (2311, "SIGABRT")
    assert r.exception_subtype is None  # si_addr of SIGABRT is the sender, not an address
    assert len(r.threads) == 7
    names = {t.index: t.name for t in r.threads}
    assert names == {
        1: "python3",
        2: "python3",
        3: "torch_worker-0",
        4: "mlx_worker-1",
        5: "abort_worker-2",
        6: "mlx_worker-1",
        7: "torch_worker-0",
    }
    crashed = r.crashed_thread
    assert crashed is not None and (crashed.index, crashed.id) == (5, 2317)
    by = {t.index: t for t in r.threads}
    torch_frames = [f for f in by[3].frames if f.image == "libtorch_python.so"]
    assert len(torch_frames) == 2 and all(f.kind == FRAMEWORK for f in torch_frames)
    assert (
        torch_frames[1].symbol == "torch::autograd::THPVariable_addmm(_object*, _object*, _object*)"
    )
    mlx = [f for f in by[4].frames if f.kind == FRAMEWORK]
    assert [f.image for f in mlx] == ["libmlx.so"] * 3 + [
        "core.cpython-311-x86_64-linux-gnu.so"
    ] * 2
    assert by[6].frames[2].symbol.startswith("void mlx::core::matmul<float>(float const*")
    assert by[6].frames[2].kind == FRAMEWORK
    assert by[6].frames[0].kind != FRAMEWORK  # libblas bundled with mlx is not mlx itself
    assert verdict(r) == 'SIGABRT in os_abort_impl on thread 5 "abort_worker-2"'
    assert short_symbol(by[6].frames[3].symbol) == "std::_Function_handler::_M_invoke"


def test_plain_gdb_backtrace_without_header_says_crashed_thread_is_unknown() -> None:
    body = GDB_SEGV.read_text().split("\n\n", 1)[1]
    assert sniff(body) == "gdb"
    r = parse_report(body)
    assert r.crashed_thread is None and r.signal is None
    assert r.warnings == ["no capture header: the crashed thread is unknown"]
    assert "crashed thread not identified" in verdict(r)


def test_plain_gdb_backtrace_signal_handler_frame_marks_the_crashed_thread() -> None:
    body = GDB_SEGV.read_text().split("\n\n", 1)[1]
    head, crashed = body.split('"fault_worker-1"):\n', 1)
    # The handler frame is #0 and the thread's own frames move down by one, as gdb numbers them.
    crashed = re.sub(r"(?m)^#(\d+)", lambda m: f"#{int(m.group(1)) + 1}", crashed)
    crashed = "#0  0x00007ffff7842520 in <signal handler called>\n" + crashed
    r = parse_gdb(head + '"fault_worker-1"):\n' + crashed)
    assert r.crashed_thread is not None and r.crashed_thread.name == "fault_worker-1"
    assert "inferred" in r.warnings[0]
    # Frames above the trampoline belong to the handler; the verdict starts below it.
    assert crash_frames(r.crashed_thread)[0].symbol == "__strlen_evex"


def test_core_file_style_backtrace() -> None:
    eval_impl = (
        "mlx::core::eval_impl(std::vector<mlx::core::array, "
        "std::allocator<mlx::core::array> >, bool) () from "
        "/venv/lib/python3.12/site-packages/mlx/lib/libmlx.so"
    )
    text = "\n".join(
        [
            "[New LWP 4242]",
            "Core was generated by `python3 -m gpumon.worker'.",
            "Program terminated with signal SIGSEGV, Segmentation fault.",
            f"#0  0x00007f00deadbeef in {eval_impl}",
            "[Current thread is 2 (Thread 0x7f00aaaa (LWP 4243))]",
            "",
            "Thread 2 (Thread 0x7f00aaaa (LWP 4243)):",
            f"#0  0x00007f00deadbeef in {eval_impl}",
            "#1  0x00007f00cafe0001 in cuStreamSynchronize () from "
            "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
            "",
            "Thread 1 (Thread 0x7f00bbbb (LWP 4242)):",
            "#0  0x00007f00c0000001 in ?? ()",
            "",
        ]
    )
    r = parse_report(text)
    assert r.signal == "SIGSEGV" and r.crashed_thread_index == 2 and r.warnings == []
    assert [t.index for t in r.threads] == [1, 2]
    assert r.crashed_thread.frames[1].kind == DRIVER
    assert verdict(r).startswith("SIGSEGV in mlx::core::eval_impl (libmlx.so) on thread 2")
    # Frame #1 (the caller of the crashing mlx frame) is the driver: the driver called out.
    assert (
        "the crashed thread was itself called from the driver at libcuda.so.1 cuStreamSynchronize"
        in verdict(r)
    )


def test_gdb_snapshot_is_not_a_crash() -> None:
    text = (
        GDB_SEGV.read_text()
        .replace("kind: fatal", "kind: snapshot")
        .replace("signal: SIGSEGV (11)", "signal: SIGUSR2 (12)")
    )
    r = parse_report(text)
    assert r.signal is None and r.crashed_thread is None and r.message
    assert r.warnings == []
    assert verdict(r) == "stall snapshot of every thread (3 threads, none crashed)"


@pytest.mark.parametrize(
    ("line", "image", "symbol", "file", "lineno", "address"),
    [
        (
            "#5  0x00007fffde7f812f in blas_thread_server () from /x/libscipy_openblas.so",
            "libscipy_openblas.so",
            "blas_thread_server",
            None,
            None,
            0x7FFFDE7F812F,
        ),
        (
            "#2  time_sleep (self=<optimized out>, timeout_obj=<optimized out>) at "
            "./Modules/timemodule.c:383",
            None,
            "time_sleep",
            "./Modules/timemodule.c",
            383,
            None,
        ),
        (
            "#8  0x00007fffd5e623a1 in ?? () from /m/core.so",
            "core.so",
            None,
            None,
            None,
            0x7FFFD5E623A1,
        ),
        ("#23 0x0000555555555081 in _start ()", None, "_start", None, None, 0x555555555081),
        (
            "#3  0x00007fffd5427728 in std::_Function_handler<void (), std::_Bind<f(a const&)::"
            "{lambda()#1} ()> >::_M_invoke(std::_Any_data const&) () from /l/libmlx.so",
            "libmlx.so",
            "std::_Function_handler<void (), std::_Bind<f(a const&)::{lambda()#1} ()> >::"
            "_M_invoke(std::_Any_data const&)",
            None,
            None,
            0x7FFFD5427728,
        ),
        (
            '#1  0x0000000000401136 in foo (s=0x402010 "a (b) c") at t.c:4',
            None,
            "foo",
            "t.c",
            4,
            0x401136,
        ),
    ],
)
def test_gdb_frame_lines(line, image, symbol, file, lineno, address) -> None:
    parsed = parse_frame_line(line)
    assert parsed is not None
    frame, _path = parsed
    assert (frame.image, frame.symbol, frame.file, frame.line, frame.address) == (
        image,
        symbol,
        file,
        lineno,
        address,
    )


def test_gdb_wrapped_frame_lines_are_joined() -> None:
    text = (
        'Thread 1 (Thread 0x7f (LWP 10) "w"):\n'
        "#0  0x0000000000401136 in foo (a=1,\n"
        "    b=2) at t.c:4\n"
        "#1  0x0000000000401200 in main () at t.c:9\n"
        "Backtrace stopped: previous frame inner to this frame (corrupt stack?)\n"
    )
    r = parse_gdb(text)
    t = r.threads[0]
    assert [(f.symbol, f.line) for f in t.frames] == [("foo", 4), ("main", 9)]
    assert t.note and t.note.startswith("Backtrace stopped")


def test_gdb_without_any_backtrace() -> None:
    header_only = parse_gdb(
        "gpumon-native-stacks 1\nkind: fatal\npid: 7\nsignal: SIGBUS (7)\nlwp: 8\n\n"
        "(backtrace failed: no process)\n"
    )
    assert (header_only.pid, header_only.signal, header_only.threads) == (7, "SIGBUS", [])
    assert header_only.warnings == [
        "gdb could not take the backtraces: backtrace failed: no process",
        "the crashed thread (LWP 8) is not among the backtraces",
        "the capture has no thread backtraces",
    ]
    with pytest.raises(CrashParseError):
        parse_gdb("Thread 1 (LWP 3):\nnothing\n".replace("Thread 1 (LWP 3):", "no threads"))


# --- faulthandler --------------------------------------------------------------------------


def test_faulthandler_py311_fixtures() -> None:
    segv = parse_file(NATIVE / "faulthandler-py311-segv.txt")
    assert segv.format == "faulthandler" and segv.warnings == []
    assert (segv.signal, segv.message) == ("SIGSEGV", "Fatal Python error: Segmentation fault")
    assert len(segv.threads) == 3 and segv.crashed_thread_index == 0
    top = segv.threads[0].frames[0]
    assert (top.symbol, top.line, top.kind) == ("string_at", 519, PYTHON)
    assert top.file.endswith("ctypes/__init__.py")
    assert segv.threads[0].id == 0x00007FFFF69446C0
    abrt = parse_file(NATIVE / "faulthandler-py311-abort-4threads.txt")
    assert abrt.signal == "SIGABRT" and len(abrt.threads) == 4
    assert [len(t.frames) for t in abrt.threads] == [4, 4, 4, 1]
    assert verdict(abrt) == "SIGABRT in ab (gdbt/crash3.py:13) on thread 0x00007fffd2ffd6c0"


REAL = sorted(SAMPLES.glob("faulthandler-py*.txt"))


def test_real_samples_cover_four_versions() -> None:
    assert {p.name.split("-")[1] for p in REAL} == {"py310", "py311", "py312", "py313"}


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_faulthandler_samples(path: Path) -> None:
    r = parse_file(path)
    assert r.format == "faulthandler" and r.warnings == []
    kind = path.stem.split("-", 2)[2]
    if kind == "timeout-snapshot":
        assert r.message.startswith("Timeout (0:00:00.2") and r.crashed_thread is None
        assert len(r.threads) == 2 and r.signal is None
        assert verdict(r) == f"{r.message} (2 threads, none crashed)"
        return
    crashed = r.crashed_thread
    assert crashed is not None and crashed.frames and crashed.frames[0].kind == PYTHON
    if kind == "segv-named-thread":
        assert r.signal == "SIGSEGV" and len(r.threads) == 3
        assert [f.symbol for f in crashed.frames[:2]] == ["string_at", "crash"]
    elif kind == "segv-current-thread-only":
        assert len(r.threads) == 1 and crashed.frames[-1].symbol == "<module>"
    elif kind == "abort-in-gc":
        assert r.signal == "SIGABRT" and crashed.note == "garbage-collecting"
        assert crashed.frames[0].symbol == "__del__"
        assert "while garbage-collecting" in verdict(r)
    elif kind == "abort-stderr":
        # The program's own print before abort() is output, not a runtime's statement of the
        # cause: it is not taken as the reason (issue 12, F10).
        assert r.application_specific_information is None
        assert verdict(r).startswith("SIGABRT in work")
    else:  # pragma: no cover
        raise AssertionError(f"unknown sample kind {kind}")


def test_constructed_py314_c_stack_goes_on_the_current_thread() -> None:
    r = parse_file(SAMPLES / "constructed-faulthandler-py314-segv-c-stack.txt")
    assert r.warnings == [] and len(r.threads) == 3
    assert [t.name for t in r.threads] == ["mlx_worker-1", "mlx_worker-0", "python3"]
    crashed = r.crashed_thread
    assert crashed is not None and crashed.index == 0
    assert crashed.note == "C stack truncated by faulthandler"
    native = [f for f in crashed.frames if f.address is not None]
    python = [f for f in crashed.frames if f.file]
    assert len(native) == 10 and len(python) == 5
    assert crashed.frames[:10] == native  # C frames first: they are the innermost
    assert [f.index for f in crashed.frames] == list(range(15))
    assert native[4].image == "libmlx.so" and native[4].kind == FRAMEWORK
    assert native[4].offset == 0x3F1 and native[4].address == 0x7F3A1D2E31F1
    assert native[6].image == "core.cpython-314-x86_64-linux-gnu.so" and native[6].symbol is None
    assert native[6].kind == FRAMEWORK and native[6].offset == 0x1623A1
    assert native[8].image is None and native[8].address == 0x7F3A00001000
    assert native[0].kind == PYTHON  # libpython
    # faulthandler's own frames and glibc's nameless trampoline are not the crash site
    assert first_interesting(crashed) is native[4]
    assert verdict(r) == (
        'SIGSEGV in mlx::core::eval_impl (libmlx.so) on thread 0x00007f3a2b7fe6c0 "mlx_worker-1"'
    )
    paths = {i.name: i.path for i in r.images}
    assert paths["libmlx.so"].endswith("/mlx/lib/libmlx.so")


def test_constructed_py314_fault_in_a_thread_python_does_not_know() -> None:
    r = parse_file(SAMPLES / "constructed-faulthandler-py314-segv-foreign-thread.txt")
    assert r.warnings == [] and r.signal == "SIGABRT"
    assert r.application_specific_information == "terminate called without an active exception"
    assert len(r.threads) == 3 and r.threads[1].note == "no Python frame"
    crashed = r.crashed_thread
    assert crashed is not None and crashed.index == 2 and crashed.id is None
    assert crashed.note.startswith("C stack of the faulting thread")
    kinds = {f.image: f.kind for f in crashed.frames}
    assert kinds["AGXMetalG16X"] == DRIVER and kinds["Metal"] == DRIVER
    assert kinds["libmlx.dylib"] == FRAMEWORK and kinds["Python"] == PYTHON
    assert kinds["libsystem_platform.dylib"] == SYSTEM
    line = verdict(r)
    assert line.startswith(
        "SIGABRT (terminate called without an active exception) in AGXMetalG16X+0x1f0c4"
    )
    assert "a thread Python does not know" in line


def test_constructed_no_python_frame_and_current_thread_not_first() -> None:
    r = parse_file(SAMPLES / "constructed-faulthandler-py312-no-python-frame.txt")
    assert r.warnings == [] and r.crashed_thread_index == 1
    assert r.threads[0].note == "no Python frame" and r.threads[0].frames == []


def test_faulthandler_truncated_mid_line_is_partial() -> None:
    raw = (NATIVE / "faulthandler-py311-segv.txt").read_text()
    cut = raw.index('  File "/tmp/gdbt/crash2.py", line 8') + 20
    r = parse_faulthandler(raw[:cut])
    assert any("incomplete" in w for w in r.warnings)
    header_only = parse_faulthandler(
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n"
    )
    assert any("lists no frames" in w for w in header_only.warnings)


def test_faulthandler_parse_of_unrelated_text_fails() -> None:
    with pytest.raises(CrashParseError):
        parse_faulthandler("hello\nworld\n")


def test_gdb_thread_names_label_faulthandler_threads() -> None:
    from gpumon.crash.gdb import name_threads, pthread_names
    from gpumon.crash.parse import parse_file

    native = (NATIVE / "gdb-sigabrt-torch-mlx-7threads.txt").read_text()
    names = pthread_names(native)
    assert names[0x7FFFD2FFD6C0] == "abort_worker-2"
    py = name_threads(parse_file(NATIVE / "faulthandler-py311-abort-4threads.txt"), names)
    assert py.crashed_thread is not None and py.crashed_thread.name == "abort_worker-2"
    assert {t.name for t in py.threads} == {
        "abort_worker-2",
        "mlx_worker-1",
        "torch_worker-0",
        "python3",
    }

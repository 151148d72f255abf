"""The classification table, the verdict wording and the shared render pieces (rich and plain)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from gpumon.crash.classify import (
    classify_frame,
    classify_image,
    driver_entry,
    driver_threads,
    first_interesting,
    short_symbol,
    verdict,
)
from gpumon.crash.model import (
    APP,
    DRIVER,
    FRAMEWORK,
    PYTHON,
    SYSTEM,
    UNKNOWN,
    CrashReport,
    Frame,
    Thread,
)
from gpumon.crash.parse import parse_file
from gpumon.crash.render import (
    Fold,
    fold_frames,
    frame_text,
    markdown_summary,
    render_report,
    stack_lines,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crash-reports"
NATIVE = Path(__file__).resolve().parents[1] / "fixtures" / "native"


@pytest.mark.parametrize(
    ("image", "path", "kind"),
    [
        ("AGXMetalG16X", None, DRIVER),
        ("AGXMetalG13X", None, DRIVER),
        ("AGXMetalG16G_B0", None, DRIVER),
        ("IOGPU", None, DRIVER),
        ("Metal", None, DRIVER),
        ("MetalPerformanceShaders", None, DRIVER),
        ("MPSNeuralNetwork", None, DRIVER),
        ("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", DRIVER),
        ("libnvidia-ptxjitcompiler.so.1", None, DRIVER),
        ("libcudart.so.12", None, DRIVER),
        ("libcublasLt.so.12", None, DRIVER),
        ("libmlx.dylib", None, FRAMEWORK),
        ("libmlx.so", None, FRAMEWORK),
        (
            "core.cpython-311-darwin.so",
            "/v/site-packages/mlx/core.cpython-311-darwin.so",
            FRAMEWORK,
        ),
        ("core.cpython-311-darwin.so", "/v/site-packages/other/core.cpython-311-darwin.so", APP),
        ("libtorch_cpu.dylib", None, FRAMEWORK),
        ("libtorch_python.so", None, FRAMEWORK),
        ("libc10.so", None, FRAMEWORK),
        (
            "_C.cpython-311-x86_64-linux-gnu.so",
            "/v/torch/_C.cpython-311-x86_64-linux-gnu.so",
            FRAMEWORK,
        ),
        ("libpython3.11.so.1.0", None, PYTHON),
        ("python3.11", None, PYTHON),
        ("Python", "/Library/Frameworks/Python.framework/Versions/3.14/Python", PYTHON),
        (
            "_ctypes.cpython-311.so",
            "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311.so",
            PYTHON,
        ),
        ("libsystem_kernel.dylib", None, SYSTEM),
        ("libc.so.6", None, SYSTEM),
        ("libpthread.so.0", None, SYSTEM),
        ("dyld", None, SYSTEM),
        ("ld-linux-x86-64.so.2", None, SYSTEM),
        ("libstdc++.so.6", None, SYSTEM),
        ("libc++.1.dylib", None, SYSTEM),
        ("libobjc.A.dylib", None, SYSTEM),
        ("libffi.so.8", "/lib/x86_64-linux-gnu/libffi.so.8", SYSTEM),
        ("GPUToolsCapture", "/System/Library/PrivateFrameworks/GPUToolsCapture.framework/G", APP),
        ("AppKit", "/System/Library/Frameworks/AppKit.framework/Versions/C/AppKit", APP),
        ("multithread-test", None, APP),
    ],
)
def test_image_classification_table(image: str, path: str | None, kind: str) -> None:
    assert classify_image(image, path) == kind


def test_frames_without_image_use_symbol_and_source_file() -> None:
    def kind(**kw) -> str:
        return classify_frame(Frame(index=0, **kw))

    assert kind(symbol="__GI_raise", file="../sysdeps/posix/raise.c") == SYSTEM
    assert kind(symbol="start_thread", file="./nptl/pthread_create.c") == SYSTEM
    assert kind(symbol="os_abort_impl", file="./Modules/posixmodule.c") == PYTHON
    assert kind(symbol="_PyEval_EvalFrameDefault") == PYTHON
    assert kind(symbol="mlx::core::eval_impl(std::vector<mlx::core::array>)") == FRAMEWORK
    assert kind(symbol="at::native::addmm_out_cpu(at::Tensor const&)") == FRAMEWORK
    assert kind(symbol="AGX::ComputeContext<A, B>::performEnqueueKernel()") == DRIVER
    assert kind(symbol="my_function") == APP
    assert kind() == UNKNOWN
    assert kind(address=0x1234) == UNKNOWN


def test_short_symbol() -> None:
    assert short_symbol("AGX::ComputeContext<A, B>::performEnqueueKernel(x)") == (
        "AGX::ComputeContext::performEnqueueKernel"
    )
    assert short_symbol("mlx::core::eval_impl(std::vector<mlx::core::array>, bool)") == (
        "mlx::core::eval_impl"
    )
    assert short_symbol("void mlx::core::matmul<float>(float const*)") == "mlx::core::matmul"
    assert short_symbol("-[AGXG13XFamilyBlitContext copyFromBuffer:size:]") == (
        "-[AGXG13XFamilyBlitContext copyFromBuffer:size:]"
    )
    assert short_symbol("_ZN3mlx4core9eval_implESt6vectorINS0_5arrayESaIS2_EEb") == (
        "mlx::core::eval_impl"
    )


def _brief_example() -> CrashReport:
    """The crash the brief starts from, as a report: Thread-65 crashed in eval_impl while
    thread 3 was inside AGX performEnqueueKernel under dispatch_threadgroups."""
    agx = "AGX::ComputeContext<AGX::G16::Encoders, AGX::G16::Classes>::performEnqueueKernel()"
    t3 = Thread(
        index=3,
        frames=[
            Frame(index=0, image="IOGPU", symbol="IOGPUMetalCommandBufferStorageAlloc"),
            Frame(index=1, image="AGXMetalG16X", symbol=agx),
            Frame(
                index=2,
                image="libmlx.dylib",
                symbol="mlx::core::metal::CommandEncoder::"
                "dispatch_threadgroups(MTL::Size, MTL::Size)",
            ),
            Frame(index=3, image="libmlx.dylib", symbol="mlx::core::steel_gemm_splitk_axpby()"),
            Frame(index=4, image="libsystem_pthread.dylib", symbol="thread_start"),
        ],
    )
    t65 = Thread(
        index=65,
        name="Thread-65 (mlx_worker)",
        crashed=True,
        frames=[
            Frame(index=0, image="libsystem_platform.dylib", symbol="_platform_memmove"),
            Frame(
                index=1,
                image="libmlx.dylib",
                symbol="mlx::core::eval_impl(std::vector<"
                "mlx::core::array, std::allocator<mlx::core::array> >, bool)",
            ),
            Frame(index=2, image="Python", symbol="_PyEval_EvalFrameDefault"),
        ],
    )
    from gpumon.crash.classify import classify_report

    return classify_report(
        CrashReport(
            format="ips-json",
            exception_type="EXC_BAD_ACCESS",
            signal="SIGSEGV",
            exception_subtype="KERN_INVALID_ADDRESS at 0x8",
            crashed_thread_index=65,
            threads=[t3, t65],
        )
    )


def test_verdict_of_the_brief_example() -> None:
    report = _brief_example()
    assert [t.index for t in driver_threads(report)] == [3]
    assert driver_entry(report.threads[0]).image == "AGXMetalG16X"
    assert verdict(report) == (
        "SIGSEGV (KERN_INVALID_ADDRESS at 0x8) in mlx::core::eval_impl (libmlx.dylib) on thread "
        '65 "Thread-65 (mlx_worker)"; thread 3 was inside AGXMetalG16X '
        "AGX::ComputeContext::performEnqueueKernel"
    )


def test_verdict_adds_the_python_location() -> None:
    native = parse_file(NATIVE / "gdb-segv-py311-3threads.txt")
    python = parse_file(NATIVE / "faulthandler-py311-segv.txt")
    assert verdict(native, python) == (
        'SIGSEGV (fault address 0x0) in string_at on thread 3 "fault_worker-1"; '
        "Python was in string_at (ctypes/__init__.py:519)"
    )


def test_verdict_without_crashed_thread_or_signal() -> None:
    report = CrashReport(format="gdb", threads=[Thread(index=1)])
    assert verdict(report) == "crash (crashed thread not identified)"


def test_folding_keeps_the_top_frame_and_the_verdict_frame() -> None:
    report = parse_file(NATIVE / "gdb-sigabrt-torch-mlx-7threads.txt")
    crashed = report.crashed_thread
    items = fold_frames(crashed.frames, keep=first_interesting(crashed))
    assert items[0] is crashed.frames[0]
    assert isinstance(items[1], Fold) and items[1].what == "system frames"
    assert any(it is crashed.frames[4] for it in items)  # os_abort_impl, named by the verdict
    assert sum(len(it.frames) if isinstance(it, Fold) else 1 for it in items) == 22
    assert fold_frames(crashed.frames, fold=False) == crashed.frames
    assert not any(it is crashed.frames[4] for it in fold_frames(crashed.frames))
    assert stack_lines(crashed)[2].startswith("  4  os_abort_impl")


def test_stack_lines_plain_text() -> None:
    report = parse_file(FIXTURES / "limina__gputoolscapture-segv-on-commit.ips")
    t20 = report.threads[20]
    lines = stack_lines(t20, limit=12)
    assert lines[0] == "  0  libsystem_platform.dylib  _platform_memmove + 12"
    assert lines[3].endswith("[driver]") and "IOGPUResourceCreate + 248" in lines[3]
    assert lines[-1] == "     ... 16 more frames"
    full = stack_lines(t20, fold=False)
    assert len(full) == 28
    python = parse_file(NATIVE / "faulthandler-py311-segv.txt")
    assert stack_lines(python.threads[2]) == ["  0  <module>  /tmp/gdbt/crash2.py:11"]
    assert frame_text(Frame(index=0)) == "???"


def test_rich_render_highlights_driver_frames() -> None:
    report = parse_file(FIXTURES / "limina__gputoolscapture-segv-on-commit.ips")
    console = Console(file=io.StringIO(), width=200, color_system="truecolor", force_terminal=True)
    console.print(render_report(report))
    out = console.file.getvalue()
    assert "\x1b[1;37;41m" in out  # bold white on red: the AGX / IOGPU frames
    plain = Console(file=io.StringIO(), width=200, color_system=None)
    plain.print(render_report(report))
    text = plain.file.getvalue()
    assert text.index('Thread 22 "limina-vm:zfq0" CRASHED') < text.index("Thread 20 (queue")
    assert "Other threads (56):" in text  # thread 19 called into Mesa (a driver) from code
    assert 'Thread 0 "main" (queue com.apple.main-thread): 13 frames, top: ' in text


def test_markdown_summary() -> None:
    report = parse_file(NATIVE / "gdb-sigabrt-torch-mlx-7threads.txt")
    md = markdown_summary(report)
    assert md.startswith('**Verdict:** SIGABRT in os_abort_impl on thread 5 "abort_worker-2"')
    assert '**Thread 5 "abort_worker-2" LWP 2317 CRASHED**' in md
    assert md.count("```") == 2
    assert '- Thread 4 "mlx_worker-1" LWP 2316: 25 frames, top: mlx::core::Event::wait' in md

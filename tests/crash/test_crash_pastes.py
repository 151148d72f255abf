"""One test per class of messy input from issue 12 (F1-F12), each with a minimal sample, plus
the driver classification, long-frame elision, lldb, several reports in one input and the
rule that frame lists are never merged across a numbering restart.

The samples are small and written for the test; the real reports of each kind are in
tests/fixtures/crash-reports (see test_crash_macos_fixtures.py).
"""

from __future__ import annotations

import io
import json

from rich.console import Console

from gpumon.crash.classify import classify_image, driver_entry, short_symbol, verdict
from gpumon.crash.model import DRIVER, FRAMEWORK, CrashReport
from gpumon.crash.parse import parse_report
from gpumon.crash.render import render_report

FAULTHANDLER = """Fatal Python error: Segmentation fault

Current thread 0x00007f3f58fc16c0 [mlx_worker-1] (most recent call first):
  File "/w/work.py", line 6 in work
  File "/usr/lib/python3.12/threading.py", line 1010 in run

Thread 0x00007f3f5a000000 [python3] (most recent call first):
  File "/w/main.py", line 20 in <module>
"""


def facts(r: CrashReport) -> tuple[object, ...]:
    crashed = r.crashed_thread
    return (
        r.format,
        r.signal,
        r.message,
        len(r.threads),
        crashed.name if crashed else None,
        [[(f.symbol, f.file, f.line) for f in t.frames] for t in r.threads],
    )


def summary(r: CrashReport, *, full: bool = False) -> str:
    console = Console(file=io.StringIO(), width=2000, color_system=None)
    console.print(render_report(r, full=full))
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


# --- F1 frames without addresses ---------------------------------------------------------


def test_f1_a_frame_without_an_address_is_read() -> None:
    r = parse_report(
        "0   libmlx.dylib      mlx::core::gpu::check_error(MTL::CommandBuffer*) + 244\n"
    )
    (thread,) = r.threads
    (frame,) = thread.frames
    assert (frame.image, frame.symbol, frame.offset, frame.address) == (
        "libmlx.dylib",
        "mlx::core::gpu::check_error(MTL::CommandBuffer*)",
        244,
        None,
    )
    assert frame.kind == FRAMEWORK
    assert r.warnings  # a partial paste: exit 4, with its reasons
    assert "mlx::core::gpu::check_error (libmlx.dylib)" in verdict(r)


# --- F2 a prefix on every line -----------------------------------------------------------


def test_f2_per_line_prefixes_are_removed() -> None:
    plain = parse_report(FAULTHANDLER)
    lines = FAULTHANDLER.splitlines()
    for wrapped, note in (
        ("\n".join(f"[rank0]: {line}" for line in lines), "rank"),
        ("\n".join(f"2024-05-10 22:43:34,776 {line}" for line in lines), "timestamps"),
        ("\n".join(f"> {line}" for line in lines), "quoting"),
        ("\n".join(f"(Worker pid=31, ip=10.0.0.1) {line}" for line in lines), "Ray"),
    ):
        r = parse_report(wrapped)
        assert facts(r) == facts(plain), note
        assert any(note in n for n in r.notes), r.notes
        assert r.warnings == []


# --- F3 gdb's own statement of the crash -------------------------------------------------


def test_f3_received_signal_names_the_crashed_thread() -> None:
    r = parse_report(
        'Thread 2 "mlx_worker-0" received signal SIGSEGV, Segmentation fault.\n'
        "[Switching to Thread 0x7ffff4fff6c0 (LWP 5523)]\n"
        "(gdb) bt\n"
        "#0  0x00007ffff62128a5 in mlx::core::eval_impl(bool) () from /v/mlx/lib/libmlx.so\n"
        "#1  0x00007ffff621417b in mlx::core::eval() () from /v/mlx/lib/libmlx.so\n"
    )
    assert r.warnings == [] and r.signal == "SIGSEGV"
    crashed = r.crashed_thread
    assert crashed is not None and (crashed.index, crashed.name, crashed.id) == (
        2,
        "mlx_worker-0",
        5523,
    )
    assert verdict(r) == 'SIGSEGV in mlx::core::eval_impl (libmlx.so) on thread 2 "mlx_worker-0"'


def test_f3_program_received_signal_and_the_terminate_line() -> None:
    r = parse_report(
        "terminate called after throwing an instance of 'c10::Error'\n"
        "  what():  CUDA error: an illegal memory access was encountered\n"
        "\n"
        "Program received signal SIGABRT, Aborted.\n"
        "(gdb) bt\n"
        "#0  0x00007ffff7c969fc in pthread_kill () from /lib/x86_64-linux-gnu/libc.so.6\n"
        "#1  0x00007ffff7c42476 in raise () from /lib/x86_64-linux-gnu/libc.so.6\n"
    )
    assert r.warnings == [] and r.signal == "SIGABRT" and r.crashed_thread is not None
    assert r.application_specific_information == (
        "terminate called after throwing an instance of 'c10::Error'\n"
        "what():  CUDA error: an illegal memory access was encountered"
    )
    assert verdict(r).startswith("SIGABRT (terminate called after throwing")


# --- F4 the header names a crashed thread whose section is missing -----------------------


def test_f4_crashed_thread_named_by_the_header_only() -> None:
    r = parse_report(
        "Process:               Slicer [81080]\n"
        "Crashed Thread:        30  Dispatch queue: com.Metal.CompletionQueueDispatch\n"
        "Exception Type:        EXC_BAD_ACCESS (SIGSEGV)\n"
        "\n"
        "Thread 0::  Dispatch queue: com.apple.main-thread\n"
        "0   libpython3.9.dylib    0x13a3f6386 _PyDict_GetItem_KnownHash + 54\n"
    )
    assert (r.crashed_thread_index, r.crashed_thread_queue) == (
        30,
        "com.Metal.CompletionQueueDispatch",
    )
    assert r.crashed_thread is None
    assert any("crashed thread 30" in w for w in r.warnings)
    line = verdict(r)
    assert "crashed thread not identified" not in line
    assert line == (
        "SIGSEGV on thread 30 (queue com.Metal.CompletionQueueDispatch), "
        "whose backtrace is not in the report"
    )


# --- F5 an unrecognised thread header never merges two threads ---------------------------


def test_f5_gdb_header_without_colon_and_after_html() -> None:
    r = parse_report(
        "Thread 2 (Thread 0x7f01 (LWP 12))\n"
        "#0  0x01 in a () from /l/liba.so\n"
        "#1  0x02 in b () from /l/liba.so\n"
        '<pre><code class="lang-auto">Thread 1 (Thread 0x7f00 (LWP 11)):\n'
        "#0  0x03 in c () from /l/libc2.so\n"
        "</code></pre>\n"
    )
    assert [(t.index, [f.symbol for f in t.frames]) for t in r.threads] == [
        (1, ["c"]),
        (2, ["a", "b"]),
    ]


def test_f5_numbering_restart_without_a_header_is_another_thread() -> None:
    r = parse_report(
        "Thread 0 Crashed:\n"
        "0   libfoo.dylib   0x1000 foo + 1\n"
        "1   libfoo.dylib   0x1004 bar + 2\n"
        "0   libbaz.dylib   0x2000 baz + 3\n"
        "1   libbaz.dylib   0x2004 qux + 4\n"
    )
    assert [[f.symbol for f in t.frames] for t in r.threads] == [["foo", "bar"], ["baz", "qux"]]
    assert r.threads[1].index < 0 and not r.threads[1].crashed
    assert any("restarted" in w for w in r.warnings)


# --- F6 TestFlight's (:-1) ---------------------------------------------------------------


def test_f6_testflight_source_placeholders_are_dropped() -> None:
    r = parse_report(
        "Thread 0 Crashed:\n"
        "0   MyApp   0x0000000102a8c0f4 closure #1 in ViewController.viewDidLoad() + 40 (:-1)\n"
        "1   MyApp   0x0000000102a8c100 thunk for closure + 28 (<compiler-generated>:0)\n"
        "2   MyApp   0x0000000102a8c200 main + 12 (main.swift:7)\n"
    )
    frames = r.threads[0].frames
    assert [f.symbol for f in frames] == [
        "closure #1 in ViewController.viewDidLoad()",
        "thunk for closure",
        "main",
    ]
    assert [(f.file, f.line) for f in frames] == [(None, None), (None, None), ("main.swift", 7)]


# --- F7 old reports name the signal as the exception type --------------------------------


def test_f7_exception_type_sigsegv_is_the_signal() -> None:
    r = parse_report(
        "Incident Identifier: 6B0F2C4A\n"
        "Process:         MyApp [412]\n"
        "Exception Type:  SIGSEGV\n"
        "Exception Codes: SEGV_ACCERR at 0x0\n"
        "Crashed Thread:  0\n"
        "\n"
        "Thread 0 Crashed:\n"
        "0   MyApp   0x000034a2 -[Foo bar] + 10\n"
    )
    assert (r.signal, r.exception_type, r.exception_subtype) == (
        "SIGSEGV",
        None,
        "SEGV_ACCERR at 0x0",
    )
    assert verdict(r).startswith("SIGSEGV (SEGV_ACCERR at 0x0) in -[Foo bar]")


# --- F8 a complete old report is complete ------------------------------------------------


def test_f8_pre_leopard_binary_images_without_uuid() -> None:
    r = parse_report(
        "Process:         Foo [123]\n"
        "Exception:  EXC_BAD_ACCESS (0x0001)\n"
        "Exception Type:  EXC_BAD_ACCESS (SIGBUS)\n"
        "Crashed Thread:  0\n"
        "\n"
        "Thread 0 Crashed:\n"
        "0   libSystem.B.dylib   0x90002a4c strlen + 12\n"
        "1   com.foo.Foo         0x00002b30 main + 40\n"
        "\n"
        "Binary Images Description:\n"
        "    0x1000 -     0x3fff com.foo.Foo 1.0\t/Applications/Foo.app/Contents/MacOS/Foo\n"
        "0x90000000 - 0x901bcfff libSystem.B.dylib \t/usr/lib/libSystem.B.dylib\n"
    )
    assert r.warnings == []
    assert [i.name for i in r.images] == ["Foo", "libSystem.B.dylib"]
    assert (
        r.images[0].uuid is None and r.images[0].path == "/Applications/Foo.app/Contents/MacOS/Foo"
    )


# --- F9 a libc++ assertion as a symbol ---------------------------------------------------


def test_f9_a_trap_message_is_not_cut_at_its_comparison() -> None:
    trap = (
        "__clang_trap_msg$libc++$/Library/Developer/CommandLineTools/SDKs/MacOSX.sdk/usr/"
        "include/c++/v1/vector:1435: assertion __n < size() failed: vector[] index out of bounds"
    )
    assert short_symbol(trap) == "assertion __n < size() failed: vector[] index out of bounds"
    assert short_symbol("std::__1::vector<float>::operator[][abi:ne180100](unsigned long)") == (
        "std::__1::vector::operator[]"
    )
    r = parse_report(
        "Exception Type:  EXC_BREAKPOINT (SIGTRAP)\n"
        "Crashed Thread:  0\n"
        "\n"
        "Thread 0 Crashed:\n"
        f"0   libmlx.dylib   0x0000000104f2c2a8 {trap} + 0 [inlined]\n"
        "1   libmlx.dylib   0x0000000104f2c2a8 mlx::core::take(mlx::core::array) + 92\n"
    )
    line = verdict(r)
    assert "assertion __n < size() failed: vector[] index out of bounds (libmlx.dylib)" in line
    assert " in __n" not in line


# --- F10 prose before a faulthandler dump is not the cause -------------------------------


def test_f10_output_before_the_dump_is_not_the_cause() -> None:
    prose = "epoch : 5, avg val loss : 6.3922\nroot@host:/w# python train.py\n"
    r = parse_report(prose + FAULTHANDLER)
    assert r.application_specific_information is None
    assert verdict(r) == 'SIGSEGV in work (w/work.py:6) on thread 0x00007f3f58fc16c0 "mlx_worker-1"'
    cause = "terminate called without an active exception\n"
    r = parse_report(prose + cause + FAULTHANDLER.replace("Segmentation fault", "Aborted"))
    assert r.application_specific_information == "terminate called without an active exception"
    # A progress bar on the same line as the fatal error line
    r = parse_report("Epoch 0: | 4540/? [07:57<00:00,  9.51it/s]" + FAULTHANDLER)
    assert r.message == "Fatal Python error: Segmentation fault" and r.warnings == []


# --- F11 HTML entities -------------------------------------------------------------------


def test_f11_html_entities_are_decoded() -> None:
    r = parse_report(
        "Exception Type:  EXC_BAD_ACCESS (SIGSEGV)\n"
        "Exception Codes: KERN_INVALID_ADDRESS at 0xee00 -&gt; 0x0000 (possible pointer "
        "authentication failure)\n"
        "Crashed Thread:  0\n\n"
        "Thread 0 Crashed:\n"
        "0   QtCore   0x10dbb20e6 QEventLoop::exec(QFlags&lt;QEventLoop::ProcessEventsFlag&gt;) "
        "+ 502\n"
    )
    assert r.exception_subtype == (
        "KERN_INVALID_ADDRESS at 0xee00 -> 0x0000 (possible pointer authentication failure)"
    )
    assert (
        r.threads[0].frames[0].symbol == "QEventLoop::exec(QFlags<QEventLoop::ProcessEventsFlag>)"
    )
    assert any("entities" in n for n in r.notes)


# --- F12 kernel panics -------------------------------------------------------------------

PANIC_STRING = (
    'panic(cpu 8 caller 0xfffffe00513bbe28): "completeMemory() prepare count underflow" '
    "@IOGPUMemory.cpp:550\n"
    "Debugger message: panic\n"
    "OS version: 25E253\n"
    "Panicked task 0xfffffe1e4174a418: 367197 pages, 25 threads: pid 50218: Python\n"
    "Panicked thread: 0xfffffe1b46b2c000, backtrace: 0xfffffe6100b0f5b0, tid: 4259031\n"
    "\t\t  lr: 0xfffffe004c51dd20  fp: 0xfffffe6100b0f640\n"
    "\t\t  lr: 0xfffffe004c67f5a8  fp: 0xfffffe6100b0f6b0\n"
    "      Kernel Extensions in backtrace:\n"
    "         com.apple.iokit.IOGPUFamily(130.13)[1CC2AF3D-E6EF-3DC2-B32B-8DBD8CAA09B7]"
    "@0xfffffe0051390000->0xfffffe00513d3fff\n"
)


def test_f12_panic_ips_and_panic_text() -> None:
    header = {"bug_type": "210", "timestamp": "2026-04-24 10:00:00.00 +0200"}
    body = {"build": "macOS 26.4.1 (25E253)", "panicString": PANIC_STRING}
    for data in (json.dumps(header) + "\n" + json.dumps(body, indent=2), PANIC_STRING):
        r = parse_report(data)
        assert r.format == "panic" and r.warnings == []
        assert r.message == PANIC_STRING.splitlines()[0]
        assert (r.process_name, r.pid) == ("Python", 50218)
        assert len(r.threads[0].frames) == 2 and r.images[0].name == "com.apple.iokit.IOGPUFamily"
        assert verdict(r) == (
            f"kernel panic: {PANIC_STRING.splitlines()[0]} (panicked task Python [50218])"
        )
        assert "crashed thread not identified" not in verdict(r)


# --- classification ----------------------------------------------------------------------


def test_user_space_gpu_drivers_are_drivers() -> None:
    for image in (
        "AppleMetalOpenGLRenderer",
        "libvulkan_radeon.so",
        "libvulkan_intel.so",
        "libvulkan_kosmickrisp.dylib",
        "libgallium-24.2.6-1ubuntu1.so",
        "radeonsi_dri.so",
        "zink_dri.so",
        "libGLX_mesa.so.0",
        "amdvlk64.so",
        "libamdhip64.so.6",
        "libnvidia-glcore.so.550.54",
    ):
        assert classify_image(image) == DRIVER, image


def test_completion_queue_crash_names_the_informative_driver_frame() -> None:
    r = parse_report(
        "Exception Type:  EXC_CRASH (SIGABRT)\n"
        "Crashed Thread:  1\n\n"
        "Thread 1 Crashed::  Dispatch queue: com.Metal.CompletionQueueDispatch\n"
        "0   libsystem_kernel.dylib   0x1 __pthread_kill + 8\n"
        "1   libc++abi.dylib          0x2 __cxa_throw + 92\n"
        "2   libmlx.dylib             0x3 mlx::core::gpu::check_error(MTL::CommandBuffer*) + 244\n"
        "3   Metal                    0x4 MTLDispatchListApply + 52\n"
        "4   Metal                    0x5 -[_MTLCommandBuffer didCompleteWithStartTime:endTime:"
        "error:] + 600\n"
        "5   IOGPU                    0x6 __IOGPUNotificationQueueSetDispatchQueue_block_invoke "
        "+ 156\n"
        "6   libdispatch.dylib        0x7 _dispatch_client_callout4 + 20\n"
    )
    entry = driver_entry(r.threads[0])
    assert entry is not None
    assert entry.symbol == "-[_MTLCommandBuffer didCompleteWithStartTime:endTime:error:]"
    assert verdict(r).endswith(
        "the crashed thread was itself called from the driver at Metal "
        "-[_MTLCommandBuffer didCompleteWithStartTime:endTime:error:]"
    )


# --- readability -------------------------------------------------------------------------


def test_long_template_frames_are_elided_in_summaries_only() -> None:
    symbol = (
        "void* std::__1::__thread_proxy[abi:v160006]<std::__1::tuple<std::__1::unique_ptr<"
        + "std::__1::__thread_struct, " * 12
        + "std::__1::default_delete<std::__1::__thread_struct>>, ThreadPool::"
        "ThreadPool(unsigned long)::'lambda'()>>(void*)"
    )
    r = parse_report(f"Thread 0 Crashed:\n0   libmlx.dylib   0x1000 {symbol} + 52\n")
    short = summary(r)
    assert "void* std::__1::__thread_proxy[abi:v160006]<…>(void*) + 52" in short
    assert symbol in summary(r, full=True)
    assert r.threads[0].frames[0].symbol == symbol  # --json: the data is whole


# --- lldb --------------------------------------------------------------------------------


def test_lldb_macos_exception_and_old_headers() -> None:
    r = parse_report(
        "(lldb) bt\n"
        "* thread #1, queue = 'com.apple.main-thread', stop reason = EXC_BAD_ACCESS "
        "(code=1, address=0x8)\n"
        "  * frame #0: 0x00000001002c3f10 libmlx.dylib`mlx::core::eval_impl(std::__1::vector<"
        "mlx::core::array>, bool) + 200\n"
        "    frame #1: 0x00000001002c4000 libmlx.dylib`mlx::core::eval(std::__1::vector<"
        "mlx::core::array>) + 64\n"
        "    frame #2: 0x0000000100001f00 a.out`main(argc=1, argv=0x16fdff4f8) at main.c:5:3\n"
    )
    assert (r.format, r.exception_type, r.exception_subtype) == (
        "lldb",
        "EXC_BAD_ACCESS",
        "code=1, address=0x8",
    )
    crashed = r.crashed_thread
    assert crashed is not None and crashed.queue == "com.apple.main-thread"
    assert [f.symbol for f in crashed.frames][2] == "main"
    assert (crashed.frames[2].file, crashed.frames[2].line) == ("main.c", 5)
    old = parse_report(
        "* thread #2: tid = 0x0001, 0x00007fffbb786756 libsystem_kernel.dylib`close + 10, "
        "stop reason = signal SIGSEGV\n"
        "    frame #0: 0x00007fffbb786756 libsystem_kernel.dylib`close + 10\n"
        "    frame #1: 0x0000000106869c10 ld`Snapshot::createSnapshot() + 270\n"
    )
    assert old.crashed_thread is not None and old.crashed_thread.id == 1
    assert old.signal == "SIGSEGV" and old.warnings == []


# --- several reports in one input --------------------------------------------------------


def test_several_reports_the_first_is_read_and_the_rest_counted() -> None:
    second = FAULTHANDLER.replace("Segmentation fault", "Aborted").replace("work.py", "other.py")
    r = parse_report(FAULTHANDLER + "\n" + second + "\n" + second)
    assert r.signal == "SIGSEGV" and len(r.threads) == 2
    assert r.warnings == ["the input holds 3 reports: only the first was read"]


# --- PyTorch's own backtraces -------------------------------------------------------------

C10_FRAMES = (
    "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x57 "
    "(0x7fefa74cf897 in /v/torch/lib/libc10.so)\n"
    "frame #1: <unknown function> + 0xe32e33 (0x7fef5aed7e33 in /v/torch/lib/libtorch_cuda.so)\n"
)


def test_c10_exception_and_fatal_signal_backtraces_are_read() -> None:
    r = parse_report(
        "Exception raised from ncclCommWatchdog at ProcessGroupNCCL.cpp:1418 (most recent call "
        "first):\n" + C10_FRAMES
    )
    assert r.format == "c10" and r.signal is None and r.warnings
    assert [f.image for f in r.threads[0].frames] == ["libc10.so", "libtorch_cuda.so"]
    assert r.threads[0].frames[0].offset == 0x57 and r.threads[0].frames[1].symbol is None
    assert verdict(r).startswith("Exception raised from ncclCommWatchdog")
    r = parse_report("SIGABRT(6), PID: 36779, Thread 36779: \n" + C10_FRAMES)
    assert (r.signal, r.pid, r.crashed_thread_index, r.warnings) == ("SIGABRT", 36779, 0, [])

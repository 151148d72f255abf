"""The one crash model every parser produces: report → threads → frames.

macOS `.ips`, classic text reports, gdb backtraces and faulthandler dumps all end up here, so
the TUI, the exporters and `gpumon crash` render one shape. msgspec Structs so a parsed report
can travel inside a session event unchanged.
"""

from __future__ import annotations

import msgspec

# Frame classes, most interesting first; see gpumon.crash.classify.
DRIVER = "driver"  # GPU driver / runtime: AGXMetal*, IOGPU, Metal, MPS, libcuda, libnvidia-*
FRAMEWORK = "framework"  # libmlx, libtorch*, torch/_C, mlx core extension
PYTHON = "python"  # the interpreter itself, or a Python-level frame from faulthandler
SYSTEM = "system"  # libc, libsystem_*, pthread, kernel
APP = "app"  # anything else with a name
UNKNOWN = "unknown"
FRAME_KINDS = (DRIVER, FRAMEWORK, PYTHON, SYSTEM, APP, UNKNOWN)


class Frame(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    image: str | None = None  # binary image (dylib / .so / executable) basename
    symbol: str | None = None  # function name (demangled where the source gave it so)
    offset: int | None = None  # offset into symbol (or into image when no symbol)
    address: int | None = None
    file: str | None = None  # source file (Python frames, gdb frames with debug info)
    line: int | None = None
    kind: str = UNKNOWN


class Thread(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int  # position in the report (what `faultingThread` indexes)
    id: int | None = None  # OS thread id / LWP / pthread id where the source gives one
    name: str | None = None
    queue: str | None = None  # dispatch queue (macOS)
    crashed: bool = False
    frames: list[Frame] = msgspec.field(default_factory=list)
    # What the source says about the thread besides its frames: faulthandler's
    # "garbage-collecting" / "no Python frame", "C stack truncated", gdb's "backtrace stopped".
    note: str | None = None
    # Frames the source listed after the last one kept: a summary of a huge dump keeps the
    # first frames of each thread and only counts the rest, so memory stays bounded.
    frames_omitted: int = 0
    # The pthread handle where the source gives it beside the OS id (gdb's `Thread 0x7f..
    # (LWP 12)`): faulthandler names threads by this handle, so it joins the two dumps.
    pthread: int | None = None


class BinaryImage(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str | None = None
    path: str | None = None
    base: int | None = None
    size: int | None = None
    uuid: str | None = None
    arch: str | None = None


class CrashReport(msgspec.Struct, kw_only=True, omit_defaults=True):
    # ips-json | ips-text | text-crash | text-macos26 | faulthandler | gdb | lldb | coredump |
    # panic | c10
    format: str
    process_name: str | None = None
    pid: int | None = None
    bug_type: str | None = None
    os_version: str | None = None
    exception_type: str | None = None  # EXC_BAD_ACCESS, EXC_CRASH ...
    signal: str | None = None  # SIGSEGV, SIGABRT ...
    exception_subtype: str | None = None  # KERN_INVALID_ADDRESS at 0x8
    termination_reason: str | None = None
    crashed_thread_index: int | None = None
    application_specific_information: str | None = None
    # A Python 3.14+ faulthandler dump or a debugger can carry a message line such as
    # "Fatal Python error: Segmentation fault" or "terminate called without an active exception".
    message: str | None = None
    threads: list[Thread] = msgspec.field(default_factory=list)
    images: list[BinaryImage] = msgspec.field(default_factory=list)
    # Why the result is partial, in words ("truncated after thread 3"). Empty = complete.
    warnings: list[str] = msgspec.field(default_factory=list)
    source_path: str | None = None
    # What the report's header says about the crashed thread. Kept on the report as well as on
    # the thread, because a pasted report often names a crashed thread whose section is missing
    # (`Crashed Thread: 30  Dispatch queue: com.Metal.CompletionQueueDispatch`).
    crashed_thread_name: str | None = None
    crashed_thread_queue: str | None = None
    # What was done to the input before it was read (Markdown fences, HTML, per-line prefixes
    # removed; which of several reports was read). Facts about the input, not about the crash.
    notes: list[str] = msgspec.field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why the result is partial (the same list as `warnings`); empty when complete."""
        return self.warnings

    @property
    def crashed_thread(self) -> Thread | None:
        for t in self.threads:
            if t.crashed:
                return t
        if self.crashed_thread_index is not None:
            for t in self.threads:
                if t.index == self.crashed_thread_index:
                    return t
        return None


class CrashParseError(ValueError):
    """The input is not a crash report gpumon can read; the message is one user-facing line."""


def with_thread_names(python: CrashReport, native: CrashReport | None) -> CrashReport:
    """The faulthandler dump with its threads named as the native report names them (Python
    before 3.14 prints only the pthread handle; gdb prints handle, LWP and name). The report
    given is not changed; it is returned as it is when there is nothing to add."""
    if native is None:
        return python
    names = {t.pthread: t.name for t in native.threads if t.pthread is not None and t.name}
    if not names or all(t.name or t.id not in names for t in python.threads):
        return python
    threads = [
        t if t.name or t.id not in names else msgspec.structs.replace(t, name=names[t.id])
        for t in python.threads
    ]
    return msgspec.structs.replace(python, threads=threads)

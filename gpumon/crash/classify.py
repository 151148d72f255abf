"""Which layer each frame belongs to (driver, framework, Python, system, app), and the verdict.

A crash report is only useful to a framework maintainer if the GPU-driver and framework frames
stand out from hundreds of libsystem / libc frames, so every parser's output goes through
`classify_report`. Rules look at the image (basename and, where the report gives it, the full
path), then fall back to the symbol and the source file, because gdb frames with debug info
often name no image at all. The table is documented in docs/crash-capture.md.
"""

from __future__ import annotations

import re

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

# --- image rules (matched against the basename) -------------------------------------------
_DRIVER_IMAGE = re.compile(
    r"""^(?:
        AGX.*                              # Apple GPU driver: AGXMetalG13X, AGXMetalG16G_B0 ...
      | IOGPU.*                            # IOGPU user-space driver interface
      | Metal                              # Metal.framework itself
      | MetalPerformanceShaders.*
      | MPS[A-Z].*                         # MPSCore, MPSNeuralNetwork, MPSMatrix ...
      | libcuda\.so.* | libcuda\.dylib
      | libnvidia-.*                       # libnvidia-ptxjitcompiler, libnvidia-nvvm ...
      | libcudart.* | libcublas.* | libcudnn.* | libnvrtc.* | libnvJitLink.*
    )$""",
    re.X,
)
_FRAMEWORK_IMAGE = re.compile(r"^(?:libmlx.*|libtorch.*|libc10.*)$")
# Extension modules whose basename alone is ambiguous: decided with the path.
_TORCH_C = re.compile(r"^_C(?:\.cpython-[^/]*|\.abi3)?\.(?:so|dylib|pyd)$|^_C$")
_MLX_CORE = re.compile(r"^core(?:\.cpython-[^/]*|\.abi3)?\.(?:so|dylib|pyd)$")
_PYTHON_IMAGE = re.compile(r"^(?:libpython.*|python[0-9.]*t?|Python|pythonw?[0-9.]*\.exe)$")
_SYSTEM_IMAGE = re.compile(
    r"""^(?:
        libsystem_.* | libc\.so.* | libc-[0-9.]+\.so | libc\.dylib
      | libpthread.* | libdyld.* | dyld | ld-linux.* | ld64\.so.* | linux-vdso\.so.*
      | libstdc\+\+.* | libc\+\+.* | libobjc.* | libgcc_s.* | libm\.so.* | libdl\.so.*
      | librt\.so.* | libdispatch\.dylib | libxpc\.dylib
      | kernel | mach_kernel | kernel\..* | \[kernel\.kallsyms\]
      | CoreFoundation | Foundation
    )$""",
    re.X,
)
# Paths of OS-supplied C libraries: macOS's /usr/lib (libSystem and friends) and a Linux
# distribution's library directories. /System/Library is deliberately not here: Apple's
# frameworks (Accelerate, CoreML, AppKit) are where a crash can really be, so they stay "app".
_SYSTEM_PATH = re.compile(r"^(?:/usr/lib/|/lib/|/lib64/|/usr/lib64/)")
_PYTHON_PATH = re.compile(r"/Python\.framework/|/lib-dynload/|/libpython")

# --- symbol and source-file fallbacks (frames without an image) ---------------------------
_DRIVER_SYMBOL = re.compile(r"^(?:AGX::|-\[AGX|\+\[AGX|IOGPU|-\[IOGPU|-\[MTL|MTL[A-Z]|cu[A-Z]\w*$)")
_FRAMEWORK_SYMBOL = re.compile(r"^(?:(?:\w+ )*(?:mlx|at|c10|torch|caffe2)::|THP)")
_PYTHON_SYMBOL = re.compile(r"^(?:_?Py[A-Z_]\w*|_Py\w+|pymain_\w+|pythread_\w+)$")
_SYSTEM_SYMBOL = re.compile(
    r"^(?:__GI_\w+|__libc_\w+|__pthread_\w+|___?pthread_\w+|pthread_\w+|start_thread|clone3?"
    r"|_start|__futex\w*|futex_\w+|__lll_\w+|raise|abort|__restore_rt|_sigtramp"
    r"|__clock_nanosleep|__nanosleep|syscall|epoll_wait|__poll|_?_?select)$"
)
_SYSTEM_FILE = re.compile(
    r"(?:^|/)(?:sysdeps|nptl|csu|stdlib|string|malloc|libio|posix|signal|misc|elf|dlfcn)/"
)
_PYTHON_FILE = re.compile(r"(?:^|/)(?:Python|Objects|Modules|Include|Parser)/[^/]")


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def classify_image(image: str | None, path: str | None = None) -> str | None:
    """Kind for a binary image, or None when the image says nothing (so symbols decide)."""
    name = image or (_basename(path) if path else None)
    if not name or name == "???":
        return None
    if _DRIVER_IMAGE.match(name):
        return DRIVER
    if _FRAMEWORK_IMAGE.match(name):
        return FRAMEWORK
    lowered_path = (path or "").replace("\\", "/")
    if _TORCH_C.match(name) and (not path or "/torch/" in lowered_path):
        return FRAMEWORK
    if _MLX_CORE.match(name) and "/mlx/" in lowered_path:
        return FRAMEWORK
    if _PYTHON_IMAGE.match(name) or (path and _PYTHON_PATH.search(lowered_path)):
        return PYTHON
    if _SYSTEM_IMAGE.match(name) or (path and _SYSTEM_PATH.match(lowered_path)):
        return SYSTEM
    return APP


def classify_frame(frame: Frame, path: str | None = None) -> str:
    """Kind of one frame. `path` is the image's full path where the report has one."""
    if frame.kind == PYTHON and frame.file is not None and frame.image is None:
        return PYTHON  # a Python-level frame from faulthandler: already decided by its parser
    kind = classify_image(frame.image, path)
    if kind is not None:
        return kind
    sym = frame.symbol or ""
    if sym:
        if _DRIVER_SYMBOL.match(sym):
            return DRIVER
        if _FRAMEWORK_SYMBOL.match(sym):
            return FRAMEWORK
    if frame.file:
        if _SYSTEM_FILE.search(frame.file):
            return SYSTEM
        if _PYTHON_FILE.search(frame.file):
            return PYTHON
    if sym:
        if _PYTHON_SYMBOL.match(sym):
            return PYTHON
        if _SYSTEM_SYMBOL.match(sym):
            return SYSTEM
        return APP
    return UNKNOWN


def classify_report(report: CrashReport) -> CrashReport:
    """Set `kind` on every frame of `report` (in place) and return it."""
    paths: dict[str, str] = {}
    for img in report.images:
        if img.name and img.path and img.name not in paths:
            paths[img.name] = img.path
    for thread in report.threads:
        for frame in thread.frames:
            frame.kind = classify_frame(frame, paths.get(frame.image or ""))
    return report


# --- verdict ------------------------------------------------------------------------------

# Frames above a signal trampoline belong to the handler (faulthandler, gdb), not the crash.
_TRAMPOLINES = {"_sigtramp", "__restore_rt", "<signal handler called>", "__kernel_rt_sigreturn"}
# faulthandler's own frames at the top of a 3.14 C stack (it dumps from inside the handler).
_HANDLER = re.compile(r"^(?:_Py_DumpStack|_Py_DumpTraceback\w*|faulthandler_\w+)$")
_BORING = {SYSTEM, UNKNOWN}


def crash_frames(thread: Thread) -> list[Frame]:
    """The thread's frames from the faulting one outwards: frames of the signal handler
    (a trampoline and everything above it, faulthandler's own dump functions) dropped."""
    frames = thread.frames
    start = 0
    for i, f in enumerate(frames):
        if f.symbol in _TRAMPOLINES:
            start = i + 1
        elif f.symbol and _HANDLER.match(f.symbol):
            start = i + 1
            # glibc's trampoline (__restore_rt) has no dynamic symbol: dladdr names no
            # function, so the unnamed libc frame right after the handler is the trampoline.
            nxt = frames[i + 1] if i + 1 < len(frames) else None
            if nxt is not None and nxt.symbol is None and nxt.kind == SYSTEM:
                start = i + 2
    return frames[start:]


def first_interesting(thread: Thread) -> Frame | None:
    """The innermost frame that is not a system or unknown frame (native before Python)."""
    for f in crash_frames(thread):
        if f.kind not in _BORING and (f.symbol or f.image):
            return f
    return None


def driver_threads(report: CrashReport) -> list[Thread]:
    """Threads with at least one GPU driver / runtime frame, in report order."""
    return [t for t in report.threads if any(f.kind == DRIVER for f in t.frames)]


def driver_entry(thread: Thread) -> Frame | None:
    """Where the thread entered the driver: the outermost frame of its first run of driver
    frames. That is the call the framework made (`performEnqueueKernel`), which says more
    than the innermost IOKit detail."""
    entry = None
    for f in thread.frames:
        if f.kind == DRIVER:
            entry = f
        elif entry is not None:
            break
    return entry


def demangle_name(symbol: str) -> str | None:
    """The qualified name of an Itanium-mangled C++ symbol, enough to read a stack:
    `_ZN3mlx4core9eval_implESt6vector...` -> `mlx::core::eval_impl`. dladdr() (faulthandler's
    3.14 C stack) returns mangled names. Only plain nested names are decoded; anything fancier
    (templates, substitutions, operators) returns None and the mangled name is shown."""
    s = symbol.lstrip("_")
    if not s.startswith("Z"):
        return None
    i = 1
    nested = s.startswith("ZN", 0)
    if nested:
        i = 2
        while i < len(s) and s[i] in "KVr":  # cv-qualifiers of a member function
            i += 1
    parts: list[str] = []
    while i < len(s) and s[i].isdigit():
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        length = int(s[i:j])
        if length <= 0 or j + length > len(s):
            return None
        parts.append(s[j : j + length])
        i = j + length
        if not nested:
            break
    if not parts or (nested and (i >= len(s) or s[i] != "E")):
        return None
    return "::".join(parts)


_CLONE_SUFFIX = re.compile(r"(?: \[clone [^\]\[]{0,64}\])+$")


def short_symbol(symbol: str) -> str:
    """`AGX::ComputeContext<A, B>::performEnqueueKernel(x) const` -> `AGX::ComputeContext::
    performEnqueueKernel`: template and argument lists removed, namespaces kept. Objective-C
    `-[Class sel:]` names are kept whole; mangled C++ names are decoded where simple."""
    # gcc's outlined parts (`foo(int) [clone .cold]`) are still `foo`
    s = _CLONE_SUFFIX.sub("", symbol.strip())
    if s.startswith(("-[", "+[")):
        return s
    if s.startswith(("_Z", "__Z")):
        return demangle_name(s) or s
    out: list[str] = []
    depth = 0
    for ch in s:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    result = "".join(out).strip()
    # "void foo" (a return type left over from a demangled template function) -> "foo"
    if " " in result:
        result = result.rsplit(" ", 1)[-1]
    return result or s


def short_path(path: str) -> str:
    """Last two components: `ctypes/__init__.py` says more than `__init__.py`."""
    parts = path.replace("\\", "/").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else path


_NATIVE_SOURCE = re.compile(r"\.(?:c|h|cc|cpp|cxx|c\+\+|hpp|hh|hxx|inc|S|s|asm|m|mm)$")


def is_python_source(frame: Frame) -> bool:
    """A Python-level frame (faulthandler), as opposed to a C frame of the interpreter: gdb's
    inlined interpreter frames also lack image and address, but their file is C source."""
    return (
        frame.kind == PYTHON
        and frame.image is None
        and frame.address is None
        and bool(frame.file)
        and not _NATIVE_SOURCE.search(frame.file or "")
    )


def frame_label(frame: Frame) -> str:
    """A frame in a few words: symbol (short), else image+offset, else address."""
    if frame.symbol:
        sym = short_symbol(frame.symbol)
        if is_python_source(frame) and frame.file:
            where = short_path(frame.file) + (f":{frame.line}" if frame.line is not None else "")
            return f"{sym} ({where})"
        return sym
    if frame.image:
        return f"{frame.image}+{frame.offset:#x}" if frame.offset is not None else frame.image
    if frame.address is not None:
        return f"{frame.address:#x}"
    return "??"


def thread_label(thread: Thread, report_format: str | None = None) -> str:
    """`thread 22 "limina-vm:zfq0"` or `thread 20 (queue com.apple.main-thread)`; faulthandler
    threads have no number, so they are named by their id as faulthandler prints it."""
    if report_format == "faulthandler" and thread.id is not None:
        label = f"thread {thread.id:#018x}"
    elif report_format == "faulthandler":
        label = "a thread Python does not know"  # only its C stack is in the dump
    else:
        label = f"thread {thread.index}"
    if thread.name:
        label += f' "{thread.name}"'
    elif thread.queue:
        label += f" (queue {thread.queue})"
    return label


def _what(report: CrashReport) -> str:
    sig = report.signal or report.exception_type
    detail = report.exception_subtype
    if not detail and report.application_specific_information:
        # "abort() called", "terminate called without an active exception": why it aborted.
        lines = report.application_specific_information.strip().splitlines()
        # faulthandler: the last thing printed before the dump; macOS: the first line is the
        # reason, later ones ("abort() called") are consequences.
        detail = (lines[-1] if report.format == "faulthandler" else lines[0])[:120]
    if sig and detail:
        return f"{sig} ({detail})"
    if sig:
        return sig
    if report.message:
        return report.message
    return "crash"


_MAX_DRIVER_THREADS = 3  # more are summarised as a count: the line must stay one line


def _gc_note(thread: Thread) -> str | None:
    if thread.note and "garbage-collecting" in thread.note:
        return "while garbage-collecting"
    return None


def verdict(report: CrashReport, python: CrashReport | None = None) -> str:
    """One factual line: what killed the process, where, on which thread, and which other
    threads were inside a GPU driver at that moment. `python` is a faulthandler report of the
    same crash, used to add where the crashed thread's Python code was."""
    crashed = report.crashed_thread
    if crashed is None and not (report.signal or report.exception_type) and report.message:
        # A stall snapshot (gdb kind: snapshot, faulthandler's timeout dump): nothing crashed.
        n = len(report.threads)
        return f"{report.message} ({n} thread{'s' if n != 1 else ''}, none crashed)"
    parts: list[str] = [_what(report)]
    if crashed is not None:
        frame = first_interesting(crashed)
        if frame is not None:
            where = frame_label(frame)
            if frame.image and frame.symbol:
                where += f" ({frame.image})"
            parts.append(f"in {where}")
        parts.append(f"on {thread_label(crashed, report.format)}")
        if gc := _gc_note(crashed):
            parts.append(gc)
    else:
        parts.append("(crashed thread not identified)")
    line = " ".join(parts)
    if python is not None and python is not report:
        py_thread = python.crashed_thread
        if py_thread is not None:
            py_frame = next((f for f in py_thread.frames if is_python_source(f)), None)
            if py_frame is not None:
                line += f"; Python was in {frame_label(py_frame)}"
            if (gc := _gc_note(py_thread)) and gc not in line:
                line += f" {gc}"
    in_driver = [t for t in driver_threads(report) if t is not crashed]
    # Threads that called into the driver from code (a framework, the app, Python) are the
    # evidence; threads made by the driver itself (CUDA's event handler, ...) are always there.
    others = [t for t in in_driver if _entered_from_code(t)]
    own = [t for t in in_driver if not _entered_from_code(t)]
    for t in others[:_MAX_DRIVER_THREADS]:
        entry = driver_entry(t)
        if entry is not None:
            line += f"; {thread_label(t, report.format)} was inside {_driver_where(entry)}"
    if len(others) > _MAX_DRIVER_THREADS:
        line += f"; {len(others) - _MAX_DRIVER_THREADS} more threads were inside the GPU driver"
    if own:
        images = sorted({e.image for t in own if (e := driver_entry(t)) and e.image})
        n = len(own)
        line += (
            f"; {n} other thread{'s were' if n != 1 else ' was'} only in "
            f"{', '.join(images) or 'GPU driver'} code"
        )
    if crashed is not None and any(f.kind == DRIVER for f in crashed.frames):
        entry = driver_entry(crashed)
        if entry is not None:
            line += f"; the crashed thread was itself inside {_driver_where(entry)}"
    return line


def _entered_from_code(thread: Thread) -> bool:
    return any(f.kind in (FRAMEWORK, APP, PYTHON) for f in thread.frames)


def _driver_where(entry: Frame) -> str:
    """`AGXMetalG16X performEnqueueKernel`, or just `libcuda.so.1+0x1234` without a symbol."""
    label = frame_label(entry)
    if entry.symbol and entry.image:
        return f"{entry.image} {label}"
    return label

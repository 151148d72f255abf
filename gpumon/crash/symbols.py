"""Frames and threads in a few words: short symbols for the verdict, elided ones for long lines.

C++ symbols in GPU stacks run to hundreds of characters of template arguments
(`AGX::ComputeContext<AGXG16XFamilyComputeContext, ...>::performEnqueueKernel`), so the verdict
names a frame by its qualified name alone and the summary elides template arguments in the
middle of a long frame; `--full` and `--json` keep every symbol whole. Some "symbols" are not
names at all: a libc++ hardening trap is symbolicated as the assertion's message
(`__clang_trap_msg$libc++$.../vector:1435: assertion __n < size() failed: ...`); it is shown as
the message, never cut at a `<` that is a comparison.
"""

from __future__ import annotations

import re

from gpumon.crash.model import PYTHON, Frame, Thread


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
_TRAP = "__clang_trap_msg$"
# "path/to/vector:1435: " in front of a trap or assertion message
_SOURCE_PREFIX = re.compile(r"^\S{0,500}:\d+:\s+")
# A leading return type left over from a demangled template function ("void foo", "int* a::b")
_RETURN_TYPE = re.compile(r"^(?:(?:const |unsigned |signed )?[\w:]+[*&]* ){1,2}([\w:~$.]+)$")
_QUALIFIERS = ("const", "volatile", "noexcept", "&", "&&")
_ELIDE_MAX = 20_000
_SHORT_MAX = 4096
_ABI_TAG = re.compile(r"\[abi:[^\]\[]{0,64}\]")


def trap_message(symbol: str) -> str | None:
    """The message of a `__builtin_verbose_trap` frame (`__clang_trap_msg$category$message`),
    without the source location in front of it; None for any other symbol."""
    at = symbol.find(_TRAP)
    if at == -1:
        return None
    rest = symbol[at + len(_TRAP) :]
    _category, sep, message = rest.partition("$")
    message = message if sep else rest
    return _SOURCE_PREFIX.sub("", message.strip()) or None


def _opens_template(text: str, i: int) -> bool:
    """Is text[i] == '<' a template argument list (`vector<int>`) rather than a comparison
    (`__n < size()`) or part of `operator<`?"""
    if i == 0:
        return False
    prev = text[i - 1]
    if not (prev.isalnum() or prev in "_>$]"):
        return False
    return not text[max(0, i - 10) : i].rstrip().endswith("operator")


def _strip_qualifiers(name: str) -> str:
    """`foo const &` -> `foo` (a loop, not a regex: symbols can be hostile and long)."""
    while True:
        head, sep, last = name.rstrip().rpartition(" ")
        if not sep or last not in _QUALIFIERS:
            return name.rstrip()
        name = head


def _outside_groups(s: str) -> str:
    """`s` with template argument lists and parenthesised groups removed."""
    if "<" not in s and "(" not in s:
        return s.strip()
    out: list[str] = []
    stack: list[str] = []
    for i, ch in enumerate(s):
        if ch == "<" and _opens_template(s, i):
            stack.append(">")
        elif ch == "(":
            stack.append(")")
        elif stack and ch == stack[-1]:
            stack.pop()
        elif not stack:
            out.append(ch)
    return "".join(out).strip()


def short_symbol(symbol: str) -> str:
    """`AGX::ComputeContext<A, B>::performEnqueueKernel(x) const` -> `AGX::ComputeContext::
    performEnqueueKernel`: template and argument lists removed, namespaces kept. Objective-C
    `-[Class sel:]` names are kept whole; mangled C++ names are decoded where simple; a trap's
    message is shown as the message."""
    # gcc's outlined parts (`foo(int) [clone .cold]`) are still `foo`. A "symbol" longer than
    # any real name is read from its start only: the verdict is one line.
    s = _CLONE_SUFFIX.sub("", symbol.strip()[:_SHORT_MAX])
    if s.startswith(("-[", "+[")):
        return s
    message = trap_message(s)
    if message is not None:
        return message
    if s.startswith(("_Z", "__Z")):
        return demangle_name(s) or s
    result = _strip_qualifiers(_outside_groups(_ABI_TAG.sub("", s)))
    m = _RETURN_TYPE.match(result)
    if m is not None:
        result = m.group(1)
    return result or s


def elide_symbol(symbol: str, limit: int = 160) -> str:
    """A symbol at most about `limit` characters long for a summary line: template arguments
    are replaced by `…` first, then argument lists; the name itself is never cut."""
    if len(symbol) <= limit:
        return symbol
    if len(symbol) > _ELIDE_MAX:
        return symbol[:limit] + "…"  # not a C++ name but a blob: no structure to keep
    out: list[str] = []
    depth = 0
    stack: list[str] = []
    for i, ch in enumerate(symbol):
        if ch == "<" and _opens_template(symbol, i):
            if depth == 0:
                out.append("<…")
            depth += 1
            stack.append(">")
        elif ch == "(" and depth:
            stack.append(")")
        elif stack and ch == stack[-1]:
            stack.pop()
            if ch == ">":
                depth -= 1
                if depth == 0:
                    out.append(">")
        elif depth == 0:
            out.append(ch)
    shorter = "".join(out)
    if len(shorter) <= limit:
        return shorter
    return _elide_arguments(shorter)


def _elide_arguments(symbol: str) -> str:
    """`f(int, std::string const&) const` -> `f(…) const` (outermost argument lists)."""
    out: list[str] = []
    depth = 0
    for ch in symbol:
        if ch == "(":
            if depth == 0:
                out.append("(…")
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(")")
        elif depth == 0:
            out.append(ch)
    return "".join(out)


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
    threads have no number, so they are named by their id as faulthandler prints it; a frame
    list pasted without its thread header has no number either (a negative index)."""
    if report_format == "faulthandler" and thread.id is not None:
        label = f"thread {thread.id:#018x}"
    elif report_format == "faulthandler":
        label = "a thread Python does not know"  # only its C stack is in the dump
    elif thread.index < 0:
        label = f"unlabelled thread {-thread.index}"
    else:
        label = f"thread {thread.index}"
    if thread.name:
        label += f' "{thread.name}"'
    elif thread.queue:
        label += f" (queue {thread.queue})"
    return label

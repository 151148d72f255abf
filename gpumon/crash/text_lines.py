"""Frame lines and binary-image lines of Apple's text crash reports, as people paste them.

A frame line is `N  image  0xaddr  symbol + offset (file:line)`. Pastes trim it: the address
column goes (`0   libmlx.dylib   mlx::core::gpu::check_error(MTL::CommandBuffer*) + 244`, the
usual form in MLX issues), the number goes (`libmlx.dylib    mlx::core::...`), or the image is
followed by a colon (`libmlx.dylib: mlx::core::...`). Without an address, the image column ends
at the first run of two or more spaces or a tab (images have single spaces in their names:
`Slicer 5.8.1`); an unnumbered line counts only when its first column is recognisably a binary,
so prose is never taken for frames.
"""

from __future__ import annotations

import re

from gpumon.crash._values import basename, parse_hex
from gpumon.crash.model import BinaryImage, Frame

# Line patterns avoid lazy groups followed by `\s*`/`\s+`: on a long line of spaces those
# backtrack quadratically, and a hostile file must not hang `gpumon crash`.
_FRAME_START = re.compile(r"^(\d+)[ \t]+(?=\S)")
_ADDRESS = re.compile(r"[ \t](0x[0-9a-fA-F]+)(?=[ \t]|$)")
_COLUMN_GAP = re.compile(r"\t|  ")
# A source location: `(eval.cpp:12)`, `(x.swift:27:5)`; TestFlight writes `(:-1)` and Swift
# `(<compiler-generated>:0)` where there is none.
_SOURCE = re.compile(r"\(([^()]*):(-?\d+)(?::\d+)?\)$")
_OFFSET = re.compile(r"\+[ \t]+(\d+)$")
_HEX_SYMBOL = re.compile(r"0x[0-9a-fA-F]+")
# What a binary's name looks like when a frame line has no number to vouch for it.
_BINARY = re.compile(
    r"^(?:lib[\w+.-]*|[\w+.-]+\.(?:dylib|so(?:\.\d+)*|dll|exe|framework|bundle)|AGX\w*"
    r"|IOGPU|Metal|MetalPerformanceShaders\w*|MPS\w+|CoreFoundation|Foundation|AppKit|UIKitCore"
    r"|Python|dyld|GPUToolsCapture|AppleMetalOpenGLRenderer|com\.apple\.[\w.-]+)$"
)
_IMAGE_RANGE = re.compile(
    r"^[ \t]*(0x[0-9a-fA-F]+)[ \t]*-[ \t]*(0x[0-9a-fA-F]+|\?\?\?)[ \t]+(?=\S)"
)
_UUID = re.compile(r"<([0-9A-Fa-f-]+)>")
_PATH_START = re.compile(r"(?<=[ \t])/")
_MAX_LINE = 100_000
# What a symbol starts with: a name, `_Z...`, `-[Class sel]`, `+[...]`, `~Dtor`, `<lambda>`,
# `(anonymous namespace)`, `???`. Never a digit: that is a size, a count or a cut address.
_SYMBOL_START = re.compile(r"^[A-Za-z_\-+~\[<(?.$@]")
_MAX_IMAGE_WORDS = 5


def split_frame_line(line: str) -> tuple[int, str, str, str] | None:
    """`N  image name  0xaddr  rest` -> (N, image, address, rest), or None."""
    start = _FRAME_START.match(line)
    if start is None:
        return None
    addr = _ADDRESS.search(line, start.end() - 1)
    if addr is None:
        return None
    image = line[start.end() : addr.start()].strip()
    if not image:
        return None
    return int(start.group(1)), image, addr.group(1), line[addr.end() :].strip()


def _columns(rest: str) -> tuple[str, str] | None:
    """`image<gap>symbol` -> (image, symbol) for frame lines without an address column."""
    colon = rest.find(": ")
    if colon > 0 and _BINARY.match(rest[:colon]):
        return rest[:colon], rest[colon + 2 :].strip()
    gap = _COLUMN_GAP.search(rest)
    if gap is None:
        return None
    image, symbol = rest[: gap.start()].strip(), rest[gap.end() :].strip()
    return (image, symbol) if image and symbol else None


def parse_frame(line: str, next_index: int) -> tuple[Frame, bool] | None:
    """A text-report frame line -> (Frame, numbered), or None when it is not one.
    `next_index` numbers a frame whose line has no number."""
    line = line.strip()
    if not line or len(line) > _MAX_LINE:
        return None
    parts = split_frame_line(line)
    if parts is not None:
        return _frame(*parts), True
    start = _FRAME_START.match(line)
    rest = line[start.end() :] if start else line
    cols = _columns(rest)
    if cols is None:
        return None
    image, symbol = cols
    if not _SYMBOL_START.match(symbol):
        return None  # "48K   2" (a VM summary row), "0" (an address cut short): not a symbol
    if start is None and not _BINARY.match(image):
        return None  # an unnumbered line must name a binary: prose is not a frame list
    if len(image.split()) > _MAX_IMAGE_WORDS:
        return None  # "Google Chrome Helper (GPU)" is an image; a sentence is not
    index = int(start.group(1)) if start else next_index
    return _frame(index, image, None, symbol), start is not None


def _frame(index: int, image: str, address: str | None, rest: str) -> Frame:
    rest = rest.removesuffix("[inlined]").rstrip()
    file = line = None
    src = _SOURCE.search(rest)
    if src:
        if src.group(1).strip() and not src.group(1).startswith("<") and int(src.group(2)) > 0:
            file, line = src.group(1).strip(), int(src.group(2))
        rest = rest[: src.start()].rstrip()
    offset = None
    off = _OFFSET.search(rest)
    if off and (off.start() == 0 or rest[off.start() - 1] in " \t"):
        offset = int(off.group(1))
        rest = rest[: off.start()].rstrip()
    symbol: str | None = rest.strip() or None
    if symbol is not None and (_HEX_SYMBOL.fullmatch(symbol) or symbol == "???"):
        symbol = None  # unsymbolicated: "0xbase + offset" is an offset into the image
    return Frame(
        index=index,
        image=None if image == "???" else image,
        symbol=symbol,
        offset=offset,
        address=parse_hex(address),
        file=file,
        line=line,
    )


def parse_image(line: str) -> BinaryImage | None:
    """`0x1000 - 0x1fff name (version) <uuid> /path` -> BinaryImage, or None. Reports before
    macOS 10.5 have no UUID: then the path is what starts with `/`."""
    r = _IMAGE_RANGE.match(line)
    if r is None:
        return None
    u = _UUID.search(line, r.end())
    if u is not None:
        name, uuid, path = line[r.end() : u.start()].strip(), u.group(1).lower(), line[u.end() :]
    else:
        slash = _PATH_START.search(line, r.end())
        if slash is None:
            return None
        name, uuid, path = line[r.end() : slash.start()].strip(), None, line[slash.start() :]
    if name.endswith(")") and "(" in name:
        name = name[: name.rfind("(")].strip()  # drop "(version)"
    name = name.removeprefix("+")  # older reports mark the app's own images with "+"
    path = path.strip()
    start, end = r.groups()
    base = parse_hex(start)
    top = parse_hex(end) if end != "???" else None
    clean_path = path if path and path != "???" else None
    shown = basename(clean_path) if clean_path else (name if name not in ("", "???") else None)
    return BinaryImage(
        name=shown,
        path=clean_path,
        base=base,
        size=(top - base + 1) if top is not None and base is not None and top >= base else None,
        uuid=uuid,
    )

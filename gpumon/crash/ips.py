"""macOS `.ips` crash reports: one JSON metadata line, then a JSON (bug_type 309) or text body.

Since macOS 12 ReportCrash writes `.ips` files: line 1 is a small JSON object (`bug_type`,
`app_name`, `os_version`, ...), the rest is the report. For bug_type 309 the body is JSON with
`threads` (each with `frames` of `imageIndex`/`imageOffset`/`symbol`/`symbolLocation`),
`faultingThread` (an index into `threads`), `usedImages`, `exception`, `termination`, `asi`.
Other bug types (109 and friends) carry a classic text body after the same header line; this
module reads only JSON bodies, and `gpumon.crash.compose` hands a text body to the text parser
(`apply_header` puts the metadata line's facts on its result). Reports pasted into issues often
have prose before the header, so the header is searched for, not assumed on line 1. A body cut
short is salvaged: the JSON is closed at the last complete value and the report says what is
missing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gpumon.crash._json_salvage import salvage
from gpumon.crash._values import as_dict, as_int, as_list, as_str, basename
from gpumon.crash.kinds import classify_report
from gpumon.crash.model import BinaryImage, CrashParseError, CrashReport, Frame, Thread

_DECODER = json.JSONDecoder()
# A header line is a one-line JSON object that names its bug type (a few hundred bytes).
_LINE_START_BRACE = re.compile(r"^[ \t]*\{", re.M)
_MAX_HEADER_LINE = 64 * 1024
_NON_BLANK = re.compile(r"\S")
_MAX_HEADER_CANDIDATES = 1000


def find_header(text: str) -> tuple[int, int, dict[str, Any]] | None:
    """(start, end, header) of the first `.ips` metadata line in `text`, or None."""
    for n, m in enumerate(_LINE_START_BRACE.finditer(text)):
        if n >= _MAX_HEADER_CANDIDATES:
            break
        end = text.find("\n", m.start())
        end = len(text) if end == -1 else end
        line = text[m.start() : end]
        if len(line) > _MAX_HEADER_LINE or '"bug_type"' not in line:
            continue
        try:
            header = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(header, dict) and "bug_type" in header:
            return m.start(), end, header
    return None


def looks_like_ips(text: str) -> bool:
    return find_header(text) is not None


def parse_ips(
    text: str, *, source_path: str | None = None, frame_cap: int | None = None
) -> CrashReport:
    """Parse an `.ips` file's text. Raises CrashParseError when there is no report in it."""
    found = find_header(text)
    warnings: list[str] = []
    # Offsets into `text`, never slices of it: a body can be tens of megabytes.
    if found is None:
        # A bare JSON body without the metadata line (someone copied only the body).
        start = body_start(text)
        if text[start : start + 1] != "{":
            raise CrashParseError("no .ips header line (a JSON object with bug_type) found")
        header: dict[str, Any] = {}
        warnings.append("no .ips metadata line: read the JSON body alone")
    else:
        _, end, header = found
        start = body_start(text, end)
        if text[start : start + 1] != "{":
            raise CrashParseError(
                "the .ips body is a text report, not JSON (gpumon.crash.parse reads both)"
                if start < len(text)
                else "the .ips file has a header line but no report body"
            )
    body, body_warnings = _decode_body(text, start)
    warnings.extend(body_warnings)
    if body is None:
        if not header:
            raise CrashParseError("the JSON body is unreadable")
        # Only the metadata line is usable: say so, and keep what it has.
        report = CrashReport(
            format="ips-json",
            process_name=as_str(header.get("app_name")) or as_str(header.get("name")),
            bug_type=as_str(header.get("bug_type")),
            os_version=as_str(header.get("os_version")),
            warnings=[*warnings, "no thread backtraces could be read"],
            source_path=source_path,
        )
        return report
    report = report_from_body(header, body, warnings, frame_cap=frame_cap)
    report.source_path = source_path
    return classify_report(report)


def apply_header(report: CrashReport, header: dict[str, Any]) -> CrashReport:
    """Fill what a text body did not say from the `.ips` metadata line (bug type, app name,
    OS version); the body's own facts win."""
    report.bug_type = as_str(header.get("bug_type")) or report.bug_type
    report.process_name = report.process_name or as_str(header.get("app_name"))
    report.os_version = report.os_version or as_str(header.get("os_version"))
    return report


def body_start(text: str, pos: int = 0) -> int:
    """Offset of the first non-blank character of `text` at or after `pos` (len if none)."""
    m = _NON_BLANK.search(text, pos)
    return m.start() if m is not None else len(text)


def _decode_body(text: str, start: int) -> tuple[dict[str, Any] | None, list[str]]:
    try:
        body, _ = _DECODER.raw_decode(text, start)
    except RecursionError:
        return None, ["the JSON body is nested too deeply to read"]
    except ValueError as e:
        salvaged = salvage(text, start)
        where = getattr(e, "pos", None)
        at = f" at character {where - start} of the body" if isinstance(where, int) else ""
        if salvaged is None:
            return None, [f"the JSON body is truncated or invalid{at}"]
        return salvaged, [
            f"the JSON body is truncated or invalid{at}: read what came before it; "
            "later threads, frames or binary images may be missing"
        ]
    if not isinstance(body, dict):
        return None, ["the JSON body is not an object"]
    return body, []


def _os_version(header: dict[str, Any], body: dict[str, Any]) -> str | None:
    text = as_str(header.get("os_version"))
    if text:
        return text
    osv = as_dict(body.get("osVersion"))
    train = as_str(osv.get("train"))
    build = as_str(osv.get("build"))
    if train and build:
        return f"{train} ({build})"
    return train


def _termination(body: dict[str, Any]) -> str | None:
    term = as_dict(body.get("termination"))
    if not term:
        return None
    parts = []
    namespace = as_str(term.get("namespace"))
    code = as_str(term.get("code"))
    indicator = as_str(term.get("indicator"))
    if namespace:
        parts.append(f"Namespace {namespace}")
    if code is not None:
        parts.append(f"Code {code}")
    if indicator:
        parts.append(indicator)
    text = ", ".join(parts)
    reasons = [r for r in (as_str(x) for x in as_list(term.get("reasons"))) if r]
    if reasons:
        text = f"{text} ({'; '.join(reasons)})" if text else "; ".join(reasons)
    return text or None


def _asi(body: dict[str, Any]) -> str | None:
    """`asi` maps an image to the strings it registered (`{"libsystem_c.dylib": ["abort()
    called"]}`); the strings are what a person wants to read."""
    asi = body.get("asi")
    lines: list[str] = []
    if isinstance(asi, dict):
        for value in asi.values():
            if isinstance(value, list):
                lines.extend(s for s in (as_str(v) for v in value) if s)
            elif (s := as_str(value)) is not None:
                lines.append(s)
    elif isinstance(asi, list):
        lines.extend(s for s in (as_str(v) for v in asi) if s)
    elif (s := as_str(asi)) is not None:
        lines.append(s)
    return "\n".join(lines) if lines else None


def _images(body: dict[str, Any]) -> list[BinaryImage]:
    images = []
    for raw in as_list(body.get("usedImages")):
        img = as_dict(raw)
        path = as_str(img.get("path"))
        name = as_str(img.get("name")) or (basename(path) if path else None)
        images.append(
            BinaryImage(
                name=name,
                path=path,
                base=as_int(img.get("base")),
                size=as_int(img.get("size")),
                uuid=as_str(img.get("uuid")),
                arch=as_str(img.get("arch")),
            )
        )
    return images


def _frame(index: int, raw: Any, images: list[BinaryImage]) -> Frame:
    f = as_dict(raw)
    image_index = as_int(f.get("imageIndex"))
    image = None
    if image_index is not None and 0 <= image_index < len(images):
        image = images[image_index]
    image_offset = as_int(f.get("imageOffset"))
    symbol = as_str(f.get("symbol"))
    symbol_location = as_int(f.get("symbolLocation"))
    address = None
    if image is not None and image.base is not None and image_offset is not None:
        address = image.base + image_offset
    return Frame(
        index=index,
        image=image.name if image is not None else None,
        symbol=symbol,
        offset=symbol_location if symbol is not None else image_offset,
        address=address,
        file=as_str(f.get("sourceFile")),
        line=as_int(f.get("sourceLine")),
    )


def report_from_body(
    header: dict[str, Any],
    body: dict[str, Any],
    warnings: list[str] | None = None,
    *,
    frame_cap: int | None = None,
) -> CrashReport:
    """Build the report from a decoded bug_type 309 body (no classification). With a
    `frame_cap`, frames past it are counted, not built."""
    warnings = list(warnings or [])
    images = _images(body)
    exception = as_dict(body.get("exception"))
    faulting = as_int(body.get("faultingThread"))
    threads: list[Thread] = []
    for i, raw in enumerate(as_list(body.get("threads"))):
        t = as_dict(raw)
        raw_frames = as_list(t.get("frames"))
        kept = raw_frames if frame_cap is None else raw_frames[:frame_cap]
        frames = [_frame(j, f, images) for j, f in enumerate(kept)]
        threads.append(
            Thread(
                index=i,
                id=as_int(t.get("id")),
                name=as_str(t.get("name")),
                queue=as_str(t.get("queue")),
                crashed=t.get("triggered") is True or (faulting is not None and faulting == i),
                frames=frames,
                frames_omitted=len(raw_frames) - len(kept),
            )
        )
    if faulting is None:
        faulting = next((t.index for t in threads if t.crashed), None)
    if not threads:
        warnings.append("no thread backtraces in the report")
    elif faulting is not None and not 0 <= faulting < len(threads):
        warnings.append(
            f"the faulting thread {faulting} is not among the {len(threads)} threads read"
        )
    elif faulting is None:
        warnings.append("the report does not say which thread crashed")
    if (
        threads
        and not images
        and any(
            "imageIndex" in as_dict(f)
            for t in as_list(body.get("threads"))
            for f in as_list(as_dict(t).get("frames"))
        )
    ):
        warnings.append("the binary image list is missing: frames have no image names")
    legacy = as_dict(as_dict(body.get("legacyInfo")).get("threadTriggered"))
    if faulting is not None and 0 <= faulting < len(threads):
        crashed = threads[faulting]
        crashed.name = crashed.name or as_str(legacy.get("name"))
        crashed.queue = crashed.queue or as_str(legacy.get("queue"))
    crashed_name, crashed_queue = as_str(legacy.get("name")), as_str(legacy.get("queue"))
    if faulting is not None and 0 <= faulting < len(threads):
        crashed_name = threads[faulting].name or crashed_name
        crashed_queue = threads[faulting].queue or crashed_queue
    bug_type = as_str(header.get("bug_type")) or as_str(body.get("bug_type"))
    return CrashReport(
        crashed_thread_name=crashed_name,
        crashed_thread_queue=crashed_queue,
        format="ips-json",
        process_name=as_str(body.get("procName"))
        or as_str(header.get("app_name"))
        or as_str(header.get("name")),
        pid=as_int(body.get("pid")),
        bug_type=bug_type,
        os_version=_os_version(header, body),
        exception_type=as_str(exception.get("type")),
        signal=as_str(exception.get("signal")),
        exception_subtype=as_str(exception.get("subtype")),
        termination_reason=_termination(body),
        crashed_thread_index=faulting,
        application_specific_information=_asi(body),
        threads=threads,
        images=images,
        warnings=warnings,
    )

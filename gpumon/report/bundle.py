"""`gpumon export LOG -f bundle`: one zip to attach — the session folder, report.md, repro.py.

Inside, under the session folder's name: the log, every regular file of the folder (artifacts,
repro-runs.jsonl, a repro.py a person kept there), report.md rendered now, repro.py generated
now when the folder has none and one can be made, and MANIFEST.txt saying what each file is and
what was changed to fit. Exports depend only on the log: member times are the session's start,
so the same session and options give the same bytes.

Within the budget (`max_bytes`, the zip's size): first the log's samples are decimated into
wider windows (gpumon.report.decimate: every other event and every sample near an incident
stays); then the largest artifacts are cut to a head and a tail with a marker in the middle,
never dropped; if it still does not fit, the zip is made anyway and says so. With a redactor,
every text member is redacted (the log line by line as JSON, so it stays a loadable log).
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon import layout, sanitize
from gpumon.fmt import nbytes, plural
from gpumon.report.decimate import Decimation, decimate
from gpumon.session.log import LoadedSession
from gpumon.session.redact import Redactor

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
WINDOWS_S = (1.0, 5.0, 30.0, 300.0)  # decimation windows tried in turn
KEEP_NEAR_S = 5.0  # samples this close to a crash, stall, command, start or stop stay
MIN_CUT = 64 * 1024  # an artifact is never cut below this
MANIFEST = "MANIFEST.txt"
REPORT = "report.md"
REPRO = "repro.py"


@dataclass
class Member:
    name: str  # inside the session folder, posix
    data: bytes
    what: str  # for the manifest
    text: bool = True  # redacted when redacting
    artifact: bool = False  # may be cut to fit
    full_size: int = 0  # before a cut (0: not cut)


@dataclass
class Bundle:
    data: bytes  # the zip
    folder: str  # the top folder inside the zip
    members: list[Member]
    redacted: bool = False
    decimation: Decimation | None = None
    over_budget: int | None = None  # the budget it could not meet
    notes: list[str] = field(default_factory=list)  # about report.md and repro.py

    @property
    def cut(self) -> list[Member]:
        return [m for m in self.members if m.full_size]


def build(
    session: LoadedSession,
    *,
    report_md: str,
    repro: str | None,
    notes: list[str] | None = None,
    redactor: Redactor | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Bundle:
    """`repro`: the script's text, or None when none could be made (`notes` say why)."""
    top = layout.safe_name(session.folder.name)
    members = _folder_members(session.folder)
    own = _member(members, REPRO)
    if own is not None:
        own.what += _verified(session.folder, own.data)
    for m in members:
        if m.name in (REPORT, MANIFEST):
            # A file of the folder with a generated member's name (a report exported into the
            # folder earlier): both stay, the kept one renamed, so the zip has unique names.
            stem, dot, ext = m.name.rpartition(".")
            m.name = f"{stem}.kept{dot}{ext}"
            m.what = f"a {m.name.replace('.kept', '')} kept in the session folder"
    members.append(Member(REPORT, report_md.encode(), "the Markdown evidence report, made now"))
    if repro is not None and _member(members, REPRO) is None:
        members.append(Member(REPRO, repro.encode(), "the repro script, made now (unverified)"))
    if redactor is not None:
        for m in members:
            if m.text:
                m.data = _redact(m.name, m.data, redactor)
    b = Bundle(b"", top, members, redacted=redactor is not None, notes=list(notes or []))
    red: Callable[[str], str] = redactor.text if redactor is not None else (lambda s: s)
    stamp = _zip_time(session.first_t)
    b.data = _zip(b, stamp, red)
    log = _member(members, layout.LOG_NAME)
    for window in WINDOWS_S:
        if len(b.data) <= max_bytes or log is None:
            break
        events, d = decimate(session.events, window, KEEP_NEAR_S)
        if d.samples_after + d.host_after >= d.samples_before + d.host_before:
            continue  # every sample is near an incident: nothing to gain at this window
        kept, b.decimation = log.data, d
        log.data = _encode_log(session, events, redactor)
        smaller = _zip(b, stamp, red)
        if len(smaller) >= len(b.data):
            log.data, b.decimation = kept, None
            continue
        b.data = smaller
    while len(b.data) > max_bytes and _cut_largest(members):
        b.data = _zip(b, stamp, red)
    if len(b.data) > max_bytes:
        b.over_budget = max_bytes
        b.data = _zip(b, stamp, red)
    return b


# ---- members -------------------------------------------------------------------------------


def _folder_members(folder: Path) -> list[Member]:
    """Every regular file of the session folder, not following links (a link could point
    anywhere; the log's own artifact paths are confined the same way)."""
    out: list[Member] = []
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not layout.is_regular_file(path):
                continue
            rel = path.relative_to(root).as_posix()
            try:
                data = path.read_bytes()
            except OSError:
                continue  # unreadable: the manifest lists what is there, not what is not
            out.append(_describe(rel, data))
    out.sort(key=lambda m: (m.name != layout.LOG_NAME, m.name))
    return out


def _describe(rel: str, data: bytes) -> Member:
    if rel == layout.LOG_NAME:
        return Member(rel, data, "the session log (JSON Lines; gpumon replay/export read it)")
    if rel == "repro-runs.jsonl":
        return Member(rel, data, "counts verified by gpumon repro (one JSON object a line)")
    if rel == REPRO:
        return Member(rel, data, "the repro script kept in the session folder")
    binary = b"\0" in data[:8192]
    return Member(rel, data, "evidence recorded with the session", not binary, artifact=True)


def _verified(folder: Path, script: bytes) -> str:
    """What repro-runs.jsonl says of exactly this script (by its sha256), for the manifest."""
    import hashlib

    from gpumon.session.repro_runs import read

    digest = hashlib.sha256(script).hexdigest()
    counts = [r for r in read(folder)[0] if r.sha256 == digest]
    if not counts:
        return "; not verified by gpumon repro"
    last = counts[-1]
    how = f" ({last.recorded} as recorded: {last.same_as_recorded})" if last.recorded else ""
    return f"; gpumon repro reproduced it {last.reproduced}/{last.runs}{how}"


def _member(members: list[Member], name: str) -> Member | None:
    return next((m for m in members if m.name == name), None)


def _redact(name: str, data: bytes, redactor: Redactor) -> bytes:
    if name.endswith(".jsonl"):
        return b"".join(_redact_json_line(line, redactor) for line in data.splitlines(True))
    if name == REPRO:
        from gpumon.report.repro import redact_comments

        script = data.decode("utf-8", "surrogateescape")
        return redact_comments(script, redactor).encode("utf-8", "surrogateescape")
    text = data.decode("utf-8", "surrogateescape")
    return redactor.text(text).encode("utf-8", "surrogateescape")


def _redact_json_line(line: bytes, redactor: Redactor) -> bytes:
    """A log line stays a log line: its strings are redacted, its structure is not touched."""
    end = b"\n" if line.endswith(b"\n") else b""
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError:
        text = line.decode("utf-8", "surrogateescape")
        return redactor.text(text).encode("utf-8", "surrogateescape")
    return msgspec.json.encode(redactor.walk(obj)) + end


def _encode_log(session: LoadedSession, events: list[ev.Event], r: Redactor | None) -> bytes:
    """The events as a log again. They were read (and a schema-1 log upgraded) into today's
    shapes, so the first line says today's schema."""
    lines = []
    for e in events:
        if isinstance(e, ev.SessionStart):
            e = msgspec.structs.replace(e, schema=ev.SCHEMA_VERSION)
        raw = msgspec.json.encode(session.portable(e))
        lines.append(_redact_json_line(raw, r) if r is not None else raw)
    return b"\n".join(lines) + b"\n"


def _cut_largest(members: list[Member]) -> bool:
    """Halve the largest artifact still above MIN_CUT (head and tail kept); False if none."""
    cands = [m for m in members if m.artifact and len(m.data) > MIN_CUT]
    if not cands:
        return False
    m = max(cands, key=lambda x: len(x.data))
    full = m.full_size or len(m.data)
    keep = max(MIN_CUT, len(m.data) // 2)
    head, tail = m.data[: keep * 3 // 4], m.data[-(keep // 4) :]
    marker = (
        f"\n\n[gpumon bundle: cut to fit the size budget: {len(head)} bytes from the start and "
        f"{len(tail)} from the end of {full} are kept; the whole file is in the session "
        "folder]\n\n"
    ).encode()
    m.data, m.full_size = head + marker + tail, full
    return True


# ---- the zip -------------------------------------------------------------------------------


def _zip_time(t: float) -> tuple[int, int, int, int, int, int]:
    g = time.gmtime(max(t, 315532800.0))  # zip times start in 1980
    return (g.tm_year, g.tm_mon, g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec)


def _zip(b: Bundle, stamp: tuple[int, int, int, int, int, int], red: Callable[[str], str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        manifest = red(manifest_text(b)).encode()
        for name, data in [(MANIFEST, manifest), *((m.name, m.data) for m in b.members)]:
            info = zipfile.ZipInfo(f"{b.folder}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100600 if not name.endswith(".py") else 0o100700) << 16
            z.writestr(info, data)
    return buf.getvalue()


def manifest_text(b: Bundle) -> str:
    width = max([len(MANIFEST), *(len(m.name) for m in b.members)])
    lines = [
        f"gpumon bundle of session {b.folder}",
        "",
        (
            "Redacted: the recording user's name, home folder and host name, e-mail and IP "
            "addresses and token-shaped values were replaced in every text file."
            if b.redacted
            else "Not redacted: user names, home paths and host names are as recorded "
            "(gpumon export -f bundle --redact replaces them)."
        ),
        "",
        "Files (paths are relative to this folder):",
        f"  {MANIFEST.ljust(width)}  this list",
    ]
    # File names come from the folder: shown inert, like any text gpumon did not write.
    lines += [f"  {sanitize.line(m.name).ljust(width)}  {m.what}" for m in b.members]
    lines += [f"Note: {n}" for n in b.notes]
    d = b.decimation
    if d is not None:
        lines += [
            "",
            f"Decimated to fit: {layout.LOG_NAME} holds {d.samples_after} sample lines instead "
            f"of {d.samples_before}, written again from the events as read (schema "
            f"{ev.SCHEMA_VERSION}): each pool's samples were merged into windows of up to "
            f"{d.window:g} s (operations summed, latency histograms merged, memory peaks kept), "
            f"except those within {d.keep_near:g} s of a crash, stall, command, start or stop "
            f"of their pool; host samples: {d.host_after} of {d.host_before}. Every other event "
            "is as recorded; the full log is in the session folder.",
        ]
    for m in b.cut:
        lines.append(
            f"Cut to fit: {sanitize.line(m.name)} keeps {len(m.data)} of {m.full_size} bytes "
            "(its start and end, with a marker where the middle was)."
        )
    if b.over_budget is not None:
        lines.append(
            f"Over the size budget of {nbytes(b.over_budget)} even after that: nothing was dropped."
        )
    lines.append("")
    lines.append(
        f"{plural(len(b.members) + 1, 'file')}. report.md and repro.py were generated by gpumon "
        "from the log: read them before posting them."
    )
    return "\n".join(lines) + "\n"


def summary(b: Bundle) -> list[str]:
    """What was changed to fit, for the terminal (MANIFEST.txt says the same inside)."""
    out = []
    d = b.decimation
    if d is not None:
        out.append(
            f"to fit, samples were decimated into windows of up to {d.window:g} s: "
            f"{d.samples_before} -> {d.samples_after} sample lines (see MANIFEST.txt)"
        )
    for m in b.cut:
        out.append(
            f"to fit, {sanitize.line(m.name)} was cut to {len(m.data)} of {m.full_size} "
            "bytes (marked)"
        )
    if b.over_budget is not None:
        out.append(f"warning: still over the {nbytes(b.over_budget)} budget; nothing was dropped")
    return out + [n.rstrip(".") for n in b.notes]

"""One entry to every export format: a session in, the export's text out.

Used by `gpumon export` and by the monitor's `e` key alike, so both write the same bytes. The
session is a whole `LoadedSession` or a `Digest` (gpumon.session.digest: the log read without
holding its samples); `write_export` hands the text out a piece at a time, so a CSV or JSON
export of a 200 MB log is never one string either.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from gpumon import sanitize

if TYPE_CHECKING:  # importable by the CLI's parser without loading the exporters
    from gpumon.session.digest import Digest
    from gpumon.session.log import LoadedSession
    from gpumon.session.redact import Redactor

FORMATS = ("md", "csv", "json")


def render(session: LoadedSession | Digest, fmt: str, redactor: Redactor | None = None) -> str:
    """The export as text; with a redactor, user names and home paths are replaced."""
    out = io.StringIO()
    write_export(session, fmt, out.write, redactor)
    return out.getvalue()


def write_export(
    session: LoadedSession | Digest,
    fmt: str,
    write: Callable[[str], object],
    redactor: Redactor | None = None,
) -> None:
    """The export handed to `write` in pieces whose concatenation is the whole text."""
    if fmt == "json":
        from gpumon.session.export_json import write_json

        write_json(session, write, redactor)  # JSON escapes control characters itself
        return

    def inert(text: str) -> None:
        # Whatever the log carried (worker output, crash text, names), the file is inert when
        # it is opened in a terminal: every control character but newline and tab is escaped.
        # Both filters work within a line, and every piece is whole lines.
        text = sanitize.text(text)
        write(redactor.text(text) if redactor is not None else text)

    if fmt == "csv":
        from gpumon.session.export_csv import write_csv

        write_csv(session, inert)
    else:
        from gpumon.session.markdown import export_md

        inert(export_md(session))

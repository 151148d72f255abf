"""One entry to every export format: a loaded session in, the export's text out.

Used by `gpumon export` and by the monitor's `e` key alike, so both write the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpumon import sanitize

if TYPE_CHECKING:  # importable by the CLI's parser without loading the exporters
    from gpumon.session.log import LoadedSession
    from gpumon.session.redact import Redactor

FORMATS = ("md", "csv", "json")


def render(session: LoadedSession, fmt: str, redactor: Redactor | None = None) -> str:
    """The export as text; with a redactor, user names and home paths are replaced."""
    if fmt == "json":
        from gpumon.session.export_json import export_json

        return export_json(session, redactor)  # JSON escapes control characters itself
    if fmt == "csv":
        from gpumon.session.export_csv import export_csv

        text = export_csv(session)
    else:
        from gpumon.session.markdown import export_md

        text = export_md(session)
    # Whatever the log carried (worker output, crash text, names), the file is inert when it
    # is opened in a terminal: every control character but newline and tab is escaped.
    text = sanitize.text(text)
    return redactor.text(text) if redactor is not None else text

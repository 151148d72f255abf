"""Timestamps as exports print them: UTC, so an export is the same bytes on every machine."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_iso(t: float, timespec: str = "milliseconds") -> str:
    """`2026-11-28T18:01:00.456Z`."""
    return (
        datetime.fromtimestamp(t, timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")
    )


def utc_human(t: float) -> str:
    """`2026-11-28 18:01:00 UTC`."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

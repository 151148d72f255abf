"""Removes the recording user's name and home directory from anything an export produces.

The user, home and hostname come from the log's own SessionStart (the machine that recorded
it), not from the machine exporting it. Home becomes `~`, the user name `<user>`, and a
hostname that contains the user name (`alices-mbp`, `Alices-MacBook-Pro.local`) `<host>`.
Exporters apply it to their finished output (Markdown and CSV text; the JSON bundle's strings
and keys before encoding), so nothing can slip past it: argv, cwd, artifact paths, crash texts,
parsed reports and inlined artifact files all pass through the same replacement.

User names are matched case-insensitively as substrings (a `.ips` spells the computer name
"Alice's MacBook"); a name of one or two characters is only replaced as a whole word, since
replacing every "a" would destroy the report.
"""

from __future__ import annotations

import re
from typing import Any

from gpumon import events as ev

USER = "<user>"
HOME = "~"
HOST = "<host>"


class Redactor:
    def __init__(self, user: str, home: str, hostname: str = "") -> None:
        rules: list[tuple[str, str]] = []
        home = home.rstrip("/")
        # "/" alone as home (a service account) would turn every path into "~": not redacted.
        if len(home) > 1:
            # Not inside a longer name: /home/al must not eat /home/alice.
            rules.append((re.escape(home) + r"(?![\w.-])", HOME))
        if user and hostname and user.lower() in hostname.lower():
            rules.append((re.escape(hostname), HOST))
        if user:
            word = re.escape(user)
            rules.append((word if len(user) >= 3 else rf"(?<!\w){word}(?!\w)", USER))
        self.user, self.home = user, home
        self._pattern = (
            re.compile("|".join(f"(?P<r{i}>{p})" for i, (p, _) in enumerate(rules)), re.I)
            if rules
            else None
        )
        self._replacements = [r for _, r in rules]

    @classmethod
    def for_host(cls, host: ev.HostInfo) -> Redactor:
        return cls(host.user, host.home, host.hostname)

    def text(self, s: str) -> str:
        if self._pattern is None or not s:
            return s
        return self._pattern.sub(lambda m: self._replacements[int(m.lastgroup[1:])], s)

    def walk(self, obj: Any) -> Any:
        """The same structure (dicts, lists, scalars) with every string and key redacted."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.walk(k): self.walk(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.walk(v) for v in obj]
        return obj

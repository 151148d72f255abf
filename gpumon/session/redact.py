"""Removes who and where a session was recorded from anything an export produces.

The user, home and hostname come from the log's own SessionStart (the machine that recorded
it), not from the machine exporting it. Home becomes `~`, the user name `<user>`, the hostname
`<host>`; e-mail addresses become `<email>`, IP addresses `<ip>`, and the values of
token-shaped settings (`HF_TOKEN=…`, `AWS_SECRET_ACCESS_KEY=…`, `--api-key …`) `<redacted>`.
Exporters apply it to their finished output (Markdown and CSV text; the JSON bundle's strings
and keys), so nothing can slip past it: argv, cwd, artifact paths, crash texts, parsed reports
and inlined artifact files all pass through the same replacement.

Names are matched case-insensitively at word and path boundaries — a letter or digit on either
side means another word: user `dev` leaves "device" alone but catches "/home/dev/x", "dev's
Mac" and "dev_box".
"""

from __future__ import annotations

import json
import re
from typing import Any

from gpumon import events as ev

USER = "<user>"
HOME = "~"
HOST = "<host>"
EMAIL = "<email>"
IP = "<ip>"
SECRET = "<redacted>"

_EDGE_BEFORE = r"(?<![^\W_])"  # not preceded by a letter or digit (underscore is an edge)
_EDGE_AFTER = r"(?![^\W_])"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_IPV4 = rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d]|\.\d)"
# Hex and colons with a digit somewhere (C++'s `a::b` has none); checked with ipaddress.
_IPV6 = r"(?<![\w:])(?=[0-9a-f:]*\d)(?=[0-9a-f]*:[0-9a-f]*:)[0-9a-f:]{3,39}(?![\w:])"
_SECRET_NAME = (
    r"[\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|access[_-]?key|private[_-]?key)[\w-]*"
)
# NAME=value or --name=value: the name stays (it says what was hidden), the value goes.
_SECRET_ASSIGN = rf"(?P<secret_name>(?<![\w-]){_SECRET_NAME})(?P<secret_eq>\s*[=:]\s*)[^\s,;\"']+"
_SECRET_FLAG = re.compile(rf"--?{_SECRET_NAME}", re.I)


def _is_ip(s: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


class Redactor:
    def __init__(self, user: str, home: str, hostname: str = "") -> None:
        rules: list[tuple[str, str]] = [(_SECRET_ASSIGN, SECRET), (_EMAIL, EMAIL)]
        home = home.rstrip("/")
        # "/" alone as home (a service account) would turn every path into "~": not redacted.
        if len(home) > 1:
            # Not inside a longer name: /home/al must not eat /home/alice.
            rules.append((re.escape(home) + r"(?![\w.-])", HOME))
        if hostname and hostname.lower() not in ("localhost", "localhost.localdomain"):
            rules.append((_EDGE_BEFORE + re.escape(hostname) + _EDGE_AFTER, HOST))
        if user:
            rules.append((_EDGE_BEFORE + re.escape(user) + _EDGE_AFTER, USER))
        rules += [(_IPV4, IP), (_IPV6, IP)]
        self.user, self.home = user, home
        self._pattern = re.compile(
            "|".join(f"(?P<r{i}>{p})" for i, (p, _) in enumerate(rules)), re.I
        )
        self._replacements = [r for _, r in rules]

    @classmethod
    def for_host(cls, host: ev.HostInfo) -> Redactor:
        return cls(host.user, host.home, host.hostname)

    def _replace(self, m: re.Match[str]) -> str:
        if m.group("secret_name") is not None:
            return m.group("secret_name") + m.group("secret_eq") + SECRET
        for i, repl in enumerate(self._replacements):
            if m.group(f"r{i}") is not None:
                if repl == IP and not _is_ip(m.group(0)):
                    return m.group(0)
                return repl
        return m.group(0)

    def text(self, s: str) -> str:
        if not s:
            return s
        return self._pattern.sub(self._replace, s)

    def walk(self, obj: Any) -> Any:
        """The same structure (dicts, lists, scalars) with every string and key redacted; in a
        list (an argv), the value after a secret-looking flag (`--token abc`) goes too."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.walk(k): self.walk(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            out = []
            hide_next = False
            for v in obj:
                if hide_next and isinstance(v, str):
                    out.append(SECRET)
                else:
                    out.append(self.walk(v))
                hide_next = isinstance(v, str) and _SECRET_FLAG.fullmatch(v) is not None
            return out
        return obj

    def json_text(self, text: str) -> str:
        """A JSON document (indented like json.dumps(indent=2)) with every string redacted."""
        return json.dumps(self.walk(json.loads(text)), indent=2) + "\n"

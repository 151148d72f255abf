"""The pre-pass: take the report out of whatever it was pasted into.

A report reaches gpumon the way people share it: inside a Markdown code fence, rendered to
HTML by a forum (`<pre><code>`, `-&gt;`, `QFlags&lt;...&gt;`), quoted in a reply (`> `), with
a prefix on every line that the launcher added (torchrun's `[rank0]: `, Ray's
`(Worker pid=123, ip=...) `, timestamps, a journal's `host proc[pid]: `), or indented as a
whole. The parsers know report formats, not these wrappings, so one pass in front of all of
them removes the wrapping and says what it removed (`Plan.notes`).

The plan is made from a sample (the head of a large file) and then applied line by line, so a
100 MB dump streams through it. A prefix counts only when it is on most lines: a `>` or a
timestamp on a few lines is content. Nothing here raises: a wrapping that is not recognised is
left alone and the parsers see the text as it was.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Tags a forum or an issue renderer wraps a paste in. Restricted to these names (and `<a>`
# only with attributes) because C++ symbols are full of `<...>`: `std::vector<p>` is rare, but
# `Foo<T>` is everywhere, and a generic tag pattern would eat template arguments.
_TAG = re.compile(
    r"</?(?:pre|code|p|br|div|span|blockquote|aside|details|summary|img|ul|ol|li|hr|kbd|samp"
    r"|tt|table|thead|tbody|tr|td|th|h[1-6]|strong|em)\b[^<>]{0,2000}>|<a\s[^<>]{0,2000}>|</a>",
    re.I,
)
_BR = re.compile(r"<br\s*/?>", re.I)
_HTML_HINT = re.compile(
    r"<(?:pre|code|/p|br|div|details|summary|blockquote)\b|</(?:pre|code)>", re.I
)
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|apos|nbsp|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});")
_FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,})[\w+.#-]*[ \t]*$")


@dataclass(frozen=True)
class Prefix:
    """A per-line prefix: what it is (for the note) and how to recognise it."""

    what: str
    pattern: re.Pattern[str]


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
PREFIXES = (
    Prefix("'> ' quoting", re.compile(r"^[ \t]{0,3}>(?:[ \t]?>)*(?: |\t|$)")),
    Prefix("torchrun's '[rankN]:' prefix", re.compile(r"^\[(?:rank|Rank ?)?\d+\]:[ \t]?")),
    Prefix("MPI's '[N,M]<stderr>:' prefix", re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:[ \t]?")),
    Prefix(
        "Ray's '(worker pid=N, ip=...)' prefix",
        re.compile(r"^\((?:[^()\s]{1,200}[ \t]+)?pid=\d+(?:,[ \t]*ip=[0-9a-fA-F.:]+)?\)[ \t]?"),
    ),
    Prefix("kubectl's '[pod/...]' prefix", re.compile(r"^\[pod/[^\]\s]{1,300}\][ \t]")),
    Prefix(
        "timestamps",
        re.compile(
            r"^\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?\]?"
            r"(?:[ \t]+\[[ \t]*\d{1,7}[ \t]*\])?[ \t]"  # "[ 73142 ]": a bracketed thread id
        ),
    ),
    Prefix(
        "journal timestamps",
        re.compile(
            rf"^{_MONTH}[ \t]+\d{{1,2}}[ \t]+\d\d:\d\d:\d\d(?:[.,]\d+)?"
            r"(?:[ \t]+[\w.-]{1,100}[ \t]+[\w.@/-]{1,100}(?:\[\d+\])?:)?[ \t]"
        ),
    ),
    Prefix("'service |' prefix", re.compile(r"^[\w.-]{1,100}[ \t]+\|[ \t]?")),
)
SAMPLE = 1024 * 1024  # characters a plan is made from
_MIN_SHARE = 0.6  # a prefix must be on this share of the non-blank lines to be a wrapping
_MAX_ROUNDS = 3  # timestamps, then a rank, then quoting: wrappings nest
_LONG_LINE = 100_000
_WIDE_INDENT = 4  # a Markdown code block's indentation
_MAX_INDENT = 64  # longer lines are data, not wrapping: left as they are (and fast)


@dataclass(frozen=True)
class Plan:
    """What to remove from every line, decided from a sample of the input."""

    html: bool = False
    entities: bool = False
    nbsp: bool = False
    prefixes: tuple[Prefix, ...] = ()
    indent: str = ""
    fences: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.html or self.entities or self.nbsp or self.prefixes or self.indent or self.fences
        )

    def notes(self) -> list[str]:
        out = []
        if self.fences:
            out.append("removed Markdown code fences")
        if self.html:
            out.append("removed HTML markup")
        if self.entities:
            out.append("decoded HTML entities (&lt; &gt; &amp; ...)")
        out.extend(f"removed {p.what} from every line" for p in self.prefixes)
        if self.indent:
            width = len(self.indent.expandtabs(8))
            out.append(f"removed a {width}-column indentation")
        return out

    def apply(self, lines: Iterable[str]) -> Iterator[str]:
        """The lines with the wrapping removed (fence lines dropped, `<br>` split)."""
        if self.empty:
            yield from lines
            return
        for raw in lines:
            if len(raw) > _LONG_LINE:
                yield raw
                continue
            pieces = _BR.split(raw) if self.html and "<" in raw else (raw,)
            for piece in pieces:
                line = self._clean(piece)
                if line is not None:
                    yield line

    def _clean(self, line: str) -> str | None:
        if self.html and "<" in line:
            line = _TAG.sub("", line)
        if self.entities and "&" in line:
            line = html.unescape(line)
        if self.nbsp and "\xa0" in line:
            line = line.replace("\xa0", " ")
        for prefix in self.prefixes:
            m = prefix.pattern.match(line)
            if m is not None:
                line = line[m.end() :]
        if self.fences and _FENCE.match(line):
            return None
        if self.indent and line.startswith(self.indent):
            line = line[len(self.indent) :]
        return line


def plan(sample: str) -> Plan:
    """Decide the wrapping from `sample` (the whole text, or the head of a large file)."""
    lines = [line for line in sample.splitlines() if len(line) <= _LONG_LINE]
    has_html = _HTML_HINT.search(sample) is not None
    has_entities = _ENTITY.search(sample) is not None
    has_nbsp = "\xa0" in sample
    step = Plan(html=has_html, entities=has_entities, nbsp=has_nbsp)
    lines = list(step.apply(lines))
    prefixes: list[Prefix] = []
    for _ in range(_MAX_ROUNDS):
        found = _common_prefix(lines, exclude=prefixes)
        if found is None:
            break
        prefixes.append(found)
        lines = [_strip(found, line) for line in lines]
    fences = any(_FENCE.match(line) for line in lines)
    if fences:
        lines = [line for line in lines if not _FENCE.match(line)]
    return Plan(
        html=has_html,
        entities=has_entities,
        nbsp=has_nbsp,
        prefixes=tuple(prefixes),
        indent=_common_indent(lines),
        fences=fences,
    )


def _strip(prefix: Prefix, line: str) -> str:
    m = prefix.pattern.match(line)
    return line[m.end() :] if m is not None else line


def _common_prefix(lines: list[str], exclude: list[Prefix]) -> Prefix | None:
    """The prefix on the largest share of the non-blank lines, if that share is a majority."""
    content = [line for line in lines if line.strip()]
    if not content:
        return None
    best: tuple[int, Prefix] | None = None
    for prefix in PREFIXES:
        if prefix in exclude:
            continue
        hits = sum(1 for line in content if prefix.pattern.match(line))
        if hits and (best is None or hits > best[0]):
            best = (hits, prefix)
    if best is None:
        return None
    hits, prefix = best
    if hits / len(content) < _MIN_SHARE or (hits < 2 and len(content) > 1):
        return None
    return prefix


def _common_indent(lines: list[str]) -> str:
    """The indentation of a paste indented as a whole: what every non-blank line starts with,
    or else (prose around a Markdown code block) an indentation of 4 columns or a tab that
    most lines start with. Narrower shared indentation is a format's own (faulthandler frames)."""
    leads = Counter(line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip())
    total = sum(leads.values())
    if not total:
        return ""
    shared = _shared_prefix(list(leads))
    if shared:
        return shared
    prefixes: Counter[str] = Counter()
    for lead, n in leads.items():
        for end in range(1, min(len(lead), _MAX_INDENT) + 1):
            prefixes[lead[:end]] += n
    best = ""
    for prefix, n in prefixes.items():
        wide = "\t" in prefix or len(prefix) >= _WIDE_INDENT
        if wide and n / total >= _MIN_SHARE and len(prefix) > len(best):
            best = prefix
    return best


def _shared_prefix(leads: list[str]) -> str:
    shared = leads[0]
    for lead in leads[1:]:
        n = 0
        while n < len(shared) and n < len(lead) and shared[n] == lead[n]:
            n += 1
        shared = shared[:n]
        if not shared:
            break
    return shared


def clean(text: str) -> tuple[str, list[str]]:
    """`text` without its wrapping, and the notes saying what was removed. The wrapping is
    decided from the first SAMPLE characters (a wrapping is on every line, so the head tells)."""
    p = plan(text[:SAMPLE])
    if p.empty:
        return text, []
    return "\n".join(p.apply(text.splitlines())) + "\n", p.notes()

"""The sanitiser: hostile terminal sequences become visible text; honest text passes unchanged."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gpumon import sanitize

# What a crafted dump or a hostile thread name can carry, each of which a terminal would obey.
HOSTILE = {
    "clear screen (CSI)": "\x1b[2J\x1b[H",
    "clipboard (OSC 52)": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "window title (OSC 0, ST)": "\x1b]0;owned\x1b\\",
    "bell": "\x07",
    "C1 CSI": "\x9b2J",
    "C1 OSC": "\x9d52;c;eA==\x9c",
    "carriage return overwrite": "safe\rEVIL",
    "backspace": "abc\x08\x08\x08xyz",
    "bidi override (RLO)": "libmlx\u202egnp.exe",
    "bidi isolate": "\u2066frame\u2069",
    "line separator": "a\u2028b",
    "zero width space": "ev\u200bal",
    "NUL": "a\x00b",
    "DEL": "a\x7fb",
}

# Anything a terminal treats as a control: C0 but \n and \t, DEL, C1, and the format
# characters above.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069]")


def test_every_hostile_sequence_is_made_visible():
    for what, s in HOSTILE.items():
        out = sanitize.text(f"before {s} after")
        assert not CONTROL.search(out), what
        assert out.startswith("before ") and out.endswith(" after"), what
        assert "\\" in out, f"{what}: nothing shows that something was escaped"


def test_escapes_name_the_character():
    assert sanitize.text("\x1b[2J") == "\\x1b[2J"
    assert sanitize.text("\x9b") == "\\x9b"
    assert sanitize.text("a\u202eb") == "a\\u202eb"
    assert sanitize.text("a\rb") == "a\\rb"


def test_text_keeps_lines_and_tabs_and_line_keeps_nothing():
    assert sanitize.text("a\n\tb\r\nc") == "a\n\tb\nc"
    assert sanitize.line("a\n\tb") == "a\\n\\tb"


def test_honest_text_is_unchanged():
    honest = [
        "mlx::core::eval_impl(std::vector<mlx::core::array, std::allocator<mlx::core::array> >)",
        "AGX::ComputeContext<AGXG16XFamilyComputeContext>::performEnqueueKernel",
        "Thread-65 (mlx_worker)",
        "Größe — 1.5 µs ± 3 % 日本語",
        "",
    ]
    for s in honest:
        assert sanitize.text(s) == s
        assert sanitize.line(s) == s
        assert sanitize.is_clean(s)


def test_md_code_cannot_be_closed_from_inside():
    block = sanitize.md_code("before\n```\n# injected heading\n````\nafter")
    fence = block[0]
    assert set(fence) == {"`"} and len(fence) >= 5
    assert block[-1] == fence
    # no line inside is a fence as long as the block's
    assert all(not ln.startswith(fence) for ln in block[1:-1])


def test_md_cell_shows_markdown_as_written():
    cell = sanitize.md_cell("a | b [link](http://x) <img src=x> *em* `c`\n# h")
    assert "|" not in cell.replace("\\|", "")
    assert "\n" not in cell
    assert "\\[link\\]" in cell and "\\<img" in cell and "\\*em\\*" in cell


def test_md_inline_code_delimiter_is_longer_than_any_run_inside():
    out = sanitize.md_inline_code("a ``b`` c")
    assert out.startswith("```") and out.endswith("```")
    assert sanitize.md_inline_code("x|y") == "`x\\|y`"


@given(st.text())
def test_no_control_character_survives(s):
    assert not CONTROL.search(sanitize.text(s).replace("\n", "").replace("\t", ""))
    assert not CONTROL.search(sanitize.line(s))
    assert "\n" not in sanitize.line(s)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp"))))
def test_printable_text_is_identity(s):
    assert sanitize.text(s) == s
    assert sanitize.line(s) == s

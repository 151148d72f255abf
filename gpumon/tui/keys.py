"""Every key the monitor answers to, in one table: the bindings, the footer, the help screen
and docs/tui.md are all generated from it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

LIVE, REPLAY, BOTH = "live", "replay", "both"


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma separated
    shown: str  # how the help screen and the docs write the keys
    action: str  # "app.x" runs the app's action; bound on the main screens unless on_app
    footer: str  # short footer label ("" = not in the footer)
    help: str
    mode: str = BOTH
    priority: bool = False
    on_app: bool = False  # bound on the App: works over every screen (help, crash, ...)


KEYS: tuple[Key, ...] = (
    Key("question_mark", "?", "app.help", "help", "this help", on_app=True),
    Key(
        "q",
        "q",
        "app.quit",
        "quit",
        "quit: stops every pool cleanly and closes the session log",
        on_app=True,
    ),
    Key(
        "tab",
        "tab / shift+tab",
        "app.focus_next",
        "",
        "move focus: pool panels, then the event log",
    ),
    Key(
        "1,2,3,4,5,6,7,8,9",
        "1 … 9",
        "select_pool_key",
        "",
        "select pool N (the number in its panel's title); pool keys act on the selected pool",
    ),
    Key(
        "space,n,pagedown",
        "space / n",
        "app.next_step",
        "next step",
        "a scenario step that waits for the presenter goes on (PageDown too, as presenter "
        "remotes send)",
        LIVE,
        on_app=True,
    ),
    Key("plus,equals_sign", "+", "app.threads(1)", "thread", "one more worker thread"),
    Key("minus", "-", "app.threads(-1)", "thread", "one worker thread fewer"),
    Key(
        "t",
        "t",
        "app.set_threads",
        "set threads",
        "type a thread count (1–256). During a crash or "
        "a restart the pool remembers it and starts with it",
        # Priority: handled as it is read, so the entry has focus before the next key is
        # dispatched (`t6⏎` typed in one go lands in it; see widgets/thread_entry.py).
        priority=True,
    ),
    Key("p", "p", "app.pause", "pause", "pause / resume the selected pool"),
    Key("r", "r", "app.restart", "restart", "restart the selected pool (a new worker process)"),
    Key(
        "c",
        "c",
        "app.cycle_policy",
        "policy",
        "cycle the concurrency policy: per-thread → "
        "shared → locked (policies the backend cannot do are skipped, and it says why)",
    ),
    Key(
        "w",
        "w",
        "app.cycle_workload",
        "workload",
        "cycle the workload: matmul (addmm) → mlp → generate (decoding with sampling)",
    ),
    Key("right_square_bracket", "]", "app.size(1)", "", "double the size (matrix / hidden width)"),
    Key("left_square_bracket", "[", "app.size(-1)", "", "halve the size"),
    Key("d", "d", "app.cycle_dtype", "", "cycle the dtype: float32 → float16 → bfloat16"),
    Key(
        "x",
        "x",
        "app.last_crash",
        "crash",
        "open the latest crash (or Enter on a crash line in the log)",
        on_app=True,
    ),
    Key(
        "e",
        "e",
        "app.export",
        "export",
        "export the session as a Markdown evidence report: live, into the session folder; in "
        "a replay, into the current directory (works on the crash screen too)",
        on_app=True,
    ),
    Key(
        "s",
        "s",
        "app.screenshot_svg",
        "svg",
        "save an SVG screenshot: live, into the session folder (the current directory with "
        "--no-record); in a replay, into the current directory",
        on_app=True,
    ),
    Key(
        "space",
        "space",
        "play_pause",
        "play/pause",
        "play / pause the replay",
        REPLAY,
        priority=True,
    ),
    Key("less_than_sign", "<", "speed(-1)", "slower", "replay slower (¼× … 16×)", REPLAY),
    Key("greater_than_sign", ">", "speed(1)", "faster", "replay faster", REPLAY),
    Key("left", "← / →", "seek(-5)", "-5 s", "seek 5 s back / forward", REPLAY, priority=True),
    Key("right", "", "seek(5)", "", "", REPLAY, priority=True),
    Key(
        "home",
        "home / end",
        "seek_to(0)",
        "",
        "jump to the start / end of the recording",
        REPLAY,
        priority=True,
    ),
    Key("end", "", "seek_to(-1)", "", "", REPLAY, priority=True),
)

# Keys that change a pool; in a replay they answer with a message instead.
POOL_ACTIONS = (
    "threads",
    "set_threads",
    "pause",
    "restart",
    "cycle_policy",
    "cycle_workload",
    "size",
    "cycle_dtype",
)
# Pool keys are shown in the footer live only; a replay's footer has its own controls.
FOOTER_LIVE_ONLY = {"thread", "set threads", "pause", "restart", "policy", "workload"}


# Shown first in the footer, so a narrow terminal (80 columns, three pools) cuts pool keys
# rather than help and quit: also bound on the main screens, ahead of everything else.
FOOTER_FIRST = ("app.help", "app.quit")


def bindings(mode: str) -> list[BindingType]:
    out: list[BindingType] = [
        Binding(k.keys, k.action, k.footer) for k in KEYS if k.action in FOOTER_FIRST
    ]
    for k in KEYS:
        if k.mode not in (BOTH, mode) or k.on_app:
            continue  # app-level keys live on the App so they work on every screen
        if k.action == "app.focus_next":
            continue  # Textual's own tab handling
        if k.action == "select_pool_key":
            out += [Binding(str(i), f"select_pool({i})", show=False) for i in range(1, 10)]
            continue
        show = bool(k.footer) and not (mode == REPLAY and k.footer in FOOTER_LIVE_ONLY)
        out.append(Binding(k.keys, k.action, k.footer or k.action, show=show, priority=k.priority))
    return out


def app_bindings() -> list[BindingType]:
    out: list[BindingType] = [
        Binding(k.keys, k.action.removeprefix("app."), k.footer, show=bool(k.footer))
        for k in KEYS
        if k.on_app
    ]
    out.append(Binding("ctrl+c,ctrl+q", "quit", "quit", show=False, priority=True))
    return out


def is_pool_key(k: Key) -> bool:
    return k.action.removeprefix("app.").split("(")[0] in POOL_ACTIONS


def help_rows(mode: str) -> list[tuple[str, str]]:
    rows = [
        (k.shown, k.help)
        for k in KEYS
        if k.help and k.mode in (BOTH, mode) and not (mode == REPLAY and is_pool_key(k))
    ]
    rows += [
        ("enter", "on a crash or stall line in the event log: its stacks"),
        ("esc", "back from the crash, stall and help screens"),
        ("a", "crash screen: fold / unfold every thread"),
    ]
    if mode == REPLAY:
        pool_keys = " ".join(k.shown for k in KEYS if is_pool_key(k))
        rows.append((pool_keys, "pool controls: disabled in a replay (it is a recording)"))
    return rows

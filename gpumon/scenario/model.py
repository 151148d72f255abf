"""Scenario files: pools and a timeline of steps, so a presenter shows a bug in one command.

A scenario is TOML (docs/tui.md, "Scenarios"):

    name = "mlx-threads"
    title = "MLX's threading bug, live"
    pools = ["mlx@0.31.1,name=old,workload=generate,threads=1"]
    fallback = ["fault,name=old,threads=1,fault-rate=5"]   # when the version cannot be had

    [[steps]]
    until = "ready"
    caption = "MLX 0.31.1 decodes tokens on one thread."

    [[steps]]
    after = 4
    pool = "old"
    threads = 2
    caption = "Two threads sample at once."

Each step waits for its trigger — `after` seconds past the previous step, `at` seconds into
the scenario, or `until` one of: `ready` (the pools, or `pool`, answered), `crash` (of `pool`,
or any), `quiet` (no crash for `quiet` seconds), `key` (the presenter; a headless run goes
straight on) — then does its actions on `pool`: threads, policy, workload, size, dtype,
pause, resume, restart, and shows its caption. Everything is checked on load by gpumon.spec's
validators, so a typo is one line naming the step, never a surprise on stage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from gpumon.spec import (
    PoolConfig,
    SpecError,
    parse_key,
    parse_pool,
    unique_names,
    validate_size,
    validate_threads,
)

UNTIL = ("ready", "crash", "quiet", "key")
SHOW = ("crash", "main")
BUILTIN = Path(__file__).with_name("builtin")


class Step(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    # when
    after: float = 0.0  # seconds after the previous step finished
    at: float | None = None  # seconds after the scenario started (instead of `after`)
    until: str | None = None  # ready | crash | quiet | key
    within: float = 60.0  # seconds to wait for `until` before going on anyway
    quiet: float = 5.0  # `until = "quiet"`: seconds without a crash
    # what
    pool: str | None = None
    threads: int | None = None
    policy: str | None = None
    workload: str | None = None
    size: int | None = None
    dtype: str | None = None
    pause: bool = False
    resume: bool = False
    restart: bool = False
    caption: str | None = None
    show: str | None = None  # crash: open the latest crash's screen (TUI); main: back
    # Put the measured rates of these pools over this step's wait into its caption.
    compare: list[str] = msgspec.field(default_factory=list)

    @property
    def acts_on_pool(self) -> bool:
        return any(
            x is not None for x in (self.threads, self.policy, self.workload, self.size, self.dtype)
        ) or (self.pause or self.resume or self.restart)


class Scenario(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: str
    title: str
    description: str = ""
    pools: list[str]
    # Synthetic pools with the same names, used when a pinned framework version cannot be had
    # here (offline and not cached): the story still runs, labelled synthetic.
    fallback: list[str] = msgspec.field(default_factory=list)
    restart: bool = False  # auto-restart crashed pools (a demo usually restarts on purpose)
    steps: list[Step] = msgspec.field(default_factory=list)

    def pool_configs(self, fallback: bool = False) -> list[PoolConfig]:
        specs = self.fallback if fallback else self.pools
        return unique_names([parse_pool(s) for s in specs])


class ScenarioError(SpecError):
    """A scenario that cannot run; the message is one sentence naming the place."""


def _toml(text: str) -> dict[str, object]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def parse(text: str, where: str = "scenario") -> Scenario:
    try:
        raw = _toml(text)
    except ValueError as e:  # tomllib.TOMLDecodeError: "... (at line 4, column 9)"
        raise ScenarioError(f"{where} is not valid TOML: {e}") from None
    try:
        sc = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as e:
        raise ScenarioError(f"{where}: {e}") from None
    check(sc, where)
    return sc


def check(sc: Scenario, where: str) -> None:
    """Every pool spec parses, every step names a pool that exists and valid values."""
    if not sc.pools:
        raise ScenarioError(f"{where}: it has no pools")
    names = {c.name for c in _configs(sc.pools, where, "pools")}
    if sc.fallback:
        fb = {c.name for c in _configs(sc.fallback, where, "fallback")}
        if fb != names:
            raise ScenarioError(
                f"{where}: the fallback pools must have the same names as the pools "
                f"({', '.join(sorted(names))}), not {', '.join(sorted(fb))}"
            )
    for i, st in enumerate(sc.steps, start=1):
        at = f"{where}, step {i}"
        try:
            _check_step(st, names, at)
        except SpecError as e:
            raise ScenarioError(str(e) if str(e).startswith(at) else f"{at}: {e}") from None


def _configs(specs: list[str], where: str, key: str) -> list[PoolConfig]:
    try:
        return unique_names([parse_pool(s) for s in specs])
    except SpecError as e:
        raise ScenarioError(f"{where}, {key}: {e}") from None


def _check_step(st: Step, names: set[str], at: str) -> None:
    if st.until is not None and st.until not in UNTIL:
        raise ScenarioError(f"{at}: until={st.until!r} is not one of: {', '.join(UNTIL)}")
    if st.show is not None and st.show not in SHOW:
        raise ScenarioError(f"{at}: show={st.show!r} is not one of: {', '.join(SHOW)}")
    for value, what in ((st.after, "after"), (st.within, "within"), (st.quiet, "quiet")):
        if not value >= 0:
            raise ScenarioError(f"{at}: {what} must be 0 or more seconds")
    if st.at is not None and not st.at >= 0:
        raise ScenarioError(f"{at}: at must be 0 or more seconds")
    if st.pool is not None and st.pool not in names:
        known = ", ".join(sorted(names))
        raise ScenarioError(f"{at}: there is no pool {st.pool!r}; pools: {known}")
    if st.acts_on_pool and st.pool is None:
        raise ScenarioError(f'{at}: it changes a pool, so it must say which (pool = "...")')
    for name in st.compare:
        if name not in names:
            raise ScenarioError(f"{at}: compare names no pool {name!r}")
    if st.threads is not None:
        validate_threads(st.threads)
    if st.size is not None:
        validate_size(st.size)
    for key, text in (("policy", st.policy), ("workload", st.workload), ("dtype", st.dtype)):
        if text is not None:
            parse_key(key, text)


def load(name_or_path: str) -> tuple[Scenario, str]:
    """A scenario file, or a built-in one by name; (scenario, where it came from)."""
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or p.exists():
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ScenarioError(f"scenario {p}: {e.strerror or e}") from None
        return parse(text, str(p)), str(p)
    builtin = BUILTIN / f"{name_or_path}.toml"
    if not builtin.is_file():
        known = ", ".join(sorted(x.stem for x in BUILTIN.glob("*.toml")))
        raise ScenarioError(
            f"no scenario file or built-in scenario named {name_or_path!r}; built-in: {known}"
        )
    return parse(builtin.read_text(encoding="utf-8"), f"built-in {name_or_path}"), (
        f"built-in {name_or_path}"
    )


def builtins() -> list[Scenario]:
    return [parse(p.read_text(encoding="utf-8"), p.stem) for p in sorted(BUILTIN.glob("*.toml"))]

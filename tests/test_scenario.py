"""Scenarios: files checked on load, steps played on time and on their conditions, a synthetic
fallback when a pinned version cannot be had, and `gpumon run` recording the whole story."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from gpumon import events as ev
from gpumon.control import SetThreads
from gpumon.live_session import open_session
from gpumon.scenario.choose import pick
from gpumon.scenario.conductor import Conductor
from gpumon.scenario.model import ScenarioError, builtins, parse
from gpumon.session.log import load
from tests.test_folds import crash  # the suite's Crash event of a fault pool

ROOT = Path(__file__).resolve().parents[1]
HEAD = 'name = "t"\ntitle = "t"\npools = ["fault,name=a,threads=1,native=off"]\n'


@pytest.mark.parametrize(
    ("steps", "needle"),
    [
        ('[[steps]]\npool = "b"\nthreads = 2\n', "step 1: there is no pool 'b'"),
        ("[[steps]]\nthreads = 2\n", "it changes a pool, so it must say which"),
        ('[[steps]]\nuntil = "later"\n', "until='later' is not one of"),
        ('[[steps]]\npool = "a"\nthreads = 0\n', "thread count 0 is out of range"),
        ('[[steps]]\npool = "a"\npolicy = "yolo"\n', "policy='yolo' is not one of"),
        ("[[steps]]\nafter = -1\n", "after must be 0 or more seconds"),
        ("[[steps]]\nthredas = 2\n", "unknown field `thredas`"),
        ('[[steps]]\nshow = "everything"\n', "show='everything' is not one of"),
        ('[[steps]]\ncompare = ["z"]\n', "compare names no pool 'z'"),
    ],
)
def test_mistakes_are_one_line_naming_the_step(steps: str, needle: str) -> None:
    with pytest.raises(ScenarioError, match=needle.replace("(", r"\(")):
        parse(HEAD + steps, "s.toml")


def test_the_built_ins_are_valid_and_distinct() -> None:
    found = builtins()
    names = [s.name for s in found]
    assert "mlx-threads" in names and len(set(names)) == len(names)
    for sc in found:
        assert sc.steps and sc.title
        if any(c.version for c in sc.pool_configs()):
            assert sc.fallback, f"{sc.name} pins a version, so it needs a synthetic fallback"


def test_a_version_that_cannot_be_had_plays_the_fallback() -> None:
    text = (
        'name = "x"\ntitle = "x"\npools = ["mlx@0.0.1,name=a"]\n'
        'fallback = ["fault,name=a"]\n[[steps]]\nuntil = "ready"\n'
    )
    pools, fallback, note = pick(parse(text))
    assert fallback and [p.backend for p in pools] == ["fault"]
    assert "mlx 0.0.1" in note and "SYNTHETIC" in note
    with pytest.raises(ScenarioError, match="no synthetic fallback"):
        pick(parse(text.replace('fallback = ["fault,name=a"]\n', "")))


async def test_steps_keep_their_times_and_conditions(tmp_path: Path) -> None:
    sc = parse(
        HEAD.replace("native=off", "native=off,fault-rate=20")
        + '[[steps]]\nuntil = "ready"\n'
        + '[[steps]]\nafter = 1.0\ncaption = "one second later"\n'
        + '[[steps]]\nat = 2.5\npool = "a"\nthreads = 2\n'
        + '[[steps]]\nuntil = "crash"\npool = "a"\nwithin = 20\n'
        + '[[steps]]\nuntil = "quiet"\nquiet = 1\nwithin = 10\n'
        + '[[steps]]\nuntil = "key"\n',
        "timed.toml",
    )
    seen: list[ev.Event] = []
    async with open_session(
        sc.pool_configs(),
        mode="test",
        argv=["pytest"],
        record=False,
        artifacts_root=tmp_path,
        listeners=[seen.append],
        start_pools=False,
        host_every=None,
    ) as s:
        conductor = Conductor(sc, s.supervisor, s.publish, interactive=False, source="t")
        s.bus.subscribe(conductor)
        await s.supervisor.start()
        assert await conductor.run() == "finished"
    (started,) = [e for e in seen if isinstance(e, ev.ScenarioStarted)]
    steps = [e for e in seen if isinstance(e, ev.ScenarioStep)]
    assert [x.index for x in steps] == [1, 2, 3, 4, 5, 6]
    t = {x.index: x.t - started.t for x in steps}
    assert t[2] - t[1] >= 1.0 and t[3] >= 2.5
    crash = next(e for e in seen if isinstance(e, ev.Crash))
    assert crash.t >= steps[2].t and steps[3].waited.startswith("a crash of a after")
    assert steps[4].waited == "1 s without a crash"  # the crashed pool stays down (no restart)
    assert steps[5].waited == "the presenter (skipped: headless)"
    ctl = [e for e in seen if isinstance(e, ev.Control) and e.source == "scenario"]
    assert isinstance(ctl[0].command, SetThreads)
    assert isinstance(seen[-1], ev.SessionEnd)
    assert any(isinstance(e, ev.ScenarioEnded) and e.reason == "finished" for e in seen)


async def test_a_crash_that_beats_its_commands_ack_is_the_next_steps_crash() -> None:
    """A command can kill its pool before the acknowledgement is back (fault-threads did so in
    CI): the crash belongs to the step waiting for one, not to nobody."""
    sc = parse(
        HEAD
        + '[[steps]]\npool = "a"\nthreads = 2\n'
        + '[[steps]]\nuntil = "crash"\npool = "a"\nwithin = 1\n',
        "race.toml",
    )
    conductor: Conductor

    class DiesBeforeAck:
        """Stands in for the supervisor, because a real pool wins this race only now and then:
        the command's crash is published before the command returns."""

        def __init__(self) -> None:
            self.pools = {"a": None}

        async def command(self, pool: str, cmd: object, source: str = "") -> None:
            conductor(msgspec.structs.replace(crash(0.0), pool="a"))
            await asyncio.sleep(0.05)  # the acknowledgement comes later

    seen: list[ev.Event] = []
    conductor = Conductor(sc, DiesBeforeAck(), seen.append, interactive=False)  # type: ignore[arg-type]
    assert await conductor.run() == "finished"
    steps = [e for e in seen if isinstance(e, ev.ScenarioStep)]
    assert steps[1].waited.startswith("a crash of a after"), steps[1].waited


def test_gpumon_run_records_the_story_and_exits_as_sweep_does(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "gpumon", "run", "fault-threads", "--session-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert r.returncode == 3, (r.stdout, r.stderr)  # the scripted crash is a crash
    assert "step 3/6 (after a crash of" in r.stdout or "step 3/6 (after a crash" in r.stdout
    (log,) = tmp_path.glob("*/session.jsonl")
    s = load(log)
    steps = [e for e in s.events if isinstance(e, ev.ScenarioStep)]
    assert len(steps) == 6 and s.start.mode == "run"
    assert any(isinstance(e, ev.Crash) for e in s.events)
    # The restart of step 5 came back at 1 thread (a command to the crashed pool, remembered)
    ready = [e for e in s.events if isinstance(e, ev.PoolReady)]
    assert len(ready) == 2
    starting = [e for e in s.events if isinstance(e, ev.PoolStarting)]
    assert starting[-1].config.threads == 1


def test_a_bad_scenario_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + '[[steps]]\npool = "nope"\nthreads = 2\n')
    for args in (["run", str(bad)], ["run", "no-such-demo"], ["demo", "no-such-demo"]):
        r = subprocess.run(
            [sys.executable, "-m", "gpumon", *args], capture_output=True, text=True, cwd=ROOT
        )
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr

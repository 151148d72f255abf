"""MLX concurrency policies mean what each MLX version does, and the old bug is real.

The pure decisions are tested directly; the rest runs real workers: the installed MLX under
the supervisor, and MLX 0.31.1 (every thread shares one default stream) in its own cached env,
started the way the supervisor starts workers (tests/engine/worker_harness.py).
"""

from __future__ import annotations

import shutil

import msgspec
import pytest

from gpumon import events as ev
from gpumon import protocol
from gpumon.crash.parse import parse_report
from gpumon.spec import POLICIES, PoolConfig
from gpumon.worker.backends import mlx_policies
from gpumon.worker.backends.base import suggest_policy
from tests.conftest import wait_for
from tests.engine.config_session import ConfigSession, default_policy
from tests.engine.worker_harness import WorkerRun
from tests.envs_helper import require_env

pytestmark = pytest.mark.timeout(180)
needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
OLD = "0.31.1"  # the last release where every thread shares one default stream

# ---- pure decisions ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.29.0", "0.30.6", "0.31.0", "0.31.1"])
def test_before_0_31_2_shared_is_mlx_itself_and_the_default(version: str) -> None:
    p = mlx_policies.plan(version, has_unsafe_stream=False)
    assert p.default == "shared"
    assert p.reasons == {"per-thread": "", "shared": "", "locked": ""}
    assert "MLX's own behaviour before 0.31.2" in p.how["shared"]
    assert "mx.new_stream per thread" in p.how["per-thread"]


def test_old_per_thread_is_refused_with_the_error_mlx_gave() -> None:
    p = mlx_policies.plan("0.31.1", False, per_thread_error="RuntimeError: boom")
    assert "RuntimeError: boom" in p.reasons["per-thread"]
    assert p.reasons["shared"] == "" and p.default == "shared"  # the default is never refused


def test_0_31_2_shares_one_new_stream_unless_streams_cannot_cross_threads() -> None:
    ok = mlx_policies.plan("0.31.2", has_unsafe_stream=False)
    assert ok.default == "per-thread" and ok.available() == list(POLICIES)
    assert "mx.new_stream made once" in ok.how["shared"]
    err = "RuntimeError: There is no Stream(cpu, 0) in current thread."
    no = mlx_policies.plan("0.31.2", has_unsafe_stream=False, shared_error=err)
    assert err in no.reasons["shared"] and "0.32.0" in no.reasons["shared"]
    assert no.available() == ["per-thread", "locked"]


@pytest.mark.parametrize("version", ["0.32.0", "0.32.4", "1.0.0"])
def test_0_32_shares_a_thread_unsafe_stream(version: str) -> None:
    p = mlx_policies.plan(version, has_unsafe_stream=True)
    assert p.default == "per-thread" and p.available() == list(POLICIES)
    assert "new_thread_unsafe_stream" in p.how["shared"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.31.1", (0, 31, 1)),
        ("0.32.0rc1", (0, 32, 0)),
        ("0.31.2.dev5", (0, 31, 2)),
        ("1", (1, 0, 0)),
    ],
)
def test_version_tuple(text: str, expected: tuple[int, ...]) -> None:
    assert mlx_policies.version_tuple(text) == expected


@pytest.mark.parametrize(
    "reasons",
    [
        {"per-thread": "", "shared": "no streams", "locked": ""},
        {"per-thread": "one queue", "shared": "", "locked": ""},
        {"per-thread": "", "shared": "x", "locked": ""},
        mlx_policies.plan("0.31.2", False, shared_error="E").reasons,
        mlx_policies.plan("0.31.1", False, per_thread_error="E").reasons,
    ],
)
def test_the_fix_for_a_refused_policy_names_one_that_is_available(reasons) -> None:
    default = next(p for p, why in reasons.items() if not why)
    for refused, why in reasons.items():
        if why:
            fix = suggest_policy(reasons, default, refused)
            assert fix != refused and reasons[fix] == "", (refused, fix)


# ---- the installed MLX ----------------------------------------------------------------


async def test_installed_mlx_resolves_its_default_and_offers_every_policy(artifacts) -> None:
    mx = pytest.importorskip("mlx.core")
    name = "mlx:cpu"
    async with ConfigSession([default_policy(f"{name},size=32")], artifacts) as s:
        await wait_for(lambda: len(s.samples(name)) >= 3, 120, what="samples")
        ready = s.of(ev.PoolReady, name)[0]
        want = mlx_policies.plan(mx.__version__, hasattr(mx, "new_thread_unsafe_stream"))
        assert s.samples(name)[-1].policy == want.default
        assert ready.policies == want.reasons
        ctl = await s.sup.set_policy(name, "shared")
        assert ctl.ok, ctl.detail
        mark = len(s.samples(name)) + 2
        await wait_for(lambda: len(s.samples(name)) >= mark + 3, 30)
        assert s.samples(name)[-1].policy == "shared"
        assert sum(x.total_ops for x in s.samples(name)[mark:]) > 0


def test_a_refused_policy_names_an_available_fix(tmp_path) -> None:
    import sys

    cfg = PoolConfig(name="t", backend="torch", device="cpu", policy="shared", size=32)
    with WorkerRun(sys.executable, cfg, tmp_path) as w:
        assert w.wait_for(lambda: w.fatal or w.hello, 120)
        assert w.fatal is not None, "torch on cpu has no streams to share"
        assert "no streams" in w.fatal.message
        assert "--policy per-thread" in w.fatal.fix and "shared" not in w.fatal.fix


@pytest.mark.xfail(
    strict=True,
    reason="the supervisor records Crash.policy from PoolConfig.policy, which is None (the "
    "framework's default) until an Ack; it needs the resolved policy from Hello or a Sample",
)
async def test_a_crash_before_any_command_records_the_resolved_policy(artifacts) -> None:
    cfg = default_policy("fault,native=off,fault-rate=50,threads=2")
    async with ConfigSession([cfg], artifacts) as s:
        await wait_for(lambda: s.of(ev.Crash), 60, what="the crash")
    crashes = s.of(ev.Crash)
    (crash,) = crashes
    assert crash.policy == "per-thread"
    assert ev.decode(msgspec.json.encode(crash)) == crash  # a None would make the log unreadable


# ---- MLX 0.31.1 in its own env ---------------------------------------------------------


def old_mlx_config(**kw: object) -> PoolConfig:
    base: dict[str, object] = {
        "name": "old",
        "backend": "mlx",
        "device": "cpu",
        "workload": "generate",
        "size": 64,
        "native_stacks": "off",
        "policy": None,  # the framework's own default, resolved by the worker
    }
    base.update(kw)
    return PoolConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "default", "shared_means"),
    [
        # shared is MLX's own behaviour here, and per-thread (an mx.new_stream made on each
        # thread) runs on this version, so all three are offered.
        (OLD, "shared", "shared = the one default stream every thread shares"),
        # a stream made on one thread still works on another in 0.31.2 (not in 0.32).
        ("0.31.2", "per-thread", "shared = one mx.new_stream made once and used by every"),
    ],
)
def test_old_mlx_policies_are_what_the_version_allows(
    version: str, default: str, shared_means: str, tmp_path
) -> None:
    py = require_env("mlx", version)
    with WorkerRun(py, old_mlx_config(threads=1), tmp_path) as w:
        assert w.wait_for(lambda: len(w.samples()) >= 3 or w.dead, 60)
        hello = w.hello
        assert hello is not None, w.fatal
        assert hello.versions["mlx"] == version
        assert hello.policies == {"per-thread": "", "shared": "", "locked": ""}
        assert w.samples()[-1].policy == default
        for pol in ("per-thread", "locked", "shared"):
            ack = w.command("set_policy", policy=pol)
            assert ack.ok and ack.policy == pol, ack.detail
            mark = len(w.samples()) + 1  # skip the window that straddles the change
            assert w.wait_for(lambda m=mark: len(w.samples()) >= m + 3, 10)
            assert sum(x.total_ops for x in w.samples()[mark:]) > 0, pol
    assert shared_means in (tmp_path / "stderr.log").read_text()


def test_old_mlx_generate_at_two_threads_dies_with_sigsegv(tmp_path) -> None:
    py = require_env("mlx", OLD)
    with WorkerRun(py, old_mlx_config(threads=2), tmp_path) as w:
        assert w.wait_for(lambda: w.dead, 20), "mlx 0.31.1 survived 20 s of 2 sampling threads"
    assert w.hello is not None and w.death_signal() == "SIGSEGV"
    fh = w.faulthandler_file.read_text()
    assert "Segmentation fault" in fh and "mlx_generate.py" in fh


@needs_gdb
def test_old_mlx_crash_native_stack_is_in_mlx_eval(tmp_path) -> None:
    py = require_env("mlx", OLD)
    cfg = old_mlx_config(threads=2, native_stacks="gdb")
    with WorkerRun(py, cfg, tmp_path, gdb=True) as w:
        assert w.wait_for(lambda: w.dead, 60), "mlx 0.31.1 survived 2 sampling threads"
    dying = w.of(protocol.Dying)
    assert dying and dying[0].signal == "SIGSEGV"
    assert w.death_signal() == "SIGSEGV"
    text = w.native_file.read_text()
    report = parse_report(text, source_path=str(w.native_file))
    crashed = report.crashed_thread
    assert crashed is not None
    symbols = [f.symbol or "" for f in crashed.frames]
    assert any("mlx::core::eval" in sym for sym in symbols[:4]), symbols[:8]
    assert "mlx_worker" in (crashed.name or ""), crashed.name


def test_old_mlx_locked_survives_and_matmul_does_not_crash(tmp_path) -> None:
    py = require_env("mlx", OLD)
    with WorkerRun(py, old_mlx_config(threads=2, policy="locked"), tmp_path / "gen") as w:
        w.run_for(3)
        assert not w.dead, f"locked generate died: {w.death_signal()}"
        assert w.samples()[-1].policy == "locked" and w.rate() > 0
    # The brief's contrast: the same version, inputs built once and only addmm in the loop.
    with WorkerRun(py, old_mlx_config(threads=2, workload="matmul"), tmp_path / "mm") as w:
        w.run_for(3)
        assert not w.dead, f"matmul died: {w.death_signal()}"
        assert w.samples()[-1].policy == "shared" and w.rate() > 0

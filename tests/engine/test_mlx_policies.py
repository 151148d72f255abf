"""MLX concurrency policies mean what each MLX version does, and the old bug is real.

The pure decisions are tested directly; the rest runs real pools under the supervisor: the
installed MLX, and `mlx@0.31.1` (every thread shares one default stream) in the isolated env
gpumon builds for it (tests/conftest.py builds it once into a kept test cache).
"""

from __future__ import annotations

import shutil

import msgspec
import pytest

from gpumon import events as ev
from gpumon.control import SetPolicy
from gpumon.spec import POLICIES
from gpumon.worker.backends import mlx_policies
from gpumon.worker.backends.base import suggest_policy
from tests.conftest import wait_for
from tests.engine.helpers import Session

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
    async with Session([f"{name},size=32"], artifacts) as s:
        await wait_for(lambda: len(s.samples(name)) >= 3, 120, what="samples")
        ready = s.of(ev.PoolReady, name)[0]
        want = mlx_policies.plan(mx.__version__, hasattr(mx, "new_thread_unsafe_stream"))
        assert s.samples(name)[-1].policy == want.default
        assert ready.policies == want.reasons and ready.policy == want.default
        ctl = await s.command(name, SetPolicy(policy="shared"))
        assert ctl.ok, ctl.detail
        mark = len(s.samples(name)) + 2
        await wait_for(lambda: len(s.samples(name)) >= mark + 3, 30)
        assert s.samples(name)[-1].policy == "shared"
        assert sum(x.total_ops for x in s.samples(name)[mark:]) > 0


async def test_a_refused_policy_names_an_available_fix(artifacts) -> None:
    async with Session(["torch:cpu,policy=shared,size=32"], artifacts) as s:
        await wait_for(lambda: s.of(ev.PoolFailed), 120, what="the refusal")
    (failed,) = s.of(ev.PoolFailed)
    assert "no streams" in failed.message  # torch on cpu has no streams to share
    assert "--policy per-thread" in failed.fix and "shared" not in failed.fix


async def test_a_crash_before_any_command_records_the_resolved_policy(artifacts) -> None:
    async with Session(["fault,native=off,fault-rate=50,threads=2"], artifacts) as s:
        await wait_for(lambda: s.of(ev.Crash), 60, what="the crash")
    (crash,) = s.of(ev.Crash)
    assert crash.policy == "per-thread"  # no policy was asked: the framework's default
    assert ev.decode(msgspec.json.encode(crash)) == crash


# ---- MLX 0.31.1 in its own env, as `--pool mlx@0.31.1` runs it --------------------------


def old_mlx(version: str = OLD, **keys: object) -> str:
    spec = {"workload": "generate", "size": 64, "native": "off", **keys}
    return f"mlx@{version}:cpu," + ",".join(f"{k}={v}" for k, v in spec.items())


@pytest.mark.parametrize(
    ("version", "default", "shared_means"),
    [
        # shared is MLX's own behaviour here, and per-thread (an mx.new_stream made on each
        # thread) runs on this version, so all three are offered.
        (OLD, "shared", "the one default stream every thread shares"),
        # a stream made on one thread still works on another in 0.31.2 (not in 0.32).
        ("0.31.2", "per-thread", "one mx.new_stream made once and used by every"),
    ],
)
async def test_old_mlx_policies_are_what_the_version_allows(
    version: str, default: str, shared_means: str, artifacts, mlx_env
) -> None:
    mlx_env(version)
    async with Session([old_mlx(version, threads=1, name="old")], artifacts) as s:
        await wait_for(lambda: len(s.samples("old")) >= 3 or s.of(ev.PoolFailed), 120)
        assert not s.of(ev.PoolFailed), s.of(ev.PoolFailed)
        ready = s.of(ev.PoolReady)[0]
        assert ready.versions["mlx"] == version and ready.env.startswith(f"mlx {version}")
        assert ready.policies == {"per-thread": "", "shared": "", "locked": ""}
        assert ready.policy == default and s.samples("old")[-1].policy == default
        assert shared_means in ready.policy_meanings["shared"]
        for pol in ("per-thread", "locked", "shared"):
            ctl = await s.command("old", SetPolicy(policy=pol))
            assert ctl.ok and ctl.config is not None and ctl.config.policy == pol, ctl.detail
            mark = len(s.samples("old")) + 1  # skip the window that straddles the change
            await wait_for(lambda m=mark: len(s.samples("old")) >= m + 3, 10)
            assert sum(x.total_ops for x in s.samples("old")[mark:]) > 0, pol


async def test_old_mlx_generate_at_two_threads_dies_with_sigsegv(artifacts, mlx_env) -> None:
    mlx_env(OLD)
    async with Session([old_mlx(threads=2, name="old")], artifacts) as s:
        await wait_for(lambda: s.of(ev.CrashArtifact), 60, what="mlx 0.31.1 to die")
    (crash,) = s.of(ev.Crash)
    assert crash.signal == "SIGSEGV" and crash.versions["mlx"] == OLD
    assert crash.policy == "shared" and crash.threads == 2 and crash.during == "run"
    fh = next(a for a in s.of(ev.CrashArtifact) if a.kind == "faulthandler")
    assert "Segmentation fault" in fh.text and "mlx_generate.py" in fh.text


@needs_gdb
async def test_old_mlx_crash_native_stack_is_in_mlx_eval(artifacts, mlx_env) -> None:
    mlx_env(OLD)
    async with Session([old_mlx(threads=2, native="gdb", name="old")], artifacts) as s:
        await wait_for(
            lambda: any(a.kind == "native" for a in s.of(ev.CrashArtifact)),
            90,
            what="gdb's native stacks",
        )
    (crash,) = s.of(ev.Crash)
    assert crash.signal == "SIGSEGV" and crash.detected_by == "debugger"
    native = next(a for a in s.of(ev.CrashArtifact) if a.kind == "native").report
    assert native is not None
    crashed = native.crashed_thread
    assert crashed is not None
    symbols = [f.symbol or "" for f in crashed.frames]
    assert any("mlx::core::eval" in sym for sym in symbols[:4]), symbols[:8]
    assert "mlx_worker" in (crashed.name or ""), crashed.name


async def test_old_mlx_locked_survives_and_matmul_does_not_crash(artifacts, mlx_env) -> None:
    mlx_env(OLD)
    specs = [
        old_mlx(threads=2, policy="locked", name="locked"),
        # The brief's contrast: the same version, inputs built once, only addmm in the loop.
        old_mlx(threads=2, workload="matmul", name="matmul"),
    ]
    async with Session(specs, artifacts) as s:
        await wait_for(lambda: all(len(s.samples(n)) >= 30 for n in ("locked", "matmul")), 60)
        assert not s.of(ev.Crash), s.of(ev.Crash)
        assert s.samples("locked")[-1].policy == "locked"
        assert s.samples("matmul")[-1].policy == "shared"
        for name in ("locked", "matmul"):
            assert sum(x.total_ops for x in s.samples(name)[-10:]) > 0
    assert not s.of(ev.Crash)

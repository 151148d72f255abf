"""Building one environment: create a venv, install, check it imports, then rename it into place.

Everything happens in a temporary folder beside the final one; the metadata file is written
last and the folder renamed in one step, so no reader ever sees a half-built environment
under the final name. The caller holds the env's lock (cache.ensure). Each installer step is a
child process in its own process group, so a cancel event or a KeyboardInterrupt kills the
whole step (uv, pip and anything they started) and the temporary folder is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gpumon.envs import diagnose, layout, metadata
from gpumon.envs.errors import EnvCancelled, EnvError
from gpumon.envs.interpreter import PythonTarget
from gpumon.envs.progress import OutputReader, PipReader, ProgressCallback, UvReader
from gpumon.envs.requirement import FrameworkPin, normalize
from gpumon.envs.tools import Tool, tool_version
from gpumon.envs.variant import InstallPlan, Variant, import_name, install_plan

POLL_S = 0.1
KEEP_LINES = 4000
# Python variables that would make the new env's interpreter see the monitor's packages.
_LEAKY_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")


@dataclass(frozen=True)
class EnvRequest:
    """One environment to find or build: a pinned framework, its build, the Python."""

    pin: FrameworkPin
    variant: Variant
    target: PythonTarget

    @property
    def key(self) -> layout.EnvKey:
        return layout.EnvKey(
            framework=self.pin.framework,
            version=self.pin.version,
            variant=self.variant,
            python=self.target.key,
            platform=self.target.platform_key,
        )

    @property
    def plan(self) -> InstallPlan:
        return install_plan(self.pin, self.variant)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARS}
    env["NO_COLOR"] = "1"  # plain lines to parse, whatever the user's terminal settings
    return env


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def run_step(
    cmd: list[str],
    *,
    cwd: Path,
    reader: OutputReader | None,
    cancel: threading.Event | None,
    output: deque[str],
    what: str,
) -> int:
    """Run one installer step, feeding its lines to `reader`; kill it on cancel or on any
    exception in this thread (KeyboardInterrupt included). Returns the exit status."""
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
    except OSError as e:
        raise EnvError(
            f"cannot start {cmd[0]}: {e.strerror or e}",
            "install uv (pip install uv) or check the interpreter",
            kind="tool",
        ) from None
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="gpumon-env-output", daemon=True).start()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise EnvCancelled(what)
            try:
                line = lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                break
            output.append(line.rstrip("\n"))
            if reader is not None:
                reader.feed(line)
        return proc.wait()
    except BaseException:
        _kill(proc)
        raise


# Runs under the new environment's Python: imports the framework (so a wheel that installs but
# cannot load is caught now, not in the first pool) and lists what is installed.
_VERIFY = """
import importlib, importlib.metadata as md, json, sys
error = ""
try:
    importlib.import_module(sys.argv[1])
except BaseException as e:
    error = "%s: %s" % (type(e).__name__, e)
installed = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if name:
        installed[name] = d.version
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "installed": installed,
                  "error": error}))
"""


def _verify(req: EnvRequest, folder: Path, output: deque[str]) -> tuple[str, dict[str, str]]:
    module = import_name(req.pin.framework)
    fix = "try another version, or report it to the framework with the output in the log"
    try:
        r = subprocess.run(
            [str(layout.python_path(folder)), "-I", "-c", _VERIFY, module],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=300,
            env=child_env(),
            cwd=folder,
        )
    except subprocess.TimeoutExpired:
        raise EnvError(
            f"{req.key.label}: `import {module}` did not finish in 300 s", fix, kind="broken"
        ) from None
    output.extend(r.stdout.splitlines() + r.stderr.splitlines())
    if r.returncode < 0:
        name = signal.Signals(-r.returncode).name
        raise EnvError(f"{req.key.label}: `import {module}` crashed ({name})", fix, kind="broken")
    try:
        facts = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise EnvError(
            f"{req.key.label}: the new environment's Python does not run "
            f"({diagnose.last_error_line(r.stderr)})",
            fix,
            kind="broken",
        ) from None
    if facts["error"]:
        raise EnvError(
            f"{req.key.label} installed but `import {module}` fails: {facts['error'][:200]}",
            fix,
            kind="broken",
        )
    installed = {normalize(k): str(v) for k, v in facts["installed"].items()}
    got = installed.get(normalize(req.pin.framework), "")
    if got.split("+", 1)[0] != req.pin.version:
        raise EnvError(
            f"asked for {req.pin.framework} {req.pin.version}, the installer put {got or 'none'}",
            "check the index configuration (UV_DEFAULT_INDEX / PIP_INDEX_URL)",
            kind="broken",
        )
    return str(facts["python"]), installed


def os_error(e: OSError, req: EnvRequest, root: Path) -> EnvError:
    """Our own file operations failing: a full disk or a cache we may not write."""
    if e.errno == errno.ENOSPC:
        d = diagnose.Diagnosis("no-space")
    elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        d = diagnose.Diagnosis("not-writable", reason=e.strerror or str(e))
    else:
        d = diagnose.Diagnosis("install-failed", reason=f"{e.strerror or e}: {e.filename}")
    kind, message, fix = diagnose.words(d, _context(req, root))
    return EnvError(message, fix, kind=kind)


def _context(req: EnvRequest, root: Path) -> diagnose.Context:
    return diagnose.Context(
        framework=req.pin.framework,
        version=req.pin.version,
        variant=req.variant,
        platform=req.target.describe(),
        root=str(root),
        log=str(layout.log_path(root, req.key.name)),
    )


def _explain(req: EnvRequest, tool: Tool, text: str, root: Path) -> EnvError:
    """Turn a failed install's output into the one-line error (asking the index when the
    installer's words leave the cause open)."""
    from gpumon.envs import simple_api, versions
    from gpumon.envs.index import configured_index

    d = diagnose.diagnose(tool.name, text)
    if d.kind in ("install-failed", "tool") and _nearly_full(root):
        # venv's ensurepip reports a full disk only as "returned non-zero exit status 1".
        d = diagnose.Diagnosis("no-space")
    exists: bool | None = None
    nearest: list[str] = []
    if d.kind in ("no-version", "no-wheel"):
        if req.plan.extra_index_urls:
            index = req.plan.extra_index_urls[0]
        elif tool.name == "pip":
            index = diagnose.pip_indexes(text)[0]
        else:
            index = configured_index("uv").url
        if d.ambiguous and (why := simple_api.reachable(index)) is not None:
            d = diagnose.Diagnosis("unreachable", where=urlsplit(index).netloc, reason=why)
        else:
            with contextlib.suppress(EnvError):
                found = versions.releases(
                    req.pin.framework,
                    variant=req.variant,
                    target=req.target,
                    include_pre=True,
                    index_url=index,
                    timeout=5.0,
                )
                exists = any(r.version == req.pin.version for r in found)
                nearest = versions.nearest_installable(found, req.pin)
    kind, message, fix = diagnose.words(d, _context(req, root), exists=exists, nearest=nearest)
    tail = "\n".join(text.splitlines()[-40:])
    return EnvError(message, fix, kind=kind, detail=tail)


def _nearly_full(root: Path, floor: int = 64 * 1024**2) -> bool:
    try:
        st = os.statvfs(root)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < floor


def _check_extra_indexes(req: EnvRequest) -> None:
    """An unreachable extra index (PyTorch's CPU index) must stop the build: pip would
    otherwise quietly take PyPI's multi-GB CUDA torch instead."""
    from gpumon.envs import simple_api

    for url in req.plan.extra_index_urls:
        why = simple_api.reachable(url)
        if why is not None:
            raise simple_api.unreachable(url, why)


def _save_log(root: Path, name: str, text: str) -> None:
    with contextlib.suppress(OSError):
        path = layout.log_path(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def build(
    req: EnvRequest,
    root: Path,
    tool: Tool,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> metadata.EnvMetadata:
    """Build `req` under `root` and rename it into place. The caller holds the env's lock and
    has made sure the final folder does not exist."""
    key = req.key
    started = time.monotonic()
    reader: OutputReader = (UvReader if tool.name == "uv" else PipReader)(
        env=key.label, report=progress, started=started
    )
    output: deque[str] = deque(maxlen=KEEP_LINES)
    tmp = layout.build_dir(root, key.name, secrets.token_hex(4))
    final = layout.env_dir(root, key)
    try:
        try:
            _check_extra_indexes(req)
            reader.emit("creating", f"creating a Python {req.target.minor} environment")
            rc = run_step(
                tool.create(tmp, req.target.executable),
                cwd=root,
                reader=None,
                cancel=cancel,
                output=output,
                what=key.label,
            )
            if rc == 0:
                reader.emit("resolving", "resolving " + " ".join(req.plan.requirements))
                rc = run_step(
                    tool.install(tmp, req.plan),
                    cwd=root,
                    reader=reader,
                    cancel=cancel,
                    output=output,
                    what=key.label,
                )
            if rc != 0:
                text = "\n".join(output)
                _save_log(root, key.name, text)
                raise _explain(req, tool, text, root)
            reader.emit("verifying", f"importing {import_name(req.pin.framework)}")
            python, installed = _verify(req, tmp, output)
            if cancel is not None and cancel.is_set():
                raise EnvCancelled(key.label)
            meta = metadata.EnvMetadata(
                framework=req.pin.framework,
                version=req.pin.version,
                variant=req.variant,
                python=python,
                python_key=req.target.key,
                platform=req.target.platform_key,
                installed=installed,
                requirements=list(req.plan.requirements),
                extra_index_urls=list(req.plan.extra_index_urls),
                tool=_tool_label(tool, installed),
                created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                build_seconds=round(time.monotonic() - started, 3),
            )
            metadata.write(tmp, meta)
            layout.last_used_path(tmp).touch()
            os.rename(tmp, final)
        except OSError as e:
            raise os_error(e, req, root) from None
    except EnvError as e:
        if e.kind == "broken":
            _save_log(root, key.name, "\n".join(output))
        _remove_tree(tmp)
        raise
    except BaseException:
        _remove_tree(tmp)
        raise
    reader.emit("done", f"ready in {time.monotonic() - started:.1f} s", 1.0)
    return meta


def _tool_label(tool: Tool, installed: dict[str, str]) -> str:
    if tool.name == "uv":
        return tool.describe()
    return f"pip {installed.get('pip', tool_version(tool.executable, '-m', 'pip'))}".strip()


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

"""faulthandler (Python < 3.14) names threads only by their pthread handle; gdb's headers give
handle, LWP and name. Joined, the Python stacks read by thread name, as the native ones do."""

from __future__ import annotations

from gpumon.crash.model import with_thread_names
from gpumon.crash.parse import parse_report

GDB = """\
Thread 3 (Thread 0x7fffef7fe6c0 (LWP 5456) "mlx_worker-1"):
#0  0x00007ffff62128a5 in mlx::core::eval_impl(std::vector<mlx::core::array>, bool) () from /x/l.so
#1  0x00007ffff621417b in mlx::core::eval(std::vector<mlx::core::array>) () from /x/l.so

Thread 2 (Thread 0x7ffff4fff6c0 (LWP 5454) "mlx_worker-0"):
#0  0x00007ffff7c91116 in __futex_abstimed_wait_common64 () from /lib/x86_64-linux-gnu/libc.so.6

Thread 1 (Thread 0x7ffff7fbeb80 (LWP 5450) "python3"):
#0  0x00007ffff7c91116 in __futex_abstimed_wait_common64 () from /lib/x86_64-linux-gnu/libc.so.6
"""

FAULTHANDLER = """\
Fatal Python error: Segmentation fault

Current thread 0x00007fffef7fe6c0 (most recent call first):
  File "/w/gpumon/worker/backends/mlx_generate.py", line 64 in step
  File "/usr/lib/python3.11/threading.py", line 982 in run

Thread 0x00007ffff4fff6c0 (most recent call first):
  File "/w/gpumon/worker/backends/mlx_generate.py", line 64 in step

Thread 0x00007ffff0000000 (most recent call first):
  File "/w/gpumon/worker/runtime.py", line 10 in sampler
"""


def test_python_threads_take_the_names_gdb_saw() -> None:
    native = parse_report(GDB)
    python = parse_report(FAULTHANDLER)
    assert [t.pthread for t in native.threads if t.name == "mlx_worker-1"] == [0x7FFFEF7FE6C0]
    named = with_thread_names(python, native)
    assert [t.name for t in named.threads] == ["mlx_worker-1", "mlx_worker-0", None]
    assert named.crashed_thread is not None and named.crashed_thread.name == "mlx_worker-1"
    assert all(t.name is None for t in python.threads), "the parsed report is left as it was"


def test_without_native_stacks_nothing_changes() -> None:
    python = parse_report(FAULTHANDLER)
    assert with_thread_names(python, None) is python

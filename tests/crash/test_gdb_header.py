"""The capture header tells a fault the thread raised from a signal another process sent."""

from __future__ import annotations

import pytest

from gpumon.crash.parse import parse_report

BODY = """
Thread 1 (Thread 0x7ffff7fbeb80 (LWP 100) "gm-torch:cpu"):
#0  0x00007ffff7c91116 in __futex_abstimed_wait_common64 () from /lib/x86_64-linux-gnu/libc.so.6
"""


@pytest.mark.parametrize(
    ("extra", "subtype"),
    [
        ("si_addr: 0x8", "fault address 0x8"),
        ("sent_by: 4242", "sent by process 4242 (kill), not a fault"),
        ("", None),
    ],
)
def test_fault_address_or_sender(extra: str, subtype: str | None) -> None:
    head = "gpumon-native-stacks 1\nkind: fatal\npid: 100\nsignal: SIGSEGV (11)\nlwp: 100\n"
    report = parse_report(head + (extra + "\n" if extra else "") + BODY)
    assert report.signal == "SIGSEGV" and report.crashed_thread is not None
    assert report.exception_subtype == subtype

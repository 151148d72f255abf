"""How well `gpumon crash` reads the real-report corpus (tests/fixtures/crash-reports).

    python benchmarks/crash_corpus.py                 # this checkout
    python benchmarks/crash_corpus.py --code /tmp/old # another checkout's gpumon (before/after)

For every report in MANIFEST.json: parse it as `gpumon crash` does, compare each recorded fact
(format, complete-or-partial, reasons, and the expected facts) and print the totals: facts
right, crashed thread right, signal right, complete reports read fully right, partial pastes
read as partial, and reports rejected outright (the command's exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="a checkout whose gpumon is measured")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every wrong fact")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "crash"))
    sys.path.insert(0, str(args.code.resolve()))
    from crash_corpus import FIXTURES, MANIFEST, fact_count, mismatches

    from gpumon.crash.model import CrashParseError
    from gpumon.crash.parse import parse_file

    right = total = rejected = 0
    crashed = [0, 0]
    signal = [0, 0]
    complete = [0, 0]
    partial = [0, 0]
    for entry in MANIFEST:
        n = fact_count(entry)
        total += n
        is_complete = entry.get("complete", True)
        bucket = complete if is_complete else partial
        bucket[1] += 1
        for key, tally in (("crashed_thread_index", crashed), ("signal", signal)):
            if key in entry["expected"]:
                tally[1] += 1
        try:
            report = parse_file(FIXTURES / entry["file"])
        except CrashParseError as e:
            rejected += 1
            if args.verbose:
                print(f"{entry['file']}: rejected ({e})")
            continue
        wrong = mismatches(entry, report)
        right += n - len(wrong)
        keys = {w[0] for w in wrong}
        for key, tally in (("crashed_thread_index", crashed), ("signal", signal)):
            if key in entry["expected"] and key not in keys:
                tally[0] += 1
        if not wrong:
            bucket[0] += 1
        if args.verbose:
            for key, expected, got in wrong:
                print(f"{entry['file']}: {key}: expected {expected!r}, got {got!r}")
    print(f"reports: {len(MANIFEST)} ({complete[1]} complete, {partial[1]} partial pastes)")
    print(f"facts right: {right}/{total}")
    print(f"crashed thread right: {crashed[0]}/{crashed[1]}")
    print(f"signal right: {signal[0]}/{signal[1]}")
    print(f"complete reports fully right: {complete[0]}/{complete[1]}")
    print(f"partial pastes fully right (exit 4, the facts they have): {partial[0]}/{partial[1]}")
    print(f"rejected (exit 1): {rejected}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

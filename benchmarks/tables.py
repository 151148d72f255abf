"""Markdown tables for docs/performance.md from the JSON the benchmarks write.

python benchmarks/tables.py matrix AFTER.json [BEFORE.json]
python benchmarks/tables.py callgrind DIR          # DIR/<case>-{before,after}.json
python benchmarks/tables.py scale SCALE.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _cell(r: dict[str, Any] | None, key: str = "ratios") -> str:
    if r is None:
        return "—"
    v = r[key]
    return f"{statistics.median(v):.3f} [{min(v):.2f}–{max(v):.2f}]"


def matrix(after: Path, before: Path | None) -> None:
    a = json.loads(after.read_text())
    b = json.loads(before.read_text()) if before else None
    index = {}
    if b:
        index = {(r["workload"], r["size"], r["threads"]): r for r in b["rows"]}
    print(f"{a['pool']['framework']}, {a['pool']['device']}; {a['machine']}; ", end="")
    print(f"load {a['load_avg_at_start_end']}")
    head = "| workload | size | threads | bare ops/s (median, spread) | pool/bare after "
    head += "| per-CPU after"
    head += " | pool/bare before | per-CPU before |" if b else " |"
    print(head)
    print("|" + "---|" * (8 if b else 6))
    for r in a["rows"]:
        bare = statistics.median(r["bare_ops_per_s"])
        line = (
            f"| {r['workload']} | {r['size']} | {r['threads']} | {bare:,.0f} "
            f"({r['bare_spread']:.0%}) | {_cell(r)} | {_cell(r, 'cpu_ratios')} |"
        )
        if b:
            old = index.get((r["workload"], r["size"], r["threads"]))
            line += f" {_cell(old)} | {_cell(old, 'cpu_ratios')} |"
        print(line)


def callgrind(folder: Path) -> None:
    print(
        "| op | bare Ir/op | pool Ir/op (worker thread) | sampler Ir/op | gpumon Ir/op "
        "(before → after) | Ir ratio bare/(pool+sampler) (before → after) |"
    )
    print("|---|---|---|---|---|---|")
    for f in sorted(folder.glob("*-after.json")):
        case = f.name.removesuffix("-after.json")
        a = json.loads(f.read_text())
        bf = folder / f"{case}-before.json"
        b = json.loads(bf.read_text()) if bf.exists() else None

        def total(d: dict[str, Any]) -> float:
            return d["pool"]["worker_ir_per_op"] + d["pool"]["sampler_ir_per_op"]

        def added(d: dict[str, Any]) -> float:
            return total(d) - d["bare"]["worker_ir_per_op"]

        def ratio(d: dict[str, Any]) -> float:
            return d["bare"]["worker_ir_per_op"] / total(d)

        was = f"{added(b):,.0f} → " if b else ""
        was_r = f"{ratio(b):.4f} → " if b else ""
        bare, pool = a["bare"]["worker_ir_per_op"], a["pool"]["worker_ir_per_op"]
        print(
            f"| {case} | {bare:,.0f} | {pool:,.0f} | {a['pool']['sampler_ir_per_op']:,.0f} | "
            f"{was}{added(a):,.0f} | {was_r}{ratio(a):.4f} |"
        )


def scale(path: Path) -> None:
    d = json.loads(path.read_text())
    for part in ("monitor", "tui"):
        rows = d.get(part)
        if not rows:
            continue
        print(f"\n{part}:\n")
        print(
            "| pools × threads | CPU % of one core | RSS MiB | sample→screen p50 / p99 ms "
            "| first frame s |"
        )
        print("|---|---|---|---|---|")
        for r in rows:
            lat = r.get("sample_to_screen_ms")
            lat_s = f"{lat['p50']} / {lat['p99']}" if lat else "—"
            print(
                f"| {r['pools']} × {r['threads']} | {r['cpu_percent_of_one_core']} | "
                f"{r['rss_mib']} | {lat_s} | {r.get('first_frame_s', '—')} |"
            )


def main(argv: list[str]) -> int:
    kind, *paths = argv
    if kind == "matrix":
        matrix(Path(paths[0]), Path(paths[1]) if len(paths) > 1 else None)
    elif kind == "callgrind":
        callgrind(Path(paths[0]))
    elif kind == "scale":
        scale(Path(paths[0]))
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

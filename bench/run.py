"""`make bench`: how plan and apply scale with the number of clusters, against the lab.

For fleets of N cross-box clusters (2 nodes, 2 RDMs each) it measures, through the real CLI:
the PropertyCollector round trips of one observation (constant in N), the wall time of
`plan`, of `apply` with --parallelism 1 and 10, and of the second `plan` (no changes).
Prints a Markdown table (the one in README's "Performance" section) and writes
bench/results.json. The lab's latency can be raised with --delay-ms to mimic a WAN vCenter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import labctl  # noqa: E402
from tests.fleet import write_fleet  # noqa: E402

READS = ("RetrievePropertiesEx", "ContinueRetrievePropertiesEx", "RetrieveProperties", "CreateContainerView")


def mscsctl(lab: labctl.Lab, *args: str) -> tuple[int, float]:
    env = {**os.environ, **lab.env()}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from reconciler.cli import main; sys.exit(main())", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 2):
        raise SystemExit(f"mscsctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.returncode, elapsed


def bench_fleet(n: int, parallelism: int, delay_ms: int, scale: str | None = None) -> dict:
    faults = [{"method": "*", "action": "delay", "delay_ms": delay_ms, "times": 0}] if delay_ms else []
    with tempfile.TemporaryDirectory(prefix="mscsctl-bench-") as tmp:
        lab = labctl.start(None, Path(tmp) / "lab", fleet=n, faults=faults, scale=scale, timeout=300)
        try:
            fleet = Path(tmp) / "fleet"
            write_fleet(n, fleet)
            lab.reset_calls()
            code, plan_s = mscsctl(lab, "--quiet", "plan", str(fleet), "--detailed-exitcode")
            assert code == 2
            calls = lab.calls()
            reads = sum(calls.get(m, 0) for m in READS)
            code, apply_s = mscsctl(
                lab, "--quiet", "apply", str(fleet), "--auto-approve", "--parallelism", str(parallelism)
            )
            assert code == 0
            code, replan_s = mscsctl(lab, "--quiet", "plan", str(fleet), "--detailed-exitcode")
            assert code == 0
        finally:
            lab.stop()
    return {
        "clusters": n,
        "parallelism": parallelism,
        "delay_ms": delay_ms,
        "scale": scale,
        "observe_reads": reads,
        "plan_s": round(plan_s, 2),
        "apply_s": round(apply_s, 2),
        "replan_s": round(replan_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,20,50", help="fleet sizes (clusters)")
    parser.add_argument("--delay-ms", type=int, default=0, help="lab latency added to every vCenter call")
    parser.add_argument("--scale", help="grow the lab around the fleet: small | realistic (tests/lab/README.md)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    args = parser.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for parallelism in (1, 10):
            row = bench_fleet(n, parallelism, args.delay_ms, args.scale)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "| clusters | reads to observe | plan (s) | apply, 1 at a time (s) | apply, 10 at once (s) | plan again (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sorted({r["clusters"] for r in rows}):
        one = next(r for r in rows if r["clusters"] == n and r["parallelism"] == 1)
        ten = next(r for r in rows if r["clusters"] == n and r["parallelism"] == 10)
        print(
            f"| {n} | {one['observe_reads']} | {one['plan_s']} | {one['apply_s']} | {ten['apply_s']} | "
            f"{ten['replan_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

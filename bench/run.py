"""`make bench`: what plan and apply cost as the number of clusters grows, on the realistic lab.

For N cross-box clusters (2 nodes, 2 RDMs each) in a lab of realistic size (`--scale
realistic`: 1,000+ advanced options and 256+ LUNs a host, 2,000+ VMs, more vSphere clusters,
datastores and a second datacenter around the fleet), through the real CLI, with 0 and 50 ms
added to every vCenter request (the lab's `delay` fault): the requests by method, the bytes
received, the wall time and the peak RSS of `plan`, of the first `apply` with --parallelism 1
and 10, and of the `apply` after it (no change). Beside each apply, a lower bound: the
sequential round trips on its critical path times the latency. For N = 1 the observation the
usual pyVmomi way (`bench/baseline.py`) runs too, in this process, for the ratio. The
200-cluster plan is profiled with pyinstrument.

Each first apply needs clusters never applied: the lab holds N clusters per measured apply
and each run takes its own. Bounded so that it ends in minutes on 2 cores: one at a time only
for N <= 50 (N <= 10 with 50 ms), ten at a time with 50 ms for N <= 50; for N = 200 the apply
ten at a time without latency and the plan with and without.

Writes bench/results/latest.json and bench/results/latest.png, prints the Markdown table of
README's Performance section.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import labctl  # noqa: E402
from bench import baseline, fleet  # noqa: E402

RESULTS = REPO / "bench" / "results"
MSCSCTL = [sys.executable, "-c", "import sys; from reconciler.cli import main; sys.exit(main())"]
# calls made at once: several of them cost one round trip on the critical path
CONCURRENT = ("MarkPerenniallyReservedEx_Task",)


def measure(lab: labctl.Lab, *args: str, ok: tuple[int, ...] = (0, 2)) -> dict[str, Any]:
    """Run mscsctl once: exit code, wall time, peak RSS, requests by method, bytes received."""
    env = {**os.environ, **lab.env()}
    env.pop("MSCSCTL_STATE", None)
    lab.reset_calls()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*MSCSCTL, *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in ok:
        raise SystemExit(f"mscsctl {' '.join(args)} exited {code}:\n{err[-3000:]}")
    calls = lab.calls()
    return {
        "exit": code,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "requests": sum(calls.values()),
        "by_method": dict(sorted(calls.items())),
        "bytes_received": sum(lab.traffic()["sent"].values()),  # what the lab sent
    }


def round_trips(row: dict[str, Any], clusters: int) -> int:
    """Requests on the critical path of a one-at-a-time run: all of them, but the calls made at
    once for the hosts of one step count once per cluster."""
    calls = row["by_method"]
    return row["requests"] - sum(max(0, calls.get(m, 0) - clusters) for m in CONCURRENT)


def set_latency(lab: labctl.Lab, delay_ms: int) -> None:
    lab.clear_faults()
    if delay_ms:
        lab.inject_fault(method="*", action="delay", delay_ms=delay_ms, times=0)


def runs_for(n: int) -> list[tuple[int, int]]:
    """The (latency ms, parallelism) first applies measured for N clusters (see the bounds above)."""
    out = [(0, 1), (0, 10)] if n <= 50 else [(0, 10)]
    if n <= 50:
        out.append((50, 10))
    if n <= 10:
        out.append((50, 1))
    return out


def bench_size(n: int, scale: str | None, work: Path, profile: bool) -> list[dict[str, Any]]:
    runs = runs_for(n)
    lab_path = fleet.write_lab(n * len(runs), work / f"lab-{n}.yaml")
    started = time.perf_counter()
    lab = labctl.start(lab_path, work / f"lab-{n}", scale=scale, timeout=900)
    print(f"N={n}: lab of {n * len(runs)} clusters up in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    try:
        # The plans first, with and without latency, of clusters not applied yet.
        untouched = fleet.write_desired(1, n, work / f"fleet-{n}-0")
        for delay in (0, 50):
            set_latency(lab, delay)
            common = {"clusters": n, "delay_ms": delay, "scale": scale}
            row = measure(lab, "--quiet", "plan", str(untouched), "--detailed-exitcode", "--skip-guest")
            rows.append({**common, "op": "plan", **row})
            if n == 1 and delay == 0:
                rows.append({**common, "op": "plan (usual pyVmomi way)", **baseline_row(lab, 1, n)})
            if profile and delay == 0:
                profile_plan(lab, untouched, n)
        for index, (delay, parallelism) in enumerate(runs):
            set_latency(lab, delay)
            desired = fleet.write_desired(index * n + 1, n, work / f"fleet-{n}-{index}")
            common = {"clusters": n, "delay_ms": delay, "scale": scale}
            apply_args = ("--quiet", "apply", str(desired), "--auto-approve", "--skip-guest")
            row = measure(lab, *apply_args, "--parallelism", str(parallelism))
            rows.append({**common, "op": f"first apply, {parallelism} at a time", "parallelism": parallelism, **row})
            again = measure(lab, *apply_args, "--parallelism", str(parallelism))
            rows.append({**common, "op": "apply, no change", "parallelism": parallelism, **again})
            print(json.dumps(rows[-2]), file=sys.stderr, flush=True)
    finally:
        lab.stop()
    add_bounds(rows)
    return rows


def add_bounds(rows: list[dict[str, Any]]) -> None:
    """Beside each first apply: the round trips on its critical path and, with latency, the
    lower bound (its time without latency + those round trips x the latency)."""
    for row in rows:
        if not row["op"].startswith("first apply"):
            continue
        n, parallelism = row["clusters"], row["parallelism"]
        zero = next(r for r in rows if r["op"] == row["op"] and r["delay_ms"] == 0)
        plan = next(r for r in rows if r["op"] == "plan" and r["delay_ms"] == 0)
        per_cluster = (round_trips(zero, n) - plan["requests"]) / n
        trips = plan["requests"] + math.ceil(n / parallelism) * per_cluster
        row["critical_round_trips"] = round(trips)
        row["lower_bound_s"] = round(zero["wall_s"] + trips * row["delay_ms"] / 1000, 2)
        row["vs_lower_bound"] = round(row["wall_s"] / row["lower_bound_s"], 2)


def baseline_row(lab: labctl.Lab, first: int, n: int) -> dict[str, Any]:
    """The usual pyVmomi observation of the same clusters, counted the same way."""
    lab.reset_calls()
    start = time.perf_counter()
    si = lab.connect()
    names = fleet.vm_names(first, n)
    datastores = sorted(
        {fleet.desired(i)["spec"]["sharedDisks"]["disks"][0]["mappingDatastore"] for i in range(first, first + n)}
    )
    seen = baseline.observe(si, names, datastores, ["Production", "Heartbeat"])
    wall = time.perf_counter() - start
    assert len(seen["vms"]) == len(names), seen["vms"].keys()
    calls = lab.calls()
    return {
        "wall_s": round(wall, 2),
        "requests": sum(calls.values()),
        "by_method": dict(sorted(calls.items())),
        "bytes_received": sum(lab.traffic()["sent"].values()),
    }


def profile_plan(lab: labctl.Lab, desired: Path, n: int) -> None:
    """pyinstrument's profile of one plan, in a process of its own: bench/results/profile-plan-N.txt."""
    env = {**os.environ, **lab.env()}
    out = RESULTS / f"profile-plan-{n}.txt"
    code = (
        "import sys; from pyinstrument import Profiler; from reconciler.cli import main\n"
        "p = Profiler(interval=0.002); p.start()\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"p.stop(); open({str(out)!r}, 'w').write(p.output_text(unicode=True, color=False))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, "--quiet", "plan", str(desired), "--skip-guest"],
        env=env,
        cwd=REPO,
        check=False,
        capture_output=True,
    )


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| clusters | latency | operation | requests | bytes received | wall (s) | lower bound (s) | peak RSS (MB) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        bound = f"{r['lower_bound_s']} ({r['critical_round_trips']} round trips)" if "lower_bound_s" in r else ""
        rss = r.get("peak_rss_mb", "")
        lines.append(
            f"| {r['clusters']} | {r['delay_ms']} ms | {r['op']} | {r['requests']} | "
            f"{r['bytes_received'] / 1000:,.0f} kB | {r['wall_s']} | {bound} | {rss} |"
        )
    return "\n".join(lines)


def row(rows: list[dict[str, Any]], n: int, op: str, delay: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["clusters"] == n and r["op"] == op and r["delay_ms"] == delay), None)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 12's targets, each met or not, with the measured figure."""
    out = []

    def say(name: str, measured: str, met: bool) -> None:
        out.append(f"- {name}: {measured}: {'met' if met else 'NOT met'}")

    for n in (1, 200):
        if plan := row(rows, n, "plan", 0):
            say(f"plan of {n} cluster(s) <= 8 requests", f"{plan['requests']}", plan["requests"] <= 8)
    if plan := row(rows, 200, "plan", 0):
        say("plan of 200 clusters < 3 s, no latency", f"{plan['wall_s']} s", plan["wall_s"] < 3)
        say("plan of 200 clusters, peak RSS < 300 MB", f"{plan['peak_rss_mb']} MB", plan["peak_rss_mb"] < 300)
    if plan := row(rows, 200, "plan", 50):
        say("plan of 200 clusters < 1 s + 8 x 50 ms, 50 ms", f"{plan['wall_s']} s", plan["wall_s"] < 1.4)
    if first := row(rows, 1, "first apply, 1 at a time", 0):
        say("first apply of one cluster <= 60 requests", f"{first['requests']}", first["requests"] <= 60)
    if slow := row(rows, 1, "first apply, 1 at a time", 50):
        zero = row(rows, 1, "first apply, 1 at a time", 0) or slow
        limit = zero["wall_s"] + 1.3 * slow["critical_round_trips"] * 0.05
        say(
            "first apply of one cluster, 50 ms <= its 0 ms time + 1.3 x round trips x 50 ms",
            f"{slow['wall_s']} s (limit {limit:.2f} s)",
            slow["wall_s"] <= limit,
        )
    if fifty := row(rows, 50, "first apply, 10 at a time", 50):
        say(
            "apply of 50 clusters, 50 ms, 10 at a time <= 1.3 x lower bound",
            f"{fifty['wall_s']} s, {fifty['vs_lower_bound']} x {fifty['lower_bound_s']} s",
            fifty["vs_lower_bound"] <= 1.3,
        )
    ours, usual = row(rows, 1, "plan", 0), row(rows, 1, "plan (usual pyVmomi way)", 0)
    if ours and usual:
        out.append(
            f"- the usual pyVmomi way / mscsctl, plan of one cluster: {usual['requests'] / ours['requests']:.0f}x "
            f"the requests, {usual['bytes_received'] / ours['bytes_received']:.1f}x the bytes, "
            f"{usual['wall_s'] / ours['wall_s']:.1f}x the time"
        )
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = sorted({(r["op"], r["delay_ms"]) for r in rows if "usual" not in r["op"]})
    for op, delay in series:
        points = sorted(
            ((r["clusters"], r) for r in rows if r["op"] == op and r["delay_ms"] == delay), key=lambda p: p[0]
        )
        xs = [x for x, _ in points]
        left.plot(xs, [r["wall_s"] for _, r in points], marker="o", label=f"{op}, {delay} ms")
        if delay == 0:
            right.plot(xs, [r["bytes_received"] / 1e6 for _, r in points], marker="o", label=op)
    for ax, label in ((left, "wall time (s)"), (right, "MB received from vCenter")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clusters")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle("mscsctl on the realistic lab (tests/lab, --scale realistic)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,50,200", help="fleet sizes (clusters)")
    parser.add_argument("--scale", default="realistic", help="the lab's size profile (tests/lab/README.md); none: off")
    parser.add_argument("--profile-at", type=int, default=200, help="profile the plan of this many clusters")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    parser.add_argument("--merge", action="store_true", help="replace only these sizes' rows in --out")
    args = parser.parse_args(argv)
    scale = None if args.scale == "none" else args.scale
    RESULTS.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    if args.merge and Path(args.out).exists():
        rows = [r for r in json.loads(Path(args.out).read_text()) if r["clusters"] not in sizes]
    with tempfile.TemporaryDirectory(prefix="mscsctl-bench-") as tmp:
        for n in sizes:
            rows += bench_size(n, scale, Path(tmp), profile=n == args.profile_at)
    rows.sort(key=lambda r: (r["clusters"], r["delay_ms"]))
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, Path(args.out).with_suffix(".png"))
    print(table(rows))
    print()
    print("\n".join(targets(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

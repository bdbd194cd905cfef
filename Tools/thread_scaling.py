#!/usr/bin/env python3
"""Step by step: is any step of a bench graph slower at two threads than at one?

For every graph it compiles a plan (seeded weights: timing does not depend on their values),
then --rounds times runs `unetc run PLAN --threads 1 --repeat R --profile-steps F` and the same
at 2 threads, the two taking turns so a slow spell of the shared machine falls on both. Each
step's time is its smallest median over the rounds. A step counts as slower at two threads when
its two-thread time exceeds its one-thread time by more than --tolerance-us microseconds and
--tolerance-percent percent (steps of a few microseconds swing by about one between runs).

Prints, per graph, the steps whose two-thread time is above their one-thread time (slowest
first), and as its last line
  steps slower at 2 threads: K of N (beyond TOL)
A step missing from one of the runs is an error.

Usage (Tools/thread-scaling is the wrapper: it builds release first):
  Tools/thread-scaling [--graphs ddpm_unet,...] [--rounds K] [--runs R] [--threads 1,2]
                       [--tolerance-us U] [--tolerance-percent P] [--unetc PATH] [--workdir DIR]
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
BENCH_DIR = os.path.join(ROOT, "graphs", "bench")
DEFAULT_GRAPHS = ["classic_unet", "ddpm_unet", "mobile_unet"]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"thread-scaling: {' '.join(cmd)} failed (exit {p.returncode}):\n{p.stderr}")
    return p.stdout


def step_times(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["step"], r["op"], float(r["ms"])) for r in rows]


def measure(unetc, plan, threads, runs, out):
    run([unetc, "run", plan, "--threads", str(threads), "--repeat", str(runs), "--profile-steps", out])
    return step_times(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graphs", default=",".join(DEFAULT_GRAPHS), help="bench graphs (names in graphs/bench, comma-separated)")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds per thread count (default 4)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per unetc process (default 30)")
    p.add_argument("--threads", default="1,2", help="the two thread counts to compare (default 1,2)")
    p.add_argument("--tolerance-us", type=float, default=1.0, help="microseconds a step may be slower (default 1)")
    p.add_argument("--tolerance-percent", type=float, default=5.0, help="percent a step may be slower (default 5)")
    p.add_argument("--unetc", default=os.path.join(ROOT, ".build", "release", "unetc"), help="the unetc binary")
    p.add_argument("--workdir", help="keep plans and step files here (default: a temp dir)")
    a = p.parse_args()
    few, many = (int(t) for t in a.threads.split(","))
    if a.rounds < 1 or a.runs < 1:
        sys.exit("thread-scaling: --rounds and --runs must be at least 1")
    work = a.workdir or tempfile.mkdtemp(prefix="unetc-scaling-")
    os.makedirs(work, exist_ok=True)
    # A copy, so a rebuild during the run cannot mix two binaries.
    unetc = os.path.join(work, "unetc")
    shutil.copy2(a.unetc, unetc)
    slower_total = steps_total = 0
    tolerance = f"{a.tolerance_us:g} us and {a.tolerance_percent:g}%"
    for graph in a.graphs.split(","):
        path = os.path.join(BENCH_DIR, graph + ".json")
        plan = os.path.join(work, graph + ".unetc")
        run([unetc, "compile", path, "-o", plan])
        best = {few: {}, many: {}}
        order = []
        for r in range(a.rounds):
            for t in (few, many):
                times = measure(unetc, plan, t, a.runs, os.path.join(work, f"{graph}.{t}t.{r}.tsv"))
                if not order:
                    order = [(name, op) for name, op, _ in times]
                if [(name, op) for name, op, _ in times] != order:
                    sys.exit(f"thread-scaling: {graph}: the steps differ between runs")
                for name, _, ms in times:
                    best[t][name] = min(best[t].get(name, ms), ms)
        rows = []
        for name, op in order:
            one, two = best[few][name], best[many][name]
            if two > one:
                beyond = two - one > a.tolerance_us / 1000 and two > one * (1 + a.tolerance_percent / 100)
                rows.append((two - one, name, op, one, two, beyond))
        rows.sort(reverse=True)
        slower = sum(1 for r in rows if r[5])
        print(f"## {graph}: {len(order)} steps, {sum(best[few].values()):.2f} ms at {few} thread(s), "
              f"{sum(best[many].values()):.2f} ms at {many}; {len(rows)} above their {few}-thread time, {slower} beyond {tolerance}")
        for diff, name, op, one, two, beyond in rows[:15]:
            print(f"  {'SLOWER' if beyond else '      '} {diff * 1000:+7.1f} us  {one:8.4f} -> {two:8.4f} ms  {name} ({op})")
        slower_total += slower
        steps_total += len(order)
    print(f"steps slower at {many} threads: {slower_total} of {steps_total} (beyond {tolerance})")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark unetc against ONNX Runtime and OpenVINO on graphs/bench/*.json.

For every graph it
  1. makes seeded random weights (.safetensors) and inputs (.npy) once, with the oracle's own
     functions (Tools/oracle.py: same weights, same batch-norm calibration, same inputs), exports
     the same model to ONNX with the oracle's exporter, and compiles unetc's plan from the graph
     and those weights (`unetc compile GRAPH --weights W -o plan.unetc`);
  2. at each thread count, runs every engine in its own subprocess on those files:
       unetc     `unetc run plan.unetc --input ... --threads N --repeat R` (one warm-up run, then R
                 timed runs; unetc reports the median, and the plan's load time),
       ORT       onnxruntime CPU EP, ORT_ENABLE_ALL, intra-op N, inter-op 1, sequential,
       OpenVINO  CPU, INFERENCE_PRECISION_HINT f32, PERFORMANCE_HINT LATENCY, INFERENCE_NUM_THREADS N
                 (skipped when the openvino package is missing),
     the peers with the same protocol: one warm-up run, then R timed runs, median;
     all of that --rounds times (default 3), the engines taking turns, each round in fresh
     processes: the reported median is the median of the rounds' medians (a slow spell of the
     shared machine lands in one round of one engine instead of deciding its number), the
     reported min the smallest time seen;
  3. reads each engine process's peak RSS (ru_maxrss from os.wait4 in a small launcher, see
     run_measured) and compares unetc's outputs with ORT's (relative L2, ||unetc - ort|| / ||ort||).

The unetc binary is copied into the work directory first, so a rebuild during the run cannot mix
two binaries in one table.

Prints a markdown table and, as its last line,
  worst unetc/peer ratio: R (GRAPH, N threads, PEER)

Usage (Tools/bench is the wrapper: it makes the venv, then runs this with it):
  Tools/bench [--runs N] [--rounds K] [--quick] [--graphs classic,ddpm,...] [--threads 1,2] [--seed S]
              [--no-build] [--unetc PATH] [--workdir DIR] [--no-openvino]

Internal: `bench.py --worker ort|openvino|baseline ...` is the per-engine subprocess.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
BENCH_DIR = os.path.join(ROOT, "graphs", "bench")
DEFAULT_GRAPHS = ["classic_unet", "ddpm_unet", "mobile_unet"]
DEFAULT_UNETC = os.path.join(ROOT, ".build", "release", "unetc")
WARMUP_RUNS = 1           # the same as `unetc run --repeat`: one untimed run first
REL_L2_TOLERANCE = 1e-4   # the oracle's pass mark; larger errors are flagged in the notes


# ----------------------------------------------------------------------------------------------
# Worker: one engine in its own process (so its peak RSS is its own)
# ----------------------------------------------------------------------------------------------

def median(times):
    """The upper median for an even count: the statistic `unetc run --repeat` reports."""
    return sorted(times)[len(times) // 2]


def load_inputs(specs):
    """NAME=FILE.npy arguments -> {name: array}."""
    out = {}
    for spec in specs:
        name, path = spec.split("=", 1)
        out[name] = np.load(path)
    return out


def ort_runner(model, threads, expected_names):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def run(inputs):
        return dict(zip(names, sess.run(names, inputs)))
    return run, ort.__version__


def openvino_runner(model, threads, expected_names):
    import openvino as ov
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    # an output has several tensor names (e.g. {'logits', 'head/Conv#202'}): keep the ONNX graph's
    names = [next((n for n in o.get_names() if n in expected_names), o.get_any_name()) for o in compiled.outputs]

    def run(inputs):  # returns fresh arrays, as ORT's run does
        request.infer(inputs, share_inputs=True)
        return {name: request.get_output_tensor(i).data.copy() for i, name in enumerate(names)}
    return run, ov.__version__.split("-")[0]


def worker(args):
    """Times one engine; prints one JSON line: median/min ms, per-run times, engine version."""
    inputs = load_inputs(args.input)
    if args.worker == "baseline":  # the interpreter + numpy + inputs, for reading the peers' RSS
        print(json.dumps({"median_ms": 0.0}))
        return 0
    make = {"ort": ort_runner, "openvino": openvino_runner}[args.worker]
    run, version = make(args.model, int(args.threads), set(args.output_name))
    for _ in range(WARMUP_RUNS):
        outputs = run(inputs)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        outputs = run(inputs)
        times.append((time.perf_counter() - t0) * 1e3)
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        for name, arr in outputs.items():
            np.save(os.path.join(args.output, name + ".npy"), arr)
    print(json.dumps({"median_ms": median(times), "min_ms": min(times),
                      "times_ms": [round(t, 3) for t in times], "version": version}))
    return 0


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def log(msg):
    print(msg, file=sys.stderr, flush=True)


# Starts the measured command and reports its peak RSS. Linux carries the peak RSS of the process
# that execs into the new program (for a subprocess: this driver, with all its weights) into the
# child's ru_maxrss, so the command is started from this small interpreter instead (about 8 MiB,
# below any engine's own peak; ru_maxrss is a maximum, so that floor does not add up).
LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd, timeout):
    """Runs cmd; returns (exit code or "timeout", stdout, stderr, peak RSS of cmd in MiB or None)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r", suffix=".maxrss") as rss_file:
        p = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, rss_file.name] + cmd,
                             stdout=out, stderr=err, text=True, start_new_session=True)
        try:
            code = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the launcher and the engine
            p.wait()
            code = "timeout"
        out.seek(0)
        err.seek(0)
        text = rss_file.read().strip()
        rss = int(text) / 1024.0 if text else None  # ru_maxrss is in KiB on Linux
        return code, out.read(), err.read(), rss


def failure_text(what, code, stdout, stderr):
    lines = (stderr.strip() or stdout.strip()).splitlines()
    return f"{what} failed (exit {code}):\n" + "\n".join("    " + line for line in lines[-12:])


def build_release():
    log("bench: swift build -c release --product unetc")
    p = subprocess.run(["swift", "build", "-c", "release", "--product", "unetc"], cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"bench: release build failed (exit {p.returncode})")


def graph_flop(unetc, graph):
    p = subprocess.run([unetc, "validate", graph], capture_output=True, text=True)
    m = re.search(r"compute:.*\((\d+) FLOP\)", p.stdout)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"`unetc validate {graph}` gave no FLOP count:\n{p.stdout}{p.stderr}")
    return int(m.group(1))


class Prepared:
    """The files every engine reads for one graph."""

    def __init__(self, name, graph, flop, weights, inputs, onnx_model, output_names, plan):
        self.name, self.graph, self.flop, self.plan = name, graph, flop, plan
        self.weights, self.inputs, self.onnx_model = weights, inputs, onnx_model
        self.output_names = output_names

    def input_args(self):
        return [f"{name}={path}" for name, path in self.inputs.items()]


def import_oracle():
    sys.dont_write_bytecode = True  # leave no Tools/__pycache__ in the work tree
    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    import oracle  # the oracle's weights, inputs, safetensors writer, ONNX exporter and comparison
    return oracle


def prepare(unetc, name, graph, seed, workdir):
    """Seeded weights and inputs (as Tools/oracle.py makes them) and the ONNX export, written once."""
    import onnx
    oracle = import_oracle()
    os.makedirs(workdir, exist_ok=True)
    ir = oracle.load_ir(unetc, graph)
    weights = oracle.make_weights(ir, seed)
    inputs = oracle.make_inputs(ir, seed)
    if any(n["op"] == "batch_norm" for n in ir["nodes"]):
        # the oracle's default: batch-norm running statistics matched to the actual activations
        oracle.run_numpy(ir, weights, inputs, calibrate_seed=seed)
    weights_path = os.path.join(workdir, "weights.safetensors")
    oracle.write_safetensors(weights_path, weights, {"format": "pt", "generator": "unetc Tools/bench.py", "seed": seed})
    input_paths = {}
    for input_name, arr in inputs.items():
        input_paths[input_name] = os.path.join(workdir, f"input.{input_name}.npy")
        np.save(input_paths[input_name], arr)
    model_path = os.path.join(workdir, "model.onnx")
    onnx.save(oracle.build_onnx(ir, weights), model_path)
    plan_path = os.path.join(workdir, "plan.unetc")
    p = subprocess.run([unetc, "compile", graph, "--weights", weights_path, "-o", plan_path], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"`unetc compile {graph}` failed:\n{p.stdout}{p.stderr}")
    return Prepared(name, graph, graph_flop(unetc, graph), weights_path, input_paths, model_path,
                    [o["name"] for o in ir["outputs"]], plan_path)


UNETC_TIME = re.compile(r"time:\s*([\d.]+) ms median of (\d+), min ([\d.]+) ms")
UNETC_LOAD = re.compile(r"load:\s*([\d.]+) ms")


def time_unetc(unetc, prep, threads, runs, out_dir, timeout):
    cmd = [unetc, "run", prep.plan]
    for spec in prep.input_args():
        cmd += ["--input", spec]
    cmd += ["--threads", str(threads), "--repeat", str(runs), "--output", out_dir]
    code, stdout, stderr, rss = run_measured(cmd, timeout)
    m = UNETC_TIME.search(stdout + stderr)
    if code != 0 or not m:
        return {"error": failure_text("unetc run", code, stdout, stderr)}
    load = UNETC_LOAD.search(stdout + stderr)
    return {"median_ms": float(m.group(1)), "min_ms": float(m.group(3)), "rss_mib": rss,
            "load_ms": float(load.group(1)) if load else None}


PEER_WORKERS = {"ORT": "ort", "OpenVINO": "openvino"}


def time_peer(engine, prep, threads, runs, out_dir, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", engine, "--model", prep.onnx_model,
           "--threads", str(threads), "--runs", str(runs)]
    for spec in prep.input_args():
        cmd += ["--input", spec]
    cmd += ["--output", out_dir] + [a for name in prep.output_names for a in ("--output-name", name)]
    code, stdout, stderr, rss = run_measured(cmd, timeout)
    if code != 0:
        return {"error": failure_text(f"{engine} worker", code, stdout, stderr)}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["rss_mib"] = rss
    return result


def max_rel_l2(names, got_dir, ref_dir):
    """The largest relative L2 error over the outputs (inf when one is missing or not finite)."""
    oracle = import_oracle()
    worst = 0.0
    for name in names:
        got_path, ref_path = os.path.join(got_dir, name + ".npy"), os.path.join(ref_dir, name + ".npy")
        if not (os.path.exists(got_path) and os.path.exists(ref_path)):
            return float("inf")
        got, ref = np.load(got_path), np.load(ref_path)
        if got.shape != ref.shape or not np.all(np.isfinite(got)):
            return float("inf")
        worst = max(worst, oracle.compare(got, ref)[1])
    return worst


def openvino_available():
    try:
        import openvino  # noqa: F401
        return True
    except ImportError:
        return False


def fmt_ms(r):
    return f"{r['median_ms']:.1f}" if r and "median_ms" in r else ("fail" if r else "-")


def fmt_ratio(a, b):
    if a and b and "median_ms" in a and "median_ms" in b:
        return f"{a['median_ms'] / b['median_ms']:.2f}"
    return "-"


def fmt_rss(r):
    return f"{r['rss_mib']:.0f}" if r and r.get("rss_mib") is not None else "-"


def machine_line():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def resolve_graph(spec):
    """classic | classic_unet | graphs/bench/classic_unet.json -> (name, path)."""
    if spec.endswith(".json"):
        return os.path.splitext(os.path.basename(spec))[0], os.path.abspath(spec)
    for name in (spec, spec + "_unet"):
        path = os.path.join(BENCH_DIR, name + ".json")
        if os.path.exists(path):
            return name, path
    sys.exit(f"bench: no graph {spec!r} (known: {', '.join(DEFAULT_GRAPHS)})")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Benchmark unetc against ONNX Runtime and OpenVINO.")
    p.add_argument("--runs", type=int, default=None, help="timed runs per engine (default 10)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of every engine, taking turns (default 3)")
    p.add_argument("--quick", action="store_true", help="3 timed runs, 1 round (a smoke test, not a measurement)")
    p.add_argument("--graphs", default=",".join(DEFAULT_GRAPHS),
                   help="comma-separated subset: classic, ddpm, mobile (or graph file paths)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default 0)")
    p.add_argument("--no-build", action="store_true", help="skip `swift build -c release` (use the existing binary)")
    p.add_argument("--unetc", default=os.environ.get("UNETC", DEFAULT_UNETC), help="the unetc binary")
    p.add_argument("--workdir", help="keep weights, inputs, model.onnx and outputs here (default: a temp dir)")
    p.add_argument("--no-openvino", action="store_true", help="leave OpenVINO out")
    p.add_argument("--timeout", type=float, default=1800, help="seconds for one engine subprocess")
    # the per-engine subprocess
    p.add_argument("--worker", choices=["ort", "openvino", "baseline"], help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--input", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--output-name", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else 10
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.runs < 2:
        p.error("--runs must be at least 2 (`unetc run` warms up only when it repeats)")
    try:
        args.thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        p.error(f"--threads: expected numbers like 1,2, got {args.threads!r}")
    if not args.thread_counts or min(args.thread_counts) < 1:
        p.error("--threads: give at least one count >= 1")
    return args


def measure(unetc, prep, threads, peers, args, workdir):
    """One table row: every engine on one graph at one thread count."""
    out = {e: os.path.join(workdir, f"out-{e}-{threads}t") for e in ["unetc"] + peers}
    for d in out.values():
        shutil.rmtree(d, ignore_errors=True)
    row = {"graph": prep.name, "threads": threads, "flop": prep.flop, "errors": [], "rel_l2": None}
    rounds = {e: [] for e in ["unetc"] + peers}
    for _ in range(args.rounds):
        rounds["unetc"].append(time_unetc(unetc, prep, threads, args.runs, out["unetc"], args.timeout))
        for peer in peers:
            rounds[peer].append(time_peer(PEER_WORKERS[peer], prep, threads, args.runs, out[peer], args.timeout))
    for engine, results in rounds.items():
        row[engine] = combine_rounds(results)
    for engine in ["unetc"] + peers:
        r = row[engine]
        if "error" in r:
            row["errors"].append(f"{prep.name} {threads}t {engine}: {r['error']}")
            log(f"bench: {prep.name} {threads}t {engine}: FAILED\n{r['error']}")
        else:
            log(f"bench: {prep.name} {threads}t {engine}: median {r['median_ms']:.1f} ms "
                f"(rounds {', '.join(f'{m:.1f}' for m in r['round_medians_ms'])}), "
                f"min {r['min_ms']:.1f} ms, peak RSS {fmt_rss(r)} MiB")
    ok = {e for e in ["unetc"] + peers if "error" not in row[e]}
    if {"unetc", "ORT"} <= ok:
        row["rel_l2"] = max_rel_l2(prep.output_names, out["unetc"], out["ORT"])
    if {"OpenVINO", "ORT"} <= ok:
        row["ov_rel_l2"] = max_rel_l2(prep.output_names, out["OpenVINO"], out["ORT"])
    agreement = [f"{e}~ORT {row[k]:.1e}" for e, k in (("unetc", "rel_l2"), ("OpenVINO", "ov_rel_l2"))
                 if row.get(k) is not None]
    if agreement:
        log(f"bench: {prep.name} {threads}t rel L2 " + ", ".join(agreement))
    return row


def combine_rounds(results):
    """One engine's rounds as one result: the median of the round medians, the smallest time,
    the largest peak RSS, the median load time; the first error if a round failed."""
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    combined = dict(results[-1])
    combined["median_ms"] = median([r["median_ms"] for r in results])
    combined["round_medians_ms"] = [r["median_ms"] for r in results]
    combined["min_ms"] = min(r["min_ms"] for r in results)
    rss = [r["rss_mib"] for r in results if r.get("rss_mib") is not None]
    combined["rss_mib"] = max(rss) if rss else None
    loads = [r["load_ms"] for r in results if r.get("load_ms") is not None]
    if loads:
        combined["load_ms"] = median(loads)
    return combined


def python_baseline_rss(prep, timeout):
    """Peak RSS of a worker that only loads numpy and the inputs: the floor under the peers' RSS."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "baseline"]
    cmd += [a for spec in prep.input_args() for a in ("--input", spec)]
    return run_measured(cmd, timeout)[3]


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)

    graphs = [resolve_graph(s.strip()) for s in args.graphs.split(",") if s.strip()]
    started = time.time()
    if not args.no_build:
        build_release()
    peers = ["ORT"] + (["OpenVINO"] if not args.no_openvino and openvino_available() else [])
    if "OpenVINO" not in peers and not args.no_openvino:
        log("bench: the openvino package is missing; OpenVINO is left out (Tools/setup-venv.sh installs it)")
    workdir = args.workdir or tempfile.mkdtemp(prefix="unetc-bench-")
    os.makedirs(workdir, exist_ok=True)
    # a private copy, so that a rebuild during the run cannot mix two binaries in one table
    import_oracle().wait_for_binary(args.unetc)  # the developer may be rebuilding it right now
    unetc = os.path.join(workdir, "unetc")
    shutil.copy2(args.unetc, unetc)
    load_start = os.getloadavg()

    rows, failures, baseline_rss = [], [], None
    try:
        for name, graph in graphs:
            t0 = time.time()
            log(f"bench: {name}: weights, inputs, ONNX export")
            try:
                prep = prepare(unetc, name, graph, args.seed, os.path.join(workdir, name))
            except Exception as e:  # noqa: BLE001 - a broken graph or IR: report it, go on with the rest
                failures.append(f"{name}: preparing failed: {type(e).__name__}: {e}")
                log(f"bench: {failures[-1]}")
                continue
            log(f"bench: {name}: prepared in {time.time() - t0:.1f} s ({prep.flop / 1e9:.2f} GFLOP)")
            if baseline_rss is None:
                baseline_rss = python_baseline_rss(prep, args.timeout)
            for threads in args.thread_counts:
                row = measure(unetc, prep, threads, peers, args, os.path.join(workdir, name))
                failures += row["errors"]
                rows.append(row)
    finally:
        if args.workdir:
            log(f"bench: files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print_report(args, rows, peers, failures, baseline_rss, load_start, time.time() - started)
    return 1 if failures else 0


def unetc_description(args):
    p = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    commit = p.stdout.strip() or "unknown commit"
    if args.no_build:
        return f"unetc {args.unetc} as found (--no-build; tree at {commit})"
    return f"unetc release build of {commit}"


def print_report(args, rows, peers, failures, baseline_rss, load_start, seconds):
    load_end = os.getloadavg()
    print(f"machine: {machine_line()}; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    versions = {}
    for row in rows:
        for p in peers:
            versions.setdefault(p, row[p].get("version"))
    engines = [unetc_description(args)] + [f"{p} {versions[p]}" for p in peers if versions.get(p)]
    print("engines: " + ", ".join(engines))
    print(f"protocol: {args.rounds} round(s), engines taking turns, each a fresh process: {WARMUP_RUNS} warm-up run, "
          f"then {args.runs} timed runs; median of the round medians; seed {args.seed}; total {seconds:.0f} s")
    print()
    header = ["graph", "threads", "unetc ms"] + [f"{p} ms" for p in peers] + [f"unetc/{p}" for p in peers] + \
        ["unetc GFLOP/s", "unetc load ms", "RSS unetc MiB"] + [f"RSS {p} MiB" for p in peers] + ["rel L2 unetc~ORT"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        u = row["unetc"]
        gflops = f"{row['flop'] / 1e9 / (u['median_ms'] / 1e3):.1f}" if "median_ms" in u else "-"
        rel = "-" if row["rel_l2"] is None else f"{row['rel_l2']:.1e}"
        load = f"{u['load_ms']:.1f}" if u.get("load_ms") is not None else "-"
        cells = [row["graph"], str(row["threads"]), fmt_ms(u)] + [fmt_ms(row.get(p)) for p in peers] + \
            [fmt_ratio(u, row.get(p)) for p in peers] + [gflops, load, fmt_rss(u)] + [fmt_rss(row.get(p)) for p in peers] + [rel]
        print("| " + " | ".join(cells) + " |")
    print()

    notes = []
    if baseline_rss is not None:
        notes.append(f"the peers' RSS includes the Python interpreter + numpy + inputs: {baseline_rss:.0f} MiB alone")
    by_graph = {}
    for row in rows:
        if "median_ms" in row["unetc"]:
            by_graph.setdefault(row["graph"], {})[row["threads"]] = row["unetc"]["median_ms"]
    for graph, t in by_graph.items():
        counts = sorted(t)
        for lo, hi in zip(counts, counts[1:]):
            if t[hi] >= t[lo]:
                notes.append(f"unetc is not faster at {hi} threads than at {lo} on {graph} "
                             f"({t[hi]:.1f} vs {t[lo]:.1f} ms)")
    for row in rows:
        if row["rel_l2"] is not None and not row["rel_l2"] <= REL_L2_TOLERANCE:
            notes.append(f"{row['graph']} {row['threads']}t: unetc~ORT rel L2 {row['rel_l2']:.1e} "
                         f"> {REL_L2_TOLERANCE:g}")
        if row.get("ov_rel_l2") is not None and not row["ov_rel_l2"] <= REL_L2_TOLERANCE:
            notes.append(f"{row['graph']} {row['threads']}t: OpenVINO~ORT rel L2 {row['ov_rel_l2']:.1e}")
    for f in failures:
        notes.append("FAILED " + f.splitlines()[0])
    for n in notes:
        print(f"note: {n}")

    worst = None
    for row in rows:
        for p in peers:
            u, r = row["unetc"], row[p]
            if "median_ms" in u and "median_ms" in r:
                ratio = u["median_ms"] / r["median_ms"]
                if worst is None or ratio > worst[0]:
                    worst = (ratio, row["graph"], row["threads"], p)
    if worst:
        print(f"worst unetc/peer ratio: {worst[0]:.2f} ({worst[1]}, {worst[2]} threads, {worst[3]})")
    else:
        print("worst unetc/peer ratio: n/a (no engine pair finished)")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

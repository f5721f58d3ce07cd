"""bench.py — netc against PyTorch and ONNX Runtime, measured in the same run (scripts/bench runs it).

For each model: PyTorch builds it with seeded random weights (tools/make_model_fixtures.py), the
weights go to safetensors, netc compiles examples/<model>.net with them at -O2 (timed, with
--time-passes for the dominant phase), and three contenders run the same input:

  netc     netrun --bench N on the -O2 .so (one process per block);
  PyTorch  the same module frozen for inference, in this process
           (torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(...))));
  ORT      the same module exported with torch.onnx.export (opset 13), run by ONNX Runtime's CPU
           provider (npm package onnxruntime-node) in tools/ort_bench.js, one node process per
           model that keeps a session per thread count (intraOpNumThreads = T, interOpNumThreads
           = 1, sequential, graphOptimizationLevel 'all').

The VM's speed swings by ±25 % within minutes, so the contenders alternate: for each model and
thread count, --rounds rounds, each running every contender once (the order rotates and reverses
from round to round) for a block of --runs timed runs after --warmup untimed ones. Per contender
the table gives the median of the blocks' medians and the minimum over all runs; netc/best peer
divides netc's median by the faster peer's (< 1: netc is faster). GFLOP/s is 2 x the nominal MACs
of `netc check` over netc's median, % peak its share of the FP32 peak measured by tools/peak.c in
this run. rel.err is netc's output against PyTorch's (max|diff| / max|ref|).

Without onnxruntime-node (scripts/bench installs it into ~/.cache/netc-bench/ort with npm), or
when node or the export fails, the ORT column says n/a and the run goes on.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import make_model_fixtures as mmf  # noqa: E402

DEFAULT_MODELS = "resnet18,resnet50,mobilenet_v2,aspp,aspp_sep"
DEFAULT_ORT_DIR = os.environ.get("NETC_ORT_DIR",
                                  os.path.join(os.path.expanduser("~"), ".cache", "netc-bench", "ort"))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def build_module(name, seed):
    """The same module and weights make_model_fixtures.make() saves."""
    ctor, inputs, scale, _, _ = mmf.MODELS[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    module = ctor()
    calib = [torch.randn((4,) + shape[1:], generator=gen) * scale for _, shape in inputs]
    mmf.randomise(module, calib, gen)
    xs = [torch.randn(shape, generator=gen) * scale for _, shape in inputs]
    return module.eval(), xs


def cpu_name():
    try:
        out = run(["lscpu"]).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            return m.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown CPU"


def cpu_usage():
    """(busy CPU seconds of the whole machine, incl. steal; CPU seconds of this process and its
    waited-for children; wall seconds)."""
    busy = None
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system, time.perf_counter()


def cpu_used_by_others(usage0):
    """Share of the machine's CPU time that other processes (and the hypervisor) took since usage0."""
    b1, o1, w1 = cpu_usage()
    if usage0[0] is None or b1 is None:
        return 0.0
    return max(0.0, 100 * ((b1 - usage0[0]) - (o1 - usage0[1])) / ((w1 - usage0[2]) * (os.cpu_count() or 1)))


# ---- netc -------------------------------------------------------------------------------------
TIME_ROW = re.compile(r"^time: (\S+)\s+(.*?)\s+([0-9.]+)\s+([0-9.]+)%\s*$")


def dominant_phase(stderr):
    """The top-level --time-passes row with the most ms ('other' and 'total' are not phases;
    the indented per-thread rows are ignored)."""
    best = None
    for line in stderr.splitlines():
        m = TIME_ROW.match(line)  # "time: X" only: the sub-rows start "time:   "
        if not m or m.group(1) in ("other", "total"):
            continue
        ms, share = float(m.group(3)), float(m.group(4))
        if best is None or ms > best[0]:
            best = (ms, f"{m.group(1)} {' '.join(m.group(2).split())} {share:.0f}%")
    return best[1] if best else "?"


def macs_of(netc, model, weights):
    out = run([netc, "check", model, "--weights", weights]).stdout
    line = [l for l in out.splitlines() if l.startswith("total:")][0]
    return int(line.split("MACs (")[1].split(")")[0])


def netc_block(netrun, so, inp, threads, runs, warmup):
    out = run([netrun, so, "--input", inp, "--bench", str(runs), "--warmup", str(warmup),
               "--threads", str(threads), "--json"]).stdout
    lat = json.loads(out)["latency_ms"]
    return lat["median"], lat["min"]


# ---- PyTorch ----------------------------------------------------------------------------------
def torch_frozen(module, xs):
    with torch.no_grad():
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, tuple(xs))))


def torch_block(f, xs, threads, runs, warmup):
    torch.set_num_threads(threads)
    with torch.no_grad():
        for _ in range(warmup):
            f(*xs)
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            f(*xs)
            ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts)), float(min(ts))


# ---- ONNX Runtime -----------------------------------------------------------------------------
def ort_setup(ort_dir):
    """(env for node, None) when onnxruntime-node loads, else (None, why not)."""
    node = shutil.which("node")
    if not node:
        return None, "node not found"
    pkg = os.path.join(ort_dir, "node_modules", "onnxruntime-node")
    if not os.path.isdir(pkg):
        return None, f"onnxruntime-node not installed in {ort_dir}"
    env = dict(os.environ, ORT_NODE_DIR=ort_dir)
    libs = sorted(glob.glob(os.path.join(pkg, "bin", "napi-v*", "linux", "x64", "libonnxruntime.so*")))
    if libs:  # the binding finds it by rpath; the path is a fallback
        libdir = os.path.dirname(libs[-1])
        env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    probe = ("const o = require(require('path').join(process.env.ORT_NODE_DIR, 'node_modules', "
             "'onnxruntime-node')); new o.Tensor('float32', new Float32Array(1), [1]); "
             "console.log(o.env.versions.node || o.env.versions.common)")
    p = subprocess.run([node, "-e", probe], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"onnxruntime-node does not load: {last}"
    env["NETC_ORT_VERSION"] = p.stdout.strip()
    return env, None


def onnx_export(module, xs, name, path):
    in_names = [n for n, _ in mmf.MODELS[name][1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(module, tuple(xs), path, opset_version=13, input_names=in_names,
                              do_constant_folding=True)


class OrtServer:
    """tools/ort_bench.js --serve on one model: a block per request line."""

    def __init__(self, env, onnx_path, inp, out_npy):
        self.p = subprocess.Popen(["node", os.path.join(HERE, "ort_bench.js"), onnx_path, inp, "--serve",
                                   "--output", out_npy], env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self._read()  # {"ready": true}

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            raise RuntimeError("ort_bench.js exited: " + (self.p.stderr.read().strip().splitlines() or ["?"])[-1])
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError(msg["error"])
        return msg

    def block(self, threads, runs, warmup):
        self.p.stdin.write(f"{threads} {runs} {warmup}\n")
        self.p.stdin.flush()
        lat = self._read()["latency_ms"]
        return lat["median"], lat["min"]

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


# ---- the run ----------------------------------------------------------------------------------
def round_orders(contenders, rounds):
    """Round r's order: rotations of the list and of its reverse, interleaved (each contender
    takes each position, and follows different ones)."""
    n = len(contenders)
    fwd = [contenders[i:] + contenders[:i] for i in range(n)]
    rev = [c[::-1] for c in fwd]
    seq = [o for pair in zip(fwd, rev) for o in pair]
    return [seq[r % len(seq)] for r in range(rounds)]


def rel_err(out, ref):
    return float(np.abs(out - ref).max() / np.abs(ref).max())


def fmt_ms(v):
    return "n/a" if v is None else f"{v[0]:.2f} / {v[1]:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per model and thread count")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per contender per round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs before each block")
    ap.add_argument("--with-o0", action="store_true", help="also time netc -O0 (a fourth contender)")
    ap.add_argument("--runs-o0", type=int, default=3, help="timed runs per round for -O0")
    ap.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime (column n/a)")
    ap.add_argument("--ort-dir", default=DEFAULT_ORT_DIR,
                    help="folder holding node_modules/onnxruntime-node (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (models, .so, .onnx)")
    ap.add_argument("--cpu", default=None,
                    help="netc --cpu (e.g. x86-64-v3: the AVX2 path on an AVX-512 host); the peak is then "
                         "measured for that level; PyTorch and ORT still pick their own kernels")
    args = ap.parse_args()
    netc, netrun = os.path.join(args.build, "netc"), os.path.join(args.build, "netrun")
    threads = [int(t) for t in args.threads.split(",")]
    models = [m for m in args.models.split(",") if m]
    for name in models:
        if name not in mmf.MODELS or not os.path.exists(os.path.join(ROOT, "examples", name + ".net")):
            raise SystemExit(f"bench.py: no model {name!r} (examples/{name}.net)")
    work = tempfile.mkdtemp(prefix="netc-bench-")
    try:
        bench(args, netc, netrun, threads, models, work)
    finally:
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def bench(args, netc, netrun, threads, models, work):
    started = time.perf_counter()
    stamps = {b: os.stat(b).st_mtime for b in (netc, netrun)}
    usage0 = cpu_usage()

    print(f"CPU: {cpu_name()} ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})", flush=True)
    peak_bin = os.path.join(work, "peak")
    run(["cc", "-O3", "-march=" + (args.cpu or "native"), "-ffp-contract=fast", os.path.join(HERE, "peak.c"),
         "-o", peak_bin, "-lpthread"])
    # the best of 3 at the start and of 1 after each model: the peak is what the machine can do,
    # and other load only ever lowers it
    peak = {t: 0.0 for t in threads}

    def measure_peak(times):
        for t in threads:
            peak[t] = max([peak[t]] + [float(run([peak_bin, str(t)]).stdout) for _ in range(times)])

    measure_peak(3)
    print("measured FP32 peak: " + ", ".join(f"{peak[t]:.0f} GFLOP/s on {t} thread{'s' if t > 1 else ''}"
                                             for t in threads), flush=True)
    if args.no_ort:
        ort_env, ort_why = None, "--no-ort"
    else:
        ort_env, ort_why = ort_setup(args.ort_dir)
    print(f"ONNX Runtime: {'onnxruntime-node ' + ort_env['NETC_ORT_VERSION'] if ort_env else 'n/a (' + ort_why + ')'}"
          f"; PyTorch {torch.__version__}", flush=True)
    print(f"{args.rounds} rounds x {args.runs} runs (+{args.warmup} warm-up) per contender, model and thread count",
          flush=True)

    rows, notes = [], []
    for name in models:
        mmf.make(name, work, 1234)
        w = os.path.join(work, name + ".safetensors")
        inp = os.path.join(work, name + ".input.npy")
        ref = np.load(os.path.join(work, name + ".expected.npy"))
        model = os.path.join(ROOT, "examples", name + ".net")
        so = {"2": os.path.join(work, f"{name}.O2.so")}
        t0 = time.perf_counter()
        cpu = ["--cpu=" + args.cpu] if args.cpu else []
        comp = run([netc, model, "--weights", w, "-O2", "-o", so["2"], "--time-passes"] + cpu)
        compile_s = time.perf_counter() - t0
        phase = dominant_phase(comp.stderr)
        if args.with_o0:
            so["0"] = os.path.join(work, f"{name}.O0.so")
            run([netc, model, "--weights", w, "-O0", "-o", so["0"]] + cpu)
        out = os.path.join(work, name + ".out.npy")
        run([netrun, so["2"], "--input", inp, "--output", out])
        err = rel_err(np.load(out), ref)
        macs = macs_of(netc, model, w)
        module, xs = build_module(name, 1234)
        frozen = torch_frozen(module, xs)

        ort, ort_err = None, None
        if ort_env:
            try:
                onnx_path = os.path.join(work, name + ".onnx")
                onnx_export(module, xs, name, onnx_path)
                ort_out = os.path.join(work, name + ".ort.npy")
                ort = OrtServer(ort_env, onnx_path, inp, ort_out)
                ort_err = rel_err(np.load(ort_out), ref)
            except Exception as e:  # noqa: BLE001 — any failure: ORT is n/a for this model
                notes.append(f"{name}: ORT n/a: {e}")
                print(f"  {name}: ORT n/a: {e}", flush=True)
                if ort:
                    ort.close()
                ort = None
        print(f"  {name}: compiled in {compile_s:.2f} s ({phase}); rel.err netc {err:.1e}"
              + (f", ORT {ort_err:.1e}" if ort_err is not None else ""), flush=True)

        blocks = {"netc": lambda t: netc_block(netrun, so["2"], inp, t, args.runs, args.warmup),
                  "PyTorch": lambda t: torch_block(frozen, xs, t, args.runs, args.warmup)}
        if ort:
            blocks["ORT"] = lambda t: ort.block(t, args.runs, args.warmup)
        if args.with_o0:
            blocks["-O0"] = lambda t: netc_block(netrun, so["0"], inp, t, args.runs_o0, 1)
        try:
            for t in threads:
                meds = {c: [] for c in blocks}
                mins = {c: [] for c in blocks}
                for order in round_orders(list(blocks), args.rounds):
                    for c in order:
                        if c not in blocks:
                            continue
                        try:
                            med, mn = blocks[c](t)
                        except (RuntimeError, ValueError, KeyError, OSError) as e:
                            if c != "ORT":
                                raise
                            notes.append(f"{name}: ORT n/a: {e}")  # died mid-way: n/a for the model
                            print(f"  {name}: ORT n/a: {e}", flush=True)
                            del blocks[c], meds[c], mins[c]
                            continue
                        meds[c].append(med)
                        mins[c].append(mn)
                res = {c: (float(np.median(meds[c])), float(min(mins[c]))) for c in blocks}
                peers = [(res[c][0], c) for c in ("PyTorch", "ORT") if c in res]
                best_ms, best = min(peers)
                o2 = res["netc"][0]
                gflops = 2 * macs / (o2 * 1e-3) / 1e9
                rows.append(dict(model=name, threads=t, res=res, ratio=o2 / best_ms, best=best, gflops=gflops,
                                 err=err, compile_s=compile_s, phase=phase))
                print(f"  {name} threads={t}: " + ", ".join(
                    f"{c} {res[c][0]:.2f} ms [{' '.join(f'{m:.1f}' for m in meds[c])}]" for c in blocks), flush=True)
        finally:
            if ort:
                ort.close()
        measure_peak(1)

    print()
    hdr = ["model", "threads", "netc ms (median / min)", "PyTorch ms (median / min)", "ORT ms (median / min)",
           "netc/best peer", "GFLOP/s", "% peak", "rel.err", "compile s", "dominant phase"]
    if args.with_o0:
        hdr.insert(3, "netc -O0 ms (median / min)")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for r in rows:
        cells = [r["model"], str(r["threads"]), fmt_ms(r["res"]["netc"]), fmt_ms(r["res"]["PyTorch"]),
                 fmt_ms(r["res"].get("ORT")), f"{r['ratio']:.2f} ({r['best']})", f"{r['gflops']:.0f}",
                 f"{100 * r['gflops'] / peak[r['threads']]:.0f}%", f"{r['err']:.1e}", f"{r['compile_s']:.2f}", r["phase"]]
        if args.with_o0:
            cells.insert(3, fmt_ms(r["res"].get("-O0")))
        print("| " + " | ".join(cells) + " |")
    print(f"\nmedian = median of the {args.rounds} rounds' block medians ({args.runs} runs each), "
          "min = fastest single run.")
    print("netc/best peer < 1: netc is faster than the faster of PyTorch and ORT (named). GFLOP/s = 2 x the")
    print("nominal MACs of `netc check` / netc's median; the kernels skip taps that only read padding (ASPP's")
    print("dilated 3x3s), so ASPP can pass the peak. rel.err: netc's output against PyTorch's, max|diff|/max|ref|.")
    print("% peak: of the best FP32 peak measured in this run (" + ", ".join(
        f"{peak[t]:.0f} GFLOP/s on {t} thread{'s' if t > 1 else ''}" for t in threads) + ").")
    print("compile s: wall time of `netc -O2` (with --time-passes), which uses every CPU.")
    if args.cpu:
        print(f"netc compiled with --cpu={args.cpu} (peak measured for it); PyTorch and ORT use this CPU's "
              "own best kernels, so the ratio is against peers with wider vectors where the CPU has them.")
    if not ort_env:
        print(f"ORT n/a: {ort_why}.")
    for n in notes:
        print(n)
    for b, m in stamps.items():
        if not os.path.exists(b) or os.stat(b).st_mtime != m:
            print(f"warning: {b} was rebuilt during the run: rows may come from different builds")
    others = cpu_used_by_others(usage0)
    print(f"total {time.perf_counter() - started:.0f} s; other processes used {others:.0f}% of the CPUs meanwhile"
          + (" (timings are noisier than usual)" if others > 10 else ""))


if __name__ == "__main__":
    main()

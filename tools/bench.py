"""bench.py — netc against PyTorch, measured in the same run (scripts/bench runs it).

For each model: PyTorch builds it with seeded random weights (tools/make_model_fixtures.py), the
weights go to safetensors, netc compiles examples/<model>.net with them at -O2 and -O0, netrun
times both, PyTorch times the same module frozen for inference
(torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(...)))) with the same thread
count. Prints one table: latency medians, the ratio netc/PyTorch (< 1: netc is faster), netc's
GFLOP/s and its share of the machine's FP32 peak (measured by tools/peak.c in this run), and the
error of netc's output against PyTorch's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import make_model_fixtures as mmf  # noqa: E402


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


def torch_latency(module, xs, threads, runs, warmup):
    torch.set_num_threads(threads)
    with torch.no_grad():
        f = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, tuple(xs))))
        for _ in range(warmup):
            f(*xs)
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            f(*xs)
            ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


def netc_latency(netrun, so, inp, threads, runs, warmup):
    out = run([netrun, so, "--input", inp, "--bench", str(runs), "--warmup", str(warmup),
               "--threads", str(threads), "--json"]).stdout
    return json.loads(out)["latency_ms"]["median"]


def macs_of(netc, model, weights):
    out = run([netc, "check", model, "--weights", weights]).stdout
    line = [l for l in out.splitlines() if l.startswith("total:")][0]
    return int(line.split("MACs (")[1].split(")")[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default="resnet18,mobilenet_v2,aspp")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--runs-o0", type=int, default=5)
    args = ap.parse_args()
    netc, netrun = os.path.join(args.build, "netc"), os.path.join(args.build, "netrun")
    threads = [int(t) for t in args.threads.split(",")]
    work = tempfile.mkdtemp(prefix="netc-bench-")
    peak_bin = os.path.join(work, "peak")
    run(["cc", "-O3", "-march=native", "-ffp-contract=fast", os.path.join(HERE, "peak.c"), "-o", peak_bin, "-lpthread"])
    peak = {t: float(run([peak_bin, str(t)]).stdout) for t in threads}
    print("measured FP32 peak: " + ", ".join(f"{peak[t]:.0f} GFLOP/s on {t} thread{'s' if t > 1 else ''}"
                                             for t in threads), flush=True)

    rows = []
    for name in args.models.split(","):
        mmf.make(name, work, 1234)
        w = os.path.join(work, name + ".safetensors")
        inp = os.path.join(work, name + ".input.npy")
        model = os.path.join(ROOT, "examples", name + ".net")
        so = {}
        for lvl in ("2", "0"):
            so[lvl] = os.path.join(work, f"{name}.O{lvl}.so")
            t = time.perf_counter()
            run([netc, model, "--weights", w, f"-O{lvl}", "-o", so[lvl]])
            if lvl == "2":
                compile_s = time.perf_counter() - t
        out = os.path.join(work, name + ".out.npy")
        run([netrun, so["2"], "--input", inp, "--output", out])
        ref = np.load(os.path.join(work, name + ".expected.npy"))
        err = float(np.abs(np.load(out) - ref).max() / np.abs(ref).max())
        macs = macs_of(netc, model, w)
        module, xs = build_module(name, 1234)
        for t in threads:
            o2 = netc_latency(netrun, so["2"], inp, t, args.runs, 3)
            o0 = netc_latency(netrun, so["0"], inp, t, args.runs_o0, 1)
            pt = torch_latency(module, xs, t, args.runs, 3)
            gflops = 2 * macs / (o2 * 1e-3) / 1e9
            rows.append((name, t, o2, o0, pt, o2 / pt, gflops, 100 * gflops / peak[t], err, compile_s))
            print(f"  {name} threads={t}: netc {o2:.2f} ms, -O0 {o0:.2f} ms, PyTorch {pt:.2f} ms", flush=True)

    print()
    hdr = ("model", "threads", "netc -O2 ms", "netc -O0 ms", "PyTorch ms", "netc/PyTorch", "GFLOP/s", "% peak",
           "rel.err", "compile s")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.0f} | {r[7]:.0f}% | "
              f"{r[8]:.1e} | {r[9]:.1f} |")
    print("\nnetc/PyTorch < 1: netc is faster. GFLOP/s = 2 x the nominal MACs of `netc check` / latency; the")
    print("kernels skip taps that only read padding (ASPP's dilated 3x3s), so ASPP can pass the peak.")
    print("rel.err: netc's output against PyTorch's, max|diff|/max|ref|.")


if __name__ == "__main__":
    main()

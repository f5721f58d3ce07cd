#!/usr/bin/python3
"""onnx_conformance.py — ONNX's own node test cases (onnx.backend.test.case.node, outputs computed
by ONNX's numpy references) through tools/onnx2net.py, then `netc run` (the interpreter) and the
compiled .so (`netrun`), each within 1e-4 of the reference (max|d| / max(1, max|ref|)).

    onnx_conformance.py NETC SRC [--all] [--ops Conv,Relu] [-v]

A case is taken when every node's op is one the converter maps (or refuses by name: Selu, ...).
Inputs that a mapped op needs constant (weights, pads, scales, shapes, ...) become initializers
with the case's values: .net has constant weights. A case the converter refuses is counted as
refused with its reason (a dtype or rank the language lacks, an attribute with no exact .net
form), never skipped silently. Without --all, a representative subset (the first cases of each
op) runs. Exit 1 on any mismatch, or on a
case that converts but does not compile.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from collections import OrderedDict, defaultdict

import numpy as np

# onnx 1.12's case generators use numpy aliases removed since (np.float, ...)
for _a, _v in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if _a not in np.__dict__:
        setattr(np, _a, _v)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

# input positions (after the first) that each op needs known at conversion time
CONST_INPUTS = {
    "Conv": (1, 2), "ConvTranspose": (1, 2), "BatchNormalization": (1, 2, 3, 4), "Gemm": (1, 2),
    "MatMul": (1,), "PRelu": (1,), "Clip": (1, 2), "Pad": (1, 2, 3), "Slice": (1, 2, 3, 4),
    "Resize": (1, 2, 3), "Upsample": (1,), "Reshape": (1,), "Split": (1,), "ReduceMean": (1,),
    "Unsqueeze": (1,), "Squeeze": (1,), "Dropout": (1, 2),
}
# the first cases of each op in the default (CTest) run
SUBSET = 2
TOL = 1e-4


def cases(ops_wanted):
    import onnx.backend.test.case.node as node_cases
    sys.path.insert(0, TOOLS)
    import onnx2net
    # the ops the converter maps, and the activations it refuses by name; ops it only folds on
    # constants (Cast, Gather, Range, ...) are not cases of their own
    mapped = ({o for o in onnx2net.HANDLERS if not o.startswith("_")}
              | {"Selu", "Softplus", "Mish", "Erf"})
    out = []
    for c in node_cases.collect_testcases(None):
        if c.kind != "node" or not c.data_sets:
            continue
        ops = [n.op_type for n in c.model.graph.node]
        if not all(o in mapped for o in ops):
            continue
        main = [o for o in ops if o not in ("Constant",)]
        label = main[-1] if len(set(main)) == 1 else (c.name.replace("test_", "").split("_")[0]
                                                      + " (pattern)")
        if len(set(main)) == 1 and main[0] in ("Selu", "Softplus", "Erf"):
            label = main[0]
        if ops_wanted and label.split()[0] not in ops_wanted:
            continue
        out.append((label, c))
    return out


def constify(model, inputs):
    """The model with the inputs that mapped ops need constant turned into initializers."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    need = set()
    for n in g.node:
        for pos in CONST_INPUTS.get(n.op_type, ()):
            if pos < len(n.input) and n.input[pos]:
                need.add(n.input[pos])
    kept_inputs, runtime = [], []
    for i, vi in enumerate(g.input):
        if vi.name in need:
            g.initializer.append(numpy_helper.from_array(inputs[i], vi.name))
        else:
            kept_inputs.append(vi)
            runtime.append(inputs[i])
    del g.input[:]
    g.input.extend(kept_inputs)
    return m, runtime


def compare(got, ref):
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) / max(1.0, float(np.max(np.abs(ref))))
    return None if err <= TOL else f"max|d| = {err:.3e}"


def run_case(label, case, work, netc, netrun, verbose):
    """'matched', ('refused', reason) or ('failed', why)."""
    import onnx2net
    inputs, outputs = case.data_sets[0]
    model, runtime = constify(case.model, list(inputs))
    text, tensors, unmapped = onnx2net.convert(model, "case")
    if unmapped:
        return "refused", "; ".join(f"{w}" for _, _, w in unmapped[:1])
    d = os.path.join(work, case.name)
    os.makedirs(d, exist_ok=True)
    net = os.path.join(d, "case.net")
    with open(net, "w") as f:
        f.write(text)
    st = os.path.join(d, "case.safetensors")
    sys.path.insert(0, TOOLS)
    from nettools import write_npy, write_safetensors
    write_safetensors(st, tensors)
    io = []
    for i, a in enumerate(runtime):
        p = os.path.join(d, f"in{i}.npy")
        write_npy(p, a)
        io += ["--input", p]
    outs = []
    for i in range(len(outputs)):
        outs.append(os.path.join(d, f"out{i}.npy"))
        io += ["--output", outs[-1]]
    for how, cmd in (("netc run", [netc, "run", net, "--weights", st] + io),
                     ("compile", [netc, net, "--weights", st, "-o", os.path.join(d, "case.so")]),
                     ("netrun", [netrun, os.path.join(d, "case.so")] + io)):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            return "failed", f"{how}: exit {r.returncode}: {r.stderr.strip()[:300]}"
        if how == "compile":
            continue
        for o, ref in zip(outs, outputs):
            bad = compare(np.load(o), np.asarray(ref))
            if bad:
                return "failed", f"{how}: {bad}"
    if verbose:
        print(f"  {case.name}: matched")
    return "matched", None


def main():
    global TOOLS
    ap = argparse.ArgumentParser()
    ap.add_argument("netc")
    ap.add_argument("src")
    ap.add_argument("--all", action="store_true", help="every case (default: a subset)")
    ap.add_argument("--ops", help="comma-separated op labels")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    TOOLS = os.path.join(os.path.abspath(args.src), "tools")
    netrun = os.path.join(os.path.dirname(os.path.abspath(args.netc)), "netrun")
    todo = cases(set(args.ops.split(",")) if args.ops else None)
    if not args.all:
        seen = defaultdict(int)
        sub = []
        for label, c in todo:
            seen[label] += 1
            if seen[label] <= SUBSET:
                sub.append((label, c))
        todo = sub
    stats = OrderedDict()
    failed = []
    with tempfile.TemporaryDirectory() as work:
        for label, c in sorted(todo, key=lambda t: t[0]):
            s = stats.setdefault(label, {"cases": 0, "matched": 0, "refused": []})
            s["cases"] += 1
            try:
                what, why = run_case(label, c, work, args.netc, netrun, args.verbose)
            except Exception as e:  # noqa: BLE001 - a converter crash is a failure of the case
                what, why = "failed", f"exception {type(e).__name__}: {e}"
            if what == "matched":
                s["matched"] += 1
            elif what == "refused":
                s["refused"].append((c.name, why))
            else:
                failed.append((c.name, why))
    print(f"{'op':24} {'cases':>5} {'matched':>7} {'refused':>7}")
    tot = [0, 0, 0]
    for label, s in stats.items():
        print(f"{label:24} {s['cases']:5} {s['matched']:7} {len(s['refused']):7}")
        tot[0] += s["cases"]
        tot[1] += s["matched"]
        tot[2] += len(s["refused"])
    print(f"{'total':24} {tot[0]:5} {tot[1]:7} {tot[2]:7}   failed: {len(failed)}")
    print("refused:")
    for label, s in stats.items():
        for name, why in s["refused"]:
            print(f"  {name}: {why}")
    for name, why in failed:
        print(f"FAILED {name}: {why}")
    return 1 if failed else 0


TOOLS = None
if __name__ == "__main__":
    sys.exit(main())

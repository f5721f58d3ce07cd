#!/usr/bin/python3
"""test_families.py — every model family of tools/families.py through both converters.

For each family's small representative (torchvision's own classes, random non-trivial weights):
torch2net.py on the module and onnx2net.py on its torch.onnx.export (opset 13); each .net is
run by `netc run` (the interpreter) and compiled at -O0 and -O2 and run by netrun, and every
output must be within max|d|/max|ref| <= 1e-4 of PyTorch's eval output, while the torch2net
.net run on other (seeded random) weights must not be. A family the language cannot express
must be refused by both converters, with the reason its table row names, and nothing written.
Families run on 2 worker processes; one line per family and converter, then the totals.

Run: /usr/bin/python3 test_families.py NETC SRC [FAMILY...]   (exit 77 without torch/onnx)
"""
import os
import shutil
import sys
import tempfile
import time

NETC = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/netc"
SRC = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "../..")
ONLY = sys.argv[3:]
sys.path.insert(0, os.path.join(SRC, "tools"))
WAYS = ("run", "-O0", "-O2")


def job(name, work):
    """In a worker: one family, both converters. [(converter, status, detail, seconds)] with
    status 'ok', 'FAIL' or 'refused'; detail the errors per way or the message."""
    import numpy as np
    import torch
    import families as F
    torch.set_num_threads(1)
    fam = F.BY_NAME[name]
    module, x, refs = F.build(fam)
    rows = []
    # the references must be worth matching: not constant, and the comparison must notice an
    # error of 1e-3 of their range
    for r in refs:
        if not (np.all(np.isfinite(r)) and float(np.std(r)) > 1e-3 * float(np.max(np.abs(r)))):
            return [("-", "FAIL", f"PyTorch's output is degenerate (std {np.std(r):.1e})", 0.0)]
        if F.rel_err(r + 1e-3 * float(np.max(np.abs(r))), r) <= F.TOL:
            return [("-", "FAIL", "the comparison misses a 1e-3 error", 0.0)]
    for conv in F.CONVERTERS:
        t0 = time.perf_counter()
        d = os.path.join(work, f"{name.replace(' ', '_')}.{conv}")
        os.makedirs(d)
        try:
            if fam.refuses:
                try:
                    F.convert(module, x, conv, d, "m", len(refs))
                    rows.append((conv, "FAIL", "converted, but the language cannot express it",
                                 time.perf_counter() - t0))
                    continue
                except F.Refused as e:
                    msg = str(e)
                    want = fam.refuses[F.CONVERTERS.index(conv)]
                    written = [f for f in os.listdir(d) if f.endswith((".net", ".safetensors"))]
                    ok = "cannot convert" in msg and want in msg and not written
                    first = msg.splitlines()[1].strip() if len(msg.splitlines()) > 1 else msg
                    rows.append((conv, "refused" if ok else "FAIL",
                                 first if ok else f"the refusal lacks {want!r} or wrote "
                                 f"{written}: {msg}", time.perf_counter() - t0))
                    continue
            errs, net, _, x_npy, outs = F.check(NETC, module, x, refs, conv, d, "m", ways=WAYS,
                                                jobs=1)
            ok = set(errs) == set(WAYS) and all(e <= F.TOL for e in errs.values())
            detail = "  ".join(f"{w} {errs[w]:.1e}" for w in WAYS if w in errs)
            if conv == F.CONVERTERS[0]:
                # the control: the same .net with netc's seeded random weights must not match,
                # or the check could not tell whether the weights were used at all
                got = F.outputs_of([NETC, "run", net, "--seed", "7"], x_npy, outs,
                                   os.path.join(d, "control"))
                ctl = max(F.rel_err(g, r) for g, r in zip(got, refs))
                ok = ok and ctl > F.TOL
                detail += f"  (other weights {ctl:.0e})"
            rows.append((conv, "ok" if ok else "FAIL", detail, time.perf_counter() - t0))
        except Exception as e:  # noqa: BLE001 — any failure of a converter, netc or netrun
            rows.append((conv, "FAIL", f"{type(e).__name__}: {e}", time.perf_counter() - t0))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return rows


def main():
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print(f"test_families: skipped: {sys.executable} has no torch/torchvision/onnx ({e})")
        return 77
    import concurrent.futures
    import multiprocessing
    import families as F
    names = ONLY or [f.family for f in F.FAMILIES]
    unknown = [n for n in names if n not in F.BY_NAME]
    if unknown:
        print(f"test_families: unknown families {unknown}; known: "
              f"{', '.join(F.BY_NAME)}")
        return 2
    if not os.access(NETC, os.X_OK):
        print(f"test_families: no netc at {NETC}")
        return 1
    started = time.perf_counter()
    work = tempfile.mkdtemp(prefix="netc-families-")
    passed = failed = 0
    try:
        # spawned workers (a forked PyTorch can hang in its thread pools), two of them: the
        # machine's cores; netc compiles with --jobs=1 and netrun runs on 1 thread in each
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            futs = {n: pool.submit(job, n, work) for n in names}
            for n in names:
                try:
                    rows = futs[n].result()
                except Exception as e:  # noqa: BLE001 — a worker that died
                    rows = [("-", "FAIL", f"{type(e).__name__}: {e}", 0.0)]
                for conv, status, detail, secs in rows:
                    good = status in ("ok", "refused")
                    passed += good
                    failed += not good
                    print(f"{'ok  ' if good else 'FAIL'} {n:<17} {conv:<9} "
                          f"{'refused: ' if status == 'refused' else ''}{detail}  ({secs:.1f} s)",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"test_families: {len(names)} families in {time.perf_counter() - started:.0f} s "
          f"(tolerance {F.TOL:g}; ways: netc run, -O0 and -O2 under netrun)")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

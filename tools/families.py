#!/usr/bin/python3
"""families.py — the torchvision model families netc verifies through torch2net and onnx2net.

    families.py --list
    families.py --bench [--families ResNet,VGG] [--rounds 5] [--build build]

FAMILIES is the one table: for each family, a representative at a small input size built from
torchvision's own classes (reduced depth or width where the full model is slow), which
tests/models/test_families.py converts with both converters, compiles at -O0 and -O2, runs and
checks against PyTorch; and the full torchvision model at its standard input size, which
--bench measures. Adding a family is one line there. A family the language cannot express (the
transformers) has `refuses`: what each converter's refusal must say.

Weights are random but not trivial (tools/make_model_fixtures.randomise: random BN affine, BN
running statistics measured on random inputs and perturbed), the input is N(0, 1), seeded per
family. The error is max|d| / max|ref| against PyTorch's eval output, for every output (--bench:
against float64).

--bench, on the full models: torch2net.py on the module and onnx2net.py on its
torch.onnx.export (opset 13), each compiled by netc -O2 and run by netrun, against the module
run in float64 (PyTorch's own float32 error beside it: a family passes within 1e-4, or within
twice PyTorch's error where deep random weights amplify float32 rounding past that); then
the latency at 1 thread of the torch2net .so (netrun --bench) against the same module frozen
(tools/bench.py's torch_frozen: torch.jit.freeze of the trace, then optimize_for_inference),
the two alternating for --rounds rounds (tools/bench.py's round_orders and blocks; the VM's
speed swings within minutes, so only medians of one run are compared). It prints a Markdown
table (the README's families table).
"""
import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections import namedtuple

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402
import make_model_fixtures as mmf  # noqa: E402
import torch2net  # noqa: E402
from nettools import write_npy, write_outputs  # noqa: E402

TOL = 1e-4
OPSET = 13
SEGMENTATION = {"fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large"}


# ---- small representatives, from torchvision's own classes -------------------------------------
class SegOut(nn.Module):
    """A segmentation model's "out" (torchvision's models return a dict)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


def resnet(block, layers, **kw):
    from torchvision.models import resnet as r
    return r.ResNet({"basic": r.BasicBlock, "bottleneck": r.Bottleneck}[block], layers,
                    num_classes=10, **kw)


def efficientnet(arch):
    """EfficientNet (B0 or V2-S) with one block per stage: every kind of block, a sixth of the
    depth."""
    from torchvision.models import efficientnet as e
    kw = {"width_mult": 1.0, "depth_mult": 1.0} if arch.startswith("efficientnet_b") else {}
    setting, last = e._efficientnet_conf(arch, **kw)
    for s in setting:
        s.num_layers = 1
    norm = {} if kw else {"norm_layer": functools.partial(nn.BatchNorm2d, eps=1e-3)}
    return e.EfficientNet(setting, 0.2, last_channel=last, num_classes=10, **norm)


def narrow_classifier(m, hidden=64):
    """AlexNet's or VGG's classifier with `hidden` units instead of 4096 (the same layers: its
    two 4096-wide linears are 90 % of the weights)."""
    lins = [i for i, l in enumerate(m.classifier) if isinstance(l, nn.Linear)]
    sizes = [m.classifier[lins[0]].in_features] + [hidden] * (len(lins) - 1) + [10]
    for k, i in enumerate(lins):
        m.classifier[i] = nn.Linear(sizes[k], sizes[k + 1])
    return m


def vgg():
    """VGG with batch norm, five stages of 16 to 512 channels (the classifier needs 512) at 224
    px, where the 7x7 adaptive pool is exact (ONNX exports no other)."""
    from torchvision.models import vgg as v
    cfg = [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 512, "M"]
    return narrow_classifier(v.VGG(v.make_layers(cfg, batch_norm=True), num_classes=10))


def alexnet():
    from torchvision.models import AlexNet
    return narrow_classifier(AlexNet(num_classes=10))


def seg_resnet(kind):
    """FCN or DeepLabV3 (their real heads) on a dilated ResNet with one bottleneck per stage."""
    from torchvision.models.segmentation import deeplabv3, fcn
    backbone = resnet("bottleneck", [1, 1, 1, 1], replace_stride_with_dilation=[False, True, True])
    build = {"fcn": fcn._fcn_resnet, "deeplabv3": deeplabv3._deeplabv3_resnet}[kind]
    return SegOut(build(backbone, 5, False))


def tv(name, **kw):
    """A torchvision model by its builder's name, random weights (no download)."""
    import torchvision.models as tm
    import torchvision.models.segmentation as seg
    if name in SEGMENTATION:
        extra = {} if name.startswith("lraspp") else {"aux_loss": False}
        return SegOut(getattr(seg, name)(weights=None, weights_backbone=None, **extra, **kw))
    if name in ("googlenet", "inception_v3"):
        kw = {"aux_logits": False, "init_weights": True, **kw}
    return getattr(tm, name)(weights=None, **kw)


def densenet():
    from torchvision.models import densenet as d
    return d.DenseNet(32, (2, 2, 2, 2), 64, num_classes=10)


def convnext():
    """torchvision's ConvNeXt, one block per stage, narrower (24..192 channels)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    widths = [24, 48, 96, 192]
    return ConvNeXt([CNBlockConfig(c, n, 1) for c, n in zip(widths, widths[1:] + [None])],
                    num_classes=10)


def swin():
    from torchvision.models import swin_transformer as s
    return s.SwinTransformer([4, 4], 16, [1, 1], [1, 2], [2, 2], num_classes=10)


def maxvit():
    from torchvision.models import maxvit as m
    return m.MaxVit((64, 64), 16, 2, [16, 32], [1, 1], 8, 0.0, num_classes=10)


def vit():
    from torchvision.models import vision_transformer as v
    return v.VisionTransformer(32, 16, 2, 2, 32, 64, num_classes=10)


# ---- the table ----------------------------------------------------------------------------------
# family: the name in the README; small: the representative (a callable); px: its input size;
# full: the torchvision builder measured by --bench; full_px: its standard input size (the
# crop size of torchvision's weights; 520 for segmentation); refuses: for a family the language
# cannot express, (what torch2net's refusal says, what onnx2net's says)
Family = namedtuple("Family", "family small px full full_px refuses", defaults=[None])

FAMILIES = [
    Family("ResNet", lambda: resnet("basic", [1, 1, 1, 1]), 64, "resnet50", 224),
    Family("ResNeXt", lambda: resnet("bottleneck", [1, 1, 1, 1], groups=32, width_per_group=4),
           64, "resnext50_32x4d", 224),
    Family("Wide ResNet", lambda: resnet("bottleneck", [1, 1, 1, 1], width_per_group=128), 64,
           "wide_resnet50_2", 224),
    Family("DenseNet", densenet, 64, "densenet121", 224),
    Family("SqueezeNet", lambda: tv("squeezenet1_0", num_classes=10), 64, "squeezenet1_1", 224),
    Family("ShuffleNetV2", lambda: tv("shufflenet_v2_x0_5", num_classes=10), 64,
           "shufflenet_v2_x1_0", 224),
    Family("GoogLeNet", lambda: tv("googlenet", num_classes=10), 64, "googlenet", 224),
    Family("Inception v3", lambda: tv("inception_v3", num_classes=10), 75, "inception_v3", 299),
    Family("MobileNetV2", lambda: tv("mobilenet_v2", width_mult=0.5, num_classes=10), 64,
           "mobilenet_v2", 224),
    Family("MobileNetV3", lambda: tv("mobilenet_v3_small", num_classes=10), 64,
           "mobilenet_v3_large", 224),
    Family("MnasNet", lambda: tv("mnasnet0_5", num_classes=10), 64, "mnasnet1_0", 224),
    Family("EfficientNet", lambda: efficientnet("efficientnet_b0"), 64, "efficientnet_b0", 224),
    Family("EfficientNetV2", lambda: efficientnet("efficientnet_v2_s"), 64, "efficientnet_v2_s",
           384),
    Family("RegNet", lambda: tv("regnet_y_400mf", num_classes=10), 64, "regnet_y_400mf", 224),
    Family("VGG", vgg, 224, "vgg16", 224),
    Family("AlexNet", alexnet, 224, "alexnet", 224),
    Family("FCN", lambda: seg_resnet("fcn"), 64, "fcn_resnet50", 520),
    Family("DeepLabV3", lambda: seg_resnet("deeplabv3"), 64, "deeplabv3_resnet50", 520),
    Family("LR-ASPP", lambda: tv("lraspp_mobilenet_v3_large", num_classes=5), 64,
           "lraspp_mobilenet_v3_large", 520),
    Family("ConvNeXt", convnext, 64, "convnext_tiny", 224),
    Family("ViT", vit, 32, "vit_b_16", 224,
           refuses=("module LayerNorm", "Transpose")),
    Family("Swin Transformer", swin, 32, "swin_t", 224,          # windows: a pad of NHWC
           refuses=("module LayerNorm", "Pad of a channels-last view")),
    Family("MaxViT", maxvit, 64, "maxvit_t", 224,
           refuses=("module LayerNorm", "Transpose")),
]
BY_NAME = {f.family: f for f in FAMILIES}


def seed_of(fam):
    return 1234 + zlib.crc32(fam.family.encode()) % 100000


def build(fam, full=False):
    """(module in eval mode with random weights, input, reference outputs) for a family's small
    representative or (full=True) its full model (BN calibrated on 2 inputs instead of 4)."""
    seed = seed_of(fam)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # init_weights / weights=None notices
        module = tv(fam.full) if full else fam.small()
    px = fam.full_px if full else fam.px
    # the full models' statistics are measured, not perturbed: perturbed ones compound over
    # EfficientNetV2-S's 40 blocks into activations of 1e3 and a float32 error of 7e-3 in PyTorch
    # itself (2e-6 measured)
    mmf.randomise(module, [torch.randn(2 if full else 4, 3, px, px, generator=gen)], gen,
                  perturb=not full)
    x = torch.randn(1, 3, px, px, generator=gen)
    with torch.no_grad():
        ys = module(x)
    ys = [y.numpy() for y in (ys if isinstance(ys, (tuple, list)) else [ys])]
    return module, x, ys


# ---- conversion, compilation, runs ---------------------------------------------------------------
class Refused(Exception):
    """A converter refused the model; the message is its report."""


CONVERTERS = ("torch2net", "onnx2net")


def convert(module, x, converter, work, tag, n_outputs=1):
    """Writes work/tag.net and work/tag.safetensors with `converter`; returns (net, weights,
    output names). Raises Refused with the converter's message when it cannot map the model."""
    net, weights = os.path.join(work, tag + ".net"), os.path.join(work, tag + ".safetensors")
    if converter == "torch2net":
        text, tensors, unmapped = torch2net.explain(module, (x,), tag)
        if unmapped:
            raise Refused(torch2net.report(unmapped))
    else:
        import onnx
        import onnx2net
        path = os.path.join(work, tag + ".onnx")
        # not under no_grad: there, PyTorch's MultiheadAttention takes a fused path that the
        # exporter has no ONNX form for (ViT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (x,), path, opset_version=OPSET, input_names=["x"],
                              output_names=[f"y{i}" if n_outputs > 1 else "y"
                                            for i in range(n_outputs)],
                              do_constant_folding=True)
        text, tensors, unmapped = onnx2net.convert(onnx.load(path), tag)
        os.remove(path)
        if unmapped:
            raise Refused(onnx2net.report(unmapped))
    write_outputs(net, text, weights, tensors)
    outs = re.search(r"^output (.*)$", text, re.M).group(1).split(", ")
    return net, weights, outs


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with status {p.returncode}:\n"
                           + "\n".join(p.stderr.strip().splitlines()[-15:]))
    return p


def rel_err(got, ref):
    """max|d| / max|ref| in double; inf for a wrong shape or a non-finite value."""
    if got.shape != ref.shape or not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / max(float(np.max(np.abs(ref))),
                                                                      1e-30)


def compile_so(netc, net, weights, level, so, jobs=None):
    cmd = [netc, net, "--weights", weights, level, "-o", so]
    if jobs:
        cmd.append(f"--jobs={jobs}")
    t0 = time.perf_counter()
    run(cmd)
    return time.perf_counter() - t0


def outputs_of(cmd, x_npy, outs, prefix):
    """Runs `cmd` (netc run ... or netrun SO) on x_npy; the outputs it wrote, in order."""
    paths = [f"{prefix}.{i}.npy" for i in range(len(outs))]
    args = ["--input", x_npy]
    for name, p in zip(outs, paths):
        args += ["--output", f"{name}={p}" if len(outs) > 1 else p]
    run(cmd + args)
    got = [np.load(p) for p in paths]
    for p in paths:
        os.remove(p)
    return got


def check(netc, module, x, refs, converter, work, tag, ways=("run", "-O0", "-O2"), jobs=None,
          threads=1):
    """Converts, compiles and runs one model; {way: error of the worst output} for each way
    ('run': `netc run`, the interpreter; '-O0', '-O2': the compiled .so under netrun)."""
    netrun = os.path.join(os.path.dirname(netc), "netrun")
    net, weights, outs = convert(module, x, converter, work, tag, len(refs))
    if len(outs) != len(refs):
        raise RuntimeError(f"{len(outs)} outputs, PyTorch has {len(refs)}")
    x_npy = os.path.join(work, tag + ".x.npy")
    write_npy(x_npy, x.numpy())
    errs = {}
    for way in ways:
        if way == "run":
            cmd = [netc, "run", net, "--weights", weights]
        else:
            so = os.path.join(work, f"{tag}{way}.so")
            compile_so(netc, net, weights, way, so, jobs)
            cmd = [netrun, so, "--threads", str(threads)]
        got = outputs_of(cmd, x_npy, outs, os.path.join(work, f"{tag}.{way}"))
        errs[way] = max(rel_err(g, r) for g, r in zip(got, refs))
    return errs, net, weights, x_npy, outs


# ---- --bench ------------------------------------------------------------------------------------
def bench_family(args, fam, netc, netrun, work):
    """One row: errors of both converters at -O2, then the alternating latency blocks."""
    torch.set_num_threads(os.cpu_count() or 1)   # building and converting; the blocks set 1
    module, x, refs = build(fam, full=True)
    # the exact result, for what float32 can reach: deep models on random weights amplify
    # rounding (EfficientNetV2-S at 384²: PyTorch's own float32 output is 7e-3 off it)
    exact = reference64(module, x)
    row = {"family": fam.family, "model": fam.full, "px": fam.full_px, "errs": {}, "why": {},
           "torch_err": max(rel_err(r, e) for r, e in zip(refs, exact))}
    so = None
    for conv in CONVERTERS:
        tag = f"{fam.full}.{conv}"
        try:
            errs, net, weights, x_npy, _ = check(netc, module, x, exact, conv, work, tag,
                                                 ways=("-O2",))
            row["errs"][conv] = errs["-O2"]
            if so is None:
                so = os.path.join(work, f"{tag}-O2.so")
                row["latency_from"] = conv
            else:
                os.remove(os.path.join(work, f"{tag}-O2.so"))
            for p in (net, weights):
                os.remove(p)
        except Refused as e:
            # the kinds of node or op the report lists (`module LayerNorm`, `Transpose`)
            kinds = [l.strip().split(":")[0] for l in str(e).splitlines()[1:]
                     if l.startswith("  ")]
            row["why"][conv] = ", ".join(kinds[:6]) + (", ..." if len(kinds) > 6 else "")
        print(f"  {fam.family} ({fam.full}, {fam.full_px} px) {conv}: "
              + (f"rel.err {row['errs'][conv]:.1e}" if conv in row["errs"]
                 else f"refused ({row['why'][conv]})"), flush=True)
    if so is None:
        return row
    frozen = bench.torch_frozen(module, [x])
    # the block size: about --block-s seconds of the slower contender, within [3, --runs]
    t0 = time.perf_counter()
    bench.torch_block(frozen, [x], 1, 1, 1)
    one = (time.perf_counter() - t0) / 2
    runs = max(3, min(args.runs, int(args.block_s / max(one, 1e-6))))
    warmup = 1 if one > 0.2 else 3
    blocks = {"netc": lambda: bench.netc_block(netrun, so, x_npy, 1, runs, warmup),
              "PyTorch": lambda: bench.torch_block(frozen, [x], 1, runs, warmup)}
    meds = {c: [] for c in blocks}
    for order in bench.round_orders(list(blocks), args.rounds):
        for c in order:
            meds[c].append(blocks[c]()[0])
    row["ms"] = {c: float(np.median(v)) for c, v in meds.items()}
    row["runs"] = runs
    print(f"  {fam.family}: netc {row['ms']['netc']:.2f} ms "
          f"[{' '.join(f'{m:.1f}' for m in meds['netc'])}], PyTorch {row['ms']['PyTorch']:.2f} ms "
          f"[{' '.join(f'{m:.1f}' for m in meds['PyTorch'])}] ({runs} runs per block)", flush=True)
    os.remove(so)
    return row


def reference64(module, x):
    """The module's outputs computed in float64 (on a copy), as numpy arrays."""
    import copy
    m = copy.deepcopy(module).double()
    with torch.no_grad():
        ys = m(x.double())
    ys = ys["out"] if isinstance(ys, dict) else ys
    return [y.numpy() for y in (ys if isinstance(ys, (tuple, list)) else [ys])]


def bench_main(args):
    netc = os.path.join(args.build, "netc")
    netrun = os.path.join(args.build, "netrun")
    fams = [BY_NAME[f] for f in args.families.split(",")] if args.families else FAMILIES
    started = time.perf_counter()
    usage0 = bench.cpu_usage()
    print(f"CPU: {bench.cpu_name()} ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}); PyTorch {torch.__version__}; "
          f"{time.strftime('%Y-%m-%d')}", flush=True)
    work = tempfile.mkdtemp(prefix="netc-families-")
    rows = []
    try:
        for fam in fams:
            rows.append(bench_family(args, fam, netc, netrun, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| family | model | input | verified | rel.err torch2net / onnx2net / PyTorch "
          "| netc -O2 ms | PyTorch ms | netc / PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "ms" not in r:
            why = "; ".join(f"{c}: {r['why'][c]}" for c in CONVERTERS if c in r["why"])
            print(f"| {r['family']} | `{r['model']}` | {r['px']}² | refused ({why}) | | | | |")
            continue
        ver = ", ".join(c for c in CONVERTERS if c in r["errs"]) or "none"
        err = " / ".join([f"{r['errs'][c]:.1e}" if c in r["errs"] else "refused"
                          for c in CONVERTERS] + [f"{r['torch_err']:.1e}"])
        ms = r["ms"]
        print(f"| {r['family']} | `{r['model']}` | {r['px']}² | {ver} | {err} | "
              f"{ms['netc']:.1f} | {ms['PyTorch']:.1f} | {ms['netc'] / ms['PyTorch']:.2f} |")
    others = bench.cpu_used_by_others(usage0)
    print(f"\n1 thread; medians of {args.rounds} alternating rounds; total "
          f"{time.perf_counter() - started:.0f} s; other processes used {others:.0f}% of the "
          "CPUs meanwhile" + (" (timings are noisier than usual)" if others > 10 else ""))
    print("rel.err: max|d| / max|ref| of netc -O2 (each converter's .net) and of PyTorch's "
          "float32 eval, against the module run in float64")
    bad = [r["family"] for r in rows
           if any(e > max(TOL, 2 * r["torch_err"]) for e in r["errs"].values())]
    if bad:
        print(f"error above {TOL:g} and above twice PyTorch's own: {', '.join(bad)}")
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="the families, one a line")
    ap.add_argument("--bench", action="store_true", help="measure the full models")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--families", help="comma-separated family names (default: all)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per model")
    ap.add_argument("--runs", type=int, default=20, help="most timed runs per block")
    ap.add_argument("--block-s", type=float, default=1.0,
                    help="about this many seconds per block (fewer runs for slow models)")
    args = ap.parse_args()
    if args.list:
        for f in FAMILIES:
            print(f"{f.family}: {f.full} at {f.full_px} px; small representative at {f.px} px"
                  + (" (refused)" if f.refuses else ""))
        return 0
    if args.bench:
        return bench_main(args)
    ap.error("nothing to do: --list or --bench")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""segment.py — semantic segmentation with torchvision's DeepLabV3, compiled by netc.

    PYTHONPATH=python /usr/bin/python3 examples/segmentation/segment.py --image photo.jpg \
        --state-dict deeplabv3_mobilenet_v3_large-fc3c493d.pth --mask mask.png --overlay overlay.png

Builds torchvision's deeplabv3_mobilenet_v3_large (or --model resnet50), converts it with
tools/torch2net.py at the size of the preprocessed image, compiles it with `netc -O2 --stats`,
runs it from Python with the netc package, and writes the argmax class map as a palette PNG (the
Pascal VOC colours of the 21 classes) at the image's size, and optionally the image blended with
it. It checks netc's logits against PyTorch's (max|d|/max|ref|), times netc and PyTorch eager at
the same thread count, and checks in netc's --stats and final IR that the ASPP head's concat is
eliminated: every branch writes straight into its slice of the concat's output.

Without --state-dict the weights are seeded random, with every BatchNorm's statistics measured on
random data (tools/make_model_fixtures.py's randomise), so the mask shows blobs, not objects.
Without --image the input is a synthetic picture made with numpy.

Exit status: 0 when netc matches PyTorch within --tol and the concat is eliminated; 1 otherwise
(or on bad input); 2 for usage errors.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))

MODELS = ("mobilenet_v3_large", "resnet50")

# torchvision's weights enums: their transforms() (the preprocessing the pretrained weights
# expect) and categories (the 21 Pascal VOC classes); nothing is downloaded
WEIGHTS = {"mobilenet_v3_large": "DeepLabV3_MobileNet_V3_Large_Weights",
           "resnet50": "DeepLabV3_ResNet50_Weights"}
CHECKPOINTS = {"mobilenet_v3_large": "deeplabv3_mobilenet_v3_large-fc3c493d.pth",
               "resnet50": "deeplabv3_resnet50_coco-cd0a2569.pth"}


def log(msg):
    """Progress and notes: stderr."""
    print(f"segment: {msg}", file=sys.stderr, flush=True)


def say(msg):
    """Results: stdout."""
    print(f"segment: {msg}", flush=True)


def voc_palette():
    """The Pascal VOC colour map (256 entries, RGB): class k's colour spreads the bits of k over
    the high bits of R, G and B."""
    pal = np.zeros((256, 3), np.uint8)
    for k in range(256):
        c, r, g, b = k, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[k] = (r, g, b)
    return pal


def synthetic_image(size, seed):
    """A size x size RGB picture: sky and ground gradients, a sun, a house, a tree, some noise."""
    h, w = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    horizon = 0.6 * h
    sky = y < horizon
    img[sky] = np.stack([90 + 80 * y / h, 150 + 60 * y / h, 235 - 20 * y / h], -1)[sky]
    img[~sky] = np.stack([70 + 40 * (y - horizon) / h, 140 - 30 * (y - horizon) / h,
                          60 + 0 * y], -1)[~sky]
    sun = (x - 0.8 * w) ** 2 + (y - 0.2 * h) ** 2 < (0.1 * min(h, w)) ** 2
    img[sun] = (250, 220, 90)
    house = (x > 0.2 * w) & (x < 0.5 * w) & (y > 0.4 * h) & (y < 0.75 * h)
    img[house] = (170, 60, 50)
    roof = ((y <= 0.4 * h) & (y > 0.25 * h)
            & (np.abs(x - 0.35 * w) < (y - 0.25 * h) * w / h))  # a triangle on the house
    img[roof] = (110, 40, 40)
    crown = (x - 0.68 * w) ** 2 + (y - 0.48 * h) ** 2 < (0.09 * min(h, w)) ** 2
    trunk = (np.abs(x - 0.68 * w) < 0.02 * w) & (y > 0.5 * h) & (y < 0.7 * h)
    img[trunk] = (100, 70, 40)
    img[crown] = (40, 110, 40)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def netc_binary():
    """netc, found as the netc package finds it: $NETC_BIN, this checkout's build/netc, the PATH."""
    env = os.environ.get("NETC_BIN")
    if env:
        return env
    p = os.path.join(ROOT, "build", "netc")
    return p if os.access(p, os.X_OK) else shutil.which("netc")


def import_netc():
    try:
        import netc
    except ImportError:  # not on PYTHONPATH: this checkout's python/ (and its build/libnetrt.so.3)
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import netc
    return netc


def build_model(name, state_dict, calib_shape, seed):
    """torchvision's DeepLabV3 (21 classes, no auxiliary head) in eval mode, with the user's
    weights or seeded random ones whose BatchNorm statistics are measured on random data."""
    import torch
    import torchvision.models.segmentation as seg
    from make_model_fixtures import randomise

    torch.manual_seed(seed)
    # weights_backbone=None: torchvision would otherwise download ImageNet weights
    model = getattr(seg, "deeplabv3_" + name)(weights=None, weights_backbone=None, num_classes=21,
                                              aux_loss=False)
    if state_dict:
        sd = torch.load(state_dict, map_location="cpu")
        if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
            sd = sd["model"]  # a checkpoint of torchvision's reference training scripts
        aux = [k for k in sd if k.startswith("aux_classifier.")]
        if aux:
            log(f"{state_dict}: leaving out the auxiliary head ({len(aux)} tensors): "
                "it is used in training only")
            sd = {k: v for k, v in sd.items() if not k.startswith("aux_classifier.")}
        try:
            model.load_state_dict(sd)
        except RuntimeError as e:
            why = "\n".join(line[:200] for line in str(e).splitlines()[:4])
            other = MODELS[1] if name == MODELS[0] else MODELS[0]
            raise SystemExit(f"segment: {state_dict} is not a deeplabv3_{name} state dict "
                             f"(--model {other}?): {why}")
        log(f"weights: {state_dict}")
    else:
        gen = torch.Generator().manual_seed(seed + 1)
        # two images: BatchNorm in train mode needs more than one value per channel, and the
        # ASPP pooling branch's is 1x1
        randomise(model, [torch.randn((2,) + tuple(calib_shape[1:]), generator=gen)], gen)
        log(f"weights: seeded random (seed {seed}), BatchNorm statistics measured on random "
            "data: no pretrained weights given (--state-dict FILE), so the mask shows no objects")
    return model.eval()


def check_concat(stats, ir, net_text):
    """Whether netc eliminated every concat of the model (the ASPP head's): from the concat-elim
    line of --stats and the final IR (the last dump of --print-ir-after=all), where each concat
    input must be a slice of the concat's output. Returns (ok, message)."""
    m = re.search(r"^concat-elim: (\d+) concat inputs? written in place \((\d+) concats?\), "
                  r"(\d+) still copied", stats, re.M)
    if not m:
        return False, "no concat-elim line in netc --stats: the concat is copied"
    slices, concats, copied = (int(v) for v in m.groups())
    in_net = len(re.findall(r"^\w+ = concat\(", net_text, re.M))
    final = ir.split("; IR after ")[-1] if "; IR after " in ir else ""
    # the IR names a fused tensor after its producer (the conv, not the relu after it)
    nodes = re.findall(r"^%(\w+): (\[[^\]]*\]) = concat\(([^)]*)\)(.*)$", final, re.M)
    if not in_net or len(nodes) != in_net:
        return False, f"{in_net} concat(s) in the converted model, {len(nodes)} in netc's final IR"
    bad, ninputs = [], 0
    for name, _, args, rest in nodes:
        inputs = re.findall(r"%(\w+)", args)
        ninputs += len(inputs)
        if "[inputs written in place]" not in rest:
            bad.append(f"{name} is a copy")
        for a in inputs:
            if not re.search(rf"^%{a}: .*\[slice of %{name} at \d+\]", final, re.M):
                bad.append(f"{name}'s input {a} is copied")
    if copied or bad or slices != ninputs or concats != len(nodes):
        why = "; ".join(bad) or f"{copied} concat input(s) still copied"
        return False, (f"concat-elim: {slices} of {ninputs} concat inputs written in place, "
                       f"{copied} copied: {why}")
    what = (f"the ASPP concat %{nodes[0][0]} {nodes[0][1]}" if len(nodes) == 1 else
            f"{len(nodes)} concats ({', '.join('%' + n[0] for n in nodes)})")
    return True, (f"concat-elim: {what}: all {slices} inputs written in place, 0 copied "
                  f"(netc --stats: {m.group(0)[len('concat-elim: '):]})")


def compile_model(net, weights, so, flags):
    exe = netc_binary()
    if not exe:
        raise SystemExit("segment: netc not found (build it: cmake --build build, or set NETC_BIN)")
    cmd = [exe, net, "--weights", weights, "-O2", "--stats", "--print-ir-after=all", "-o", so]
    cmd += flags
    log("compiling: " + shlex.join(cmd))
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"segment: netc failed (exit {r.returncode})")
    ir_start = r.stderr.find("; IR after ")
    lines = r.stderr.splitlines()
    stats = "\n".join(l for l in lines if re.match(r"^[a-z0-9-]+: ", l) and not l.startswith("%"))
    ir = r.stderr[ir_start:] if ir_start >= 0 else ""
    return stats, ir, dt


def median_ms(ts):
    return 1000 * float(np.median(ts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", help="a PNG or JPEG (default: a synthetic picture)")
    ap.add_argument("--model", choices=MODELS, default=MODELS[0],
                    help="the backbone of torchvision's deeplabv3_* (default %(default)s)")
    ap.add_argument("--state-dict", help="a torchvision checkpoint of that model (.pth): "
                    f"{CHECKPOINTS[MODELS[0]]} or {CHECKPOINTS[MODELS[1]]} "
                    "(default: random weights)")
    ap.add_argument("--size", type=int, default=520,
                    help="the image's shorter side is resized to this, as torchvision's "
                    "weights.transforms() do (default %(default)s); the synthetic image is "
                    "SIZE x SIZE")
    ap.add_argument("--mask", default="mask.png", help="the colour mask to write (%(default)s)")
    ap.add_argument("--overlay", help="also write the image blended with the mask here")
    ap.add_argument("--logits", help="also save netc's logits here (.npy, [1, 21, H, W])")
    ap.add_argument("--workdir", help="keep the .net, .safetensors and .so here (default: a "
                    "temporary directory)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads of netc's pool and of PyTorch (default: every CPU: %(default)s)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs of each (%(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="random weights and synthetic image")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="largest accepted max|d|/max|ref| of the logits (%(default)s)")
    ap.add_argument("--netc-flag", action="append", default=[],
                    help="one more netc argument, e.g. --netc-flag=--cpu=x86-64-v3 (repeatable)")
    args = ap.parse_args(argv)
    if args.size < 16 or args.threads < 1 or args.runs < 1:
        ap.error("--size must be >= 16, --threads and --runs >= 1")

    import torch
    from PIL import Image
    import torchvision.models.segmentation as seg
    import torch2net
    from nettools import write_outputs
    netc = import_netc()
    torch.set_num_threads(args.threads)

    weights_enum = getattr(seg, WEIGHTS[args.model]).COCO_WITH_VOC_LABELS_V1
    classes = ["background"] + weights_enum.meta["categories"][1:]

    # ---- the image, preprocessed by the pretrained weights' own transforms() at --size
    if args.image:
        try:
            img = Image.open(args.image).convert("RGB")
        except OSError as e:
            raise SystemExit(f"segment: cannot read {args.image}: {e}")
        what = f"{args.image} ({img.width}x{img.height})"
    else:
        img = Image.fromarray(synthetic_image((args.size, args.size), args.seed))
        what = f"a synthetic {args.size}x{args.size} picture (seed {args.seed})"
    x = weights_enum.transforms(resize_size=args.size)(img).unsqueeze(0).contiguous()
    shape = tuple(x.shape)
    log(f"image: {what}, resized (shorter side {args.size}) and normalised: input "
        f"{'x'.join(map(str, shape))}")

    model = build_model(args.model, args.state_dict, shape, args.seed)
    with torch.inference_mode():
        ref = model(x)["out"].numpy()

    work = args.workdir or tempfile.mkdtemp(prefix="netc-seg-")
    os.makedirs(work, exist_ok=True)
    try:
        stem = os.path.join(work, f"deeplabv3_{args.model}")
        net, weights, so = stem + ".net", stem + ".safetensors", stem + ".so"
        t = time.perf_counter()
        text, tensors, unmapped = torch2net.convert(model, x, f"deeplabv3_{args.model}")
        if unmapped:
            raise SystemExit(f"segment: torch2net could not map {unmapped}")
        write_outputs(net, text, weights, tensors)
        log(f"converted by tools/torch2net.py in {time.perf_counter() - t:.2f} s: "
            f"{text.count(chr(10) + 'output')} output, {len(tensors)} weight tensors")
        stats, ir, dt = compile_model(net, weights, so, args.netc_flag)
        log(f"compiled in {dt:.2f} s")
        for line in stats.splitlines():
            if line.startswith(("fuse-act", "concat-elim", "totals")):
                log("  " + line)
        concat_ok, concat_msg = check_concat(stats, ir, text)

        m = netc.load(so, threads=args.threads)
        xn = x.numpy()
        out = m(xn)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    # ---- netc against PyTorch
    d = float(np.abs(out - ref).max())
    err = d / max(float(np.abs(ref).max()), 1e-12)
    cls = out[0].argmax(0).astype(np.uint8)
    ref_cls = ref[0].argmax(0)
    agree = int((cls == ref_cls).sum())
    # where PyTorch's two best classes are more than 2 max|d| apart, netc's argmax cannot differ
    top2 = np.sort(ref[0], axis=0)[-2:]
    close = int((top2[1] - top2[0] <= 2 * d).sum())
    say(f"netc vs PyTorch: max|d|/max|ref| = {err:.2e} (max|d| {d:.2e}); argmax "
        f"agrees on {agree} of {cls.size} pixels ({close} with PyTorch's top two classes "
        f"within 2 max|d|)")
    say(concat_msg)

    # ---- latency at the same thread count, alternating so that both see the same machine (a
    # busy one slows PyTorch most: its OpenMP threads spin-wait between ops)
    from bench import cpu_usage, cpu_used_by_others
    tn, tt = [], []
    usage = cpu_usage()
    with torch.inference_mode():
        for _ in range(2):
            m(xn)
            model(x)
        for _ in range(args.runs):
            t = time.perf_counter()
            m(xn)
            tn.append(time.perf_counter() - t)
            t = time.perf_counter()
            model(x)
            tt.append(time.perf_counter() - t)
    others = cpu_used_by_others(usage)
    m.close()
    a, b = median_ms(tn), median_ms(tt)
    say(f"latency at {args.threads} thread{'s' if args.threads > 1 else ''} "
        f"(median of {args.runs}): netc {a:.2f} ms, PyTorch eager {b:.2f} ms ({b / a:.1f}x); "
        f"other processes took {others:.0f} % of the CPUs meanwhile")

    # ---- the mask (palette PNG: the pixel values are the class indices) and the overlay
    pal = voc_palette()
    mask = Image.fromarray(cls, "P")
    mask.putpalette(pal.reshape(-1).tolist())
    if mask.size != img.size:
        mask = mask.resize(img.size, Image.NEAREST)
    mask.save(args.mask)
    counts = np.bincount(np.asarray(mask).reshape(-1), minlength=len(classes))
    top = [f"{classes[k]} {100 * counts[k] / counts.sum():.1f} %"
           for k in np.argsort(-counts) if counts[k]][:6]
    say(f"wrote {args.mask} ({mask.width}x{mask.height}, VOC colours): {', '.join(top)}")
    if args.overlay:
        Image.blend(img, mask.convert("RGB"), 0.5).save(args.overlay)
        say(f"wrote {args.overlay}")
    if args.logits:
        np.save(args.logits, out)

    ok = err <= args.tol and concat_ok
    if err > args.tol:
        log(f"error: netc differs from PyTorch by {err:.2e} > --tol {args.tol:g}")
    if not concat_ok:
        log("error: the ASPP concat is not eliminated")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

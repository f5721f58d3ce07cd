#!/usr/bin/python3
"""make_model_fixtures.py — PyTorch reference outputs of the example models (tests/cli/models.sh).

    make_model_fixtures.py OUTDIR [--models resnet18,aspp,...]

For each model: OUTDIR/<model>.safetensors (weights under the names examples/<model>.net
expects), OUTDIR/<model>.input.npy (or .input_<name>.npy per input when there are several) and
OUTDIR/<model>.expected.npy (or .expected_<name>.npy per output), computed by PyTorch in eval
mode in float32. tv_* (torchvision models) and t2n_zoo (a module spelling ops many ways) are
converted by tools/torch2net.py; their .net is written to OUTDIR too (OUTDIR/tv_resnet18.net),
the others live in examples/.

Weights are random but not trivial: seeded init, then every BatchNorm gets a random affine and
running statistics measured on random data and then perturbed, so no BN is an identity and the
activations keep a sane scale through deep networks.

State-dict name mapping (PyTorch -> .net), per model:
  lenet, aspp, aspp_sep, activations, two_io: identity (the modules below are written with the
      .net files' binding names).
  resnet18, resnet50 (torchvision): each numeric path segment is joined to the one before it by
      '_', since a .net binding cannot be named '0':
      layer1.0.conv1.weight -> layer1_0.conv1.weight,
      layer2.0.downsample.1.running_var -> layer2_0.downsample_1.running_var.
  mobilenet_v2 (torchvision): Sequential indices become roles (see examples/mobilenet_v2.net):
      features.0.0 -> features_0.conv, features.0.1 -> features_0.bn (and features.18);
      features.1.conv.{0.0, 0.1, 1, 2} -> features_1.{dw.conv, dw.bn, project.conv, project.bn};
      features.K.conv.{0.0, 0.1, 1.0, 1.1, 2, 3} ->
          features_K.{expand.conv, expand.bn, dw.conv, dw.bn, project.conv, project.bn};
      classifier.1 -> classifier.
  tv_*, t2n_zoo: torch2net's rule: module path with '.' -> '_' as the binding (layer1_0_conv1.weight).
Every `num_batches_tracked` is dropped.
"""
import argparse
import os
import re
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nettools import write_npy, write_safetensors  # noqa: E402
import torch2net  # noqa: E402


# ---- modules mirroring examples/*.net, binding for binding ------------------------------------
class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CBR(nn.Module):
    """aspp.net's `cbr`: conv (bias-free, padding = (k / 2) * rate) -> BN -> ReLU."""

    def __init__(self, cin, cout, kernel, rate=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=(kernel // 2) * rate, dilation=rate,
                              bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class SepCBR(nn.Module):
    """aspp_sep.net's `sep_cbr`: 1x3 (dilation [1, d]) -> 3x1 (dilation [d, 1]) -> BN -> ReLU."""

    def __init__(self, cin, cout, rate):
        super().__init__()
        self.conv_w = nn.Conv2d(cin, cout, (1, 3), padding=(0, rate), dilation=(1, rate),
                                bias=False)
        self.conv_h = nn.Conv2d(cout, cout, (3, 1), padding=(rate, 0), dilation=(rate, 1),
                                bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv_h(self.conv_w(x))))


RATES = (4, 8, 12, 16, 20, 24)


class ASPP(nn.Module):
    def __init__(self, separable=False, cin=256, c=256, size=33):
        super().__init__()
        self.size = size
        self.branch1 = CBR(cin, c, 1)
        for k, r in enumerate(RATES, start=2):
            setattr(self, f"branch{k}", SepCBR(cin, c, r) if separable else CBR(cin, c, 3, r))
        self.branch8 = CBR(cin, c, 1)
        self.fused = CBR(8 * c, c, 1)

    def forward(self, x):
        outs = [getattr(self, f"branch{k}")(x) for k in range(1, 8)]
        pooled = F.adaptive_avg_pool2d(x, 1)
        up = F.interpolate(self.branch8(pooled), size=(self.size, self.size), mode="bilinear",
                           align_corners=True)
        return self.fused(torch.cat(outs + [up], dim=1))


class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.prelu_1 = nn.PReLU()
        self.prelu_c = nn.PReLU(4)

    def forward(self, x):
        acts = [F.relu(x), F.relu6(x), F.leaky_relu(x), F.leaky_relu(x, 0.2), self.prelu_1(x),
                self.prelu_c(x), torch.clamp(x, min=-0.5), torch.clamp(x, max=0.75),
                torch.clamp(x, -1.0, 2.5), torch.sigmoid(x), torch.tanh(x), F.silu(x),
                F.hardswish(x), F.hardsigmoid(x), F.gelu(x), F.gelu(x, approximate="tanh"),
                F.elu(x), F.elu(x, alpha=0.5), F.softmax(x, dim=1)]
        pools = [F.max_pool2d(x, 2, stride=3, padding=1, ceil_mode=True),
                 F.max_pool2d(x, 3, stride=2, padding=1, dilation=2),
                 F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                              count_include_pad=False),
                 F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
                 F.avg_pool2d(x, (2, 3), stride=(2, 1)),
                 F.adaptive_avg_pool2d(x, (3, 4)),
                 F.adaptive_avg_pool2d(x, 1)]
        return torch.cat(acts, dim=1), torch.cat([torch.flatten(p, 1) for p in pools], dim=1)


class TwoIO(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(11, 4, 1)

    def forward(self, image, context):
        gated = F.relu(self.stem(image)) * torch.sigmoid(context)
        return self.head(torch.cat([gated, image], dim=1)), gated


class Torch2NetZoo(nn.Module):
    """Not an example: a module written the many ways PyTorch code spells the ops, for
    tools/torch2net.py to map (functional and module forms, x.size() arithmetic, the
    view-transpose-view channel shuffle, chunk, slicing, shared modules, two outputs)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.convr = nn.Conv2d(16, 16, 3, padding=1, padding_mode="reflect", bias=False)
        self.bn_plain = nn.BatchNorm2d(16, affine=False)
        self.prelu = nn.PReLU(16)
        self.shuffle = nn.ChannelShuffle(4)
        self.leaky = nn.LeakyReLU(0.1)
        self.shared = nn.Conv2d(16, 16, 1)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.deconv = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.pool = nn.AdaptiveAvgPool2d((3, 3))
        self.fc = nn.Linear(72 + 8, 10)
        self.bn1d = nn.BatchNorm1d(10)
        self.gelu = nn.GELU(approximate="tanh")
        self.elu = nn.ELU(0.7)
        self.hardtanh = nn.Hardtanh(-2.0, 2.0)
        self.act = nn.Hardswish()
        self.softmax = nn.Softmax(dim=1)
        self.drop = nn.Dropout(0.3)
        self.id = nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        y = self.prelu(self.bn_plain(self.convr(y)))
        b, c, h, w = y.size()
        s = y.view(b, 4, c // 4, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
        z = s + self.shuffle(y) * torch.sigmoid(torch.mean(y, dim=(2, 3), keepdim=True))
        lo, hi = z.chunk(2, dim=1)
        t = torch.cat([F.hardtanh(lo, -1.0, 1.0), self.leaky(hi)], 1)
        t = self.shared(F.silu(self.shared(t)))
        p = F.pad(t, (1, 2, 0, 1))[:, :, :12, :]
        p = torch.narrow(p, 3, 1, 12)
        q = F.interpolate(self.dw(p), scale_factor=2, mode="bilinear", align_corners=False)
        r = self.up(F.max_pool2d(p, 2))
        u = (q - r) / torch.sigmoid(r).clamp(min=0.25)
        u += self.id(F.relu6(r))
        v = self.deconv(u)
        v = F.avg_pool2d(v, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        feat = torch.cat([self.pool(v).view(v.size(0), -1), torch.mean(v, dim=[2, 3])], dim=1)
        logits = self.drop(self.softmax(self.elu(self.gelu(self.bn1d(self.fc(feat))))))
        side = self.hardtanh(F.interpolate(self.act(v), size=(10, 10), mode="bilinear",
                                           align_corners=True))
        side = side.tanh() - F.hardsigmoid(side) + F.gelu(side).relu()
        return logits, side


# ---- name mappings ----------------------------------------------------------------------------
def join_numeric(name):
    """layer2.0.downsample.1.weight -> layer2_0.downsample_1.weight"""
    return re.sub(r"\.(\d+)(?=\.|$)", r"_\1", name)


def mobilenet_v2_name(name):
    m = re.match(r"features\.(\d+)\.conv\.(.*)$", name)
    if m:
        k, rest = int(m.group(1)), m.group(2)
        roles = ({"0.0": "dw.conv", "0.1": "dw.bn", "1": "project.conv", "2": "project.bn"}
                 if k == 1 else
                 {"0.0": "expand.conv", "0.1": "expand.bn", "1.0": "dw.conv", "1.1": "dw.bn",
                  "2": "project.conv", "3": "project.bn"})
        layer, param = rest.rsplit(".", 1)
        return f"features_{k}.{roles[layer]}.{param}"
    m = re.match(r"features\.(\d+)\.([01])\.(\w+)$", name)
    if m:
        return f"features_{m.group(1)}.{'conv' if m.group(2) == '0' else 'bn'}.{m.group(3)}"
    m = re.match(r"classifier\.1\.(\w+)$", name)
    if m:
        return f"classifier.{m.group(1)}"
    raise KeyError(f"mobilenet_v2: no .net name for {name}")


def renamed_state_dict(module, rename):
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[rename(k)] = v.detach().to(torch.float32).numpy().copy()
    return out


# ---- random but non-trivial weights -----------------------------------------------------------
def randomise(module, calib_inputs, gen, perturb=True):
    """Random BN and LayerNorm affines, layer scales, PReLU slopes; BN running statistics
    measured on `calib_inputs` (cumulative average, train mode), then (perturb) perturbed so that
    BN does not normalise exactly."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.5)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.05)
            if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
        for name, p in module.named_parameters():
            if name.endswith("layer_scale"):     # ConvNeXt's, 1e-6 at initialisation
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
        for bn in bns:
            if bn.affine:
                bn.weight.copy_(0.5 + torch.rand(bn.num_features, generator=gen))
                bn.bias.copy_(torch.randn(bn.num_features, generator=gen) * 0.2)
            bn.reset_running_stats()
            bn.momentum = None
        if bns:
            module.train()
            module(*calib_inputs)
            for bn in bns if perturb else ():
                std = bn.running_var.sqrt()
                bn.running_mean.add_(torch.randn(bn.num_features, generator=gen) * 0.1 * std)
                bn.running_var.mul_(0.7 + 0.6 * torch.rand(bn.num_features, generator=gen))
                bn.momentum = 0.1
    module.eval()


# ---- the models -------------------------------------------------------------------------------
def tv(name):
    import torchvision.models as tvm
    return getattr(tvm, name)()


# name: (constructor, input names and shapes, input scale, state-dict rename, torch2net?)
MODELS = {
    "lenet": (LeNet, [("x", (1, 1, 32, 32))], 1.0, None, False),
    "resnet18": (lambda: tv("resnet18"), [("x", (1, 3, 224, 224))], 1.0, join_numeric, False),
    "resnet50": (lambda: tv("resnet50"), [("x", (1, 3, 224, 224))], 1.0, join_numeric, False),
    "mobilenet_v2": (lambda: tv("mobilenet_v2"), [("x", (1, 3, 224, 224))], 1.0,
                     mobilenet_v2_name, False),
    "aspp": (lambda: ASPP(separable=False), [("x", (1, 256, 33, 33))], 1.0, None, False),
    "aspp_sep": (lambda: ASPP(separable=True), [("x", (1, 256, 33, 33))], 1.0, None, False),
    "activations": (Activations, [("x", (1, 4, 10, 10))], 3.0, None, False),
    "two_io": (TwoIO, [("image", (1, 3, 16, 16)), ("context", (1, 8, 1, 1))], 2.0, None, False),
    "tv_resnet18": (lambda: tv("resnet18"), [("x", (1, 3, 224, 224))], 1.0, None, True),
    "tv_mobilenet_v2": (lambda: tv("mobilenet_v2"), [("x", (1, 3, 224, 224))], 1.0, None, True),
    "t2n_zoo": (Torch2NetZoo, [("x", (1, 8, 12, 12))], 1.5, None, True),
}
DEFAULT_MODELS = ["lenet", "resnet18", "resnet50", "mobilenet_v2", "aspp", "aspp_sep",
                  "activations", "two_io", "tv_resnet18", "tv_mobilenet_v2", "t2n_zoo"]
OUTPUT_NAMES = {"activations": ["acts", "pools"], "two_io": ["head", "gated"]}


def make(name, outdir, seed):
    ctor, inputs, scale, rename, via_torch2net = MODELS[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    module = ctor()
    calib = [torch.randn((4,) + shape[1:], generator=gen) * scale for _, shape in inputs]
    randomise(module, calib, gen)
    xs = [torch.randn(shape, generator=gen) * scale for _, shape in inputs]
    with torch.no_grad():
        ys = module(*xs)
    ys = list(ys) if isinstance(ys, (tuple, list)) else [ys]

    if via_torch2net:
        text, tensors, unmapped = torch2net.convert(module, tuple(xs), name)
        if unmapped:
            raise SystemExit(f"{name}: torch2net could not map {unmapped}")
        with open(os.path.join(outdir, name + ".net"), "w") as f:
            f.write(text)
        # torch2net names the outputs after the traced nodes: read them back from the text
        out_names = re.search(r"^output (.*)$", text, re.M).group(1).split(", ")
    else:
        tensors = renamed_state_dict(module, rename or (lambda k: k))
        out_names = OUTPUT_NAMES.get(name, [None])
    write_safetensors(os.path.join(outdir, name + ".safetensors"), tensors)
    for (iname, _), x in zip(inputs, xs):
        suffix = ".input.npy" if len(xs) == 1 else f".input_{iname}.npy"
        write_npy(os.path.join(outdir, name + suffix), x.numpy())
    for oname, y in zip(out_names, ys):
        suffix = ".expected.npy" if len(ys) == 1 else f".expected_{oname}.npy"
        write_npy(os.path.join(outdir, name + suffix), y.numpy())
    return [tuple(y.shape) for y in ys]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--list", action="store_true", help="print the default model list and exit")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help=f"comma-separated, from: {', '.join(MODELS)}")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    if args.list:
        print(",".join(DEFAULT_MODELS))
        return 0
    if not args.outdir:
        ap.error("OUTDIR is required")
    os.makedirs(args.outdir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in (m for m in args.models.split(",") if m):
        if name not in MODELS:
            raise SystemExit(f"make_model_fixtures: unknown model {name!r} "
                             f"(known: {', '.join(MODELS)})")
        shapes = make(name, args.outdir, args.seed + zlib.crc32(name.encode()) % 100000)
        print(f"{name}: outputs {shapes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

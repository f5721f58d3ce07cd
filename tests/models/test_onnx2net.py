#!/usr/bin/python3
"""test_onnx2net.py — tools/onnx2net.py end to end: PyTorch modules and torchvision models
exported with torch.onnx.export (opsets 11 to 17), converted, then run by `netc run` (the
interpreter) and compiled at -O0 and -O2 (`netrun`), each within 1e-4 of PyTorch
(max|d| / max|ref|); external data; naming; --input-shape; and refusals (one message per
unsupported op with its count and first node, exit 1, no file written).
Run: /usr/bin/python3 test_onnx2net.py NETC SRC"""
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

NETC = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 2 else "netc"
SRC = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../..")
TOOLS = os.path.join(os.path.abspath(SRC), "tools")
NETRUN = os.path.join(os.path.dirname(NETC), "netrun")
sys.path.insert(0, TOOLS)
import onnx2net  # noqa: E402
from nettools import write_npy  # noqa: E402
from families import SegOut as Out  # noqa: E402  (a segmentation model's "out")

TOL = 1e-4


def export(module, shape, path, opset, fold=True):
    torch.manual_seed(0)
    module.eval()
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, x, path, opset_version=opset, input_names=["x"],
                          output_names=["y"], do_constant_folding=fold)
    with torch.no_grad():
        y = module(x)
    return x.numpy(), (y.numpy() if torch.is_tensor(y) else [t.numpy() for t in y])


def run_tool(*args):
    return subprocess.run([sys.executable, os.path.join(TOOLS, "onnx2net.py"), *args],
                          capture_output=True, text=True)


class Blocks(nn.Module):
    """Most mapped ops in one graph: asymmetric padding, grouped and dilated convs, a transposed
    conv, BN, each activation, pools, a split, broadcasts, a resize, a mean and a linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16)
        self.prelu = nn.PReLU(16)
        self.up = nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1)
        self.se = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(16, 10)
        self.drop = nn.Dropout(0.2)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        x = F.pad(x, (0, 1, 0, 1))
        x = F.relu6(self.bn(self.stem(x)))
        x = self.prelu(self.dw(x))
        a, b = torch.split(x, 8, dim=1)
        a = F.hardswish(a) + F.silu(b)
        b = F.gelu(b) * torch.sigmoid(a)
        u = self.up(F.leaky_relu(a, 0.1))
        u = F.max_pool2d(u, 3, stride=2, padding=1, ceil_mode=True)
        v = F.avg_pool2d(F.elu(b), 3, stride=1, padding=1)
        y = torch.cat([u[:, :, :v.shape[2], :v.shape[3]], v], dim=1)
        y = y - F.hardsigmoid(y)
        up = F.interpolate(y, scale_factor=2, mode="nearest")
        y = y + up[:, :, 1:y.shape[2] + 1, 2:y.shape[3] + 2]
        g = torch.tanh(self.se(y.mean((2, 3), keepdim=True)))
        y = torch.clamp(y * g, -2.0, 3.0) / (torch.sigmoid(g) + torch.sigmoid(g * g))
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.softmax(y, dim=1)
        return self.fc(self.drop(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)))


class Seg(nn.Module):
    """A DeepLabV3-like head: a dilated backbone, torchvision's ASPP (whose pooling branch is
    resized to a size computed by a shape subgraph), and a bilinear resize to the input size."""

    def __init__(self):
        super().__init__()
        from torchvision.models.segmentation.deeplabv3 import ASPP
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
                                  nn.ReLU(), nn.Conv2d(16, 32, 3, padding=2, dilation=2),
                                  nn.ReLU())
        self.aspp = ASPP(32, [2, 4, 6], out_channels=16)
        self.cls = nn.Conv2d(16, 5, 1)

    def forward(self, x):
        y = self.cls(self.aspp(self.body(x)))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ViewLinear(nn.Module):
    """x.view(x.size(0), -1): a Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraph."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        y = F.relu(self.conv(x))
        return self.fc(y.view(y.size(0), -1))


class Unsupported(nn.Module):
    def forward(self, x):
        a = F.selu(x)
        return 2 / (a + F.selu(a)).permute(0, 2, 1, 3)


def compare(got, ref):
    if got.shape != ref.shape:
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / max(float(np.max(np.abs(ref))),
                                                                      1e-30)


class _Converted(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, module, shape, opset=13, name="m", external=False, fold=True):
        onx = os.path.join(self.dir, name + ".onnx")
        x, ref = export(module, shape, onx, opset, fold)
        if external:
            # weights in a side file next to the model, converted from another directory
            m = onnx.load(onx)
            sub = os.path.join(self.dir, "ext")
            os.makedirs(sub)
            onx = os.path.join(sub, name + ".onnx")
            onnx.save_model(m, onx, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".weights", size_threshold=0)
            self.assertTrue(os.path.exists(os.path.join(sub, name + ".weights")))
        return self.check_onnx(onx, x, ref, f"{name} (opset {opset})", name)

    def check_onnx(self, onx, x, ref, label, name="m"):
        """Converts onx, runs it on x by netc run, -O0 and -O2; each within TOL of ref."""
        net = os.path.join(self.dir, name + ".net")
        st = os.path.join(self.dir, name + ".safetensors")
        r = run_tool(onx, "-o", net, "--weights", st)
        self.assertEqual(r.returncode, 0, r.stderr)
        xin = os.path.join(self.dir, "x.npy")
        write_npy(xin, x)
        errs = {}
        runs = [("interp", [NETC, "run", net, "--weights", st])]
        for opt in ("-O0", "-O2"):
            so = os.path.join(self.dir, f"{name}{opt}.so")
            c = subprocess.run([NETC, net, "--weights", st, opt, "-o", so], capture_output=True,
                               text=True)
            self.assertEqual(c.returncode, 0, c.stderr)
            runs.append((opt, [NETRUN, so]))
        for how, cmd in runs:
            out = os.path.join(self.dir, f"y{how}.npy")
            r = subprocess.run(cmd + ["--input", xin, "--output", out], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            errs[how] = compare(np.load(out), ref)
        print(f"  {label}: " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()),
              file=sys.stderr)
        for how, e in errs.items():
            self.assertLessEqual(e, TOL, f"{name} {how}")
        with open(net) as f:
            return f.read()


class Models(_Converted):
    def test_blocks_each_opset(self):
        for opset in (11, 13, 17):
            self.check(Blocks(), (1, 3, 16, 16), opset, f"blocks{opset}")

    def test_resnet18(self):
        import torchvision
        text = self.check(torchvision.models.resnet18(), (1, 3, 64, 64), 13, "resnet18",
                          external=True)
        # bindings are named after the modules PyTorch's scopes name
        self.assertIn("layer1_0_conv1 = conv2d(", text)
        self.assertIn("y = linear(Flatten, 1000)", text)    # named after the graph output

    def test_mobilenet_v2(self):
        import torchvision
        self.check(torchvision.models.mobilenet_v2(), (1, 3, 64, 64), 12, "mobilenet_v2")

    def test_squeezenet(self):
        import torchvision
        self.check(torchvision.models.squeezenet1_1(), (1, 3, 64, 64), 11, "squeezenet")

    def test_shufflenet_v2(self):
        import torchvision
        text = self.check(torchvision.models.shufflenet_v2_x0_5(), (1, 3, 64, 64), 15,
                          "shufflenet")
        self.assertIn("channel_shuffle(", text)

    def test_deeplab_head(self):
        self.check(Seg(), (1, 3, 32, 32), 16, "seg")

    def test_shape_subgraph_folded(self):
        # (without the exporter's constant folding, as other exporters and dynamic models have it)
        self.check(ViewLinear(), (1, 3, 8, 8), 11, "view", fold=False)
        m = onnx.load(os.path.join(self.dir, "view.onnx"))
        ops = {n.op_type for n in m.graph.node}
        self.assertTrue({"Unsqueeze", "Concat", "Reshape"} <= ops, ops)
        # and the whole Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain, built by hand
        h = onnx.helper
        i64 = onnx.TensorProto.INT64
        w = np.random.RandomState(1).randn(3, 16).astype(np.float32)
        nodes = [h.make_node("Relu", ["x"], ["r"], name="/act/Relu"),
                 h.make_node("Shape", ["r"], ["s"], name="/Shape"),
                 h.make_node("Constant", [], ["zero"], name="/Constant",
                             value=h.make_tensor("z", i64, [], [0])),
                 h.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
                 h.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="/Unsqueeze"),
                 h.make_node("Concat", ["n1", "minus1"], ["shape"], name="/Concat", axis=0),
                 h.make_node("Reshape", ["r", "shape"], ["flat"], name="/Reshape"),
                 h.make_node("Gemm", ["flat", "w"], ["y"], name="/fc/Gemm", transB=1)]
        g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                [1, 4, 2, 2])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
                         [onnx.numpy_helper.from_array(w, "w"),
                          onnx.numpy_helper.from_array(np.array([0], np.int64), "ax"),
                          onnx.numpy_helper.from_array(np.array([-1], np.int64), "minus1")])
        text, tensors, unmapped = onnx2net.convert(
            h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), "chain")
        self.assertEqual(unmapped, [])
        self.assertIn("Reshape = flatten(act)", text)
        self.assertIn("y = linear(Reshape, 3, bias=false)", text)

    def test_matmul_add_is_linear(self):
        h = onnx.helper
        w = np.random.RandomState(0).randn(6, 4).astype(np.float32)
        b = np.arange(4, dtype=np.float32)
        g = h.make_graph(
            [h.make_node("MatMul", ["x", "w"], ["m"], name="/fc/MatMul"),
             h.make_node("Add", ["m", "b"], ["y"], name="/fc/Add")], "g",
            [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 6])],
            [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 4])],
            [onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")])
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
        text, tensors, unmapped = onnx2net.convert(m, "mm")
        self.assertEqual(unmapped, [])
        self.assertIn("y = linear(x, 4)", text)
        np.testing.assert_array_equal(tensors["y.weight"], w.T)
        np.testing.assert_array_equal(tensors["y.bias"], b)

    def test_mobilenet_v3(self):
        import torchvision
        self.check(torchvision.models.mobilenet_v3_small(), (1, 3, 64, 64), 14, "mnv3")


def randomize_norms(m, seed=1):
    """Affines, biases and layer scales away from PyTorch's initial 1, 0 and 1e-6, so that each
    one changes the result."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("layer_scale") or (p.dim() == 1 and name.endswith("weight")):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.rand(p.shape, generator=g) - 0.5)
    return m


def convnext(channels, depth=1):
    """torchvision's ConvNeXt with four stages of `depth` blocks and the given widths."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    torch.manual_seed(0)
    cfg = [CNBlockConfig(c, n, depth) for c, n in zip(channels, channels[1:] + [None])]
    return randomize_norms(ConvNeXt(block_setting=cfg))


class LN2d(nn.Module):
    """torchvision's LayerNorm2d (permute, F.layer_norm over the channels, permute back) after a
    conv, then a downsampling conv as in ConvNeXt."""

    def __init__(self, affine=True):
        super().__init__()
        from torchvision.models.convnext import LayerNorm2d
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = LayerNorm2d(8, eps=1e-6, elementwise_affine=affine)
        self.down = nn.Conv2d(8, 16, 2, stride=2)

    def forward(self, x):
        return self.down(self.norm(self.conv(x)))


class ChannelsLastBlock(nn.Module):
    """Channels-last work between two permutes: a LayerNorm, Linears with and without a bias
    (-> 1x1 convs), GELU (erf), SiLU, ReLU, a per-channel parameter over the last axis, a scalar,
    a sum of two views; then a [C, 1, 1] layer scale and a residual on NCHW."""

    def __init__(self, c=8):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.fc1 = nn.Linear(c, 4 * c)
        self.fc2 = nn.Linear(4 * c, c, bias=False)
        self.gamma = nn.Parameter(torch.rand(c) + 0.5)
        self.beta = nn.Parameter(torch.rand(c) - 0.5)
        self.layer_scale = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

    def forward(self, x):
        y = self.norm(self.dw(x).permute(0, 2, 3, 1))
        y = self.fc2(F.gelu(self.fc1(y)))
        y = F.silu(y) * self.gamma + F.relu(y) * 0.5 + self.beta
        y = (y + y.permute(0, 1, 2, 3)).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


class FlatLayerNorm(nn.Module):
    """F.layer_norm(x, (C, 1, 1)) on a pooled [N, C, 1, 1] (normalised dims C, 1, 1), an
    nn.LayerNorm(C) on its channels-last view flattened without permuting back (1x1 positions:
    the same order of elements), and an nn.LayerNorm(C) on the [N, C]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3)
        self.w = nn.Parameter(torch.rand(12, 1, 1) + 0.5)
        self.b = nn.Parameter(torch.rand(12, 1, 1) - 0.5)
        self.head_norm = nn.LayerNorm(12)
        self.norm = nn.LayerNorm(12)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        p = F.adaptive_avg_pool2d(self.conv(x), 1)
        p = F.layer_norm(p, (12, 1, 1), self.w, self.b, eps=1e-5)
        q = torch.flatten(self.head_norm(p.permute(0, 2, 3, 1)), 1)
        return self.fc(self.norm(q))


class ChannelsFirstLN(nn.Module):
    """The original ConvNeXt's LayerNorm "channels_first", written out on NCHW: means over dim 1,
    then weight[:, None, None] * x + bias[:, None, None]; and without the affine."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.weight = nn.Parameter(torch.rand(6) + 0.5)
        self.bias = nn.Parameter(torch.rand(6) - 0.5)

    @staticmethod
    def norm(x, eps):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return (x - u) / torch.sqrt(s + eps)

    def forward(self, x):
        y = self.norm(self.conv(x), 1e-6)
        y = self.weight[:, None, None] * y + self.bias[:, None, None]
        return self.norm(y, 1e-5)


class Consts(nn.Module):
    """Add, Sub, Mul and Div of a tensor and a constant holding one value per channel ([C, 1, 1],
    [1, C, 1, 1], [C] against [N, C]) or one value, both orders."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.w = nn.Parameter(torch.rand(6, 1, 1) + 0.5)
        self.v = nn.Parameter(torch.rand(1, 6, 1, 1) - 0.5)
        self.register_buffer("d", torch.rand(6, 1, 1) + 0.5)
        self.fc = nn.Linear(6, 4)
        self.u = nn.Parameter(torch.rand(4) - 0.5)

    def forward(self, x):
        y = self.conv(x)
        y = (y * self.w + self.v - self.w) / self.d
        y = self.v - y
        y = 1.5 - (y * 0.5 + 3.0) / 4.0
        z = self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))
        return (z * self.u - self.u) / 3.0 + 2.0 * z


class Patterns(_Converted):
    """Each ConvNeXt pattern alone, against PyTorch through netc run, -O0 and -O2."""

    def test_layernorm2d(self):
        for opset in (13, 17):
            for affine in (True, False):
                if opset == 17 and not affine:
                    continue    # PyTorch 1.13 exports it with an empty Scale, an invalid model
                torch.manual_seed(0)
                text = self.check(randomize_norms(LN2d(affine)), (1, 3, 8, 8), opset,
                                  f"ln2d_{opset}_{affine}")
                want = "norm = layernorm(conv, eps=1e-06" + ("" if affine else ", affine=false")
                self.assertIn(want + ")", text)
                self.assertIn("y = conv2d(norm, 16, kernel=2, stride=2)", text)

    def test_channels_last_block(self):
        for opset in (13, 17):
            torch.manual_seed(0)
            text = self.check(randomize_norms(ChannelsLastBlock()), (1, 8, 6, 6), opset,
                              f"block{opset}")
            self.assertIn("fc1 = conv2d(norm, 32, kernel=1)", text)
            self.assertIn("Mul_1 = gelu(fc1)", text)
            self.assertIn("fc2 = conv2d(Mul_1, 8, kernel=1, bias=false)", text)
            self.assertNotIn("transpose", text.lower().replace("channels-last view", ""))

    def test_layernorm_over_channels(self):
        for opset in (13, 17):
            torch.manual_seed(0)
            text = self.check(randomize_norms(FlatLayerNorm()), (1, 3, 6, 6), opset,
                              f"flat{opset}")
            self.assertEqual(text.count("layernorm("), 3, text)
            self.assertIn("Flatten = flatten(head_norm)", text)
            self.assertIn("norm = layernorm(Flatten)", text)

    def test_layer_normalization_node(self):
        # LayerNormalization over dim 1 of [N, C] (axis 1 or -1), without the optional bias, as
        # other exporters write it
        h = onnx.helper
        rs = np.random.RandomState(0)
        x = rs.randn(2, 7).astype(np.float32) * 3 + 1
        w = (rs.rand(7) + 0.5).astype(np.float32)
        ref = F.layer_norm(torch.from_numpy(x), (7,), torch.from_numpy(w), None, 1e-3).numpy()
        for axis in (1, -1):
            g = h.make_graph(
                [h.make_node("LayerNormalization", ["x", "w"], ["y"], name="/ln/LN", axis=axis,
                             epsilon=1e-3)], "g",
                [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 7])],
                [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 7])],
                [onnx.numpy_helper.from_array(w, "w")])
            onx = os.path.join(self.dir, "ln.onnx")
            onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), onx)
            text = self.check_onnx(onx, x, ref, f"LayerNormalization axis={axis}", f"ln{axis}")
            self.assertIn("y = layernorm(x, eps=0.001)", text)

    def test_channels_first_layernorm(self):
        torch.manual_seed(0)
        text = self.check(ChannelsFirstLN(), (1, 3, 5, 5), 13, "cf")
        self.assertIn("layernorm(conv, eps=1e-06)", text)
        self.assertIn("affine=false", text)
        self.assertNotIn("scale(", text)

    def test_constant_operands_are_scales(self):
        for opset in (11, 13):
            torch.manual_seed(0)
            text = self.check(Consts(), (1, 3, 5, 5), opset, f"consts{opset}")
            self.assertGreaterEqual(text.count("scale("), 8, text)
            self.assertIn("bias=true", text)


class ConvNeXts(_Converted):
    def test_convnext_reduced(self):
        # torchvision's classes, every stage with one block: stem (4x4/4 conv, LayerNorm2d),
        # CNBlocks, downsampling (LayerNorm2d, 2x2/2 conv), classifier (LayerNorm2d, Flatten,
        # Linear)
        for opset in (13, 17):
            text = self.check(convnext([96, 192, 384, 768]), (1, 3, 64, 64), opset,
                              f"cnx{opset}")
            self.assertEqual(text.count("layernorm("), 4 + 3 + 1 + 1, text)
            self.assertIn("features_1_0_block_3 = conv2d(features_1_0_block_2, 384, kernel=1)",
                          text)
            self.assertIn("features_1_0_Mul = scale(features_1_0_block_5)", text)


@unittest.skipUnless(os.environ.get("NETC_ONNX_ALL_MODELS"),
                     "set NETC_ONNX_ALL_MODELS=1 for more torchvision families (about 3 min)")
class MoreModels(_Converted):
    """Further torchvision families, outside CTest's time budget."""

    def test_families(self):
        import torchvision.models as tm
        import torchvision.models.segmentation as seg
        for name, make, size in (
                ("googlenet", lambda: tm.googlenet(aux_logits=False, init_weights=True), 64),
                ("inception_v3", lambda: tm.inception_v3(aux_logits=False, init_weights=True), 96),
                ("mnasnet0_5", tm.mnasnet0_5, 64),
                ("efficientnet_b0", tm.efficientnet_b0, 64),
                ("regnet_y_400mf", tm.regnet_y_400mf, 64),
                ("resnext50_32x4d", tm.resnext50_32x4d, 64),
                ("densenet121", tm.densenet121, 64),
                ("deeplabv3_mobilenet_v3", lambda: Out(seg.deeplabv3_mobilenet_v3_large(
                    weights_backbone=None, aux_loss=False)), 64),
                ("lraspp", lambda: Out(seg.lraspp_mobilenet_v3_large(weights_backbone=None)), 64),
                ("fcn_resnet50", lambda: Out(seg.fcn_resnet50(weights_backbone=None,
                                                              aux_loss=False)), 64)):
            torch.manual_seed(0)
            self.check(make(), (1, 3, size, size), 13, name)

    def test_convnext_tiny(self):
        import torchvision
        for opset in (13, 17):
            torch.manual_seed(0)
            self.check(randomize_norms(torchvision.models.convnext_tiny()), (1, 3, 64, 64), opset,
                       f"convnext_tiny{opset}")


class Refusals(unittest.TestCase):
    def convert(self, module, shape, opset=13):
        with tempfile.TemporaryDirectory() as d:
            onx = os.path.join(d, "m.onnx")
            export(module, shape, onx, opset)
            return onnx2net.convert(onnx.load(onx), "m")[2]

    def test_channels_last_consumed_by_a_conv(self):
        class ConvOnNHWC(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 4, 3)

            def forward(self, x):
                return self.conv(x.permute(0, 2, 3, 1))
        with tempfile.TemporaryDirectory() as d:
            onx = os.path.join(d, "c.onnx")
            export(ConvOnNHWC(), (1, 4, 4, 4), onx, 13)
            net, st = os.path.join(d, "c.net"), os.path.join(d, "c.safetensors")
            r = run_tool(onx, "-o", net, "--weights", st)
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr, r"Conv: 1 node\(s\), first '/conv/Conv': Conv of a "
                                       r"channels-last view \(Transpose perm \[0, 2, 3, 1\]")
            self.assertIn("the language has no transpose", r.stderr)
            self.assertNotIn("Transpose:", r.stderr)       # the view itself is not the problem
            self.assertIn("nothing written", r.stderr)
            self.assertFalse(os.path.exists(net))
            self.assertFalse(os.path.exists(st))

    def test_channels_last_unmappable(self):
        class Mixed(nn.Module):
            def __init__(self):
                super().__init__()
                self.norm = nn.LayerNorm(4)

            def forward(self, x):
                v = x.permute(0, 2, 3, 1)
                a = F.softmax(v, dim=2) + v               # a softmax over W of the view
                b = F.max_pool2d(v, 2)                     # a pool of it
                c = self.norm(x)                           # a LayerNorm over W of NCHW
                return a, b, c, v * x, x.permute(0, 2, 3, 1) * 2
        whys = {op: w for op, _, w in self.convert(Mixed(), (1, 4, 4, 4))}
        ops = sorted(whys)
        self.assertEqual(ops, ["(output)", "LayerNorm", "MaxPool", "Mul", "Softmax"], whys)
        self.assertIn("Softmax of a channels-last view", whys["Softmax"])
        self.assertIn("MaxPool of a channels-last view", whys["MaxPool"])
        self.assertIn("a layer norm over axes [3] of the [1, 4, 4, 4]", whys["LayerNorm"])
        self.assertIn("Mul of a channels-last view (Transpose perm [0, 2, 3, 1]) and an NCHW "
                      "tensor", whys["Mul"])
        self.assertIn("a channels-last view (Transpose perm [0, 2, 3, 1]) as an output",
                      whys["(output)"])

    def test_constant_operands_not_per_channel(self):
        class Bad(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.rand(5))          # broadcasts along W
                self.v = nn.Parameter(torch.rand(2, 3, 1, 1))  # enlarges the batch

            def forward(self, x):
                return x * self.w, x + self.v
        unmapped = self.convert(Bad(), (1, 3, 4, 5))
        whys = " / ".join(w for _, _, w in unmapped)
        self.assertEqual(len(unmapped), 2, unmapped)
        self.assertIn("Mul with a constant of shape [5] that does not broadcast per channel "
                      "over the [1, 3, 4, 5]", whys)
        self.assertIn("Add with a constant of shape [2, 3, 1, 1]", whys)
        # c / x (PyTorch exports 1 / x as a Reciprocal, refused by name)
        h = onnx.helper
        g = h.make_graph([h.make_node("Div", ["c", "x"], ["y"], name="/Div")], "g",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 2, 2])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 2, 2])],
                         [onnx.numpy_helper.from_array(np.ones((3, 1, 1), np.float32), "c")])
        _, _, unmapped = onnx2net.convert(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]))
        self.assertEqual(unmapped, [("Div", "/Div", "a constant divided by a tensor (the "
                                     "language has no reciprocal)")])

    def test_unsupported_ops_listed_no_file(self):
        with tempfile.TemporaryDirectory() as d:
            onx = os.path.join(d, "u.onnx")
            export(Unsupported(), (1, 3, 4, 4), onx, 13)
            net, st = os.path.join(d, "u.net"), os.path.join(d, "u.safetensors")
            r = run_tool(onx, "-o", net, "--weights", st)
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr, r"Selu: 2 node\(s\), first '/Selu': the language has no "
                                       r"selu")
            self.assertRegex(r.stderr, r"Transpose: 1 node\(s\), first '/Transpose'")
            self.assertRegex(r.stderr, r"Reciprocal: 1 node\(s\), first '/Reciprocal'")
            self.assertEqual(r.stderr.count("onnx2net: cannot convert"), 1)
            self.assertIn("nothing written", r.stderr)
            self.assertFalse(os.path.exists(net))
            self.assertFalse(os.path.exists(st))

    def test_dynamic_and_dtype_inputs(self):
        x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 4, 4])
        i = onnx.helper.make_tensor_value_info("i", onnx.TensorProto.INT64, [2])
        y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
        g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"], name="r")], "g",
                                   [x, i], [y])
        m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)])
        _, _, unmapped = onnx2net.convert(m)
        whys = " / ".join(w for _, _, w in unmapped)
        self.assertIn("dimension N is not fixed", whys)
        self.assertIn("dtype int64", whys)

    def test_dynamic_batch_with_input_shape(self):
        with tempfile.TemporaryDirectory() as d:
            onx = os.path.join(d, "dyn.onnx")
            m = ViewLinear().eval()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(m, torch.randn(1, 3, 8, 8), onx, opset_version=13,
                                  input_names=["x"], output_names=["y"],
                                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
            net = os.path.join(d, "dyn.net")
            r = run_tool(onx, "-o", net)
            self.assertEqual(r.returncode, 1)
            self.assertIn("dimension batch is not fixed", r.stderr)
            self.assertFalse(os.path.exists(net))
            # PyTorch's own shape subgraph, folded once the batch is given
            ops = [n.op_type for n in onnx.load(onx).graph.node]
            self.assertTrue({"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= set(ops), ops)
            st = os.path.join(d, "dyn.safetensors")
            r = run_tool(onx, "-o", net, "--weights", st, "--input-shape", "x=2,3,8,8")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(net) as f:
                self.assertIn("input x: [2, 3, 8, 8]", f.read())
            x = torch.randn(2, 3, 8, 8)
            xin, out = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
            write_npy(xin, x.numpy())
            r = subprocess.run([NETC, "run", net, "--weights", st, "--input", xin, "--output", out],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            with torch.no_grad():
                self.assertLessEqual(compare(np.load(out), m(x).numpy()), TOL)
            r = run_tool(onx, "-o", net, "--input-shape", "2,4,8,8")
            self.assertEqual(r.returncode, 1)
            self.assertIn("dimension 1 is 3 in the model", r.stderr)

    def test_not_an_onnx_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "bad.onnx")
            with open(p, "w") as f:
                f.write("not protobuf")
            r = run_tool(p, "-o", os.path.join(d, "bad.net"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot read", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "bad.net")))


if __name__ == "__main__":
    unittest.main(verbosity=2)

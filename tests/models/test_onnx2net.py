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
        return x.numpy(), module(x).numpy()


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
        return (a + F.selu(a)).permute(0, 2, 3, 1) * 2


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
        print(f"  {name} (opset {opset}): " + ", ".join(f"{k} {v:.2e}" for k, v in errs.items()),
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


class Refusals(unittest.TestCase):
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
            self.assertRegex(r.stderr, r"Mul: 1 node\(s\), first '/Mul': Mul with a constant")
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

#!/usr/bin/python3
"""test_torch2net.py — tools/torch2net.py without netc: what it maps, how it names bindings and
weights, what it refuses, and its CLI's exit status. (Numbers: tests/cli/models.sh runs the
converted models with `netc run` against PyTorch.)  Run: /usr/bin/python3 test_torch2net.py SRC"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn as nn
import torch.nn.functional as F

SRC = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../..")
TOOLS = os.path.join(os.path.abspath(SRC), "tools")
sys.path.insert(0, TOOLS)
import torch2net  # noqa: E402


def statements(text):
    """{binding: right-hand side} of a .net text."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+) = (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


class Shuffle(nn.Module):
    """The ShuffleNet channel shuffle spelled with view / transpose / view, and a shared conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        b, c, h, w = x.size()
        y = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
        return self.conv(self.conv(y))


class WithLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.LayerNorm([4, 8, 8])

    def forward(self, x):
        return self.norm(self.conv(x)) * 2.0


class TestTorchvision(unittest.TestCase):
    def convert(self, name, size=96):
        import torchvision.models as tvm
        torch.manual_seed(0)
        kw = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
        model = getattr(tvm, name)(**kw).eval()
        return torch2net.convert(model, torch.randn(1, 3, size, size), name)

    def test_classification_models_map_completely(self):
        # expected statement counts: one per layer of the flat graph (at 96x96, VGG's 7x7
        # adaptive pool is a real adaptive_avgpool, not the no-op it is at 224; DenseNet's four
        # one-input concats, one per dense block, are no statement)
        for name, count in [("resnet18", 69), ("resnet50", 175), ("mobilenet_v2", 153),
                            ("mobilenet_v3_small", 157), ("shufflenet_v2_x0_5", 211),
                            ("squeezenet1_1", 66), ("densenet121", 427),
                            ("efficientnet_b0", 240), ("googlenet", 197), ("vgg11", 30)]:
            with self.subTest(model=name):
                text, tensors, unmapped = self.convert(name)
                self.assertEqual(unmapped, [])
                self.assertEqual(len(statements(text)), count)
                self.assertFalse([k for k in tensors if "num_batches_tracked" in k])

    def test_resnet18_names_and_attributes(self):
        text, tensors, _ = self.convert("resnet18", 224)
        st = statements(text)
        self.assertIn("input x: [1, 3, 224, 224]", text)
        self.assertEqual(st["conv1"], "conv2d(x, 64, kernel=7, stride=2, pad=3, bias=false)")
        self.assertEqual(st["maxpool"], "maxpool2d(relu, kernel=3, stride=2, pad=1)")
        self.assertEqual(st["layer2_0_downsample_0"],
                         "conv2d(layer1_1_relu_1, 128, kernel=1, stride=2, bias=false)")
        self.assertEqual(st["avgpool"], "global_avgpool(layer4_1_relu_1)")
        self.assertEqual(st["fc"], "linear(flatten, 1000)")
        self.assertEqual(tuple(tensors["layer1_0_conv1.weight"].shape), (64, 64, 3, 3))
        self.assertEqual(tuple(tensors["layer2_0_downsample_1.running_var"].shape), (128,))
        self.assertEqual(len(tensors), 20 + 20 * 4 + 2)  # 20 convs, 20 BNs, fc
        self.assertTrue(text.rstrip().endswith("output fc"))

    def test_shufflenet_uses_channel_shuffle_and_slices(self):
        text, _, _ = self.convert("shufflenet_v2_x0_5")
        self.assertIn("channel_shuffle(cat, groups=2)", text)
        self.assertRegex(text, r"= slice\(channel_shuffle, start=24, end=48\)")


class TestPatterns(unittest.TestCase):
    def test_view_transpose_view_is_a_channel_shuffle(self):
        text, tensors, unmapped = torch2net.convert(Shuffle().eval(), torch.randn(1, 8, 5, 5))
        self.assertEqual(unmapped, [])
        st = statements(text)
        self.assertEqual(list(st.values())[0], "channel_shuffle(x, groups=2)")
        # the shared conv is bound twice, each binding with its own copy of the weights
        self.assertEqual(st["conv_1"], "conv2d(conv, 8, kernel=1)")
        self.assertTrue((tensors["conv.weight"] == tensors["conv_1.weight"]).all())

    def test_unmapped_nodes_are_reported(self):
        text, _, unmapped = torch2net.convert(WithLayerNorm().eval(), torch.randn(1, 3, 8, 8))
        self.assertEqual(unmapped, [("norm", "norm")])  # over C, H, W; the * 2.0 is a scale
        self.assertIn("# unmapped:", text)

    def test_unpacking_a_module_result(self):
        # `x, _ = self.attention(...)` (ViT): unpacking the proxy of a leaf module's tuple
        # raised IndexError inside torch.fx on Python 3.11; now each node that has no mapping
        # is reported, the nodes that only read an unmapped tuple are not
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                y, _ = self.attn(x, x, x, need_weights=False)
                return self.fc(torch.flatten(y, 1)[:, :4])
        text, _, unmapped = torch2net.explain(M().eval(), torch.randn(1, 5, 4))
        self.assertEqual([(n, w) for n, _, _, w in unmapped],
                         [("attn", "module MultiheadAttention")])
        self.assertIn("no attention", unmapped[0][2])
        self.assertIn("# unmapped: %getitem", text)          # the comment stays in the text
        self.assertIn("fc = linear(getitem_2, 3)", text)    # the rest is mapped as usual

    def test_report_groups_by_kind(self):
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.n1, self.n2 = nn.LayerNorm(6), nn.LayerNorm(6)

            def forward(self, x):
                y = x.view(1, 2, 3, 6).permute(0, 2, 1, 3)
                return self.n2(self.n1(x)), y.reshape(1, 3, 12)
        _, _, unmapped = torch2net.explain(M().eval(), torch.randn(1, 6, 6))
        msg = torch2net.report(unmapped)
        self.assertIn("module LayerNorm: 2 node(s), first 'n1': LayerNorm(6,) on [1, 6, 6]: only over "
                      "the channels", msg)
        self.assertIn("method view: 1 node(s), first 'view': reshape [1, 6, 6] -> [1, 2, 3, 6] "
                      "is not a flatten (the language has no general reshape)", msg)
        self.assertIn("method permute: 1 node(s), first 'permute': permute [0, 2, 1, 3]: only a "
                      "channel shuffle, or channels-last", msg)
        self.assertEqual(len(msg.splitlines()), 1 + 4)   # LayerNorm, view, permute, reshape

    def test_a_one_input_cat_is_its_input(self):
        class M(nn.Module):  # DenseNet's first dense layer concatenates a list of one tensor
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 1)

            def forward(self, x):
                y = torch.cat([x], 1)
                return self.conv(torch.cat([y, torch.cat([x], dim=1)], 1)[:, :3])
        m = M().eval()
        x = torch.randn(1, 3, 5, 5)
        text, tensors, unmapped = torch2net.convert(m, x)
        self.assertEqual(unmapped, [])
        st = statements(text)
        self.assertEqual(list(st.values())[0], "concat(x, x)")
        self.assertEqual(sum("concat(" in v for v in st.values()), 1)
        netc = os.environ.get("NETC") or os.path.join(os.path.abspath(SRC), "build", "netc")
        if not os.path.exists(netc):
            self.skipTest("no build/netc to run the converted model")
        import numpy as np
        from nettools import write_outputs, write_npy
        with tempfile.TemporaryDirectory() as d:
            net, w, xi, yo = (os.path.join(d, f) for f in ("m.net", "m.safetensors", "x.npy", "y.npy"))
            write_outputs(net, text, w, tensors)
            write_npy(xi, x.numpy())
            r = subprocess.run([netc, "run", net, "--weights", w, "--input", xi, "--output", yo],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            want = m(x).detach().numpy()
            got = np.load(yo)
            self.assertLessEqual(float(abs(got - want).max()), 1e-5 * float(abs(want).max()))

    def test_functional_forms(self):
        class M(nn.Module):
            def forward(self, x):
                y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                z = F.pad(y, (1, 1, 2, 2), mode="reflect")[:, 1:3]
                return torch.mean(F.hardtanh(z, -0.5, 0.5), dim=(2, 3), keepdim=True)
        text, _, unmapped = torch2net.convert(M().eval(), torch.randn(1, 4, 6, 6))
        self.assertEqual(unmapped, [])
        st = list(statements(text).values())
        self.assertEqual(st, ['upsample(x, scale=2.0, mode="bilinear")',
                              'pad(interpolate, pad=[1, 1, 2, 2], mode="reflect")',
                              "slice(pad, start=1, end=3)",
                              "clamp(getitem, min=-0.5, max=0.5)",
                              "global_avgpool(hardtanh)"])


def run_netc(testcase, module, x, text, tensors, tol=1e-5):
    """The converted model through `netc run` (the interpreter) and compiled at -O2, each
    against the module's own output: max|d| <= tol * max|ref|."""
    import numpy as np
    from nettools import write_outputs, write_npy
    netc = os.environ.get("NETC") or os.path.join(os.path.abspath(SRC), "build", "netc")
    if not os.path.exists(netc):
        testcase.skipTest("no build/netc to run the converted model")
    netrun = os.path.join(os.path.dirname(netc), "netrun")
    want = module(x).detach().numpy()
    with tempfile.TemporaryDirectory() as d:
        net, w, xi, yo, so = (os.path.join(d, f) for f in ("m.net", "m.safetensors", "x.npy", "y.npy", "m.so"))
        write_outputs(net, text, w, tensors)
        write_npy(xi, x.numpy())
        runs = [[netc, "run", net, "--weights", w, "--input", xi, "--output", yo]]
        if os.path.exists(netrun):
            runs.append([netc, net, "--weights", w, "-O2", "-o", so])
            runs.append([netrun, so, "--input", xi, "--output", yo])
        for i, cmd in enumerate(runs):
            r = subprocess.run(cmd, capture_output=True, text=True)
            testcase.assertEqual(r.returncode, 0, r.stderr)
            if cmd[0] == netc and cmd[1] != "run":
                continue
            got = np.load(yo)
            testcase.assertEqual(got.shape, want.shape)
            err = float(abs(got - want).max()) / float(abs(want).max())
            testcase.assertLessEqual(err, tol, f"{os.path.basename(cmd[0])}: max|d|/max|ref| {err:g}")


class TestChannelsLastAndConstants(unittest.TestCase):
    def test_convnext_block(self):
        """ConvNeXt's block and LayerNorm2d: permute -> LayerNorm -> Linear -> GELU -> Linear ->
        permute back, a [C, 1, 1] layer scale, the residual add; all channels-last work maps to
        NCHW ops and no permute is left."""
        from torchvision.models.convnext import CNBlock, LayerNorm2d
        torch.manual_seed(3)

        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(3, 24, 2, stride=2)
                self.norm = LayerNorm2d(24, eps=1e-6)
                self.block = CNBlock(24, layer_scale=0.7, stochastic_depth_prob=0.0)

            def forward(self, x):
                return self.block(self.norm(self.stem(x)))
        m = M().eval()
        with torch.no_grad():
            m.block.layer_scale.uniform_(0.5, 1.5)
            m.norm.weight.uniform_(0.5, 1.5)
            m.norm.bias.uniform_(-0.3, 0.3)
        x = torch.randn(1, 3, 14, 18)
        text, tensors, unmapped = torch2net.convert(m, x)
        self.assertEqual(unmapped, [])
        ops = [v.split("(")[0] for v in statements(text).values()]
        self.assertEqual(ops, ["conv2d", "layernorm", "conv2d", "layernorm", "conv2d", "gelu", "conv2d",
                               "scale", "add"])
        st = statements(text)
        self.assertIn("layernorm(stem, eps=1e-06)", st.values())
        self.assertEqual(st["block_block_3"], "conv2d(block_block_2, 96, kernel=1)")
        self.assertEqual(tuple(tensors["block_block_3.weight"].shape), (96, 24, 1, 1))
        self.assertEqual(tuple(tensors["mul.weight"].shape), (24,))
        run_netc(self, m, x, text, tensors)

    def test_constant_operands_are_scales(self):
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.p = nn.Parameter(torch.rand(5, 1, 1) + 0.5)
                self.q = nn.Parameter(torch.randn(1, 5, 1, 1))
                self.fc = nn.Linear(5, 4)

            def forward(self, x):
                a = x * 2.0 + self.q            # scale, then scale with bias
                b = self.p - a                   # weight -1, bias p
                c = (b / self.p - 3).relu()      # 1/p, then a shift
                d = self.fc(torch.flatten(F.adaptive_avg_pool2d(c, 1), 1))
                return d * self.fc.bias          # [4] against [N, 4]
        m = M().eval()
        x = torch.randn(2, 5, 6, 7)
        text, tensors, unmapped = torch2net.convert(m, x)
        self.assertEqual(unmapped, [])
        st = list(statements(text).values())
        self.assertEqual(sum(v.startswith("scale(") for v in st), 6, text)
        self.assertNotIn("mul(", text)
        run_netc(self, m, x, text, tensors)

    def test_what_does_not_map_says_why(self):
        class Rows(nn.Module):  # one value per row, not per channel
            def __init__(self):
                super().__init__()
                self.p = nn.Parameter(torch.rand(6, 1))

            def forward(self, x):
                return x * self.p

        class Pool(nn.Module):  # a channels-last tensor read by a pool
            def forward(self, x):
                return F.max_pool2d(x.permute(0, 2, 3, 1), 2).permute(0, 3, 1, 2)
        for mod, x, msg in [(Rows(), torch.randn(1, 4, 6, 5), "only one value per channel maps"),
                            (Pool(), torch.randn(1, 4, 6, 6), "channels-last permute")]:
            conv = torch2net._converter(mod.eval(), x, "m")
            conv.run()
            self.assertTrue(conv.unmapped)
            self.assertIn(msg, " ".join(u[2] for u in conv.unmapped))


class TestCli(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([sys.executable, os.path.join(TOOLS, "torch2net.py"), *args],
                              capture_output=True, text=True)

    def test_unmapped_exit_status(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "m.py")
            with open(src, "w") as f:
                f.write("import torch.nn as nn\n"
                        "class M(nn.Module):\n"
                        "    def __init__(self):\n"
                        "        super().__init__()\n"
                        "        self.norm = nn.LayerNorm([4, 3])\n"
                        "    def forward(self, x):\n"
                        "        return self.norm(x)\n")
            out = os.path.join(d, "m.net")
            r = self.run_cli(f"{src}:M", "--input-shape", "2,4,3", "-o", out)
            self.assertEqual(r.returncode, 1)
            self.assertIn("module LayerNorm: 1 node(s), first 'norm': LayerNorm(4, 3) on [2, 4, 3]: "
                          "only over the channels", r.stderr)
            self.assertEqual(r.stderr.count("torch2net: cannot convert"), 1)
            self.assertFalse(os.path.exists(out))
            r = self.run_cli(f"{src}:M", "--input-shape", "2,4,3", "-o", out, "--allow-unmapped")
            self.assertEqual(r.returncode, 0)
            self.assertTrue(os.path.exists(out))

    def test_torchvision_to_files(self):
        with tempfile.TemporaryDirectory() as d:
            net, w = os.path.join(d, "sq.net"), os.path.join(d, "sq.safetensors")
            r = self.run_cli("torchvision.models:squeezenet1_1", "--input-shape", "1,3,64,64",
                             "-o", net, "--weights", w)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(net) as f:
                text = f.read()
            self.assertIn("net sq\n", text)
            self.assertIn("features_0 = conv2d(x, 64, kernel=3, stride=2)", text)
            self.assertGreater(os.path.getsize(w), 4 * 1_000_000)


if __name__ == "__main__":
    unittest.main(verbosity=1)

#!/usr/bin/python3
"""test_segmentation.py — examples/segmentation/segment.py end to end, at small sizes, checked
against PyTorch by this test's own computation where it can be:

  A. the synthetic picture (65x65) and the script's random weights: exit status 0, the error it
     prints <= 1e-4, the PNG (a palette PNG of the input's size) is the argmax of the logits it
     saved, and the ASPP concat is eliminated, by netc --stats run here on the model it kept;
  B. a non-square PNG (120x90, resized to 86x65 as torchvision does) and a torchvision state dict
     (with an auxiliary head, as torchvision's checkpoints have) made here: the saved logits
     against this test's PyTorch run of the same checkpoint and preprocessing (<= 1e-4), and the
     mask against PyTorch's argmax on every pixel where PyTorch's top two classes are more than
     2 max|d| apart (there a difference of at most max|d| per logit cannot change the argmax;
     the other pixels may differ and must be few, or the check would say nothing);
  and the script's concat check says "copied" when netc does not eliminate the concat.

Run: NETC_BIN=build/netc NETC_LIBNETRT=build/libnetrt.so.3 /usr/bin/python3 test_segmentation.py SRC
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torchvision.models.segmentation as tvseg
from PIL import Image
from torchvision.transforms._presets import SemanticSegmentation

SRC = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), "../.."))
SCRIPT = os.path.join(SRC, "examples", "segmentation", "segment.py")
sys.path.insert(0, os.path.join(SRC, "tools"))
sys.path.insert(0, os.path.dirname(SCRIPT))
from make_model_fixtures import randomise  # noqa: E402
import segment  # noqa: E402

NETC = os.environ["NETC_BIN"]
TOL = 1e-4
CONCAT_STATS = "concat-elim: 5 concat inputs written in place (1 concat), 0 still copied"


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(SRC, "python"), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, SCRIPT, "--threads", "2", "--runs", "3", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return r


def printed_error(stdout):
    m = re.search(r"max\|d\|/max\|ref\| = (\S+) ", stdout)
    return float(m.group(1)) if m else None


def read(path):
    with open(path) as f:
        return f.read()


def decode_mask(path):
    img = Image.open(path)
    img.load()
    return img


class TestSegmentation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="netc-seg-test-")
        d = cls.tmp.name
        cls.d = d
        # A: synthetic image, random weights
        cls.a = run_script("--size", "65", "--mask", f"{d}/a.png", "--logits", f"{d}/a.npy",
                           "--workdir", f"{d}/a")
        # B: a PNG of another size and a state dict made here
        rng = np.random.default_rng(11)
        yy, xx = np.mgrid[0:90, 0:120]
        pic = np.stack([(xx * 2) % 256, (yy * 3) % 256, 128 + 60 * np.sin(xx / 9.0)], -1)
        pic = np.clip(pic + rng.normal(0, 20, pic.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pic).save(f"{d}/b_in.png")
        torch.manual_seed(5)
        model = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                   aux_loss=True)
        gen = torch.Generator().manual_seed(6)
        randomise(model, [torch.randn(2, 3, 65, 86, generator=gen)], gen)
        torch.save(model.state_dict(), f"{d}/b.pth")
        x = SemanticSegmentation(resize_size=65)(Image.open(f"{d}/b_in.png").convert("RGB"))
        with torch.inference_mode():
            cls.b_ref = model(x.unsqueeze(0))["out"].numpy()
        cls.b = run_script("--image", f"{d}/b_in.png", "--state-dict", f"{d}/b.pth",
                           "--size", "65", "--mask", f"{d}/b.png", "--overlay", f"{d}/b_ov.png",
                           "--logits", f"{d}/b.npy")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def netc_stats(self, *flags):
        """netc -O2 --stats on the model run A kept, its IR after every pass on stderr (the
        passes are those of a .so; --emit=ll spares LLVM's back end)."""
        net = f"{self.d}/a/deeplabv3_mobilenet_v3_large.net"
        return subprocess.run([NETC, net, "--weights", net[:-4] + ".safetensors", "-O2",
                               "--stats", "--print-ir-after=all", "--emit=ll", "-o",
                               f"{self.d}/stats.ll", *flags], stderr=subprocess.PIPE, text=True)

    def assert_ran(self, r):
        self.assertEqual(r.returncode, 0, f"segment.py failed:\n{r.stdout}\n{r.stderr}")

    # ---- A
    def test_a_reports_a_small_error(self):
        self.assert_ran(self.a)
        err = printed_error(self.a.stdout)
        self.assertIsNotNone(err, self.a.stdout)
        self.assertLessEqual(err, TOL)
        self.assertIn("seeded random", self.a.stderr)

    def test_a_mask_is_the_argmax(self):
        self.assert_ran(self.a)
        mask = decode_mask(f"{self.d}/a.png")
        self.assertEqual(mask.format, "PNG")
        self.assertEqual(mask.mode, "P")
        self.assertEqual(mask.size, (65, 65))
        logits = np.load(f"{self.d}/a.npy")
        self.assertEqual(logits.shape, (1, 21, 65, 65))
        np.testing.assert_array_equal(np.asarray(mask), logits[0].argmax(0))
        pal = np.array(mask.getpalette()[:21 * 3]).reshape(21, 3)
        self.assertEqual(pal[15].tolist(), [192, 128, 128])  # VOC's person
        self.assertEqual(len({tuple(c) for c in pal}), 21)

    def test_a_concat_has_no_copy(self):
        self.assert_ran(self.a)
        self.assertIn("the ASPP concat %cat [1, 1280, 5, 5]: all 5 inputs written in place, "
                      "0 copied", self.a.stdout)
        net = f"{self.d}/a/deeplabv3_mobilenet_v3_large.net"
        text = read(net)
        concats = re.findall(r"^(\w+) = concat\(([^)]*)\)", text, re.M)
        self.assertEqual(len(concats), 1, "the converted model has one concat: the ASPP's")
        self.assertEqual(len(concats[0][1].split(",")), 5)
        r = self.netc_stats()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(CONCAT_STATS, r.stderr)

    def test_concat_check_can_fail(self):
        self.assert_ran(self.a)
        text = read(f"{self.d}/a/deeplabv3_mobilenet_v3_large.net")
        r = self.netc_stats("--disable-pass=concat-elim")
        self.assertEqual(r.returncode, 0, r.stderr)
        ok, msg = segment.check_concat(r.stderr, r.stderr, text)
        self.assertFalse(ok, msg)
        r = self.netc_stats()
        self.assertEqual(r.returncode, 0, r.stderr)
        ok, msg = segment.check_concat(r.stderr, r.stderr, text)
        self.assertTrue(ok, msg)
        # the stats claim every input, but the final IR has one input that is not a slice
        head, final = r.stderr.rsplit("; IR after ", 1)
        final, n = re.subn(r"(\n%interpolate: [^\n]*)  \[slice of %cat at \d+\]", r"\1", final)
        self.assertEqual(n, 1)
        doctored = head + "; IR after " + final
        ok, msg = segment.check_concat(doctored, doctored, text)
        self.assertFalse(ok)
        self.assertIn("cat's input interpolate is copied", msg)

    # ---- B
    def test_b_logits_match_pytorch(self):
        self.assert_ran(self.b)
        self.assertIn("leaving out the auxiliary head", self.b.stderr)
        out = np.load(f"{self.d}/b.npy")
        self.assertEqual(out.shape, (1, 21, 65, 86))
        self.assertEqual(out.shape, self.b_ref.shape)
        err = np.abs(out - self.b_ref).max() / np.abs(self.b_ref).max()
        self.assertLessEqual(err, TOL)
        # what the script printed is its own PyTorch run's (2 threads here: other rounding)
        self.assertLessEqual(abs(printed_error(self.b.stdout) - err), 0.5 * err + 1e-6)

    def test_b_mask_matches_pytorch(self):
        self.assert_ran(self.b)
        out = np.load(f"{self.d}/b.npy")
        ref = self.b_ref[0]
        d = float(np.abs(out - self.b_ref).max())
        top2 = np.sort(ref, axis=0)[-2:]
        close = (top2[1] - top2[0] <= 2 * d).astype(np.uint8)
        self.assertLessEqual(close.mean(), 0.005, "too many near-ties for the check to mean much")
        mask = decode_mask(f"{self.d}/b.png")
        self.assertEqual((mask.format, mask.mode, mask.size), ("PNG", "P", (120, 90)))
        # the expected mask at the image's size: PyTorch's argmax resized as the script must
        # (nearest), and the near-tie pixels carried along the same way
        def to_image(a):
            return np.asarray(Image.fromarray(a.astype(np.uint8)).resize((120, 90),
                                                                         Image.NEAREST))
        want, free = to_image(ref.argmax(0)), to_image(close).astype(bool)
        got = np.asarray(mask)
        wrong = (got != want) & ~free
        self.assertEqual(int(wrong.sum()), 0, f"{int(wrong.sum())} decided pixels differ")
        self.assertGreater(len(np.unique(want)), 1, "a one-class mask would check little")
        ov = decode_mask(f"{self.d}/b_ov.png")
        self.assertEqual((ov.mode, ov.size), ("RGB", (120, 90)))


if __name__ == "__main__":
    unittest.main(verbosity=2)

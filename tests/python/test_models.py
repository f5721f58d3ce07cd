"""test_models.py — compiled models through netc.compile and netc.load: examples/lenet.net and
two_io.net against netrun on the very same .so (bitwise) and the reference interpreter
(`netc run`), compile options and errors, and one model run from several Python threads."""
import os
import platform
import tempfile
import threading

import numpy as np
import pytest

import netc
from conftest import SRC, rand, tool


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-4))


def test_lenet_vs_netrun_and_interpreter(models, tmp_path):
    x = rand((1, 1, 32, 32), 7)
    np.save(tmp_path / "x.npy", x)
    tool("netrun", models["lenet"], "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy", "--threads", 2)
    tool("netc", "run", os.path.join(SRC, "examples", "lenet.net"), "--seed", 3, "--input", tmp_path / "x.npy",
         "--output", tmp_path / "ref.npy")
    with netc.load(models["lenet"], threads=2) as m:
        assert [(t.name, t.shape) for t in m.inputs] == [("x", (1, 1, 32, 32))]
        assert [(t.name, t.shape) for t in m.outputs] == [("fc3", (1, 10))]
        y = m(x)
        assert y.dtype == np.float32 and y.shape == (1, 10)
        assert np.array_equal(y, np.load(tmp_path / "y.npy"))
        assert np.array_equal(m.run({"x": x})["fc3"], y)
        assert rel_err(y, np.load(tmp_path / "ref.npy")) <= 1e-5


def test_two_io_by_name(models, tmp_path):
    image, context = rand((1, 3, 16, 16), 8), rand((1, 8, 1, 1), 9)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "context.npy", context)
    io = ["--input", "context=%s" % (tmp_path / "context.npy"), "--input", "image=%s" % (tmp_path / "image.npy")]
    outs = ["--output", "head=%s" % (tmp_path / "head.npy"), "--output", "gated=%s" % (tmp_path / "gated.npy")]
    tool("netrun", models["two_io"], *io, *outs)
    with netc.load(models["two_io"]) as m:
        assert [t.name for t in m.inputs] == ["image", "context"]
        assert [t.name for t in m.outputs] == ["head", "gated"]
        d = m.run({"context": context, "image": image})
        assert list(d) == ["head", "gated"]
        for k in d:
            assert np.array_equal(d[k], np.load(tmp_path / (k + ".npy"))), k
        head, gated = m(image, context)
        assert np.array_equal(head, d["head"]) and np.array_equal(gated, d["gated"])
    outs = ["--output", "head=%s" % (tmp_path / "rh.npy"), "--output", "gated=%s" % (tmp_path / "rg.npy")]
    tool("netc", "run", os.path.join(SRC, "examples", "two_io.net"), "--seed", 3, *io, *outs)
    assert rel_err(d["head"], np.load(tmp_path / "rh.npy")) <= 1e-5
    assert rel_err(d["gated"], np.load(tmp_path / "rg.npy")) <= 1e-5


def test_compile_options(tmp_path, models, monkeypatch):
    """opt, cpu, seed and weights reach netc: another seed gives other scores, the weights file of
    the same values as seed 3 gives the scores of seed 3, --cpu picks the variant."""
    x = rand((1, 1, 32, 32), 7)
    net = os.path.join(SRC, "examples", "lenet.net")
    with netc.load(models["lenet"]) as m:
        want = m(x)
    with netc.compile(net, seed=4, opt=0) as m:
        assert not np.allclose(m(x), want)
    if platform.machine() == "x86_64":
        with netc.compile(net, seed=3, cpu="x86-64-v2") as m:
            assert m.cpu == "x86-64-v2"
            assert rel_err(m(x), want) <= 1e-5
    # no file is left behind without output=, one is with it
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    netc.compile(net, seed=3).close()
    assert list(tmp_path.iterdir()) == []
    so = tmp_path / "kept.so"
    netc.compile(net, seed=3, opt=1, output=so, threads=1).close()
    assert so.exists()


def test_compile_with_weights(tmp_path):
    """A safetensors file written here: fc3's bias alone decides the scores when every other
    weight is 0."""
    net = os.path.join(SRC, "examples", "lenet.net")
    shapes = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
              "fc1.weight": (120, 400), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
              "fc3.weight": (10, 84), "fc3.bias": (10,)}
    tensors = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    tensors["fc3.bias"] = np.arange(10, dtype=np.float32) - 4.5
    write_safetensors(tmp_path / "w.safetensors", tensors)
    with netc.compile(net, weights=tmp_path / "w.safetensors") as m:
        assert np.array_equal(m(rand((1, 1, 32, 32), 1)), tensors["fc3.bias"][None])


def write_safetensors(path, tensors):
    import json
    header, off, blobs = {}, 0, []
    for k, a in tensors.items():
        b = a.astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def test_compile_error(tmp_path):
    bad = tmp_path / "bad.net"
    bad.write_text("net bad\ninput x: [1, 3, 8, 8]\ny = conv2d(x, 4, kernel=3\noutput y\n")
    with pytest.raises(netc.CompileError) as e:
        netc.compile(bad)
    msg = str(e.value)
    assert msg.startswith("%s:" % bad) and "error:" in msg, msg
    assert e.value.returncode == 1 and e.value.command[1] == str(bad)
    with pytest.raises(netc.CompileError, match="missing.safetensors"):
        netc.compile(os.path.join(SRC, "examples", "lenet.net"), weights=tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="opt must be 0, 1, 2 or 3"):
        netc.compile(bad, opt=5)


def test_compiler_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("NETC_BIN", str(tmp_path / "no-netc"))
    with pytest.raises(netc.CompileError, match="cannot run the compiler .*no-netc"):
        netc.compile(os.path.join(SRC, "examples", "lenet.net"))


@pytest.mark.parametrize("threads", [1, 2])
def test_python_threads(models, threads):
    """Six Python threads run one model at once, each its own inputs, many times: every output
    is the serial run's, bit for bit (each thread has its own workspace)."""
    xs = [rand((1, 1, 32, 32), 100 + i) for i in range(24)]
    with netc.load(models["lenet"], threads=threads) as m:
        serial = [m(x) for x in xs]
        got = [[None] * len(xs) for _ in range(6)]
        errors = []
        start = threading.Barrier(6)

        def work(t):
            try:
                start.wait()
                for rep in range(3):
                    for i in range(len(xs)):
                        j = (i + 5 * t) % len(xs)
                        y = m(xs[j])
                        if rep == 0:
                            got[t][j] = y
                        elif not np.array_equal(y, got[t][j]):
                            errors.append((t, j, rep))
            except Exception as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        for t in range(6):
            for j in range(len(xs)):
                assert np.array_equal(got[t][j], serial[j]), (t, j)


def test_close_waits_for_runs(models):
    """close() from another thread while runs go on: the runs in progress finish, later ones raise
    ValueError, nothing crashes."""
    m = netc.load(models["lenet"], threads=2)
    x = rand((1, 1, 32, 32), 1)
    want = m(x)
    seen, bad = [], []
    started = threading.Event()

    def work():
        try:
            while True:
                y = m(x)
                started.set()
                if not np.array_equal(y, want):
                    bad.append(y)
                seen.append(1)
        except ValueError as e:
            seen.append(str(e))

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    started.wait()
    m.close()
    for t in ts:
        t.join()
    assert not bad
    assert sum(1 for s in seen if s == "netc: model 'lenet' is closed") == 3

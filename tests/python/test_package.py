"""test_package.py — netc.load on the hand-written fake_model.so (y = x * w + x, p = the channel
means; tests/runtime/fake_model.c): names, shapes, computed values, the input checks and their
messages, closing, and how the package finds libnetrt."""
import ctypes
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import netc
from conftest import BUILD, SRC, rand


def fake(x, w):
    return x * w + x, x.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)


def test_info(fake_so):
    with netc.load(fake_so, threads=2) as m:
        assert m.name == "fake"
        assert [(t.name, t.shape, t.dtype) for t in m.inputs] == [("x", (1, 3, 4, 5), np.float32),
                                                                  ("w", (1, 3, 1, 1), np.float32)]
        assert [(t.name, t.shape) for t in m.outputs] == [("y", (1, 3, 4, 5)), ("p", (1, 3, 1, 1))]
        assert m.threads == 2 and m.cpu == "generic"
        assert "fake" in repr(m) and "x[1, 3, 4, 5]" in repr(m)


def test_values(fake_so):
    x, w = rand((1, 3, 4, 5), 1), rand((1, 3, 1, 1), 2)
    y, p = fake(x, w)
    with netc.load(fake_so) as m:
        gy, gp = m(x, w)
        assert gy.dtype == np.float32 and gy.shape == (1, 3, 4, 5) and gp.shape == (1, 3, 1, 1)
        assert np.array_equal(gy, y)
        np.testing.assert_allclose(gp, p, rtol=1e-6, atol=1e-7)
        d = m.run({"w": w, "x": x})
        assert list(d) == ["y", "p"]
        assert np.array_equal(d["y"], gy) and np.array_equal(d["p"], gp)


def test_outputs_are_fresh(fake_so):
    x, w = rand((1, 3, 4, 5), 1), rand((1, 3, 1, 1), 2)
    with netc.load(fake_so) as m:
        a, _ = m(x, w)
        b, _ = m(x, w)
        assert a is not b and a.flags.owndata and a.flags.writeable
        a[:] = 0
        assert np.array_equal(b, fake(x, w)[0])


def test_wrong_shape(fake_so):
    with netc.load(fake_so) as m:
        w = rand((1, 3, 1, 1), 2)
        with pytest.raises(ValueError, match=re.escape("input 'x' of model 'fake': expected shape (1, 3, 4, 5), "
                                                       "got (1, 3, 5, 4)")):
            m(rand((1, 3, 5, 4), 1), w)
        with pytest.raises(ValueError, match=re.escape("expected shape (1, 3, 1, 1), got (3,)")):
            m.run({"x": rand((1, 3, 4, 5), 1), "w": rand((3,), 2)})


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.uint8, bool])
def test_other_dtypes_refused(fake_so, dtype):
    """Never converted (float64 -> float32 loses precision): a TypeError saying what is expected."""
    with netc.load(fake_so) as m:
        x = np.ones((1, 3, 4, 5), dtype)
        with pytest.raises(TypeError, match=re.escape("input 'x' of model 'fake': expected float32, got %s"
                                                      % np.dtype(dtype))):
            m(x, rand((1, 3, 1, 1), 2))


def test_list_is_float64(fake_so):
    with netc.load(fake_so) as m:
        with pytest.raises(TypeError, match="expected float32, got float64"):
            m(np.ones((1, 3, 4, 5), np.float32), [[[[1.0]], [[2.0]], [[3.0]]]])


def test_layouts_copied(fake_so):
    """Non-contiguous, Fortran-order, misaligned and byte-swapped float32 inputs are copied first:
    the results are those of the same values C-contiguous."""
    x, w = rand((1, 3, 4, 5), 1), rand((1, 3, 1, 1), 2)
    want = fake(x, w)[0]
    big = np.zeros((2, 3, 4, 10), np.float32)
    big[1, :, :, ::2] = x[0]
    strided = big[1:, :, :, ::2]
    assert not strided.flags.c_contiguous
    fortran = np.asfortranarray(x)
    raw = np.zeros(x.nbytes + 1, np.uint8)  # float32 at an odd address
    misaligned = raw[1:].view(np.float32).reshape(x.shape)
    misaligned[:] = x
    assert not misaligned.flags.aligned
    swapped = x.astype(">f4")
    with netc.load(fake_so) as m:
        for a in (strided, fortran, misaligned, swapped):
            assert np.array_equal(a, x)
            assert np.array_equal(m(a, w)[0], want)
        assert np.array_equal(m(x, w[:, :, :, :])[0], want)


def test_input_names(fake_so):
    x, w = rand((1, 3, 4, 5), 1), rand((1, 3, 1, 1), 2)
    with netc.load(fake_so) as m:
        with pytest.raises(ValueError, match=re.escape("model 'fake': missing input(s) 'w' (its inputs: x, w)")):
            m.run({"x": x})
        with pytest.raises(ValueError, match=re.escape("missing input(s) 'x'; unknown input(s) 'X', 'v'")):
            m.run({"X": x, "w": w, "v": w})
        with pytest.raises(TypeError, match=re.escape("model 'fake' takes 2 input(s) (x, w), got 1")):
            m(x)
        with pytest.raises(TypeError, match="takes a dict"):
            m.run([x, w])


def test_close(fake_so):
    x, w = rand((1, 3, 4, 5), 1), rand((1, 3, 1, 1), 2)
    m = netc.load(fake_so)
    with m:
        m(x, w)
    assert m.closed and "closed" in repr(m)
    with pytest.raises(ValueError, match="model 'fake' is closed"):
        m(x, w)
    m.close()  # twice is fine
    netc.load(fake_so)(x, w)  # closed when garbage collected


def test_threads_argument(fake_so):
    with netc.load(fake_so, threads=1) as m:
        assert m.threads == 1
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            netc.load(fake_so, threads=bad)


def test_env_threads(fake_so):
    code = "import netc, sys; print(netc.load(sys.argv[1]).threads)"
    env = dict(os.environ, NETRT_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code, fake_so], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


def test_not_a_model(tmp_path):
    with pytest.raises(netc.LoadError, match="is not a netc model \\(no netrt_model_descriptor symbol\\)"):
        netc.load(netc._lib.path)  # libnetrt.so itself: a shared object without a descriptor
    text = tmp_path / "notes.so"
    text.write_text("not an ELF file\n")
    with pytest.raises(netc.LoadError, match="notes.so"):
        netc.load(text)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        netc.load(tmp_path / "missing.so")


def test_relative_path(fake_so, monkeypatch):
    """A name without '/' is a file in the working directory (the loader's rule), not a library
    on the search path."""
    monkeypatch.chdir(os.path.dirname(fake_so))
    with netc.load(os.path.basename(fake_so)) as m:
        assert m.name == "fake"


def test_bad_abi():
    with pytest.raises(netc.LoadError, match="built for netrt ABI version 99, this runtime has version 3"):
        netc.load(os.path.join(BUILD, "fake_model_badabi.so"))


def test_abi2_model():
    x, w = rand((1, 3, 4, 5), 1), rand((1, 3, 1, 1), 2)
    with netc.load(os.path.join(BUILD, "fake_model_abi2.so")) as m:
        assert np.array_equal(m(x, w)[0], fake(x, w)[0])


def test_bindings_match_header():
    """_lib.py's constants are netrt.h's, and the library it loaded has their soname."""
    h = open(os.path.join(SRC, "runtime", "netrt.h")).read()
    assert int(re.search(r"#define NETRT_ABI_VERSION (\d+)", h).group(1)) == netc.ABI_VERSION
    assert int(re.search(r"#define NETRT_MAX_RANK (\d+)", h).group(1)) == netc._lib.MAX_RANK
    assert os.path.basename(os.path.realpath(netc._lib.path)).startswith(netc._lib.SONAME)


def test_gil_released():
    """ctypes.CDLL (not PyDLL) releases the GIL for the duration of each call, netrt_run too."""
    assert type(netc._lib.lib) is ctypes.CDLL and not isinstance(netc._lib.lib, ctypes.PyDLL)


def test_library_not_found(tmp_path):
    env = dict(os.environ, NETC_LIBNETRT=str(tmp_path / "nothing.so"))
    r = subprocess.run([sys.executable, "-c", "import netc"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError: netc: libnetrt not found; tried %s ($NETC_LIBNETRT)" % (tmp_path / "nothing.so") in r.stderr

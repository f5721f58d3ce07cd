"""conftest.py — shared fixtures of the Python package's tests: the tree, the build, compiled
models. run.sh sets NETC_TEST_SRC and NETC_TEST_BUILD (and NETC_BIN, NETC_LIBNETRT)."""
import os
import subprocess

import numpy as np
import pytest

import netc

SRC = os.environ.get("NETC_TEST_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("NETC_TEST_BUILD", os.path.join(SRC, "build"))


def tool(name, *args, cwd=None):
    """Runs build/NAME with args; its stdout, or the test fails with its stderr."""
    r = subprocess.run([os.path.join(BUILD, name), *map(str, args)], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, "%s %s: exit %d\n%s" % (name, " ".join(map(str, args)), r.returncode, r.stderr)
    return r.stdout


@pytest.fixture(scope="session")
def fake_so():
    p = os.path.join(BUILD, "fake_model.so")
    assert os.path.exists(p), "build fake_model first (%s)" % p
    return p


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """examples/lenet.net and two_io.net compiled once (seeded random weights), kept as files so
    netrun can run the very same code."""
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, opt in (("lenet", 2), ("two_io", 0)):
        so = d / (name + ".so")
        netc.compile(os.path.join(SRC, "examples", name + ".net"), seed=3, opt=opt, output=so).close()
        out[name] = str(so)
    return out


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)

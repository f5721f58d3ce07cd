"""netc — run models compiled by netc from Python (ctypes over libnetrt; needs numpy).

    >>> import numpy as np, netc
    >>> m = netc.load("lenet.so", threads=2)           # or netc.compile("lenet.net", seed=3)
    >>> m.inputs
    (TensorInfo(name='x', shape=(1, 1, 32, 32), dtype=dtype('float32')),)
    >>> y = m(np.zeros((1, 1, 32, 32), np.float32))   # one output: an array; several: a tuple
    >>> m.run({"x": x})                               # {"fc3": array(...)}, outputs in order

Inputs must be float32 arrays of exactly the shape the model declares (NCHW). Other dtypes are
refused (TypeError), never converted: float64 -> float32 loses precision, and an integer image
usually means a missing normalisation. A float32 array that is not C-contiguous, not aligned or
byte-swapped is copied first (lossless). A wrong shape is a ValueError naming both shapes.

A model may be run from several Python threads at once: each thread gets its own workspace
(allocated on its first run), and the GIL is released during a run. The model's thread pool
(threads=) serves one run at a time; a run that finds it busy runs on its own thread.
"""
import collections
import collections.abc
import os
import subprocess
import tempfile
import threading

import numpy as np

from . import _lib

__all__ = ["load", "compile", "Model", "TensorInfo", "Error", "LoadError", "CompileError", "RunError",
           "ABI_VERSION"]

#: the model ABI of the runtime (NETRT_ABI_VERSION); netrt also loads models of older ABIs down to 2
ABI_VERSION = _lib.ABI_VERSION

TensorInfo = collections.namedtuple("TensorInfo", "name shape dtype")
TensorInfo.__doc__ = "An input or output of a model: its name, shape (a tuple) and dtype (float32)."

_FLOAT32 = np.dtype(np.float32)


class Error(Exception):
    """Base of netc's own errors."""


class LoadError(Error):
    """netrt_open refused the file: not a shared object, not a netc model, an ABI or CPU mismatch."""


class CompileError(Error):
    """netc failed. str() is netc's message (its stderr); also .returncode and .command."""

    def __init__(self, message, returncode=None, command=None):
        super().__init__(message)
        self.returncode, self.command = returncode, command


class RunError(Error):
    """netrt_run reported an error (should not happen through this package: it checks first)."""


def _info(t):
    return TensorInfo(t.name.decode(), tuple(t.shape[r] for r in range(t.rank)), _FLOAT32)


class _Workspace:
    """One thread's workspace block, freed when the thread (or the model) lets go of it."""

    def __init__(self, m):
        self.ptr = _lib.netrt_alloc_workspace(m)
        if not self.ptr:
            raise MemoryError("netc: cannot allocate the model's workspace")

    def __del__(self, free=_lib.netrt_free_workspace):  # bound now: at exit the module may be gone
        if self.ptr:
            free(self.ptr)
            self.ptr = None


class Model:
    """A loaded model (see netc.load). Close it with close() or a with-block, or let it go."""

    def __init__(self, path, threads=None):
        self.path = os.fspath(path)
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError("netc: threads must be a positive integer or None (NETRT_NUM_THREADS, else all "
                             "cores), got %r" % (threads,))
        self._m = self._pool = None
        self._lock = threading.Lock()
        self._active = 0  # runs in progress: close() frees the handle after the last one
        self._closed = True
        if not os.path.exists(self.path):
            raise FileNotFoundError(2, "no such model file", self.path)
        err = _lib.ctypes.create_string_buffer(1024)
        m = _lib.netrt_open(os.fsencode(self.path), err, len(err))
        if not m:
            raise LoadError(err.value.decode(errors="replace"))
        self._m = m
        self._pool = _lib.netrt_pool_create(threads or 0)
        if not self._pool:
            _lib.netrt_close(m)
            self._m = None
            raise MemoryError("netc: cannot create a thread pool")
        self._closed = False
        d = _lib.netrt_desc(m).contents
        self.name = d.name.decode()
        self.workspace_size = d.workspace_size
        #: the compiled variant chosen for this CPU ("x86-64-v3", "generic", ...)
        self.cpu = _lib.netrt_variant_selected(m).contents.cpu.decode()
        self.threads = _lib.netrt_pool_threads(self._pool)
        self.inputs = tuple(_info(_lib.netrt_input(m, i).contents) for i in range(_lib.netrt_num_inputs(m)))
        self.outputs = tuple(_info(_lib.netrt_output(m, i).contents) for i in range(_lib.netrt_num_outputs(m)))
        self._tls = threading.local()

    def __repr__(self):
        sig = lambda ts: ", ".join("%s%s" % (t.name, list(t.shape)) for t in ts)
        state = " closed" if self._closed else ""
        return "<netc.Model %s (%s) -> (%s) cpu=%s threads=%d%s>" % (self.name, sig(self.inputs), sig(self.outputs),
                                                                   self.cpu, self.threads, state)

    # ---- running

    def __call__(self, *inputs):
        """m(x, ...): inputs in the model's order; one output as an array, several as a tuple."""
        if len(inputs) != len(self.inputs):
            raise TypeError("netc: model '%s' takes %d input(s) (%s), got %d" % (
                self.name, len(self.inputs), ", ".join(t.name for t in self.inputs), len(inputs)))
        outs = self._run([self._check(t, x) for t, x in zip(self.inputs, inputs)])
        return outs[0] if len(outs) == 1 else tuple(outs)

    def run(self, inputs):
        """m.run({"x": x, ...}) -> {"y": array, ...}, outputs in the model's order."""
        if not isinstance(inputs, collections.abc.Mapping):
            raise TypeError("netc: run() takes a dict of input name -> array, got %s" % type(inputs).__name__)
        names = [t.name for t in self.inputs]
        unknown = [k for k in inputs if k not in names]
        missing = [k for k in names if k not in inputs]
        if unknown or missing:
            parts = []
            if missing:
                parts.append("missing input(s) %s" % ", ".join(map(repr, missing)))
            if unknown:
                parts.append("unknown input(s) %s" % ", ".join(map(repr, unknown)))
            raise ValueError("netc: model '%s': %s (its inputs: %s)" % (self.name, "; ".join(parts),
                                                                     ", ".join(names) or "none"))
        outs = self._run([self._check(t, inputs[t.name]) for t in self.inputs])
        return {t.name: y for t, y in zip(self.outputs, outs)}

    def _check(self, t, x):
        """x as a C-contiguous, aligned, native float32 array of t's shape, or an error."""
        a = x if isinstance(x, np.ndarray) else np.asarray(x)
        if a.dtype != _FLOAT32:
            if not (a.dtype.kind == "f" and a.dtype.itemsize == 4):  # byte-swapped float32 is fine
                raise TypeError("netc: input '%s' of model '%s': expected float32, got %s (netc converts no "
                                "dtype: pass x.astype(numpy.float32))" % (t.name, self.name, a.dtype))
        if a.shape != t.shape:
            raise ValueError("netc: input '%s' of model '%s': expected shape %s, got %s" % (
                t.name, self.name, t.shape, a.shape))
        # no copy for a C-contiguous aligned native float32 array; a copy otherwise
        return np.require(a, _FLOAT32, ["C_CONTIGUOUS", "ALIGNED"])

    def _run(self, arrays):
        with self._lock:
            if self._closed:
                raise ValueError("netc: model '%s' is closed" % self.name)
            self._active += 1
        try:
            ws = getattr(self._tls, "ws", None)
            if ws is None:
                ws = self._tls.ws = _Workspace(self._m)
            outs = [np.empty(t.shape, _FLOAT32) for t in self.outputs]
            P = _lib.ctypes.c_void_p
            ins = (P * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
            ptrs = (P * len(outs))(*[y.ctypes.data for y in outs])
            st = _lib.netrt_run(self._m, ins, ptrs, ws.ptr, self._pool)  # the GIL is released here
            if st != 0:
                raise RunError("netc: model '%s': %s" % (self.name, _lib.netrt_status_str(st).decode()))
            return outs
        finally:
            with self._lock:
                self._active -= 1
                if self._closed and self._active == 0:
                    self._free()

    # ---- closing

    def close(self):
        """Frees the model, its pool and the workspaces; a run in progress on another thread
        finishes first (the last one to end frees them). Further runs raise ValueError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._active == 0:
                self._free()

    def _free(self):  # under self._lock, with no run in progress
        self._tls = None  # drops every thread's workspace
        if self._pool:
            _lib.netrt_pool_destroy(self._pool)
            self._pool = None
        if self._m:
            _lib.netrt_close(self._m)
            self._m = None

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_lock", None) is not None and not self._closed:
            self.close()


def load(path, threads=None):
    """Opens a model compiled by netc (a .so). threads: the size of its thread pool (None:
    NETRT_NUM_THREADS if set, else all cores). FileNotFoundError for a missing file, LoadError
    with the runtime's message for a file it refuses."""
    return Model(path, threads)


def compile(source, weights=None, *, opt=2, cpu=None, seed=None, output=None, flags=(), threads=None):
    """Compiles a .net file with the netc binary and loads the result.

    weights: a .safetensors file (None: netc's seeded random weights, seed=N chooses them);
    opt: 0..3 (-O); cpu: --cpu (e.g. "native", "x86-64-v3", "fat"); flags: more netc arguments;
    output: where to keep the .so (None: a temporary file, removed once loaded). A compile error
    raises CompileError carrying netc's message."""
    if opt not in (0, 1, 2, 3):
        raise ValueError("netc: opt must be 0, 1, 2 or 3, got %r" % (opt,))
    exe = _lib.netc_binary()
    if not exe:
        raise CompileError("netc: the netc compiler was not found (set NETC_BIN, or build it: cmake --build build)")
    source = os.fspath(source)
    cmd = [exe, source, "-O%d" % opt]
    if weights is not None:
        cmd += ["--weights", os.fspath(weights)]
    if cpu is not None:
        cmd.append("--cpu=%s" % cpu)
    if seed is not None:
        cmd += ["--seed", str(int(seed))]
    cmd += [str(f) for f in flags]
    with tempfile.TemporaryDirectory(prefix="netc-") as tmp:
        out = os.fspath(output) if output is not None else os.path.join(tmp, "model.so")
        cmd += ["-o", out]
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            raise CompileError("netc: cannot run the compiler %s: %s (set NETC_BIN)" % (exe, e.strerror), None,
                               cmd) from None
        if r.returncode != 0:
            msg = r.stderr.strip() or "netc exited with status %d" % r.returncode
            raise CompileError(msg, r.returncode, cmd)
        # dlopen maps the file: the temporary copy can go once it is loaded
        return load(out, threads)

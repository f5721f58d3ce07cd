"""_lib.py — ctypes bindings of libnetrt (runtime/netrt.h) and where the library and netc are.

libnetrt is found, in order: $NETC_LIBNETRT (a file); the installed library next to an installed
package (_install.py, generated at install time, holds its path relative to the package); the
build tree of a source checkout (<checkout>/build/). netc likewise: $NETC_BIN, the installed
bin/netc, <checkout>/build/netc, then netc on the PATH.

ctypes.CDLL releases the GIL around every call, so a run lets other Python threads go on.
"""
import ctypes
import os
import shutil

# What these bindings were written for: runtime/netrt.h's NETRT_ABI_VERSION (the soname of
# libnetrt.so carries it) and NETRT_MAX_RANK. tests/python checks both against the header.
ABI_VERSION = 3
MAX_RANK = 8
SONAME = "libnetrt.so.%d" % ABI_VERSION

_here = os.path.dirname(os.path.abspath(__file__))
# python/netc/ in a checkout: the build tree is <checkout>/build
_checkout_build = os.path.join(os.path.dirname(os.path.dirname(_here)), "build")

try:
    from . import _install
except ImportError:  # the source tree: no _install.py
    _install = None


class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("rank", ctypes.c_int32), ("shape", ctypes.c_int64 * MAX_RANK)]


class Variant(ctypes.Structure):
    _fields_ = [("cpu", ctypes.c_char_p), ("features", ctypes.c_char_p), ("required", ctypes.c_uint64),
                ("run", ctypes.c_void_p)]


class ModelDesc(ctypes.Structure):
    # the ABI 2 prefix of netrt_model_desc, which every loadable model has (an ABI 2 descriptor
    # ends here; the profile table after it is not bound)
    _fields_ = [("abi_version", ctypes.c_uint32), ("desc_size", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("ninputs", ctypes.c_int32), ("noutputs", ctypes.c_int32),
                ("inputs", ctypes.POINTER(TensorInfo)), ("outputs", ctypes.POINTER(TensorInfo)),
                ("workspace_size", ctypes.c_uint64), ("workspace_align", ctypes.c_uint64),
                ("arch", ctypes.c_char_p), ("nvariants", ctypes.c_int32), ("variants", ctypes.POINTER(Variant))]


def _candidates():
    """(path, where it came from) for libnetrt, in lookup order."""
    env = os.environ.get("NETC_LIBNETRT")
    if env:
        return [(env, "$NETC_LIBNETRT")]
    if _install is not None:
        return [(os.path.normpath(os.path.join(_here, _install.LIBNETRT)), "the installed prefix")]
    return [(os.path.join(_checkout_build, SONAME), "the source tree's build/")]


def _load():
    tried = []
    for path, where in _candidates():
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), path
            except OSError as e:
                raise ImportError("netc: cannot load libnetrt from %s (%s): %s" % (where, path, e)) from None
        tried.append("%s (%s)" % (path, where))
    raise ImportError("netc: libnetrt not found; tried %s. Build it (cmake --build build) or set NETC_LIBNETRT "
                      "to a libnetrt.so" % ", ".join(tried))


lib, path = _load()

_P = ctypes.c_void_p


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


netrt_open = _fn("netrt_open", _P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t)
netrt_close = _fn("netrt_close", None, _P)
netrt_desc = _fn("netrt_desc", ctypes.POINTER(ModelDesc), _P)
netrt_variant_selected = _fn("netrt_variant_selected", ctypes.POINTER(Variant), _P)
netrt_num_inputs = _fn("netrt_num_inputs", ctypes.c_int, _P)
netrt_num_outputs = _fn("netrt_num_outputs", ctypes.c_int, _P)
netrt_input = _fn("netrt_input", ctypes.POINTER(TensorInfo), _P, ctypes.c_int)
netrt_output = _fn("netrt_output", ctypes.POINTER(TensorInfo), _P, ctypes.c_int)
netrt_alloc_workspace = _fn("netrt_alloc_workspace", _P, _P)
netrt_free_workspace = _fn("netrt_free_workspace", None, _P)
netrt_run = _fn("netrt_run", ctypes.c_int, _P, ctypes.POINTER(_P), ctypes.POINTER(_P), _P, _P)
netrt_status_str = _fn("netrt_status_str", ctypes.c_char_p, ctypes.c_int)
netrt_pool_create = _fn("netrt_pool_create", _P, ctypes.c_int)
netrt_pool_threads = _fn("netrt_pool_threads", ctypes.c_int, _P)
netrt_pool_destroy = _fn("netrt_pool_destroy", None, _P)
netrt_arch = _fn("netrt_arch", ctypes.c_char_p)


def netc_binary():
    """The netc executable netc.compile runs, or None."""
    env = os.environ.get("NETC_BIN")
    if env:
        return env
    p = os.path.normpath(os.path.join(_here, _install.NETC)) if _install else os.path.join(_checkout_build, "netc")
    return p if os.access(p, os.X_OK) else shutil.which("netc")

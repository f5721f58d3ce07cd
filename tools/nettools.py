"""nettools.py — small helpers shared by the Python tools: the .net writer's vocabulary (keywords,
attribute defaults, value formatting) shared by the converters, and safetensors and .npy writers
that need only numpy (no safetensors package on Debian 12)."""
import json
import math
import re
import struct

import numpy as np

KEYWORDS = {"net", "input", "output", "def", "return", "true", "false"}

# Attribute defaults of the language (compiler/ops.def): an attribute equal to its default is
# left out so the file reads like hand-written .net.
DEFAULTS = {
    "conv2d": {"stride": 1, "pad": 0, "dilation": 1, "groups": 1, "bias": True},
    "conv_transpose2d": {"stride": 1, "pad": 0, "output_pad": 0, "dilation": 1, "groups": 1,
                         "bias": True},
    "linear": {"bias": True},
    "batchnorm": {"eps": 1e-5},
    "layernorm": {"eps": 1e-5, "affine": True},
    "scale": {"bias": False},
    "leaky_relu": {"slope": 0.01, "inplace": False},
    "prelu": {"num_parameters": 1},
    "gelu": {"approximate": "none"},
    "elu": {"alpha": 1.0, "inplace": False},
    "maxpool2d": {"pad": 0, "dilation": 1, "ceil_mode": False},
    "avgpool2d": {"pad": 0, "ceil_mode": False, "count_include_pad": True},
    "concat": {"axis": 1},
    "slice": {"axis": 1, "start": 0},
    "pad": {"mode": "constant", "value": 0.0},
    "upsample": {"mode": "nearest"},
    "softmax": {"axis": 1},
    "dropout": {"p": 0.5},
}
for _op in ("relu", "relu6", "clamp", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid"):
    DEFAULTS[_op] = {"inplace": False}


class Unmapped(Exception):
    """Raised by a node's mapping when the node has no .net equivalent; the message says why."""


def scale_terms(op, vec, const_first):
    """The weight and bias (None: none) of `scale` computing x op c (c op x when const_first),
    c a float64 vector of one value per channel; op is add, sub, mul or div."""
    ones = np.ones_like(vec)
    if op == "mul":
        return vec, None
    if op == "add":
        return ones, vec
    if op == "sub":
        return (-ones, vec) if const_first else (ones, -vec)
    if const_first:
        raise Unmapped("a constant divided by a tensor (the language has no reciprocal)")
    with np.errstate(divide="ignore"):
        return 1.0 / vec, None


def fmt_value(v):
    """A Python attribute value in .net syntax."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise Unmapped(f"non-finite attribute value {v}")
        if v == int(v) and abs(v) < 1e15:
            return f"{v:.1f}"
        return repr(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(e) for e in v) + "]"
    raise Unmapped(f"attribute value {v!r} has no .net form")


def pair(v):
    """An int or a 2-sequence as the shortest .net form: 3 for (3, 3), [1, 3] otherwise."""
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return int(v[0])
        if len(v) != 2:
            raise Unmapped(f"expected an int or a pair, got {v!r}")
        a, b = int(v[0]), int(v[1])
        return a if a == b else [a, b]
    return int(v)


def same_default(value, default):
    if isinstance(default, bool) or isinstance(value, bool):
        return value is default
    if isinstance(value, list):
        return False
    return value == default


def identifier(base):
    """`base` as a .net identifier: other characters -> '_', a '_' before a leading digit or a
    keyword's end."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "t"
    if base[0].isdigit():
        base = "_" + base
    if base in KEYWORDS:
        base = base + "_"
    return base


def fresh_name(base, used):
    """A binding named after `base` (sanitised), unique among `used` (base, base_1, ...); added
    to `used`."""
    base = identifier(base)
    name, k = base, 1
    while name in used:
        name = f"{base}_{k}"
        k += 1
    used.add(name)
    return name


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float32 written as F32). Sorted by name, like the
    reference implementation."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[name], dtype=np.float32))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_outputs(output, text, weights, tensors):
    """A converter's results: the .net text to `output` (stdout when None) and the tensors to
    `weights` (skipped when None). Both are written to temporary files beside their targets and
    renamed into place only when both are complete, so a failure leaves neither half-written."""
    import os
    import sys
    done = []
    try:
        if weights:
            write_safetensors(weights + ".tmp", tensors)
            done.append(weights)
        if output:
            with open(output + ".tmp", "w") as f:
                f.write(text)
            done.append(output)
        for p in done:
            os.replace(p + ".tmp", p)
    except BaseException:
        for p in done + [weights, output]:
            if p and os.path.exists(p + ".tmp"):
                os.remove(p + ".tmp")
        raise
    if not output:
        sys.stdout.write(text)


def write_npy(path, a):
    np.save(path, np.ascontiguousarray(np.asarray(a, dtype="<f4")))

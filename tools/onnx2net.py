#!/usr/bin/python3
"""onnx2net.py — converts an ONNX model into a flat .net graph and a safetensors file.

    onnx2net.py model.onnx -o model.net --weights model.safetensors

Opsets 11 to 17 (attributes that became inputs are read from either place); external data is read
from the model's directory. Every input must be float32 with a fixed shape. Constants and shape
subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as PyTorch exports them) are folded
with numpy; Mul(x, Sigmoid(x)), Mul(x, HardSigmoid(x)) and the erf form of GELU are recognised as
silu, hardswish and gelu; Reshape -> Transpose(0,2,1,3,4) -> Reshape is a channel_shuffle; the
decomposed LayerNorm of opsets < 17 and LayerNormalization over the channels are a layernorm.
Transpose(0,2,3,1) of an NCHW tensor is a channels-last view with no statement: LayerNorm over its
last axis, MatMul by a constant (a 1x1 conv), elementwise ops and Transpose(0,3,1,2) back are
computed on the NCHW tensor; anything else reading it is refused. Add/Sub/Mul/Div with a constant
holding one value per channel (or one value) is a scale.
A binding is named after its ONNX node, with PyTorch's scopes shortened
(`/layer1/layer1.0/conv1/Conv` -> `layer1_0_conv1`), or after the graph output it produces, so its
weights are `layer1_0_conv1.weight`, ... Where an ONNX op has no exact .net equivalent the
conversion is refused: one message lists each such op with its count and its first node, the exit
status is 1 and nothing is written. A .net is never an approximation of the ONNX graph.

Library use: convert(model) -> (net_text, tensors, unmapped), unmapped a list of
(op_type, node name, reason); the text is only valid when unmapped is empty.
"""
import argparse
import math
import os
import sys
from collections import Counter, OrderedDict

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nettools import (DEFAULTS, Unmapped, fmt_value, fresh_name, identifier, pair,  # noqa: E402
                      same_default, scale_terms, write_outputs)

# PyTorch exports opsets 11 to 17 (what the tests cover); older ones are read too, their
# ops' earlier forms (attributes that later became inputs) included, legacy attributes refused
MIN_OPSET, MAX_OPSET = 1, 17
LEGACY = ("consumed_inputs", "broadcast", "spatial", "is_test", "paddings")
FLT_LOWEST = -3.4028234663852886e38     # the pad value of an explicit max-pool padding


def f32(v):
    """A float32 attribute as the shortest decimal that reads back as the same float32."""
    return float(str(np.float32(v)))


class Tensor:
    """A .net binding and its shape."""

    def __init__(self, name, shape):
        self.name, self.shape = name, tuple(int(d) for d in shape)


class Const:
    """A value known at conversion time (initializers, Constant, folded shape arithmetic)."""

    def __init__(self, value):
        self.value = np.asarray(value)


class Pending:
    """An intermediate with no .net tensor: the 5-D view and transpose of a channel shuffle
    ("shuffle_v", "shuffle_t"), or the channels-last view of an NCHW tensor ("nhwc": src is the
    NCHW binding, info["shape"] the [N, H, W, C] shape the ONNX graph sees)."""

    def __init__(self, kind, src, **info):
        self.kind, self.src, self.info = kind, src, info


# Transpose(perm=NHWC) of an NCHW tensor is its channels-last view; Transpose(perm=NCHW) of that
# view is the tensor again. Axis i of the view is axis NHWC[i] of the tensor.
NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _nhwc(t):
    """The channels-last view of the NCHW binding t (no statement)."""
    n, c, h, w = t.shape
    return Pending("nhwc", t, shape=(n, h, w, c))


def _is_nhwc(v):
    return isinstance(v, Pending) and v.kind == "nhwc"


def _same(t):
    return t


CHANNELS_LAST = ("{op} of a channels-last view (Transpose perm [0, 2, 3, 1] of an NCHW tensor): "
                 "the language has no transpose, and onnx2net computes on such a view only a "
                 "LayerNorm over its last axis, a MatMul by a constant, elementwise ops and the "
                 "inverse Transpose")


class Opaque:
    """The output of a node that could not be mapped: later nodes are still looked at (to list
    every unsupported op), but are not reported for depending on it."""

    def __init__(self, shape=None):
        self.shape = shape


class Node:
    def __init__(self, op, name, inputs, outputs, attrs):
        self.op, self.name, self.inputs, self.outputs, self.attrs = op, name, inputs, outputs, attrs


def _attrs(proto):
    out = {}
    for a in proto.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [e.decode() for e in v]
        out[a.name] = v
    return out


def _scoped(name):
    """The parts of a PyTorch scope name (`/layer1/layer1.0/conv1/Conv`), a part that prefixes
    the next one dropped (`layer1` before `layer1.0`), '.' -> '_'."""
    parts = [p for p in name.split("/") if p]
    keep = [p for i, p in enumerate(parts)
            if not (i + 1 < len(parts) and parts[i + 1].startswith(p + "."))]
    return [p.replace(".", "_") for p in keep]


class Converter:
    def __init__(self, model, name, input_shapes=None):
        self.model = model
        self.input_shapes = dict(input_shapes or {})
        self.graph = model.graph
        self.name = name
        self.lines = []
        self.tensors = {}
        self.unmapped = []
        self.used = set()
        self.input_bindings = set()
        self.env = {}
        self.cur_op = ""
        self.opset = 1
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = imp.version

    # ---- names -----------------------------------------------------------------------------
    def fresh(self, base):
        return fresh_name(base, self.used)

    def base_of(self, node, i=0):
        out = node.outputs[i] if i < len(node.outputs) else ""
        if out in self.graph_outputs:
            return out
        if node.name:
            parts = _scoped(node.name)
            # `/layer1/layer1.0/conv1/Conv` is the only node of its scope: `layer1_0_conv1`
            if (len(parts) > 1 and self.scope_count.get(node.name.rsplit("/", 1)[0], 0) == 1):
                parts = parts[:-1]
            return "_".join(parts) + (f"_{i}" if i else "")
        return out or node.op.lower()

    # ---- values ----------------------------------------------------------------------------
    def get(self, name):
        if name == "":
            return None
        v = self.env.get(name)
        if v is None:
            raise Unmapped(f"input {name!r} is not produced by any node")
        return v

    def tensor(self, name):
        v = self.get(name)
        if isinstance(v, Opaque):
            raise _Skip()
        if isinstance(v, Const):
            raise Unmapped(f"a constant tensor {name!r} used as an operand (no constant tensors "
                           "in .net)")
        if _is_nhwc(v):
            raise Unmapped(CHANNELS_LAST.format(op=self.cur_op))
        if not isinstance(v, Tensor):
            raise Unmapped(f"{name!r} has no .net tensor here")
        return v

    def const(self, name, what="an input"):
        """The numpy value of an input that must be known at conversion time ('' -> None)."""
        if name == "":
            return None
        v = self.get(name)
        if isinstance(v, Opaque):
            raise _Skip()
        if not isinstance(v, Const):
            raise Unmapped(f"{what} ({name!r}) is computed at run time; .net needs it constant")
        return v.value

    def ints(self, name, what):
        v = self.const(name, what)
        return None if v is None else [int(e) for e in v.reshape(-1)]

    def view(self, node, i=0):
        """Input i as (its NCHW binding, the shape the ONNX graph sees, the channel axis in that
        shape, and what turns a result computed on the binding back into the graph's value):
        a channels-last view is computed on its NCHW tensor."""
        v = self.get(node.inputs[i])
        if _is_nhwc(v):
            return v.src, v.info["shape"], 3, _nhwc
        t = self.tensor(node.inputs[i])
        return t, t.shape, 1, _same

    def value(self, node, i=0):
        """Input i as it is (a tensor or a channels-last view), for ops that pass it on."""
        x, _, _, wrap = self.view(node, i)
        return wrap(x)

    # ---- emission --------------------------------------------------------------------------
    def emit(self, base, op, inputs, shape, positional=(), attrs=None, comment=None):
        parts = [t.name for t in inputs] + [fmt_value(p) for p in positional]
        defaults = DEFAULTS.get(op, {})
        for k, v in (attrs or {}).items():
            if v is None or (k in defaults and same_default(v, defaults[k])):
                continue
            parts.append(f"{k}={fmt_value(v)}")
        name = self.fresh(base)
        line = f"{name} = {op}({', '.join(parts)})"
        self.lines.append(line + (f"  # {comment}" if comment else ""))
        return Tensor(name, shape)

    def set_out(self, node, value, i=0):
        if i < len(node.outputs) and node.outputs[i]:
            self.env[node.outputs[i]] = value

    def weights(self, binding, params):
        for pname, a in params.items():
            self.tensors[f"{binding.name}.{pname}"] = np.ascontiguousarray(a, dtype=np.float32)

    # ---- driver ----------------------------------------------------------------------------
    def run(self):
        g = self.graph
        if self.opset < MIN_OPSET or self.opset > MAX_OPSET:
            self.unmapped.append(("(model)", "", f"opset {self.opset} (onnx2net reads opsets "
                                  f"{MIN_OPSET} to {MAX_OPSET})"))
        for imp in self.model.opset_import:
            if imp.domain not in ("", "ai.onnx"):
                self.unmapped.append(("(model)", "", f"operator set of domain {imp.domain!r}"))
        self.graph_outputs = [o.name for o in g.output]
        self.inferred = inferred_shapes(self.model)
        for init in g.initializer:
            self.env[init.name] = Const(numpy_helper.to_array(init))
        inputs = []
        for n in self.input_shapes:
            if n not in {vi.name for vi in g.input}:
                self.unmapped.append(("(input)", n, "--input-shape names no input of the model"))
        for vi in g.input:
            if vi.name in self.env:
                continue
            try:
                inputs.append(self.graph_input(vi))
            except Unmapped as e:
                self.unmapped.append(("(input)", vi.name, str(e)))
                self.env[vi.name] = Opaque()
        nodes = fuse_patterns([Node(n.op_type, n.name, list(n.input), list(n.output),
                                    _attrs(n)) for n in g.node if self.domain_ok(n)],
                              self.env, self.graph_outputs, self.opset)
        # (the transposes to and from a channels-last view write no statement)
        self.scope_count = Counter(n.name.rsplit("/", 1)[0] for n in nodes
                                   if n.name and n.op != "Constant"
                                   and not (n.op == "Transpose"
                                            and n.attrs.get("perm") in (NHWC, NCHW)))
        for node in nodes:
            self.cur_op = node.op.lstrip("_")
            try:
                self.map_node(node)
            except _Skip:
                for o in node.outputs:
                    self.env.setdefault(o, Opaque())
            except Unmapped as e:
                self.unmapped.append((node.op.lstrip("_"), node.name or node.outputs[0], str(e)))
                # with ONNX's inferred shape, the nodes after this one are still looked at
                # (not after a channels-last input: its result's layout is not known)
                cl = any(_is_nhwc(self.env.get(i)) for i in node.inputs if i)
                for o in node.outputs:
                    s = self.inferred.get(o)
                    self.env[o] = Tensor("__unmapped__", s) if s and not cl else Opaque()
        outputs = self.map_outputs()
        head = ["# converted by tools/onnx2net.py from "
                f"{self.model.producer_name or 'an ONNX model'}"
                f"{' ' + self.model.producer_version if self.model.producer_version else ''}"
                f" (opset {self.opset})", f"net {self.name}", ""] + inputs + [""]
        text = "\n".join(head + self.lines + ["", "output " + ", ".join(outputs), ""])
        return text, self.tensors, self.unmapped

    def domain_ok(self, n):
        if n.domain not in ("", "ai.onnx"):
            self.unmapped.append((f"{n.domain}.{n.op_type}", n.name, "an operator outside the "
                                  "default ONNX domain"))
            for o in n.output:
                self.env[o] = Opaque()
            return False
        return True

    def graph_input(self, vi):
        t = vi.type
        if not t.HasField("tensor_type"):
            raise Unmapped("not a tensor (the language has float32 tensors only)")
        et = t.tensor_type.elem_type
        if et != onnx.TensorProto.FLOAT:
            raise Unmapped(f"dtype {onnx.TensorProto.DataType.Name(et).lower()} (the language "
                           "has float32 inputs only)")
        dims = []
        given = self.input_shapes.pop(vi.name, None)
        model_dims = list(t.tensor_type.shape.dim)
        if given is not None and len(given) != len(model_dims):
            raise Unmapped(f"--input-shape {list(given)} has rank {len(given)}, the model's input "
                           f"rank {len(model_dims)}")
        for i, d in enumerate(model_dims):
            fixed = d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            if given is not None:
                if fixed is not None and fixed != given[i]:
                    raise Unmapped(f"--input-shape {list(given)}: dimension {i} is {fixed} in "
                                   "the model")
                fixed = given[i]
            if fixed is None:
                raise Unmapped(f"dimension {d.dim_param or '?'} is not fixed (the language has "
                               "fixed shapes: give --input-shape or export with a fixed size)")
            dims.append(fixed)
        if not dims:
            raise Unmapped("a rank-0 input (the language has no scalars)")
        name = self.fresh(vi.name)
        self.env[vi.name] = Tensor(name, dims)
        self.input_bindings.add(name)
        return f"input {name}: {fmt_value(dims)}"

    def map_outputs(self):
        names = []
        for o in self.graph.output:
            v = self.env.get(o.name)
            if isinstance(v, Opaque) or v is None:
                continue
            et = o.type.tensor_type.elem_type if o.type.HasField("tensor_type") else 0
            try:
                if et not in (0, onnx.TensorProto.FLOAT):
                    raise Unmapped(f"dtype {onnx.TensorProto.DataType.Name(et).lower()} (the "
                                   "language has float32 outputs only)")
                if isinstance(v, Const):
                    raise Unmapped("the output is a constant (no constant tensors in .net)")
                if _is_nhwc(v):
                    raise Unmapped("a channels-last view (Transpose perm [0, 2, 3, 1]) as an "
                                   "output (the language has no transpose)")
                if isinstance(v, Pending):
                    raise Unmapped("a 5-D view outside a channel shuffle (the language has no "
                                   "general reshape)")
                if not isinstance(v, Tensor):
                    raise Unmapped("the output has no .net tensor")
                if v.name in names or v.name in self.input_bindings:
                    # an Identity of an input or of another output: .net outputs are distinct
                    # bindings, so an explicit copy (dropout is the identity at inference)
                    v = self.emit(o.name, "dropout", [v], v.shape, attrs={"p": 0.0},
                                  comment="Identity")
                names.append(v.name)
            except Unmapped as e:
                self.unmapped.append(("(output)", o.name, str(e)))
        return names

    def map_node(self, node):
        vals = [self.env.get(i) if i else None for i in node.inputs]
        if node.op not in HANDLERS and node.op not in FOLD:
            raise Unmapped(NO_NET_OP.get(node.op, "no .net equivalent"))   # whatever its inputs
        if any(isinstance(v, Opaque) for v in vals):
            raise _Skip()
        present = [v for v in vals if v is not None]
        if node.op in FOLD and present and all(isinstance(v, Const) for v in present):
            outs = FOLD[node.op](self, node, [v.value if v is not None else None for v in vals])
            for i, o in enumerate(outs):
                self.set_out(node, Const(o), i)
            return
        for a in LEGACY:
            if a in node.attrs and not (a == "is_test" or (a == "spatial" and node.attrs[a] == 1)):
                raise Unmapped(f"the legacy attribute {a!r} (opset < 7)")
        if node.op == "Reshape" and "shape" in node.attrs:
            raise Unmapped("the legacy shape attribute (opset < 5)")
        h = HANDLERS.get(node.op)
        if h is None:
            raise Unmapped(NO_NET_OP.get(node.op, "no .net equivalent"))
        if node.op not in SHAPE_OPS and not any(isinstance(v, (Tensor, Pending)) for v in present):
            raise Unmapped("an op on constants only (no constant tensors in .net)")
        h(self, node)

    # ---- helpers ---------------------------------------------------------------------------
    def x(self, node, i=0, rank=None, what=None):
        t = self.tensor(node.inputs[i])
        ranks = rank if isinstance(rank, tuple) else (rank,)
        if rank is not None and len(t.shape) not in ranks:
            raise Unmapped(f"a rank-{len(t.shape)} input (the language's {what or node.op} takes "
                           f"rank {' or '.join(map(str, ranks))})")
        return t

    def only_first_output(self, node):
        if any(o for o in node.outputs[1:]):
            raise Unmapped(f"{node.op}'s optional outputs are used")

    def unary(self, node, op, attrs=None):
        """An elementwise op: on a channels-last view, on its NCHW tensor."""
        self.only_first_output(node)
        x, _, _, wrap = self.view(node)
        self.set_out(node, wrap(self.emit(self.base_of(node), op, [x], x.shape, attrs=attrs)))


def inferred_shapes(model):
    """{value name: fixed shape} from ONNX's shape inference (best effort, used only to keep
    looking for unsupported ops after one)."""
    try:
        m = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference is optional here
        return {}
    out = {}
    for vi in list(m.graph.value_info) + list(m.graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else 0
                    for d in vi.type.tensor_type.shape.dim]
            if dims and all(d > 0 for d in dims):
                out[vi.name] = tuple(dims)
    return out


class _Skip(Exception):
    """A node depends on an unmapped one: not reported again."""


# ---- patterns -------------------------------------------------------------------------------
def fuse_patterns(nodes, env, graph_outputs, opset):
    """Rewrites Mul(x, Sigmoid(x)) -> _SiLU, Mul(x, HardSigmoid(x) with alpha 1/6) -> HardSwish,
    Mul(x, Tanh(Softplus(x))) -> _Mish, MatMul(x, W) + b -> Gemm, the erf form of GELU
    (0.5 * x * (1 + erf(x / sqrt 2)), its three orders of multiplication) -> _Gelu, a softmax
    between a transpose and its inverse -> _Softmax, LayerNorm as PyTorch exports it below opset
    17 ((x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps), then * weight and + bias when they are
    constants) -> _LayerNorm; then drops the nodes nothing reads any more."""
    consts = {n: v.value for n, v in env.items() if isinstance(v, Const)}
    for n in nodes:
        if n.op == "Constant" and "value" in n.attrs:
            consts[n.outputs[0]] = np.asarray(n.attrs["value"])
        elif n.op == "Identity" and n.inputs[0] in consts:
            # the exporter's alias of an identical initializer
            consts[n.outputs[0]] = consts[n.inputs[0]]
    prod = {o: n for n in nodes for o in n.outputs}
    readers = {}
    for n in nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n)

    def cval(name, want, tol=1e-6):
        v = consts.get(name)
        return (v is not None and v.size == 1
                and abs(float(v.reshape(-1)[0]) - want) <= tol * abs(want))

    def p(name, op):
        n = prod.get(name)
        return n if n is not None and n.op == op else None

    def only_reader(name):
        r = readers.get(name, [])
        return r[0] if len(r) == 1 and name not in graph_outputs else None

    fused = {}          # id(last node of a layer norm) -> the _LayerNorm node
    for n in nodes:
        ln = _layernorm(n, p, consts, cval) if n.op == "Div" else None
        if ln is None:
            continue
        x, axes, eps = ln
        tail, w, b = n, "", ""
        r = only_reader(tail.outputs[0])
        if r is not None and r.op == "Mul" and len(r.inputs) == 2:
            other = r.inputs[1] if r.inputs[0] == tail.outputs[0] else r.inputs[0]
            if other in consts:
                tail, w = r, other
                r = only_reader(tail.outputs[0])
        if r is not None and r.op == "Add" and len(r.inputs) == 2:
            other = r.inputs[1] if r.inputs[0] == tail.outputs[0] else r.inputs[0]
            if other in consts:
                tail, b = r, other
        name = tail.name.rsplit("/", 1)[0] + "/LayerNorm" if "/" in tail.name else tail.name
        fused[id(tail)] = Node("_LayerNorm", name, [x, w, b], tail.outputs,
                               {"axes": axes, "epsilon": eps})

    out = []
    for n in nodes:
        if id(n) in fused:
            n = fused[id(n)]
        elif n.op == "Mul" and len(n.inputs) == 2:
            a, b = n.inputs
            for x, y in ((a, b), (b, a)):
                s = p(y, "Sigmoid")
                if s is not None and s.inputs[0] == x:
                    n = Node("_SiLU", n.name, [x], n.outputs, {})
                    break
                h = p(y, "HardSigmoid")
                if (h is not None and h.inputs[0] == x
                        and abs(h.attrs.get("alpha", 0.2) - 1 / 6) < 1e-6
                        and abs(h.attrs.get("beta", 0.5) - 0.5) < 1e-7):
                    n = Node("HardSwish", n.name, [x], n.outputs, {})
                    break
                t = p(y, "Tanh")
                sp = p(t.inputs[0], "Softplus") if t is not None else None
                if sp is not None and sp.inputs[0] == x:
                    n = Node("_Mish", n.name, [x], n.outputs, {})
                    break
            if n.op == "Mul":
                g = _gelu(n, p, cval)
                if g is not None:
                    n = Node("_Gelu", n.name, [g], n.outputs, {})
        elif n.op == "Add" and len(n.inputs) == 2:
            # MatMul(x, W) + b, W and b constant: a linear with a bias
            for mm, b in ((n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])):
                m = p(mm, "MatMul")
                w, bv = consts.get(m.inputs[1]) if m else None, consts.get(b)
                if (w is not None and bv is not None and w.ndim == 2 and bv.ndim <= 1
                        and bv.size == w.shape[1]):
                    n = Node("Gemm", n.name, [m.inputs[0], m.inputs[1], b], n.outputs, {})
                    break
        elif n.op == "Transpose":
            # Transpose(P) -> Softmax(last axis) -> Transpose(P^-1): PyTorch's export of a
            # softmax over another axis at opsets < 13
            s = p(n.inputs[0], "Softmax")
            t1 = p(s.inputs[0], "Transpose") if s is not None else None
            p1, p2 = (t1.attrs.get("perm") if t1 else None), n.attrs.get("perm")
            if p1 and p2 and len(p1) == len(p2) and [p1[i] for i in p2] == list(range(len(p1))):
                r = len(p1)
                ax = s.attrs.get("axis", -1 if opset >= 13 else 1) % r
                if opset >= 13 or ax == r - 1:
                    n = Node("_Softmax", s.name, [t1.inputs[0]], n.outputs, {"axis": p1[ax]})
        out.append(n)
    # dead nodes (a pattern's inner nodes) are dropped
    live = set(graph_outputs)
    kept = []
    for n in reversed(out):
        if any(o in live for o in n.outputs):
            kept.append(n)
            live.update(i for i in n.inputs if i)
    return kept[::-1]


def _layernorm(d, p, consts, cval):
    """(x, axes, eps) when Div node d ends (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps),
    both means over the same axes with their dims kept, else None."""
    if len(d.inputs) != 2:
        return None
    sub, sq = p(d.inputs[0], "Sub"), p(d.inputs[1], "Sqrt")
    add = p(sq.inputs[0], "Add") if sq is not None else None
    if sub is None or add is None or len(add.inputs) != 2:
        return None
    for rv, e in (add.inputs, add.inputs[::-1]):
        r2, ev = p(rv, "ReduceMean"), consts.get(e)
        if r2 is not None and ev is not None and ev.size == 1:
            break
    else:
        return None
    dev = d.inputs[0]
    sq2 = p(r2.inputs[0], "Pow")
    if not (sq2 is not None and sq2.inputs[0] == dev and cval(sq2.inputs[1], 2.0)):
        sq2 = p(r2.inputs[0], "Mul")               # (x - mean) * (x - mean)
        if sq2 is None or sq2.inputs != [dev, dev]:
            return None
    x, m = sub.inputs
    r1 = p(m, "ReduceMean")
    if r1 is None or r1.inputs[0] != x:
        return None
    a1, a2 = _reduce_axes(r1, consts), _reduce_axes(r2, consts)
    if (a1 is None or a1 != a2 or r1.attrs.get("keepdims", 1) != 1
            or r2.attrs.get("keepdims", 1) != 1):
        return None
    return x, a1, float(ev.reshape(-1)[0])


def _reduce_axes(n, consts):
    """A ReduceMean's axes (an attribute, or the second input from opset 18), None if unknown."""
    if "axes" in n.attrs:
        return [int(a) for a in n.attrs["axes"]]
    if len(n.inputs) > 1 and n.inputs[1] in consts:
        return [int(a) for a in consts[n.inputs[1]].reshape(-1)]
    return None


def _gelu(n, p, cval):
    """x when Mul node n ends 0.5 * x * (1 + erf(x / sqrt 2)), else None."""
    def one_plus_erf(name):
        a = p(name, "Add")
        if a is None:
            return None
        for e, c in ((a.inputs[0], a.inputs[1]), (a.inputs[1], a.inputs[0])):
            er = p(e, "Erf")
            if er is not None and cval(c, 1.0):
                d = p(er.inputs[0], "Div")
                if d is not None and cval(d.inputs[1], math.sqrt(2), 1e-4):
                    return d.inputs[0]
                m = p(er.inputs[0], "Mul")
                if m is not None and cval(m.inputs[1], 1 / math.sqrt(2), 1e-4):
                    return m.inputs[0]
        return None

    def mul_parts(name):
        m = p(name, "Mul")
        return m.inputs if m is not None else None

    a, b = n.inputs
    for u, v in ((a, b), (b, a)):
        if cval(v, 0.5):                      # (x * (1 + erf)) * 0.5
            parts = mul_parts(u)
            if parts:
                for q, r in (parts, parts[::-1]):
                    x = one_plus_erf(r)
                    if x is not None and x == q:
                        return x
        x = one_plus_erf(v)
        if x is not None:
            if u == x:
                continue
            parts = mul_parts(u)              # (x * 0.5) * (1 + erf)
            if parts and ((parts[0] == x and cval(parts[1], 0.5))
                          or (parts[1] == x and cval(parts[0], 0.5))):
                return x
        parts = mul_parts(v)                  # x * ((1 + erf) * 0.5)
        if parts:
            for q, r in (parts, parts[::-1]):
                x = one_plus_erf(q)
                if x is not None and x == u and cval(r, 0.5):
                    return x
    return None


# ---- constant folding -----------------------------------------------------------------------
def _fold_reshape(self, node, v):
    return [v[0].reshape(reshape_target(v[0].shape, v[1], node.attrs.get("allowzero", 0)))]


def _fold_unsqueeze(self, node, v):
    axes = node.attrs.get("axes") if self.opset < 13 else v[1]
    a = v[0]
    r = a.ndim + len(axes)
    for ax in sorted(int(e) % r for e in np.asarray(axes).reshape(-1)):
        a = np.expand_dims(a, ax)
    return [a]


def _fold_squeeze(self, node, v):
    axes = node.attrs.get("axes") if self.opset < 13 else (v[1] if len(v) > 1 else None)
    if axes is None:
        return [np.squeeze(v[0])]
    return [np.squeeze(v[0], axis=tuple(int(e) % v[0].ndim for e in np.asarray(axes).reshape(-1)))]


def _fold_slice(self, node, v):
    a = v[0]
    if self.opset < 10:
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes, steps = node.attrs.get("axes", range(len(starts))), [1] * len(starts)
    else:
        starts, ends = v[1], v[2]
        axes = v[3] if len(v) > 3 and v[3] is not None else range(len(starts))
        steps = v[4] if len(v) > 4 and v[4] is not None else [1] * len(starts)
    idx = [slice(None)] * a.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        idx[int(ax) % a.ndim] = slice(int(s), int(e), int(st))
    return [a[tuple(idx)]]


def _fold_gather(self, node, v):
    return [np.take(v[0], v[1], axis=node.attrs.get("axis", 0))]


def _fold_concat(self, node, v):
    return [np.concatenate([e for e in v if e is not None], axis=node.attrs.get("axis", 1))]


def _fold_cast(self, node, v):
    return [v[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[node.attrs["to"]])]


def _fold_shape_of_const(self, node, v):
    s = np.array(v[0].shape, dtype=np.int64)
    return [s[node.attrs.get("start", 0):node.attrs.get("end", len(s))]]


def _np2(f):
    return lambda self, node, v: [f(v[0], v[1]).astype(np.result_type(v[0], v[1]))]


def _fold_div(self, node, v):
    a, b = v
    if np.issubdtype(a.dtype, np.integer):
        return [np.trunc(a / b).astype(a.dtype)]
    return [a / b]


FOLD = {
    "Identity": lambda s, n, v: [v[0]],
    "Reshape": _fold_reshape,
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Slice": _fold_slice,
    "Gather": _fold_gather,
    "Concat": _fold_concat,
    "Cast": _fold_cast,
    "Shape": _fold_shape_of_const,
    "Add": _np2(np.add), "Sub": _np2(np.subtract), "Mul": _np2(np.multiply), "Div": _fold_div,
    "Mod": lambda s, n, v: [(np.fmod if n.attrs.get("fmod", 0) else np.mod)(v[0], v[1])],
    "Pow": lambda s, n, v: [np.power(v[0], v[1]).astype(v[0].dtype)],
    "Floor": lambda s, n, v: [np.floor(v[0])],
    "Ceil": lambda s, n, v: [np.ceil(v[0])],
    "Sqrt": lambda s, n, v: [np.sqrt(v[0])],
    "Equal": lambda s, n, v: [np.equal(v[0], v[1])],
    "Where": lambda s, n, v: [np.where(v[0], v[1], v[2])],
    "ConstantOfShape": lambda s, n, v: [np.full(
        [int(e) for e in v[0]], n.attrs["value"].reshape(-1)[0] if "value" in n.attrs else 0.0,
        dtype=n.attrs["value"].dtype if "value" in n.attrs else np.float32)],
    "Range": lambda s, n, v: [np.arange(v[0], v[1], v[2]).astype(v[0].dtype)],
    "Transpose": lambda s, n, v: [np.transpose(v[0], n.attrs.get("perm"))],
    "Flatten": lambda s, n, v: [v[0].reshape(int(np.prod(v[0].shape[:n.attrs.get("axis", 1)])),
                                             -1)],
}
# ops handled even when their inputs are all constants or shapes
SHAPE_OPS = {"Constant", "Shape", "ConstantOfShape"}


def reshape_target(shape, target, allowzero=0):
    target = [int(e) for e in np.asarray(target).reshape(-1)]
    out = []
    for i, d in enumerate(target):
        out.append(shape[i] if d == 0 and not allowzero else d)
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        total = int(np.prod(shape))
        if known == 0 or total % known:
            raise Unmapped(f"reshape of {list(shape)} to {target}")
        out[out.index(-1)] = total // known
    if int(np.prod(out)) != int(np.prod(shape)):
        raise Unmapped(f"reshape of {list(shape)} to {target}")
    return tuple(out)


# ---- op mappings ----------------------------------------------------------------------------
NO_NET_OP = {
    "Selu": "the language has no selu (contract v1: elu has no output scale)",
    "Softplus": "the language has no softplus",
    "_Mish": "the language has no mish (x * tanh(softplus(x)))",
    "Mish": "the language has no mish",
    "Erf": "the language has no erf (only inside GELU's pattern 0.5*x*(1+erf(x/sqrt 2)))",
    "Transpose": "a transpose other than a channel shuffle's and the channels-last view of an "
                 "NCHW tensor (perm [0, 2, 3, 1]) and back (the language has no transpose)",
    "InstanceNormalization": "the language has no instance norm",
}


def h_constant(self, node):
    a = node.attrs
    if "value" in a:
        v = a["value"]
    elif "value_float" in a:
        v = np.float32(a["value_float"])
    elif "value_floats" in a:
        v = np.array(a["value_floats"], dtype=np.float32)
    elif "value_int" in a:
        v = np.int64(a["value_int"])
    elif "value_ints" in a:
        v = np.array(a["value_ints"], dtype=np.int64)
    else:
        raise Unmapped(f"Constant with {', '.join(a)}")
    self.set_out(node, Const(v))


def h_shape(self, node):
    v = self.get(node.inputs[0])
    shape = v.shape if isinstance(v, Tensor) else None
    if isinstance(v, Pending):
        shape = v.info["shape"]
    if shape is None:
        raise Unmapped("Shape of a value with no known shape")
    s = np.array(shape, dtype=np.int64)
    self.set_out(node, Const(s[node.attrs.get("start", 0):node.attrs.get("end", len(s))]))


def _explicit_pads(self, node, xs, kernel, strides, dilations):
    """ONNX pads [top, left, bottom, right] of a conv or pool, auto_pad resolved."""
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * 4
        for i in range(2):
            n = xs[2 + i]
            out = -(-n // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - n, 0)
            small = total // 2
            pads[i], pads[i + 2] = ((small, total - small) if auto == "SAME_UPPER"
                                    else (total - small, small))
    else:
        raise Unmapped(f"auto_pad={auto}")
    if any(p < 0 for p in pads):
        raise Unmapped(f"negative pads {pads}")
    return pads


def h_conv(self, node):
    self.only_first_output(node)
    x = self.x(node, 0, 4, "conv2d (2-D convolutions only)")
    w = self.const(node.inputs[1], "the weight")
    b = self.const(node.inputs[2], "the bias") if len(node.inputs) > 2 else None
    if w.ndim != 4:
        raise Unmapped(f"a rank-{w.ndim} weight")
    a = node.attrs
    k = list(a.get("kernel_shape", w.shape[2:]))
    s = list(a.get("strides", [1, 1]))
    d = list(a.get("dilations", [1, 1]))
    groups = int(a.get("group", 1))
    pads = _explicit_pads(self, node, x.shape, k, s, d)
    base = self.base_of(node)
    if pads[0] != pads[2] or pads[1] != pads[3]:
        x = self.emit(base + "_pad", "pad", [x], (x.shape[0], x.shape[1], x.shape[2] + pads[0]
                      + pads[2], x.shape[3] + pads[1] + pads[3]),
                      attrs={"pad": [pads[1], pads[3], pads[0], pads[2]]},
                      comment="asymmetric padding of the conv below")
        pads = [0, 0, 0, 0]
    oh = (x.shape[2] + 2 * pads[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (x.shape[3] + 2 * pads[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    if oh < 1 or ow < 1:
        raise Unmapped("an empty output")
    y = self.emit(base, "conv2d", [x], (x.shape[0], w.shape[0], oh, ow), [w.shape[0]], {
        "kernel": pair(k), "stride": pair(s), "pad": pair(pads[:2]), "dilation": pair(d),
        "groups": groups, "bias": b is not None})
    self.weights(y, {"weight": w, **({"bias": b} if b is not None else {})})
    self.set_out(node, y)


def h_conv_transpose(self, node):
    self.only_first_output(node)
    x = self.x(node, 0, 4, "conv_transpose2d (2-D only)")
    w = self.const(node.inputs[1], "the weight")
    b = self.const(node.inputs[2], "the bias") if len(node.inputs) > 2 else None
    a = node.attrs
    k = list(a.get("kernel_shape", w.shape[2:]))
    s = list(a.get("strides", [1, 1]))
    d = list(a.get("dilations", [1, 1]))
    groups = int(a.get("group", 1))
    opad = list(a.get("output_padding", [0, 0]))
    full = [s[i] * (x.shape[2 + i] - 1) + d[i] * (k[i] - 1) + 1 for i in range(2)]
    auto = a.get("auto_pad", "NOTSET")
    if "output_shape" in a:
        want = list(a["output_shape"])[-2:]
        begin, end = [], []
        for i in range(2):
            total = full[i] + opad[i] - want[i]
            if total < 0:
                # a larger output than the full one: ONNX's reference extends it at the end,
                # as an output padding would
                begin.append(0), end.append(0)
                opad[i] = -total
                continue
            if auto == "SAME_UPPER":
                begin.append(total // 2), end.append(total - total // 2)
            else:
                begin.append(total - total // 2), end.append(total // 2)
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(2):
            total = max(full[i] + opad[i] - x.shape[2 + i] * s[i], 0)
            small = total // 2
            begin.append(small if auto == "SAME_UPPER" else total - small)
            end.append(total - small if auto == "SAME_UPPER" else small)
    elif auto in ("NOTSET", "", "VALID"):
        p = list(a.get("pads", [0, 0, 0, 0])) if auto != "VALID" else [0, 0, 0, 0]
        begin, end = p[:2], p[2:]
    else:
        raise Unmapped(f"auto_pad={auto}")
    # PyTorch crops `pad` on both sides and adds `output_pad` computed rows at the end: a
    # symmetric pad, an output_pad and slices reproduce any ONNX pads with begin >= 0
    pad, opd, cuts = [], [], []
    # (ONNX: full[b : L + output_padding - e]; PyTorch: full[p : L - p + output_pad])
    for i in range(2):
        if begin[i] < 0 or end[i] < 0:
            raise Unmapped(f"negative pads {begin + end}")
        p = min(begin[i], end[i])
        o = p + opad[i] - end[i]
        cut_end = 0
        if o < 0:
            o, cut_end = 0, -o
        if o and o >= max(s[i], d[i]):
            raise Unmapped("an output padding not smaller than the stride or dilation")
        pad.append(p)
        opd.append(o)
        cuts.append((begin[i] - p, cut_end))
    oh = full[0] - 2 * pad[0] + opd[0]
    ow = full[1] - 2 * pad[1] + opd[1]
    cout = w.shape[1] * groups
    base = self.base_of(node)
    need_cut = any(c != (0, 0) for c in cuts)
    y = self.emit(base + ("_full" if need_cut else ""), "conv_transpose2d", [x],
                  (x.shape[0], cout, oh, ow), [cout], {
                      "kernel": pair(k), "stride": pair(s), "pad": pair(pad),
                      "output_pad": pair(opd), "dilation": pair(d), "groups": groups,
                      "bias": b is not None})
    self.weights(y, {"weight": w, **({"bias": b} if b is not None else {})})
    for i, (lo, hi) in enumerate(cuts):
        if lo or hi:
            shape = list(y.shape)
            shape[2 + i] -= lo + hi
            if shape[2 + i] < 1:
                raise Unmapped("an empty output")
            y = self.emit(base, "slice", [y], shape,
                          attrs={"axis": 2 + i, "start": lo, "end": y.shape[2 + i] - hi})
    self.set_out(node, y)


def h_batchnorm(self, node):
    if node.attrs.get("training_mode", 0):
        raise Unmapped("training mode (batch statistics)")
    self.only_first_output(node)
    x = self.x(node, 0, (2, 4), "batchnorm")
    scale, bias, mean, var = (self.const(n, "a statistic or parameter") for n in node.inputs[1:5])
    y = self.emit(self.base_of(node), "batchnorm", [x], x.shape,
                  attrs={"eps": f32(node.attrs.get("epsilon", 1e-5))})
    self.weights(y, {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var})
    self.set_out(node, y)


def _linear(self, node, x, w, b):
    """y = x @ w + b with w [K, N] constant."""
    if w.ndim != 2 or w.shape[0] != x.shape[1]:
        raise Unmapped(f"a weight of shape {list(w.shape)} for an input {list(x.shape)}")
    n = w.shape[1]
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        if b.ndim == 2 and b.shape[0] > 1:
            if not np.all(b == b[:1]):
                raise Unmapped("a bias that differs between rows (linear's bias is per feature)")
            b = b[:1]
        b = np.broadcast_to(b.reshape(-1) if b.size in (1, n) else b, (n,)) if b.size in (1, n) \
            else None
        if b is None:
            raise Unmapped("a bias that is not per feature")
    y = self.emit(self.base_of(node), "linear", [x], (x.shape[0], n), [n],
                  attrs={"bias": b is not None})
    self.weights(y, {"weight": w.T, **({"bias": b} if b is not None else {})})
    self.set_out(node, y)


def h_gemm(self, node):
    a = node.attrs
    v = self.get(node.inputs[0])
    x = v if _is_nhwc(v) else self.x(node, 0, 2, "linear")
    if a.get("transA", 0):
        raise Unmapped("transA=1 (the language has no transpose of a run-time tensor)")
    w = self.const(node.inputs[1], "B (linear's weights)").astype(np.float64)
    if a.get("transB", 0):
        w = w.T
    w = w * float(a.get("alpha", 1.0))
    c = self.const(node.inputs[2], "C (linear's bias)") if len(node.inputs) > 2 else None
    if c is not None:
        c = c.astype(np.float64) * float(a.get("beta", 1.0))
    (_pointwise if _is_nhwc(x) else _linear)(self, node, x, w, c)


def h_matmul(self, node):
    v = self.get(node.inputs[0])
    x = v if _is_nhwc(v) else self.x(node, 0, 2, "linear")
    w = self.const(node.inputs[1], "the second operand (linear's weights)")
    (_pointwise if _is_nhwc(x) else _linear)(self, node, x, w, None)


def _pointwise(self, node, v, w, b):
    """y = v @ w + b on the channels-last view v, w [C_in, C_out] constant: a 1x1 conv of the
    NCHW tensor, whose result is viewed channels-last again."""
    x = v.src
    c = x.shape[1]
    if w.ndim != 2 or w.shape[0] != c:
        raise Unmapped(f"a weight of shape {list(w.shape)} for a channels-last view "
                       f"{list(v.info['shape'])}")
    n = w.shape[1]
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        if b.ndim > 1 or b.size not in (1, n):
            raise Unmapped(f"a bias of shape {list(b.shape)} (a 1x1 conv's bias is per channel)")
        b = np.broadcast_to(b.reshape(-1), (n,))
    y = self.emit(self.base_of(node), "conv2d", [x], (x.shape[0], n, x.shape[2], x.shape[3]),
                  [n], {"kernel": 1, "bias": b is not None},
                  comment="MatMul on the channels-last view")
    self.weights(y, {"weight": np.asarray(w).T.reshape(n, c, 1, 1),
                     **({"bias": b} if b is not None else {})})
    self.set_out(node, _nhwc(y))


def h_clip(self, node):
    if self.opset >= 11:
        lo = self.const(node.inputs[1], "min") if len(node.inputs) > 1 else None
        hi = self.const(node.inputs[2], "max") if len(node.inputs) > 2 else None
        lo = None if lo is None else f32(lo)
        hi = None if hi is None else f32(hi)
    else:
        lo, hi = node.attrs.get("min"), node.attrs.get("max")
    if lo is None and hi is None:
        self.set_out(node, self.value(node))
    elif lo == 0.0 and hi == 6.0:
        self.unary(node, "relu6")
    elif lo == 0.0 and hi is None:
        self.unary(node, "relu")
    else:
        for v in (lo, hi):
            if v is not None and not math.isfinite(v):
                raise Unmapped(f"an infinite bound {v}")
        self.unary(node, "clamp", {"min": lo, "max": hi})


def h_prelu(self, node):
    x, shape, ch, wrap = self.view(node)
    slope = self.const(node.inputs[1], "the slope")
    flat = slope.reshape(-1)
    vec = _channel_vector(slope, shape, ch) if len(shape) >= 2 else None
    if flat.size and np.all(flat == flat[0]):
        nump, wt = 1, flat[:1]
    elif vec is not None:
        nump, wt = x.shape[1], vec
    else:
        raise Unmapped(f"a slope of shape {list(slope.shape)} for an input {list(shape)} "
                       "(prelu's slope is one value or one per channel)")
    y = self.emit(self.base_of(node), "prelu", [x], x.shape, attrs={"num_parameters": nump})
    self.weights(y, {"weight": wt})
    self.set_out(node, wrap(y))


def _channel_vector(c, shape, ch):
    """The constant c, broadcast against a value of `shape`, as one float64 per channel (axis
    ch), or None when it broadcasts otherwise: varying along another axis, or enlarging the
    value."""
    c = np.asarray(c)
    if c.ndim > len(shape):
        return None
    cs = (1,) * (len(shape) - c.ndim) + tuple(c.shape)
    if any(d != 1 for i, d in enumerate(cs) if i != ch) or cs[ch] not in (1, shape[ch]):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (shape[ch],)).copy()


def h_hardsigmoid(self, node):
    al, be = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
    if abs(al - 1 / 6) > 1e-6 or abs(be - 0.5) > 1e-7:
        raise Unmapped(f"alpha={al:g}, beta={be:g} (the language's hardsigmoid is "
                       "relu6(x + 3) / 6: alpha 1/6, beta 0.5)")
    self.unary(node, "hardsigmoid")


def h_gelu(self, node):
    self.unary(node, "gelu", {"approximate": node.attrs.get("approximate", "none")})


def _pool(self, node, op):
    self.only_first_output(node)
    if node.attrs.get("storage_order", 0):
        raise Unmapped("storage_order=1")
    x = self.x(node, 0, 4, f"{op} (2-D pooling only)")
    a = node.attrs
    k = list(a["kernel_shape"])
    s = list(a.get("strides", [1, 1]))
    d = list(a.get("dilations", [1, 1]))
    if op == "avgpool2d" and d != [1, 1]:
        raise Unmapped("dilations in an average pool")
    ceil = bool(a.get("ceil_mode", 0))
    pads = _explicit_pads(self, node, x.shape, k, s, d)
    cip = bool(a.get("count_include_pad", 0)) or not any(pads)   # no padding: the same divisor

    def onnx_out(n, pb, pe, i):
        v = (n + pb + pe - d[i] * (k[i] - 1) - 1) / s[i]
        return int(math.ceil(v) if ceil else math.floor(v)) + 1
    want = [onnx_out(x.shape[2 + i], pads[i], pads[i + 2], i) for i in range(2)]
    if op == "avgpool2d" and ceil and a.get("count_include_pad", 0):
        floor_out = [(x.shape[2 + i] + pads[i] + pads[i + 2] - k[i]) // s[i] + 1 for i in range(2)]
        if floor_out != want:
            # windows past the padded input: whether they count is not PyTorch's rule for sure
            raise Unmapped("ceil_mode windows past the input with count_include_pad=1")
    base = self.base_of(node)
    sym = pads[0] == pads[2] and pads[1] == pads[3]
    if not sym or any(2 * pads[i] > k[i] for i in range(2)):
        if op == "avgpool2d" and not cip:
            raise Unmapped(f"asymmetric or wide pads {pads} with count_include_pad=0")
        if ceil:
            raise Unmapped(f"asymmetric pads {pads} with ceil_mode")
        # max: the lowest float stands for -inf (exact for finite inputs); avg counting the
        # padding: zeros
        x = self.emit(base + "_pad", "pad", [x], (x.shape[0], x.shape[1], x.shape[2] + pads[0]
                      + pads[2], x.shape[3] + pads[1] + pads[3]),
                      attrs={"pad": [pads[1], pads[3], pads[0], pads[2]],
                             "value": FLT_LOWEST if op == "maxpool2d" else 0.0},
                      comment="explicit padding of the pool below")
        pads = [0, 0, 0, 0]

    def net_out(n, p, i):
        span = n + 2 * p - d[i] * (k[i] - 1) - 1
        o = (-(-span // s[i]) if ceil else span // s[i]) + 1
        if ceil and (o - 1) * s[i] >= n + p:
            o -= 1
        return o
    got = [net_out(x.shape[2 + i], pads[i], i) for i in range(2)]
    if got != want:
        raise Unmapped(f"ceil_mode output {want} where PyTorch's rule gives {got}")
    attrs = {"kernel": pair(k)}
    if pair(s) != pair(k):
        attrs["stride"] = pair(s)
    attrs["pad"] = pair(pads[:2])
    if op == "maxpool2d":
        attrs["dilation"] = pair(d)
    attrs["ceil_mode"] = ceil
    if op == "avgpool2d":
        attrs["count_include_pad"] = cip
    y = self.emit(base, op, [x], (x.shape[0], x.shape[1], *want), attrs=attrs)
    self.set_out(node, y)


def h_global_avg(self, node):
    x = self.x(node, 0, 4, "global_avgpool")
    self.set_out(node, self.emit(self.base_of(node), "global_avgpool", [x],
                                 (x.shape[0], x.shape[1], 1, 1)))


def h_global_max(self, node):
    x = self.x(node, 0, 4, "maxpool2d")
    self.set_out(node, self.emit(self.base_of(node), "maxpool2d", [x],
                                 (x.shape[0], x.shape[1], 1, 1),
                                 attrs={"kernel": pair(list(x.shape[2:]))},
                                 comment="GlobalMaxPool"))


def h_binary(self, node, op):
    va, vb = self.get(node.inputs[0]), self.get(node.inputs[1])
    if isinstance(va, Const) or isinstance(vb, Const):
        _scale_by_const(self, node, op, isinstance(va, Const))
        return
    wrap = _same
    if _is_nhwc(va) or _is_nhwc(vb):
        if not (_is_nhwc(va) and _is_nhwc(vb)):
            raise Unmapped(f"{node.op} of a channels-last view (Transpose perm [0, 2, 3, 1]) and "
                           "an NCHW tensor (the language has no transpose)")
        # [N, H, W, C] with [N, 1, 1, C] is [N, C, H, W] with [N, C, 1, 1] on the tensors
        a, b, wrap = va.src, vb.src, _nhwc
    else:
        a, b = self.tensor(node.inputs[0]), self.tensor(node.inputs[1])
    sa, sb = a.shape, b.shape
    ok = sa == sb or (len(sa) == 4 and len(sb) == 4 and sa[:2] == sb[:2]
                      and (sa[2:] == (1, 1) or sb[2:] == (1, 1)))
    if not ok:
        raise Unmapped(f"broadcast of {list(sa)} with {list(sb)} (the language broadcasts "
                       "[N, C, 1, 1] over [N, C, H, W] only)")
    shape = sa if len(sa) == 4 and sa[2:] != (1, 1) else sb
    self.set_out(node, wrap(self.emit(self.base_of(node), op, [a, b], shape)))


def _scale_by_const(self, node, op, const_first):
    """x op c or c op x, c a constant holding one value per channel (or one value): a scale,
    x * weight[c] (+ bias[c]); on a channels-last view, per value of its last axis."""
    c = self.get(node.inputs[0 if const_first else 1]).value
    x, shape, ch, wrap = self.view(node, 1 if const_first else 0)
    vec = _channel_vector(c, shape, ch) if len(shape) >= 2 else None
    if vec is None:
        view = "channels-last view " if ch == 3 else ""
        raise Unmapped(f"{node.op} with a constant of shape {list(c.shape)} that does not "
                       f"broadcast per channel over the {view}{list(shape)} (scale has one weight "
                       "and bias per channel; no constant tensors in .net)")
    w, b = scale_terms(op, vec, const_first)
    if op == "div" and not np.all(np.isfinite(w)):
        raise Unmapped("a division by a constant holding 0")
    y = self.emit(self.base_of(node), "scale", [x], x.shape, attrs={"bias": b is not None})
    self.weights(y, {"weight": w, **({"bias": b} if b is not None else {})})
    self.set_out(node, wrap(y))


def h_concat(self, node):
    vals = [self.get(i) for i in node.inputs if i]
    if any(isinstance(v, Const) for v in vals):
        raise Unmapped("Concat with a constant operand (no constant tensors in .net)")
    ts = [self.tensor(i) for i in node.inputs if i]
    rank = len(ts[0].shape)
    axis = int(node.attrs.get("axis", 1)) % rank
    if len(ts) == 1:
        self.set_out(node, ts[0])
        return
    shape = list(ts[0].shape)
    shape[axis] = sum(t.shape[axis] for t in ts)
    self.set_out(node, self.emit(self.base_of(node), "concat", ts, shape, attrs={"axis": axis}))


def h_split(self, node):
    x = self.x(node)
    axis = int(node.attrs.get("axis", 0)) % len(x.shape)
    if self.opset >= 13:
        sizes = self.ints(node.inputs[1], "split") if len(node.inputs) > 1 else None
    else:
        sizes = node.attrs.get("split")
    n = len(node.outputs)
    if sizes is None:
        if x.shape[axis] % n:
            raise Unmapped(f"{x.shape[axis]} not divisible into {n} parts")
        sizes = [x.shape[axis] // n] * n
    if sum(sizes) != x.shape[axis] or any(s <= 0 for s in sizes):
        raise Unmapped(f"split sizes {sizes} (the language has no empty tensors)")
    start = 0
    for i, sz in enumerate(sizes):
        if node.outputs[i]:
            shape = list(x.shape)
            shape[axis] = sz
            self.set_out(node, self.emit(self.base_of(node, i), "slice", [x], shape,
                                         attrs={"axis": axis, "start": start,
                                                "end": start + sz}), i)
        start += sz


def h_slice(self, node):
    x = self.x(node)
    if self.opset < 10:
        starts, ends = list(node.attrs["starts"]), list(node.attrs["ends"])
        axes, steps = node.attrs.get("axes"), None
    else:
        starts = self.ints(node.inputs[1], "starts")
        ends = self.ints(node.inputs[2], "ends")
        axes = self.ints(node.inputs[3], "axes") if len(node.inputs) > 3 else None
        steps = self.ints(node.inputs[4], "steps") if len(node.inputs) > 4 else None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    cuts = []
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax %= len(x.shape)
        if sp != 1:
            raise Unmapped(f"step {sp} (slice has step 1)")
        lo, hi, _ = slice(st, en).indices(x.shape[ax])
        if hi <= lo:
            raise Unmapped("an empty slice (the language has no empty tensors)")
        if (lo, hi) != (0, x.shape[ax]):
            cuts.append((ax, lo, hi))
    y = x
    base = self.base_of(node)
    for ax, lo, hi in cuts:
        shape = list(y.shape)
        shape[ax] = hi - lo
        y = self.emit(base, "slice", [y], shape, attrs={"axis": ax, "start": lo, "end": hi})
    self.set_out(node, y)


def h_pad(self, node):
    x = self.x(node, 0, 4, "pad")
    mode = node.attrs.get("mode", "constant")
    if self.opset >= 11:
        pads = self.ints(node.inputs[1], "pads")
        cv = self.const(node.inputs[2], "the pad value") if len(node.inputs) > 2 else None
        value = 0.0 if cv is None else f32(cv)
        if len(node.inputs) > 3 and node.inputs[3]:
            axes = [a % 4 for a in self.ints(node.inputs[3], "axes")]
            full = [0] * 8
            for j, ax in enumerate(axes):
                full[ax], full[ax + 4] = pads[j], pads[j + len(axes)]
            pads = full
    else:
        pads, value = list(node.attrs["pads"]), float(node.attrs.get("value", 0.0))
    if mode not in ("constant", "reflect"):
        raise Unmapped(f"mode {mode!r} (pad has constant and reflect)")
    if any(pads[i] for i in (0, 1, 4, 5)):
        raise Unmapped("padding of N or C (pad pads H and W)")
    if any(p < 0 for p in pads):
        raise Unmapped(f"negative pads {pads}")
    if mode == "reflect" and (pads[2] >= x.shape[2] or pads[6] >= x.shape[2]
                              or pads[3] >= x.shape[3] or pads[7] >= x.shape[3]):
        raise Unmapped("a reflection padding not smaller than the input")
    shape = (x.shape[0], x.shape[1], x.shape[2] + pads[2] + pads[6],
             x.shape[3] + pads[3] + pads[7])
    self.set_out(node, self.emit(self.base_of(node), "pad", [x], shape, attrs={
        "pad": [pads[3], pads[7], pads[2], pads[6]], "mode": mode, "value": value}))


def _nearest_src(out, n, mode, nearest, scale):
    """ONNX's source index of each output index along one axis (scale = out/in or given)."""
    res = []
    for o in range(out):
        if mode == "asymmetric":
            xo = o / scale
        elif mode in ("half_pixel", "tf_half_pixel_for_nn"):
            xo = (o + 0.5) / scale - (0.5 if mode == "half_pixel" else 0.0)
        elif mode == "pytorch_half_pixel":
            xo = (o + 0.5) / scale - 0.5 if out > 1 else 0.0
        elif mode == "align_corners":
            xo = 0.0 if n * scale == 1 else o * (n - 1) / (n * scale - 1)
        else:
            return None
        if nearest == "floor":
            i = math.floor(xo)
        elif nearest == "ceil":
            i = math.ceil(xo)
        elif nearest == "round_prefer_ceil":
            i = math.floor(xo + 0.5)
        else:
            i = math.ceil(xo - 0.5)
        res.append(min(max(i, 0), n - 1))
    return res


def h_resize(self, node, upsample=False):
    x = self.x(node, 0, 4, "upsample")
    a = node.attrs
    mode = a.get("mode", "nearest")
    if upsample or self.opset < 11:
        scales = self.const(node.inputs[1], "scales") if len(node.inputs) > 1 else \
            np.array(a["scales"])
        sizes, ctm, nearest = None, "asymmetric", "floor"
    else:
        scales = self.const(node.inputs[2], "scales") if len(node.inputs) > 2 else None
        sizes = self.ints(node.inputs[3], "sizes") if len(node.inputs) > 3 else None
        ctm = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        if a.get("antialias", 0):
            raise Unmapped("antialias")
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            raise Unmapped("keep_aspect_ratio_policy")
    if scales is not None and scales.size == 0:
        scales = None
    if sizes is not None:
        sizes = list(sizes)[-4:]
        out = sizes[2:]
        sc = [out[i] / x.shape[2 + i] for i in range(2)]
        if sizes[:2] != list(x.shape[:2]):
            raise Unmapped("resizing N or C")
        given = False
    elif scales is not None:
        sc = [float(e) for e in scales.reshape(-1)]
        if sc[:2] != [1.0, 1.0]:
            raise Unmapped("resizing N or C")
        sc = sc[2:]
        out = [int(math.floor(x.shape[2 + i] * sc[i])) for i in range(2)]
        given = True
    else:
        raise Unmapped("neither scales nor sizes")
    if min(out) < 1:
        raise Unmapped("an empty output")
    shape = (x.shape[0], x.shape[1], *out)
    attrs = {}
    if mode == "nearest":
        # the .net rule (floor(dst * in/out), or * 1/s given a scale, in float32) must pick the
        # same source pixel as ONNX's, at every output index
        for i in range(2):
            n = x.shape[2 + i]
            onnx_src = _nearest_src(out[i], n, ctm, nearest, sc[i])
            if onnx_src is None:
                raise Unmapped(f"coordinate_transformation_mode={ctm}")
            f = np.float32(1 / sc[i]) if given else np.float32(n) / np.float32(out[i])
            net_src = [min(int(np.floor(np.float32(o) * f)), n - 1) for o in range(out[i])]
            if onnx_src != net_src:
                raise Unmapped(f"nearest with {ctm}/{nearest} picks other pixels than the "
                               "language's floor(dst * in / out)")
    elif mode == "linear":
        if ctm == "align_corners":
            if given and any(out[i] != x.shape[2 + i] * sc[i] for i in range(2)):
                raise Unmapped("align_corners with scales that give a fractional size (ONNX "
                               "maps corners of the unrounded size)")
            attrs["align_corners"] = True
            given = False
        elif ctm in ("half_pixel", "pytorch_half_pixel"):
            if ctm == "pytorch_half_pixel" and min(out) == 1 and max(x.shape[2:]) > 1:
                raise Unmapped("pytorch_half_pixel to a size of 1 (ONNX samples pixel 0 there)")
        elif ctm == "asymmetric" and out == list(x.shape[2:]):
            pass
        else:
            raise Unmapped(f"linear with coordinate_transformation_mode={ctm}")
    else:
        raise Unmapped(f"mode {mode!r} (upsample has nearest and bilinear)")
    if given:
        if all(out[i] == x.shape[2 + i] * sc[i] for i in range(2)):
            given = False            # an exact size: the same coordinates as the scale
        elif sc[0] != sc[1]:
            raise Unmapped(f"scales {sc} differ per axis and give a fractional size")
    if given:
        attrs["scale"] = float(sc[0])
    else:
        attrs["size"] = list(out)
    attrs["mode"] = "bilinear" if mode == "linear" else "nearest"
    attrs = {"size": attrs.pop("size", None), "scale": attrs.pop("scale", None), **attrs}
    self.set_out(node, self.emit(self.base_of(node), "upsample", [x], shape, attrs=attrs))


def h_reshape(self, node):
    v = self.get(node.inputs[0])
    target = self.const(node.inputs[1], "the shape") if node.op == "Reshape" else None
    if isinstance(v, Pending) and not _is_nhwc(v):
        ys = reshape_target(v.info["shape"], target, node.attrs.get("allowzero", 0))
        if v.kind == "shuffle_t" and ys == v.src.shape:
            self.set_out(node, self.emit(self.base_of(node), "channel_shuffle", [v.src],
                                         v.src.shape, attrs={"groups": v.info["groups"]}))
            return
        raise Unmapped("a reshape of an intermediate with no .net tensor")
    if _is_nhwc(v):
        xs = v.info["shape"]
        if xs[1] * xs[2] != 1 and xs[3] != 1:
            raise Unmapped(CHANNELS_LAST.format(op=node.op) + " (its elements are in another "
                           "order than the NCHW tensor's)")
        x = v.src               # 1x1 positions or one channel: the tensor's order of elements
    else:
        x = self.tensor(node.inputs[0])
        xs = x.shape
    if node.op == "Reshape":
        ys = reshape_target(xs, target, node.attrs.get("allowzero", 0))
    elif node.op == "Flatten":
        ax = int(node.attrs.get("axis", 1))
        ax = ax + len(xs) if ax < 0 else ax
        ys = (int(np.prod(xs[:ax])), int(np.prod(xs[ax:])))
    else:  # Squeeze / Unsqueeze of a tensor: judged by the shape they produce
        c = Const(np.zeros(xs, dtype=np.float32))
        fake = Converter.__new__(Converter)
        fake.opset = self.opset
        args = [c.value] + [self.const(i, "axes") if i else None for i in node.inputs[1:]]
        ys = FOLD[node.op](fake, node, args)[0].shape
    if _is_nhwc(v) and tuple(ys) == tuple(xs):
        self.set_out(node, v)
        return
    _reshape_to(self, node, x, tuple(ys))


def _reshape_to(self, node, x, ys):
    xs = x.shape
    if ys == xs:
        self.set_out(node, x)
    elif len(xs) >= 2 and ys == (xs[0], int(np.prod(xs[1:]))):
        self.set_out(node, self.emit(self.base_of(node), "flatten", [x], ys))
    elif (len(xs) == 4 and len(ys) == 5 and ys[0] == xs[0] and ys[1] * ys[2] == xs[1]
          and ys[3:] == xs[2:]):
        self.set_out(node, Pending("shuffle_v", x, groups=ys[1], shape=ys))
    else:
        raise Unmapped(f"reshape {list(xs)} -> {list(ys)} is not a flatten (the language has no "
                       "general reshape)")


def h_transpose(self, node):
    v = self.get(node.inputs[0])
    perm = list(node.attrs.get("perm", []))
    if isinstance(v, Pending) and v.kind == "shuffle_v" and perm == [0, 2, 1, 3, 4]:
        s = v.info["shape"]
        self.set_out(node, Pending("shuffle_t", v.src, groups=v.info["groups"],
                                   shape=(s[0], s[2], s[1], s[3], s[4])))
        return
    if _is_nhwc(v):
        if [NHWC[p] for p in perm] == [0, 1, 2, 3]:     # back to NCHW: the tensor
            self.set_out(node, v.src)
            return
        raise Unmapped(f"a transpose {perm} of a channels-last view (its inverse, [0, 3, 1, 2], "
                       "is the NCHW tensor; the language has no other transpose)")
    x = self.tensor(node.inputs[0])
    if perm == NHWC and len(x.shape) == 4:
        self.set_out(node, _nhwc(x))        # no statement: what reads it is computed on x
        return
    if not perm:
        perm = list(range(len(x.shape)))[::-1]
    if perm == sorted(perm):
        self.set_out(node, x)
        return
    moved = [p for p in perm if x.shape[p] != 1]
    if moved == sorted(moved):        # only size-1 axes move: a reshape
        _reshape_to(self, node, x, tuple(x.shape[p] for p in perm))
        return
    raise Unmapped(NO_NET_OP["Transpose"])


def h_softmax(self, node):
    x = self.x(node)
    r = len(x.shape)
    axis = int(node.attrs.get("axis", -1 if self.opset >= 13 else 1)) % r
    if node.op == "Softmax" and self.opset < 13 and any(d != 1 for d in x.shape[axis + 1:]):
        raise Unmapped("opset < 13 softmax over the flattened trailing axes")
    self.set_out(node, self.emit(self.base_of(node), "softmax", [x], x.shape,
                                 attrs={"axis": axis}))


def h_reduce_mean(self, node):
    x = self.x(node, 0, 4, "global_avgpool (a mean over H and W)")
    if self.opset >= 18:
        axes = self.ints(node.inputs[1], "axes") if len(node.inputs) > 1 else None
    else:
        axes = node.attrs.get("axes")
    if axes is None or sorted(a % 4 for a in axes) != [2, 3]:
        raise Unmapped(f"a mean over axes {axes} (the language has the mean over H and W)")
    keep = node.attrs.get("keepdims", 1)
    base = self.base_of(node)
    y = self.emit(base + ("" if keep else "_pool"), "global_avgpool", [x],
                  (x.shape[0], x.shape[1], 1, 1))
    if not keep:
        y = self.emit(base, "flatten", [y], (x.shape[0], x.shape[1]))
    self.set_out(node, y)


def h_identity(self, node):
    self.set_out(node, self.value(node))


def h_layernorm(self, node):
    """LayerNormalization (axis: it normalises axes axis.. of X), or the fused _LayerNorm of
    lower opsets (over its axes): the language's layernorm when the normalised axes are the
    channels (dim 1 of [N, C] or [N, C, H, W], the last axis of a channels-last view) and axes of
    size 1."""
    self.only_first_output(node)
    x, shape, ch, wrap = self.view(node)
    r = len(shape)
    if node.op == "LayerNormalization":
        a = int(node.attrs.get("axis", -1))
        if not -r <= a < r:
            raise Unmapped(f"axis {a} of a rank-{r} input")
        axes = list(range(a % r, r))
        eps = float(node.attrs.get("epsilon", 1e-5))
        w = self.const(node.inputs[1], "the scale")
        b = self.const(node.inputs[2], "the bias") if len(node.inputs) > 2 else None
    else:
        axes = sorted({int(e) % r for e in node.attrs["axes"]})
        eps = node.attrs["epsilon"]
        w = self.const(node.inputs[1], "the weight")
        b = self.const(node.inputs[2], "the bias")
    affine = node.op == "LayerNormalization" or w is not None or b is not None
    view = "channels-last view " if ch == 3 else ""
    if ch not in axes or 0 in axes or any(shape[i] != 1 for i in axes if i != ch):
        raise Unmapped(f"a layer norm over axes {axes} of the {view}{list(shape)} (the "
                       "language's layernorm normalises the channels at every other position)")
    if len(x.shape) not in (2, 4):
        raise Unmapped(f"a rank-{len(x.shape)} input (the language's layernorm takes [N, C] or "
                       "[N, C, H, W])")
    if not (math.isfinite(eps) and eps >= 0):
        raise Unmapped(f"epsilon {eps}")
    params = {}
    if affine:
        for pname, c, fill in (("weight", w, 1.0), ("bias", b, 0.0)):
            vec = (np.full(shape[ch], fill) if c is None else _channel_vector(c, shape, ch))
            if vec is None:
                raise Unmapped(f"a {pname} of shape {list(c.shape)} for the {view}{list(shape)} "
                               "(layernorm's weight and bias are per channel)")
            params[pname] = vec
    y = self.emit(self.base_of(node), "layernorm", [x], x.shape,
                  attrs={"eps": f32(eps), "affine": affine})
    self.weights(y, params)
    self.set_out(node, wrap(y))


def h_dropout(self, node):
    x, _, _, wrap = self.view(node)
    if self.opset >= 12:
        if len(node.inputs) > 2 and node.inputs[2]:
            if bool(self.const(node.inputs[2], "training_mode")):
                raise Unmapped("training mode")
        r = self.const(node.inputs[1], "ratio") if len(node.inputs) > 1 else None
        ratio = 0.5 if r is None else f32(r)
    else:
        ratio = float(node.attrs.get("ratio", 0.5))
    if len(node.outputs) > 1 and node.outputs[1]:
        raise Unmapped("the mask output is used")
    self.set_out(node, wrap(self.emit(self.base_of(node), "dropout", [x], x.shape,
                                      attrs={"p": ratio})))


def _act(op, attrs_of=None):
    return lambda self, node: self.unary(node, op, attrs_of(node) if attrs_of else None)


HANDLERS = {
    "Constant": h_constant,
    "Shape": h_shape,
    "Conv": h_conv,
    "ConvTranspose": h_conv_transpose,
    "BatchNormalization": h_batchnorm,
    "Gemm": h_gemm,
    "MatMul": h_matmul,
    "Relu": _act("relu"),
    "Clip": h_clip,
    "LeakyRelu": _act("leaky_relu", lambda n: {"slope": f32(n.attrs.get("alpha", 0.01))}),
    "PRelu": h_prelu,
    "Sigmoid": _act("sigmoid"),
    "Tanh": _act("tanh"),
    "HardSigmoid": h_hardsigmoid,
    "HardSwish": _act("hardswish"),
    "Elu": _act("elu", lambda n: {"alpha": f32(n.attrs.get("alpha", 1.0))}),
    "_SiLU": _act("silu"),
    "_Gelu": _act("gelu"),
    "Gelu": h_gelu,
    "MaxPool": lambda s, n: _pool(s, n, "maxpool2d"),
    "AveragePool": lambda s, n: _pool(s, n, "avgpool2d"),
    "GlobalAveragePool": h_global_avg,
    "GlobalMaxPool": h_global_max,
    "Add": lambda s, n: h_binary(s, n, "add"),
    "Sub": lambda s, n: h_binary(s, n, "sub"),
    "Mul": lambda s, n: h_binary(s, n, "mul"),
    "Div": lambda s, n: h_binary(s, n, "div"),
    "Concat": h_concat,
    "Split": h_split,
    "Slice": h_slice,
    "Pad": h_pad,
    "Resize": h_resize,
    "Upsample": lambda s, n: h_resize(s, n, upsample=True),
    "Reshape": h_reshape,
    "Flatten": h_reshape,
    "Squeeze": h_reshape,
    "Unsqueeze": h_reshape,
    "Transpose": h_transpose,
    "Softmax": h_softmax,
    "_Softmax": h_softmax,
    "ReduceMean": h_reduce_mean,
    "LayerNormalization": h_layernorm,
    "_LayerNorm": h_layernorm,
    "Identity": h_identity,
    "Dropout": h_dropout,
}


def convert(model, name=None, input_shapes=None):
    """Convert an onnx.ModelProto (input_shapes: {input name: dims} fixing dynamic dimensions).
    Returns (net_text, tensors, unmapped): the .net source,
    {weight name: float32 ndarray}, and a list of (op, node name, reason) that have no .net
    equivalent (then the text must not be used)."""
    net_name = identifier(name or model.graph.name or "model")
    return Converter(model, net_name, input_shapes).run()


def report(unmapped):
    """One message: each unsupported op with its count, its first node and why."""
    by_op = OrderedDict()
    for op, node, why in unmapped:
        by_op.setdefault(op, []).append((node, why))
    lines = ["onnx2net: cannot convert: these have no exact .net equivalent:"]
    for op, items in by_op.items():
        node, why = items[0]
        if op == "(model)":
            lines += [f"  the model: {w}" for _, w in items]
        elif op in ("(input)", "(output)"):
            lines += [f"  {op[1:-1]} {n!r}: {w}" for n, w in items]
        else:
            lines.append(f"  {op}: {len(items)} node(s), first {node!r}: {why}")
    lines.append("onnx2net: nothing written")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the .onnx file (external data is read from its directory)")
    ap.add_argument("-o", "--output", help="the .net file to write (default: stdout)")
    ap.add_argument("--weights", help="the .safetensors file to write")
    ap.add_argument("--name", help="the net's name (default: the output file's stem)")
    ap.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]D0,D1,...",
                    help="the shape of an input with dynamic dimensions (repeat; without NAME: "
                         "the inputs in order)")
    args = ap.parse_args(argv)
    try:
        model = onnx.load(args.model, load_external_data=True)
    except Exception as e:  # noqa: BLE001 - protobuf and file errors alike
        print(f"onnx2net: cannot read {args.model}: {e}", file=sys.stderr)
        return 1
    name = args.name
    if name is None and args.output:
        name = os.path.splitext(os.path.basename(args.output))[0]
    if name is None:
        name = os.path.splitext(os.path.basename(args.model))[0]
    real = [vi.name for vi in model.graph.input
            if vi.name not in {i.name for i in model.graph.initializer}]
    shapes = {}
    for k, spec in enumerate(args.input_shape):
        key, _, dims = spec.rpartition("=")
        try:
            dims = [int(d) for d in dims.split(",")]
        except ValueError:
            ap.error(f"--input-shape {spec!r}: dimensions are integers, e.g. 1,3,224,224")
        if any(d <= 0 for d in dims):
            ap.error(f"--input-shape {spec!r}: dimensions are positive")
        if not key:
            if k >= len(real):
                ap.error(f"--input-shape {spec!r}: the model has {len(real)} input(s)")
            key = real[k]
        shapes[key] = dims
    text, tensors, unmapped = convert(model, name, shapes)
    if unmapped:
        print(report(unmapped), file=sys.stderr)
        return 1
    write_outputs(args.output, text, args.weights, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main())

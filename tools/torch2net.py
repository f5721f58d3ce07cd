#!/usr/bin/python3
"""torch2net.py — converts a PyTorch nn.Module into a flat .net graph and a safetensors file.

    torch2net.py torchvision.models:resnet18 --input-shape 1,3,224,224 \
        -o r18.net --weights r18.safetensors
    torch2net.py path/to/file.py:MyNet --input-shape 1,3,32,32 --input-shape 1,8,1,1 -o my.net

The module is traced with torch.fx (symbolic_trace) and run once on a seeded random example input
(ShapeProp), so every node's shape and every Python value the trace computed (x.size(0), ...) is
known. Each node maps to one .net statement; the graph is flat (no defs). A binding is named
after the module path with '.' -> '_' (`layer1.0.conv1` -> `layer1_0_conv1`), so its weights are
`layer1_0_conv1.weight`, ...; functional nodes keep torch.fx's names (`add_1`, `flatten`).
`num_batches_tracked` is dropped. What cannot be mapped is refused in one message on stderr: each
kind of node (`module LayerNorm`, `method permute`, ...) with its count, its first node and why;
nodes that fail only because an input is unmapped are not counted. The exit status is 1 and
nothing is written unless --allow-unmapped (then the .net keeps a comment for each such node).

Library use: convert(module, example_input) -> (net_text, tensors, unmapped), where tensors maps
weight names to float32 numpy arrays and unmapped is a list of (node name, target) pairs;
explain() gives (node, target, why, what) instead, report() the message.
"""
import argparse
import dis
import importlib
import importlib.util
import inspect
import json
import operator
import os
import re
import sys

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nettools import (DEFAULTS, Unmapped, fmt_value, fresh_name, pair, same_default,  # noqa: E402
                      scale_terms, write_outputs)

def to_numpy(t):
    return t.detach().cpu().to(torch.float32).numpy().copy()


class _RecordingShapeProp(ShapeProp):
    """ShapeProp that also keeps every node's concrete result: ints from x.size(), the tuples of
    chunk/split, ... which the mappings need besides tensor shapes."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values = {}

    def run_node(self, n):
        result = super().run_node(n)
        self.values[n] = result
        return result


class _Pending:
    """A value the .net graph does not hold as one tensor: the pieces of a chunk/split (sliced
    when indexed), the 5-D intermediates of the view-transpose-view channel shuffle, a
    parameter used as a tensor ("param": a per-channel operand becomes a scale), or a
    channels-last view x.permute(0, 2, 3, 1) of the NCHW binding src ("nhwc": layernorm, linear
    and elementwise ops map on it until the permute back)."""

    def __init__(self, kind, src, **info):
        self.kind, self.src, self.info = kind, src, info


class _Scalar:
    """A node whose value is a Python value (x.size(1), c // 2): used only as an attribute."""


class _Skip(Exception):
    """A node that fails only because an input could not be mapped: not reported again."""


def _proxy_iter(proxy):
    """Proxy.__iter__ for Python 3.11: the UNPACK_SEQUENCE instruction that asks for the
    iterator is found by its offset (torch 1.13's `f_lasti // 2` index is wrong once inline
    caches sit between instructions, and past the end of the list it raises IndexError)."""
    frame = inspect.currentframe()
    caller = frame.f_back if frame else None
    if caller is not None:
        for inst in dis.get_instructions(caller.f_code):
            if inst.offset == caller.f_lasti and inst.opname == "UNPACK_SEQUENCE":
                return (proxy[i] for i in range(inst.argval))
    return proxy.tracer.iter(proxy)


class _Tracer(torch.fx.Tracer):
    """torch.fx's tracer, with tuple unpacking of a traced value (`a, b = x.chunk(2, 1)`,
    `x, _ = self.attention(x)`) that also works on Python 3.11 (see _proxy_iter)."""

    def trace(self, root, concrete_args=None):
        saved = torch.fx.proxy.Proxy.__iter__
        torch.fx.proxy.Proxy.__iter__ = _proxy_iter
        try:
            return super().trace(root, concrete_args)
        finally:
            torch.fx.proxy.Proxy.__iter__ = saved


class Converter:
    def __init__(self, module, example_inputs, name):
        self.module = module
        self.example_inputs = example_inputs
        self.name = name
        self.lines = []
        self.tensors = {}
        self.unmapped = []     # (node name, target, why, what: "module LayerNorm", ...)
        self.failed = set()    # fx Nodes not mapped
        self.used = set()
        self.env = {}          # fx Node -> binding name, _Pending or _Scalar
        self.modules = dict(module.named_modules())

    # ---- names -----------------------------------------------------------------------------
    def fresh(self, base):
        return fresh_name(base, self.used)

    # ---- values ----------------------------------------------------------------------------
    def value(self, a):
        """The concrete Python value of an argument (a scalar node resolves to what it was)."""
        if isinstance(a, torch.fx.Node):
            v = self.values[a]
            if isinstance(v, torch.Tensor):
                raise Unmapped(f"tensor {a.name} used where a constant is needed")
            return v
        if isinstance(a, (list, tuple)):
            return type(a)(self.value(e) for e in a)
        return a

    def tensor(self, a):
        """The binding of a tensor argument."""
        if not isinstance(a, torch.fx.Node) or not isinstance(self.values.get(a), torch.Tensor):
            raise Unmapped(f"expected a tensor argument, got {a!r}")
        b = self.env.get(a)
        if isinstance(b, _Pending) and b.kind == "param":
            raise Unmapped(f"parameter {a.target} used as a tensor: only a per-channel operand of "
                           "add/sub/mul/div maps (as scale)")
        if isinstance(b, _Pending) and b.kind == "nhwc":
            raise Unmapped(f"the channels-last permute {a.name} is read by an op that is not "
                           "layernorm, linear or elementwise")
        if not isinstance(b, str):
            raise Unmapped(f"input {a.name} has no .net tensor")
        return b

    def nhwc(self, a):
        """The NCHW binding whose channels-last view a is, or None."""
        v = self.env.get(a) if isinstance(a, torch.fx.Node) else None
        return v.src if isinstance(v, _Pending) and v.kind == "nhwc" else None

    def param(self, a):
        """The tensor value of a parameter argument, or None."""
        v = self.env.get(a) if isinstance(a, torch.fx.Node) else None
        return v.info["value"] if isinstance(v, _Pending) and v.kind == "param" else None

    def shape(self, a):
        return tuple(self.values[a].shape)

    def is_tensor(self, a):
        return isinstance(a, torch.fx.Node) and isinstance(self.values.get(a), torch.Tensor)

    # ---- emission --------------------------------------------------------------------------
    def emit(self, node, base, op, inputs, positional=(), attrs=None):
        """Write `name = op(inputs..., positional..., key=value...)`, leaving out defaults."""
        parts = list(inputs) + [fmt_value(p) for p in positional]
        defaults = DEFAULTS.get(op, {})
        for k, v in (attrs or {}).items():
            if v is None or (k in defaults and same_default(v, defaults[k])):
                continue
            parts.append(f"{k}={fmt_value(v)}")
        name = self.fresh(base)
        self.lines.append(f"{name} = {op}({', '.join(parts)})")
        self.env[node] = name
        return name

    def add_weights(self, binding, params):
        for pname, t in params.items():
            self.tensors[f"{binding}.{pname}"] = to_numpy(t)

    def module_base(self, target):
        return target.replace(".", "_")

    # ---- driver ----------------------------------------------------------------------------
    def run(self):
        self.module.eval()
        # Helper functions that symbolic tracing cannot go through (torchvision's ShuffleNet
        # unpacks x.size()) are kept as calls and mapped whole.
        tracer = _Tracer(autowrap_functions=tuple(LEAF_FUNCTIONS))
        graph = tracer.trace(self.module)
        gm = torch.fx.GraphModule(tracer.root, graph, type(self.module).__name__)
        prop = _RecordingShapeProp(gm)
        with torch.no_grad():
            prop.propagate(*self.example_inputs)
        self.values = prop.values
        inputs, outputs = [], []
        for node in gm.graph.nodes:
            try:
                if node.op == "placeholder":
                    v = self.values[node]
                    if not isinstance(v, torch.Tensor):
                        raise Unmapped("non-tensor input")
                    name = self.fresh(node.name)
                    self.env[node] = name
                    inputs.append(f"input {name}: {fmt_value(list(v.shape))}")
                elif node.op == "output":
                    outputs = self.map_output(node.args[0])
                elif node.op == "get_attr":
                    v = self.values[node]
                    self.env[node] = (_Pending("param", None, value=v.detach())
                                      if isinstance(v, torch.Tensor) else _Scalar())
                elif node.op == "call_module":
                    self.map_module(node)
                else:
                    self.map_call(node)
            except (Unmapped, _Skip) as e:
                self.failed.add(node)
                if isinstance(e, Unmapped) and not self.depends_on_failed(node):
                    target = node.target if isinstance(node.target, str) else getattr(
                        node.target, "__name__", str(node.target))
                    self.unmapped.append((node.name, str(target), str(e), self.what(node)))
                why = e if isinstance(e, Unmapped) else "an input is not mapped"
                self.lines.append(f"# unmapped: {node.format_node()}  ({why})")
                self.env.setdefault(node, node.name)
        head = [f"# converted by tools/torch2net.py from {type(self.module).__name__}",
                f"net {self.name}", ""] + inputs + [""]
        text = "\n".join(head + self.lines + ["", "output " + ", ".join(outputs), ""])
        return text, self.tensors, [(n, t) for n, t, _, _ in self.unmapped]

    def depends_on_failed(self, node):
        """True when an unmapped input left this node without a value to map: one that is no
        tensor (the tuple of an unmapped module), so the failure is that input's, not this
        node's. An unmapped tensor input still has a binding and its shape: the node is judged
        on its own."""
        return any(a in self.failed and not self.is_tensor(a) for a in node.all_input_nodes)

    def what(self, node):
        """What a node is, for the report: `module LayerNorm`, `function add`, `method view`."""
        if node.op == "call_module":
            return f"module {type(self.modules[node.target]).__name__}"
        if node.op in ("call_function", "call_method"):
            t = node.target if isinstance(node.target, str) else getattr(
                node.target, "__name__", str(node.target))
            return f"{node.op.split('_')[1]} {t}"
        return {"get_attr": "parameter", "placeholder": "input"}.get(node.op, node.op)

    def map_output(self, a):
        flat = []

        def walk(x):
            if isinstance(x, (list, tuple)):
                for e in x:
                    walk(e)
            elif isinstance(x, dict):
                for e in x.values():
                    walk(e)
            else:
                flat.append(x)
        walk(a)
        names = []
        input_names = {self.env[n] for n in self.env if isinstance(n, torch.fx.Node)
                       and n.op == "placeholder"}
        for x in flat:
            b = self.tensor(x)
            if b in input_names:
                raise Unmapped(f"output {b} is a graph input")
            if b in names:
                raise Unmapped(f"output {b} appears twice")
            names.append(b)
        return names

    # ---- call_module -----------------------------------------------------------------------
    def map_module(self, node):
        m = self.modules[node.target]
        path = node.target
        # A module called twice (shared weights) gets a second binding (`relu_1`), and its
        # weights are copied under that name.
        base = self.module_base(path)
        if not isinstance(m, MAPPED_MODULES):
            raise Unmapped(NO_NET_MODULE.get(type(m).__name__, "no mapping for this module type"))
        if len(node.kwargs) or (len(node.args) != 1 and not isinstance(m, nn.Identity)):
            raise Unmapped(f"{type(m).__name__} called with extra arguments")
        x = node.args[0]
        xs = self.shape(x) if self.is_tensor(x) else None
        ip = bool(getattr(m, "inplace", False))
        if self.nhwc(x) is not None:
            return self.map_nhwc_module(node, base, m, x)
        if isinstance(m, nn.LayerNorm):
            if len(xs) != 2 or tuple(m.normalized_shape) != (xs[1],):
                raise Unmapped(f"LayerNorm{tuple(m.normalized_shape)} on {list(xs)}: only over the "
                               "channels (of [N, C], or channels-last [N, H, W, C])")
            return self.layernorm(node, base, self.tensor(x), m.eps, m.weight, m.bias)

        if isinstance(m, nn.Conv2d):
            pads = self.conv_padding(m)
            inp = self.tensor(x)
            if m.padding_mode == "reflect" and any(pads):
                inp = self.emit(node, base + "_pad", "pad", [inp],
                                attrs={"pad": [pads[1], pads[1], pads[0], pads[0]],
                                       "mode": "reflect"})
                pads = (0, 0)
            elif m.padding_mode != "zeros" and any(pads):
                raise Unmapped(f"padding_mode={m.padding_mode}")
            name = self.emit(node, base, "conv2d", [inp], [m.out_channels], {
                "kernel": pair(m.kernel_size), "stride": pair(m.stride), "pad": pair(pads),
                "dilation": pair(m.dilation), "groups": m.groups, "bias": m.bias is not None})
            self.add_weights(name, {"weight": m.weight, **({"bias": m.bias} if m.bias is not None
                                                           else {})})
        elif isinstance(m, nn.ConvTranspose2d):
            if m.padding_mode != "zeros":
                raise Unmapped(f"padding_mode={m.padding_mode}")
            name = self.emit(node, base, "conv_transpose2d", [self.tensor(x)], [m.out_channels], {
                "kernel": pair(m.kernel_size), "stride": pair(m.stride), "pad": pair(m.padding),
                "output_pad": pair(m.output_padding), "dilation": pair(m.dilation),
                "groups": m.groups, "bias": m.bias is not None})
            self.add_weights(name, {"weight": m.weight, **({"bias": m.bias} if m.bias is not None
                                                           else {})})
        elif isinstance(m, nn.Linear):
            if len(xs) != 2:
                raise Unmapped(f"Linear on a rank-{len(xs)} input (the language has [N, F])")
            name = self.emit(node, base, "linear", [self.tensor(x)], [m.out_features],
                             {"bias": m.bias is not None})
            self.add_weights(name, {"weight": m.weight, **({"bias": m.bias} if m.bias is not None
                                                           else {})})
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if len(xs) not in (2, 4):
                raise Unmapped(f"BatchNorm on a rank-{len(xs)} input")
            if not m.track_running_stats or m.running_mean is None:
                raise Unmapped("BatchNorm without running statistics")
            name = self.emit(node, base, "batchnorm", [self.tensor(x)], attrs={"eps": m.eps})
            c = m.num_features
            self.add_weights(name, {
                "weight": m.weight if m.affine else torch.ones(c),
                "bias": m.bias if m.affine else torch.zeros(c),
                "running_mean": m.running_mean, "running_var": m.running_var})
        elif isinstance(m, nn.ReLU6):
            self.emit(node, base, "relu6", [self.tensor(x)], attrs={"inplace": ip})
        elif isinstance(m, nn.Hardtanh):
            self.emit(node, base, "clamp", [self.tensor(x)],
                      attrs={"min": float(m.min_val), "max": float(m.max_val), "inplace": ip})
        elif isinstance(m, nn.PReLU):
            name = self.emit(node, base, "prelu", [self.tensor(x)],
                             attrs={"num_parameters": m.num_parameters})
            self.add_weights(name, {"weight": m.weight})
        elif type(m) in SIMPLE_MODULES:
            op, attrs = SIMPLE_MODULES[type(m)](m)
            if "inplace" in DEFAULTS.get(op, {}):
                attrs["inplace"] = ip
            self.emit(node, base, op, [self.tensor(x)], attrs=attrs)
        elif isinstance(m, nn.MaxPool2d):
            if m.return_indices:
                raise Unmapped("MaxPool2d with return_indices")
            self.emit(node, base, "maxpool2d", [self.tensor(x)], attrs=self.pool_attrs(
                m.kernel_size, m.stride, m.padding, m.ceil_mode, dilation=m.dilation))
        elif isinstance(m, nn.AvgPool2d):
            if m.divisor_override:
                raise Unmapped("AvgPool2d with divisor_override")
            self.emit(node, base, "avgpool2d", [self.tensor(x)], attrs=self.pool_attrs(
                m.kernel_size, m.stride, m.padding, m.ceil_mode,
                count_include_pad=m.count_include_pad))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive(node, base, x)
        elif isinstance(m, nn.Upsample):
            self.upsample(node, base, x, m.size, m.scale_factor, m.mode, m.align_corners,
                          m.recompute_scale_factor)
        elif isinstance(m, nn.Flatten):
            self.flatten_like(node, base, x)
        elif isinstance(m, nn.Softmax):
            if m.dim is None:
                raise Unmapped("Softmax without dim")
            self.emit(node, base, "softmax", [self.tensor(x)],
                      attrs={"axis": self.axis(m.dim, len(xs))})
        elif isinstance(m, (nn.Dropout, nn.Dropout2d, nn.AlphaDropout)):
            self.emit(node, base, "dropout", [self.tensor(x)], attrs={"p": float(m.p)})
        elif isinstance(m, nn.Identity):
            self.env[node] = self.tensor(x)
        elif isinstance(m, nn.ChannelShuffle):
            self.emit(node, base, "channel_shuffle", [self.tensor(x)], attrs={"groups": m.groups})
        else:
            raise Unmapped("no mapping for this module type")

    # ---- channels-last stretches (x.permute(0, 2, 3, 1) ... .permute(0, 3, 1, 2)) ------------
    def layernorm(self, node, base, src, eps, weight, bias, nhwc=False):
        affine = weight is not None
        name = self.emit(node, base, "layernorm", [src], attrs={"eps": float(eps), "affine": affine})
        if affine:
            c = weight.shape[0]
            self.add_weights(name, {"weight": weight, "bias": bias if bias is not None
                                    else torch.zeros(c)})
        if nhwc:
            self.env[node] = _Pending("nhwc", name)
        return name

    def map_nhwc_module(self, node, base, m, x):
        """A module on the channels-last view of src: computed on src (NCHW), result channels-last."""
        src, xs = self.nhwc(x), self.shape(x)
        if isinstance(m, nn.LayerNorm):
            if tuple(m.normalized_shape) != (xs[-1],):
                raise Unmapped(f"LayerNorm{tuple(m.normalized_shape)} on channels-last {list(xs)}: "
                               "only over the channels")
            self.layernorm(node, base, src, m.eps, m.weight, m.bias, nhwc=True)
        elif isinstance(m, nn.Linear):
            name = self.emit(node, base, "conv2d", [src], [m.out_features],
                             {"kernel": 1, "bias": m.bias is not None})
            self.add_weights(name, {"weight": m.weight[:, :, None, None],
                                    **({"bias": m.bias} if m.bias is not None else {})})
            self.env[node] = _Pending("nhwc", name)
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            self.env[node] = _Pending("nhwc", src)
        elif type(m) in SIMPLE_MODULES or isinstance(m, (nn.ReLU6, nn.Hardtanh)):
            if isinstance(m, nn.ReLU6):
                op, attrs = "relu6", {}
            elif isinstance(m, nn.Hardtanh):
                op, attrs = "clamp", {"min": float(m.min_val), "max": float(m.max_val)}
            else:
                op, attrs = SIMPLE_MODULES[type(m)](m)
            name = self.emit(node, base, op, [src], attrs=attrs)
            self.env[node] = _Pending("nhwc", name)
        else:
            raise Unmapped(f"{type(m).__name__} on the channels-last permute of {src} (only "
                           "layernorm, linear and elementwise ops map until the permute back)")

    def layer_norm_fn(self, node, base, args, kw):
        x = args[0]
        shape = tuple(self.value(self.arg(args, kw, 1, "normalized_shape")))
        w, b = (self.arg(args, kw, i, k) for i, k in ((2, "weight"), (3, "bias")))
        eps = float(self.value(self.arg(args, kw, 4, "eps", 1e-5)))
        xs = self.shape(x)
        wt = self.param(w) if w is not None else None
        bt = self.param(b) if b is not None else None
        if (w is not None and wt is None) or (b is not None and bt is None):
            raise Unmapped("layer_norm with a computed weight or bias")
        if shape != (xs[-1],) or (self.nhwc(x) is None and len(xs) != 2):
            raise Unmapped(f"layer_norm{shape} on {list(xs)}: only over the channels")
        if wt is None and bt is not None:
            wt = torch.ones(xs[-1])
        src = self.nhwc(x) or self.tensor(x)
        self.layernorm(node, base, src, eps, wt, bt, nhwc=self.nhwc(x) is not None)

    def conv_padding(self, m):
        if isinstance(m.padding, str):
            if m.padding == "valid":
                return (0, 0)
            # 'same': PyTorch pads d*(k-1) in total, the extra one on the right/bottom.
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            if any(t % 2 for t in total):
                raise Unmapped("padding='same' with asymmetric padding")
            return (total[0] // 2, total[1] // 2)
        return tuple(m.padding)

    def pool_attrs(self, kernel, stride, padding, ceil_mode, **extra):
        k = pair(kernel)
        s = pair(stride) if stride not in (None, [], ()) else k
        a = {"kernel": k}
        if s != k:
            a["stride"] = s
        a["pad"] = pair(padding)
        if "dilation" in extra:
            a["dilation"] = pair(extra.pop("dilation"))
        a["ceil_mode"] = bool(ceil_mode)
        a.update({k2: bool(v) for k2, v in extra.items()})
        return a

    def axis(self, d, rank):
        d = int(d)
        return d + rank if d < 0 else d

    def adaptive(self, node, base, x, output_size=None):
        xs, ys = self.shape(x), self.shape(node)
        if len(xs) != 4:
            raise Unmapped("adaptive pooling of a non-4-D tensor")
        if ys[2:] == (1, 1):
            self.emit(node, base, "global_avgpool", [self.tensor(x)])
        elif ys[2:] == xs[2:]:
            self.env[node] = self.tensor(x)
        else:
            self.emit(node, base, "adaptive_avgpool", [self.tensor(x)],
                      attrs={"size": list(ys[2:])})

    def upsample(self, node, base, x, size, scale, mode, align_corners, recompute):
        if mode not in ("nearest", "bilinear"):
            raise Unmapped(f"interpolation mode {mode!r}")
        attrs = {}
        ys = self.shape(node)
        if scale is not None and not recompute:
            # PyTorch maps source pixels with 1/scale (not in/out) when the scale is given:
            # keep the scale so the .net computes the same coordinates.
            sc = scale if isinstance(scale, (list, tuple)) else (scale, scale)
            if len(sc) != 2 or float(sc[0]) != float(sc[1]):
                raise Unmapped(f"per-axis scale factors {scale!r}")
            attrs["scale"] = float(sc[0])
        else:
            attrs["size"] = list(ys[2:])
        attrs["mode"] = mode
        if align_corners:
            if mode == "nearest":
                raise Unmapped("align_corners with nearest")
            attrs["align_corners"] = True
        self.emit(node, base, "upsample", [self.tensor(x)], attrs=attrs)

    def flatten_like(self, node, base, x):
        """flatten / view / reshape: a flatten to [N, rest], a no-op, or the last step of a
        view-transpose-view channel shuffle."""
        v = self.env.get(x)
        ys = self.shape(node)
        if isinstance(v, _Pending):
            if v.kind == "shuffle_t" and ys == self.shape(v.src):
                self.emit(node, base, "channel_shuffle", [self.tensor(v.src)],
                          attrs={"groups": v.info["groups"]})
                return
            raise Unmapped("reshape of an intermediate with no .net tensor")
        xs = self.shape(x)
        if ys == xs:
            self.env[node] = self.tensor(x)
        elif len(xs) >= 2 and ys == (xs[0], int(np.prod(xs[1:]))):
            self.emit(node, base, "flatten", [self.tensor(x)])
        elif (len(xs) == 4 and len(ys) == 5 and ys[0] == xs[0] and ys[1] * ys[2] == xs[1]
              and ys[3:] == xs[2:]):
            self.env[node] = _Pending("shuffle_v", x, groups=ys[1])
        else:
            raise Unmapped(f"reshape {list(xs)} -> {list(ys)} is not a flatten (the language "
                           "has no general reshape)")

    # ---- call_function / call_method -------------------------------------------------------
    def map_call(self, node):
        res = self.values[node]
        tgt = node.target
        name = tgt if isinstance(tgt, str) else getattr(tgt, "__name__", str(tgt))
        args, kw = list(node.args), dict(node.kwargs)
        tensor_args = [a for a in node.all_input_nodes if self.is_tensor(a)]

        # Python values computed by the trace (sizes, channel counts): attributes, not tensors.
        if not isinstance(res, (torch.Tensor, tuple, list)) or (
                isinstance(res, (tuple, list)) and not any(isinstance(r, torch.Tensor)
                                                           for r in res)):
            self.env[node] = _Scalar()
            return
        if node.op == "call_method":
            key = ("method", tgt)
        else:
            key = ("function", tgt)
        handler = CALLS.get(key)
        if handler is None:
            raise Unmapped(f"no mapping for {node.op} {name}")
        if not tensor_args and not isinstance(self.env.get(args[0] if args else None),
                                              _Pending):
            raise Unmapped("no tensor input")
        handler(self, node, node.name, args, kw)

    def arg(self, args, kw, i, key, default=None):
        if len(args) > i:
            return args[i]
        return kw.get(key, default)

    def binary(self, node, base, args, kw, op):
        if kw.get("alpha", 1) != 1 or kw.get("rounding_mode") is not None:
            raise Unmapped(f"{op} with alpha/rounding_mode")
        a, b = args[0], args[1]
        na, nb = self.nhwc(a), self.nhwc(b)
        if na is not None and nb is not None:  # both channels-last: computed on the NCHW sources
            if self.shape(a) != self.shape(b):
                raise Unmapped(f"{op} broadcast of channels-last {list(self.shape(a))} with "
                               f"{list(self.shape(b))}")
            self.env[node] = _Pending("nhwc", self.emit(node, base, op, [na, nb]))
            return
        if not (self.is_tensor(a) and self.is_tensor(b)) or self.param(a) is not None \
                or self.param(b) is not None:
            return self.scale_by_constant(node, base, op, a, b)
        sa, sb = self.shape(a), self.shape(b)
        ok = sa == sb or (len(sa) == 4 and len(sb) == 4 and sa[:2] == sb[:2]
                          and (sa[2:] == (1, 1) or sb[2:] == (1, 1)))
        if not ok:
            raise Unmapped(f"{op} broadcast {list(sa)} with {list(sb)}")
        self.emit(node, base, op, [self.tensor(a), self.tensor(b)])

    def scale_by_constant(self, node, base, op, a, b):
        """x op c or c op x with c a Python number or a parameter that is one value per channel
        (shape [C, 1, 1] against [N, C, H, W], [C] against [N, C] or channels-last [N, H, W, C]):
        a scale, x * w + t."""
        def const(v):
            p = self.param(v)
            if p is not None:
                return p.to(torch.float64)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return torch.tensor(float(v), dtype=torch.float64)
            return None
        ca, cb = const(a), const(b)
        if (ca is None) == (cb is None):
            raise Unmapped(f"{op} of two constants or of unsupported operands")
        x, c, c_first = (b, ca, True) if ca is not None else (a, cb, False)
        if not self.is_tensor(x):
            raise Unmapped(f"{op} without a tensor operand")
        xs = self.shape(x)
        src = self.nhwc(x)
        cdim = len(xs) - 1 if src is not None else 1
        if len(xs) < 2:
            raise Unmapped(f"{op} by a constant of a rank-{len(xs)} tensor")
        C = xs[cdim]
        cs = tuple(c.shape)
        if len(cs) > len(xs):
            raise Unmapped(f"{op} by a constant of shape {list(cs)} against {list(xs)}")
        al = (1,) * (len(xs) - len(cs)) + cs
        if any(d != 1 for i, d in enumerate(al) if i != cdim) or al[cdim] not in (1, C):
            raise Unmapped(f"{op} by a constant of shape {list(cs)} against {list(xs)}: only one "
                           "value per channel maps (scale)")
        v = c.reshape(-1).expand(C) if c.numel() == 1 else c.reshape(C)
        w, t = (None if e is None else torch.from_numpy(e)
                for e in scale_terms(op, v.numpy().astype(np.float64), c_first))
        has_bias = t is not None and bool((t != 0).any())
        name = self.emit(node, base, "scale", [src or self.tensor(x)], attrs={"bias": has_bias})
        self.add_weights(name, {"weight": w, **({"bias": t} if has_bias else {})})
        if src is not None:
            self.env[node] = _Pending("nhwc", name)

    def unary(self, node, base, args, kw, op, attrs=None, inplace=False):
        a = dict(attrs or {})
        src = self.nhwc(args[0])
        if src is not None:
            self.env[node] = _Pending("nhwc", self.emit(node, base, op, [src], attrs=a))
            return
        if "inplace" in DEFAULTS.get(op, {}):
            a["inplace"] = inplace or bool(kw.get("inplace", False))
        self.emit(node, base, op, [self.tensor(args[0])], attrs=a)

    def getitem(self, node, base, args, kw):
        src, idx = args[0], args[1]
        v = self.env.get(src)
        if isinstance(v, _Pending) and v.kind == "pieces":
            axis, bounds = v.info["axis"], v.info["bounds"]
            start, end = bounds[int(self.value(idx))]
            self.emit(node, base, "slice", [self.tensor(v.src)],
                      attrs={"axis": axis, "start": start, "end": end})
            return
        xs = self.shape(src)
        idx = self.value(idx)
        if not isinstance(idx, tuple):
            idx = (idx,)
        if any(i is Ellipsis for i in idx):
            k = idx.index(Ellipsis)
            idx = idx[:k] + (slice(None),) * (len(xs) - len(idx) + 1) + idx[k + 1:]
        cuts = []
        for axis, s in enumerate(idx):
            if not isinstance(s, slice) or s.step not in (None, 1):
                raise Unmapped(f"indexing with {s!r} (only slices with step 1)")
            start, stop, _ = s.indices(xs[axis])
            if (start, stop) != (0, xs[axis]):
                cuts.append((axis, start, stop))
        if not cuts:
            self.env[node] = self.tensor(src)
        elif len(cuts) == 1:
            axis, start, stop = cuts[0]
            self.emit(node, base, "slice", [self.tensor(src)],
                      attrs={"axis": axis, "start": start, "end": stop})
        else:
            raise Unmapped("slicing more than one axis")

    def pieces(self, node, base, args, kw, how):
        x = args[0]
        xs = self.shape(x)
        res = self.values[node]
        dim = self.axis(self.value(self.arg(args, kw, 2, "dim", 0)), len(xs))
        bounds, start = [], 0
        for r in res:
            bounds.append((start, start + r.shape[dim]))
            start += r.shape[dim]
        self.tensor(x)
        self.env[node] = _Pending("pieces", x, axis=dim, bounds=bounds)

    def transpose(self, node, base, args, kw):
        v = self.env.get(args[0])
        if isinstance(v, _Pending) and v.kind == "shuffle_v":
            dims = sorted(self.axis(self.value(d), 5) for d in args[1:3])
            if dims == [1, 2]:
                self.env[node] = _Pending("shuffle_t", v.src, groups=v.info["groups"])
                return
        raise Unmapped("transpose outside a channel shuffle (the language has no transpose)")

    def permute(self, node, base, args, kw):
        v = self.env.get(args[0])
        dims = self.value(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple))
                          else args[1:])
        if isinstance(v, _Pending) and v.kind == "shuffle_v" and list(dims) == [0, 2, 1, 3, 4]:
            self.env[node] = _Pending("shuffle_t", v.src, groups=v.info["groups"])
            return
        dims = [self.axis(d, len(self.shape(args[0]))) for d in dims]
        if isinstance(v, str) and dims == [0, 2, 3, 1]:
            self.env[node] = _Pending("nhwc", v)
            return
        if isinstance(v, _Pending) and v.kind == "nhwc" and dims == [0, 3, 1, 2]:
            self.env[node] = v.src
            return
        raise Unmapped(f"permute {dims}: only a channel shuffle, or channels-last (0, 2, 3, 1) "
                       "and back (0, 3, 1, 2) around layernorm, linear and elementwise ops")

    def contiguous(self, node, base, args, kw):
        v = self.env.get(args[0])
        self.env[node] = v if isinstance(v, _Pending) else self.tensor(args[0])

    def view(self, node, base, args, kw):
        """flatten, view, reshape: judged by the shapes they produce, not their arguments."""
        self.flatten_like(node, base, args[0])

    def cat(self, node, base, args, kw):
        parts = args[0]
        if len(parts) == 1:  # torch.cat([x]) is x (DenseNet's first dense layer): no statement
            self.env[node] = self.tensor(parts[0])
            return
        dim = self.value(self.arg(args, kw, 1, "dim", 0))
        rank = len(self.shape(parts[0]))
        self.emit(node, base, "concat", [self.tensor(p) for p in parts],
                  attrs={"axis": self.axis(dim, rank)})

    def pool_fn(self, node, base, args, kw, op):
        names = (["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"]
                 if op == "maxpool2d" else
                 ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                  "divisor_override"])
        vals = {n: self.value(self.arg(args, kw, i + 1, n)) for i, n in enumerate(names)}
        if vals.get("return_indices") or vals.get("divisor_override"):
            raise Unmapped("return_indices / divisor_override")
        extra = {}
        if op == "maxpool2d":
            extra["dilation"] = vals["dilation"] if vals["dilation"] is not None else 1
        else:
            cip = vals["count_include_pad"]
            extra["count_include_pad"] = True if cip is None else cip
        self.emit(node, base, op, [self.tensor(args[0])], attrs=self.pool_attrs(
            vals["kernel_size"], vals["stride"], vals["padding"] or 0,
            vals["ceil_mode"] or False, **extra))

    def mean(self, node, base, args, kw):
        x = args[0]
        xs = self.shape(x)
        dims = self.value(self.arg(args, kw, 1, "dim"))
        keep = self.value(self.arg(args, kw, 2, "keepdim", False))
        if len(xs) != 4 or dims is None:
            raise Unmapped("mean other than over H and W")
        dims = sorted(self.axis(d, 4) for d in (dims if isinstance(dims, (list, tuple))
                                                else [dims]))
        if dims != [2, 3]:
            raise Unmapped("mean other than over H and W")
        if keep:
            self.emit(node, base, "global_avgpool", [self.tensor(x)])
        else:
            g = self.fresh(base + "_pool")
            self.lines.append(f"{g} = global_avgpool({self.tensor(x)})")
            self.emit(node, base, "flatten", [g])

    def interpolate(self, node, base, args, kw):
        names = ["size", "scale_factor", "mode", "align_corners", "recompute_scale_factor",
                 "antialias"]
        vals = {n: self.value(self.arg(args, kw, i + 1, n)) for i, n in enumerate(names)}
        if vals["antialias"]:
            raise Unmapped("antialias")
        self.upsample(node, base, args[0], vals["size"], vals["scale_factor"],
                      vals["mode"] or "nearest", vals["align_corners"],
                      vals["recompute_scale_factor"])

    def pad_fn(self, node, base, args, kw):
        p = list(self.value(self.arg(args, kw, 1, "pad")))
        mode = self.value(self.arg(args, kw, 2, "mode", "constant"))
        value = self.value(self.arg(args, kw, 3, "value", 0.0))
        if len(p) == 2:
            p += [0, 0]
        if len(p) != 4 or any(int(e) < 0 for e in p) or mode not in ("constant", "reflect"):
            raise Unmapped(f"pad {p} mode {mode}")
        self.emit(node, base, "pad", [self.tensor(args[0])],
                  attrs={"pad": [int(e) for e in p], "mode": mode,
                         "value": float(value or 0.0)})

    def narrow(self, node, base, args, kw):
        xs = self.shape(args[0])
        dim = self.axis(self.value(self.arg(args, kw, 1, "dim")), len(xs))
        start = int(self.value(self.arg(args, kw, 2, "start")))
        length = int(self.value(self.arg(args, kw, 3, "length")))
        if start < 0:
            start += xs[dim]
        self.emit(node, base, "slice", [self.tensor(args[0])],
                  attrs={"axis": dim, "start": start, "end": start + length})

    def softmax(self, node, base, args, kw):
        dim = self.value(self.arg(args, kw, 1, "dim"))
        if dim is None:
            raise Unmapped("softmax without dim")
        self.emit(node, base, "softmax", [self.tensor(args[0])],
                  attrs={"axis": self.axis(dim, len(self.shape(args[0])))})

    def clamp(self, node, base, args, kw, inplace=False):
        lo = self.value(self.arg(args, kw, 1, "min"))
        hi = self.value(self.arg(args, kw, 2, "max"))
        attrs = {}
        if lo is not None:
            attrs["min"] = float(lo)
        if hi is not None:
            attrs["max"] = float(hi)
        self.unary(node, base, args, kw, "clamp", attrs, inplace)

    def adaptive_fn(self, node, base, args, kw):
        self.adaptive(node, base, args[0])

    def shuffle_fn(self, node, base, args, kw):
        g = int(self.value(self.arg(args, kw, 1, "groups")))
        self.emit(node, base, "channel_shuffle", [self.tensor(args[0])], attrs={"groups": g})

    def dropout_fn(self, node, base, args, kw):
        if self.value(self.arg(args, kw, 2, "training", False)):
            raise Unmapped("dropout in training mode")
        p = self.value(self.arg(args, kw, 1, "p", 0.5))
        self.emit(node, base, "dropout", [self.tensor(args[0])], attrs={"p": float(p)})


# Module types with no .net equivalent, and why (the report says it for each such module).
NO_NET_MODULE = {
    "GroupNorm": "the language has no group norm",
    "InstanceNorm2d": "the language has no instance norm",
    "LocalResponseNorm": "the language has no local response norm",
    "MultiheadAttention": "the language has no attention (no batched matmul, no general reshape "
                          "or transpose)",
    "Conv1d": "the language has 2-D convolutions only",
    "Conv3d": "the language has 2-D convolutions only",
    "MaxPool1d": "the language has 2-D pooling only",
    "AdaptiveMaxPool2d": "the language has no adaptive max pooling",
    "Embedding": "the language has no embedding lookup (float32 inputs only)",
    "Softplus": "the language has no softplus",
    "SELU": "the language has no selu",
    "Mish": "the language has no mish",
}

SIMPLE_MODULES = {
    nn.ReLU: lambda m: ("relu", {}),
    nn.LeakyReLU: lambda m: ("leaky_relu", {"slope": float(m.negative_slope)}),
    nn.Sigmoid: lambda m: ("sigmoid", {}),
    nn.Tanh: lambda m: ("tanh", {}),
    nn.SiLU: lambda m: ("silu", {}),
    nn.Hardswish: lambda m: ("hardswish", {}),
    nn.Hardsigmoid: lambda m: ("hardsigmoid", {}),
    nn.GELU: lambda m: ("gelu", {"approximate": getattr(m, "approximate", "none")}),
    nn.ELU: lambda m: ("elu", {"alpha": float(m.alpha)}),
}


MAPPED_MODULES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d,
                  nn.Hardtanh, nn.PReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                  nn.Upsample, nn.Flatten, nn.Softmax, nn.Dropout, nn.Dropout2d, nn.AlphaDropout,
                  nn.Identity, nn.ChannelShuffle, nn.LayerNorm, *SIMPLE_MODULES)


def _unary_fn(op, attr_of=None, inplace=False):
    def h(self, node, base, args, kw):
        attrs = attr_of(self, args, kw) if attr_of else {}
        self.unary(node, base, args, kw, op, attrs, inplace)
    return h


def _binary_fn(op):
    return lambda self, node, base, args, kw: self.binary(node, base, args, kw, op)


def _leaky_attrs(self, args, kw):
    return {"slope": float(self.value(self.arg(args, kw, 1, "negative_slope", 0.01)))}


def _elu_attrs(self, args, kw):
    return {"alpha": float(self.value(self.arg(args, kw, 1, "alpha", 1.0)))}


def _gelu_attrs(self, args, kw):
    return {"approximate": self.value(kw.get("approximate", "none"))}


def _hardtanh(self, node, base, args, kw):
    lo = float(self.value(self.arg(args, kw, 1, "min_val", -1.0)))
    hi = float(self.value(self.arg(args, kw, 2, "max_val", 1.0)))
    self.unary(node, base, args, kw, "clamp", {"min": lo, "max": hi})


CALLS = {}


def _reg(fn, *keys):
    for k in keys:
        CALLS[k] = fn


def _f(*fns):
    return [("function", f) for f in fns]


def _m(*names):
    return [("method", n) for n in names]


_reg(_binary_fn("add"), *_f(operator.add, operator.iadd, torch.add), *_m("add", "add_"))
_reg(_binary_fn("sub"), *_f(operator.sub, operator.isub, torch.sub), *_m("sub", "sub_"))
_reg(_binary_fn("mul"), *_f(operator.mul, operator.imul, torch.mul), *_m("mul", "mul_"))
_reg(_binary_fn("div"), *_f(operator.truediv, operator.itruediv, torch.div),
     *_m("div", "div_"))
_reg(Converter.cat, *_f(torch.cat, torch.concat))
_reg(Converter.view, *_f(torch.flatten, torch.reshape), *_m("flatten", "view", "reshape"))
_reg(Converter.transpose, *_f(torch.transpose), *_m("transpose"))
_reg(Converter.permute, *_f(torch.permute), *_m("permute"))
_reg(Converter.contiguous, *_m("contiguous"))
_reg(Converter.getitem, *_f(operator.getitem))
_reg(lambda s, n, b, a, k: s.pieces(n, b, a, k, "chunk"), *_f(torch.chunk), *_m("chunk"))
_reg(lambda s, n, b, a, k: s.pieces(n, b, a, k, "split"), *_f(torch.split), *_m("split"))
_reg(Converter.narrow, *_f(torch.narrow), *_m("narrow"))
_reg(_unary_fn("relu"), *_f(F.relu, torch.relu), *_m("relu"))
_reg(_unary_fn("relu", inplace=True), *_f(torch.relu_, F.relu_), *_m("relu_"))
_reg(_unary_fn("relu6"), *_f(F.relu6))
_reg(_unary_fn("leaky_relu", _leaky_attrs), *_f(F.leaky_relu))
_reg(_hardtanh, *_f(F.hardtanh))
_reg(Converter.clamp, *_f(torch.clamp, torch.clip), *_m("clamp", "clip"))
_reg(lambda s, n, b, a, k: s.clamp(n, b, a, k, inplace=True), *_m("clamp_", "clip_"))
_reg(_unary_fn("sigmoid"), *_f(torch.sigmoid, F.sigmoid), *_m("sigmoid"))
_reg(_unary_fn("sigmoid", inplace=True), *_m("sigmoid_"))
_reg(_unary_fn("tanh"), *_f(torch.tanh, F.tanh), *_m("tanh"))
_reg(_unary_fn("tanh", inplace=True), *_m("tanh_"))
_reg(_unary_fn("silu"), *_f(F.silu))
_reg(_unary_fn("hardswish"), *_f(F.hardswish))
_reg(_unary_fn("hardsigmoid"), *_f(F.hardsigmoid))
_reg(_unary_fn("gelu", _gelu_attrs), *_f(F.gelu))
_reg(_unary_fn("elu", _elu_attrs), *_f(F.elu))
_reg(lambda s, n, b, a, k: s.pool_fn(n, b, a, k, "maxpool2d"), *_f(F.max_pool2d))
_reg(lambda s, n, b, a, k: s.pool_fn(n, b, a, k, "avgpool2d"), *_f(F.avg_pool2d))
_reg(Converter.adaptive_fn, *_f(F.adaptive_avg_pool2d))
_reg(Converter.mean, *_f(torch.mean), *_m("mean"))
_reg(Converter.interpolate, *_f(F.interpolate))
_reg(Converter.pad_fn, *_f(F.pad))
_reg(Converter.softmax, *_f(F.softmax, torch.softmax), *_m("softmax"))
_reg(Converter.shuffle_fn, *_f(F.channel_shuffle, torch.channel_shuffle))
_reg(Converter.dropout_fn, *_f(F.dropout))
_reg(Converter.layer_norm_fn, *_f(F.layer_norm))


def _stochastic_depth(self, node, base, args, kw):
    if self.value(self.arg(args, kw, 3, "training", True)):
        raise Unmapped("stochastic depth in training mode")
    self.env[node] = self.tensor(args[0])


# Library functions mapped as a whole (kept as leaves of the trace where needed).
LEAF_FUNCTIONS = []
try:
    import torchvision.ops
    _reg(_stochastic_depth, *_f(torchvision.ops.stochastic_depth))
    from torchvision.models import shufflenetv2 as _tv_shufflenet
    LEAF_FUNCTIONS.append(_tv_shufflenet.channel_shuffle)
    _reg(Converter.shuffle_fn, *_f(_tv_shufflenet.channel_shuffle))
except ImportError:
    pass


def default_name(module):
    n = re.sub(r"(?<!^)(?=[A-Z])", "_", type(module).__name__).lower()
    return re.sub(r"[^A-Za-z0-9_]", "_", n)


def convert(module, example_input, name=None):
    """Convert `module` (traced with torch.fx) on `example_input` (a tensor or a tuple of tensors).
    Returns (net_text, tensors, unmapped): the .net source, {weight name: float32 ndarray}, and a
    list of (node name, target) that have no .net equivalent (the text then has a comment line
    for each, and will not compile)."""
    return _converter(module, example_input, name).run()


def explain(module, example_input, name=None):
    """convert(), with the reasons: (net_text, tensors, unmapped) where unmapped is a list of
    (node name, target, why, what), `what` naming the kind of node (`module LayerNorm`,
    `method permute`, `function add`, `parameter`)."""
    conv = _converter(module, example_input, name)
    text, tensors, _ = conv.run()
    return text, tensors, conv.unmapped


def report(unmapped):
    """One message for explain()'s unmapped list: each kind of node once, with its count, its
    first node and why that one is not mapped. Nodes that fail only because an input is
    unmapped are not in the list."""
    groups = {}
    for node, target, why, what in unmapped:
        groups.setdefault(what, []).append((node, target, why))
    lines = ["torch2net: cannot convert: these have no .net equivalent:"]
    for what, items in groups.items():
        node, target, why = items[0]
        first = f"{node!r}" + (f" ({target})" if target != node and "." in target else "")
        others = len({w for _, _, w in items}) - 1
        lines.append(f"  {what}: {len(items)} node(s), first {first}: {why}"
                     + (f" (and {others} other reason{'s' if others > 1 else ''})" if others
                        else ""))
    return "\n".join(lines)


def _converter(module, example_input, name):
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    net_name = re.sub(r"[^A-Za-z0-9_]", "_", name or default_name(module))
    if net_name[0].isdigit():
        net_name = "_" + net_name
    return Converter(module, inputs, net_name)


def load_module(spec, kwargs):
    """`pkg.module:callable` or `path/file.py:ClassName`: the callable is called with kwargs."""
    if ":" not in spec:
        raise SystemExit(f"torch2net: module spec {spec!r} must be MODULE:NAME or FILE.py:NAME")
    where, attr = spec.rsplit(":", 1)
    if where.endswith(".py") or os.sep in where:
        mspec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(where))[0], where)
        if mspec is None:
            raise SystemExit(f"torch2net: cannot load {where}")
        mod = importlib.util.module_from_spec(mspec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
        mspec.loader.exec_module(mod)
    else:
        mod = importlib.import_module(where)
    if not hasattr(mod, attr):
        raise SystemExit(f"torch2net: {where} has no attribute {attr!r}")
    return getattr(mod, attr)(**kwargs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("module", help="MODULE:CALLABLE (torchvision.models:resnet18) or FILE.py:CLASS")
    ap.add_argument("--input-shape", action="append", required=True,
                    help="N,C,H,W of an input (repeat for several inputs, in order)")
    ap.add_argument("-o", "--output", help="the .net file to write (default: stdout)")
    ap.add_argument("--weights", help="the .safetensors file to write")
    ap.add_argument("--name", help="the net's name (default: the output file's stem)")
    ap.add_argument("--kwargs", default="{}", help="JSON keyword arguments for the constructor")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights and example input")
    ap.add_argument("--allow-unmapped", action="store_true",
                    help="write the files even if some nodes could not be mapped")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    module = load_module(args.module, json.loads(args.kwargs))
    if not isinstance(module, nn.Module):
        raise SystemExit(f"torch2net: {args.module} did not give an nn.Module")
    shapes = [tuple(int(d) for d in s.split(",")) for s in args.input_shape]
    example = tuple(torch.randn(*s) for s in shapes)
    name = args.name
    if name is None and args.output:
        name = os.path.splitext(os.path.basename(args.output))[0]
    if name is None:
        name = args.module.rsplit(":", 1)[1]
    text, tensors, unmapped = explain(module, example, name)
    if unmapped:
        print(report(unmapped), file=sys.stderr)
    if unmapped and not args.allow_unmapped:
        print(f"torch2net: {len(unmapped)} node(s) not mapped; nothing written "
              "(--allow-unmapped writes them as comments)", file=sys.stderr)
        return 1
    write_outputs(args.output, text, args.weights, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main())

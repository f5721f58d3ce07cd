/* shape.c — shape inference: one rule per op of ops.def (PyTorch's rank, shape and attribute
 * checks, canonical defaults, output and weight shapes), and the MAC and weight counts. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "ir.h"

/* Window arithmetic runs in 128 bits: attributes and input dimensions are whatever int64 the
 * source wrote, and every product below is of two int64 values, so nothing can overflow before
 * the result is checked against the int64 range. */
typedef __int128 wide;

enum { SHAPE_BUF = 256 }; /* IR_MAX_RANK dims of 20 digits, separators and brackets */

/* Shape text in a buffer that lives until the end of the enclosing block, so several can appear
 * in one message. */
#define SHP(t) ir_shape_str((t), (char[SHAPE_BUF]){0}, SHAPE_BUF)
#define DIMS(r, s) ir_dims_str((r), (s), (char[SHAPE_BUF]){0}, SHAPE_BUF)
#define OPN(n) (op_info((n)->op)->name)
#define I64(v) ((long long)(v))

static const Tensor *input(const Graph *g, const Node *n, int k) { return ir_tensor(g, n->in[k]); }

/* PyTorch's names for the axes of an image tensor, "dim k" elsewhere. */
static const char *dim_name(int rank, int axis, char *buf, size_t len) {
    static const char *const nchw[] = {"N", "C", "H", "W"};
    if (rank == 4) return nchw[axis];
    snprintf(buf, len, "dim %d", axis);
    return buf;
}
#define DIMNAME(r, a) dim_name((r), (a), (char[16]){0}, 16)

static wide floor_div(wide a, wide b) {
    wide q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The product of the dims fits in int64 (every dim already >= 1). */
static bool numel_fits(int rank, const int64_t *shape) {
    wide p = 1;
    for (int i = 0; i < rank; i++) {
        p *= shape[i];
        if (p > INT64_MAX) return false;
    }
    return true;
}

static bool set_output(Graph *g, Node *n, Diags *d, int rank, const int64_t *shape) {
    if (!numel_fits(rank, shape)) {
        ir_node_error(d, n, "%s: the output %s has more elements than fit in 64 bits", OPN(n),
                      DIMS(rank, shape));
        return false;
    }
    Tensor *t = ir_tensor(g, n->out);
    t->rank = rank;
    memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    return true;
}

/* ---- weights --------------------------------------------------------------------------- */

static int weight_slot(const Node *n, const char *param) {
    const OpInfo *o = op_info(n->op);
    for (int k = 0; k < o->nweights; k++)
        if (!strcmp(o->weight_names[k], param)) return k;
    NETC_ASSERT(!"op has no such weight");
}

/* The weight exists for these attributes: create it (named after the node, as in PyTorch's
 * state_dict) or check the shape of the one already there (a pass or a loader made it). */
static bool want_weight(Graph *g, Node *n, Diags *d, const char *param, int rank,
                        const int64_t *shape) {
    int k = weight_slot(n, param);
    const Tensor *x = input(g, n, 0);
    if (!numel_fits(rank, shape)) {
        ir_node_error(d, n, "%s: the weight '%s.%s' %s for input %s has more elements than fit in 64 bits",
                      OPN(n), n->name, param, DIMS(rank, shape), SHP(x));
        return false;
    }
    if (n->w[k] < 0) {
        char *name = arena_printf(&g->arena, "%s.%s", n->name, param);
        n->w[k] = ir_new_tensor(g, name, TK_WEIGHT, rank, shape, n->loc);
        return true;
    }
    if (n->w[k] >= g->tensors.len) {
        ir_node_error(d, n, "verifier: %s '%s' has %s tensor id %d, out of range", OPN(n), n->name,
                      param, n->w[k]);
        return false;
    }
    const Tensor *w = ir_tensor(g, n->w[k]);
    if (w->kind != TK_WEIGHT) {
        ir_node_error(d, n, "verifier: %s '%s' uses '%s' as its %s, which is not a weight", OPN(n),
                      n->name, w->name, param);
        return false;
    }
    if (w->rank != rank || memcmp(w->shape, shape, (size_t)rank * sizeof *shape)) {
        ir_node_error(d, n, "%s: weight '%s' has shape %s, expected %s for input %s", OPN(n), w->name,
                      SHP(w), DIMS(rank, shape), SHP(x));
        return false;
    }
    return true;
}

/* The weight must not exist for these attributes (bias=false). */
static bool no_weight(const Graph *g, Node *n, Diags *d, const char *param, const char *why) {
    int k = weight_slot(n, param);
    if (n->w[k] < 0) return true;
    const char *wn = n->w[k] < g->tensors.len ? ir_tensor(g, n->w[k])->name : "?";
    ir_node_error(d, n, "verifier: %s '%s' has a %s tensor '%s' but %s", OPN(n), n->name, param, wn,
                  why);
    return false;
}

static bool bias_weight(Graph *g, Node *n, Diags *d, int64_t out) {
    if (ir_attr_bool(n, "bias")) return want_weight(g, n, d, "bias", 1, &out);
    return no_weight(g, n, d, "bias", "bias=false");
}

/* ---- attribute checks ------------------------------------------------------------------ */

static bool need_nchw(Node *n, Diags *d, const Tensor *x) {
    if (x->rank == 4) return true;
    ir_node_error(d, n, "%s: input must be [N, C, H, W], got %s", OPN(n), SHP(x));
    return false;
}

static bool int_at_least(Node *n, Diags *d, const char *attr, int64_t v, int64_t min) {
    if (v >= min) return true;
    ir_node_error(d, n, "%s: %s must be at least %lld, got %lld", OPN(n), attr, I64(min), I64(v));
    return false;
}

static bool pair_at_least(Node *n, Diags *d, const char *attr, const int64_t v[2], int64_t min) {
    if (v[0] >= min && v[1] >= min) return true;
    ir_node_error(d, n, "%s: %s must be at least %lld, got %s", OPN(n), attr, I64(min), DIMS(2, v));
    return false;
}

static bool groups_divide(Node *n, Diags *d, const Tensor *x, int64_t groups, int64_t out) {
    if (!int_at_least(n, d, "groups", groups, 1)) return false;
    if (x->shape[1] % groups) {
        ir_node_error(d, n, "%s: groups=%lld does not divide the %lld input channels of %s", OPN(n),
                      I64(groups), I64(x->shape[1]), SHP(x));
        return false;
    }
    if (out % groups) {
        ir_node_error(d, n, "%s: groups=%lld does not divide out=%lld", OPN(n), I64(groups), I64(out));
        return false;
    }
    return true;
}

/* An axis in -rank..rank-1, made non-negative. */
static bool norm_axis(Node *n, Diags *d, const Tensor *x, int64_t axis, int *out) {
    if (axis < -x->rank || axis >= x->rank) {
        ir_node_error(d, n, "%s: axis %lld is out of range for %s (expected %d..%d)", OPN(n), I64(axis),
                      SHP(x), -x->rank, x->rank - 1);
        return false;
    }
    *out = (int)(axis < 0 ? axis + x->rank : axis);
    return true;
}

/* ---- sliding windows (conv, conv_transpose, pools) ------------------------------------- */

typedef struct Window {
    int64_t k[2], s[2], p[2], dil[2], opad[2];
    bool has_dil, has_opad, ceil_mode;
} Window;

/* "kernel [3, 3], stride [2, 2], pad [1, 1], dilation [1, 1]" for an error message */
static const char *window_str(const Window *w, char *buf, size_t len) {
    char a[SHAPE_BUF], b[SHAPE_BUF], c[SHAPE_BUF], e[SHAPE_BUF], f[SHAPE_BUF];
    snprintf(buf, len, "kernel %s, stride %s, pad %s%s%s%s%s%s", ir_dims_str(2, w->k, a, sizeof a),
             ir_dims_str(2, w->s, b, sizeof b), ir_dims_str(2, w->p, c, sizeof c),
             w->has_dil ? ", dilation " : "", w->has_dil ? ir_dims_str(2, w->dil, e, sizeof e) : "",
             w->has_opad ? ", output_pad " : "", w->has_opad ? ir_dims_str(2, w->opad, f, sizeof f) : "",
             w->ceil_mode ? ", ceil_mode" : "");
    return buf;
}

/* Check the window's output sizes and store them in out[0..1]. */
static bool window_fits(Node *n, Diags *d, const Tensor *x, const Window *w, const wide o[2],
                        int64_t out[2]) {
    char wb[4 * SHAPE_BUF];
    for (int a = 0; a < 2; a++) {
        if (o[a] < 1) {
            ir_node_error(d, n, "%s: input %s gives an empty output with %s", OPN(n), SHP(x),
                          window_str(w, wb, sizeof wb));
            return false;
        }
        if (o[a] > INT64_MAX) {
            ir_node_error(d, n, "%s: input %s gives an output too large for 64 bits with %s", OPN(n),
                          SHP(x), window_str(w, wb, sizeof wb));
            return false;
        }
        out[a] = (int64_t)o[a];
    }
    return true;
}

/* Output size of a forward window along one axis, as PyTorch's pooling_output_shape: floor, or
 * ceil with the rule that the last window must start inside the input or the left padding. */
static wide window_out(int64_t n, int64_t k, int64_t s, int64_t p, int64_t dil, bool ceil_mode) {
    wide num = (wide)n + 2 * (wide)p - (wide)dil * (k - 1) - 1;
    if (ceil_mode) num += s - 1;
    wide out = floor_div(num, s) + 1;
    if (ceil_mode && (out - 1) * s >= (wide)n + p) out--;
    return out;
}

static bool read_window(Node *n, Diags *d, Window *w) {
    memset(w, 0, sizeof *w);
    ir_attr_pair(n, "kernel", w->k);
    ir_attr_pair(n, "pad", w->p);
    if (ir_attr_set(n, "stride")) ir_attr_pair(n, "stride", w->s);
    else memcpy(w->s, w->k, sizeof w->s); /* pools: stride defaults to the kernel */
    w->dil[0] = w->dil[1] = 1;
    w->has_dil = op_attr_index(n->op, "dilation") >= 0;
    if (w->has_dil) ir_attr_pair(n, "dilation", w->dil);
    w->has_opad = op_attr_index(n->op, "output_pad") >= 0;
    if (w->has_opad) ir_attr_pair(n, "output_pad", w->opad);
    if (op_attr_index(n->op, "ceil_mode") >= 0) w->ceil_mode = ir_attr_bool(n, "ceil_mode");
    return pair_at_least(n, d, "kernel", w->k, 1) && pair_at_least(n, d, "stride", w->s, 1) &&
           pair_at_least(n, d, "pad", w->p, 0) && pair_at_least(n, d, "dilation", w->dil, 1) &&
           pair_at_least(n, d, "output_pad", w->opad, 0);
}

/* ---- the rules ------------------------------------------------------------------------- */

static bool ir_shape_conv2d(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    Window w;
    if (!need_nchw(n, d, x) || !read_window(n, d, &w)) return false;
    int64_t out = ir_attr_int(n, "out"), groups = ir_attr_int(n, "groups");
    if (!int_at_least(n, d, "out", out, 1) || !groups_divide(n, d, x, groups, out)) return false;
    wide o[2];
    int64_t hw[2];
    for (int a = 0; a < 2; a++) o[a] = window_out(x->shape[2 + a], w.k[a], w.s[a], w.p[a], w.dil[a], false);
    if (!window_fits(n, d, x, &w, o, hw)) return false;
    int64_t y[4] = {x->shape[0], out, hw[0], hw[1]};
    int64_t ws[4] = {out, x->shape[1] / groups, w.k[0], w.k[1]};
    return set_output(g, n, d, 4, y) && want_weight(g, n, d, "weight", 4, ws) &&
           bias_weight(g, n, d, out);
}

/* out = (in - 1)·s - 2p + d·(k - 1) + output_pad + 1, as F.conv_transpose2d */
static bool ir_shape_conv_transpose2d(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    Window w;
    if (!need_nchw(n, d, x) || !read_window(n, d, &w)) return false;
    int64_t out = ir_attr_int(n, "out"), groups = ir_attr_int(n, "groups");
    if (!int_at_least(n, d, "out", out, 1) || !groups_divide(n, d, x, groups, out)) return false;
    for (int a = 0; a < 2; a++)
        if (w.opad[a] >= w.s[a] && w.opad[a] >= w.dil[a]) {
            ir_node_error(d, n, "%s: output_pad %s must be smaller than stride %s or dilation %s", OPN(n),
                          DIMS(2, w.opad), DIMS(2, w.s), DIMS(2, w.dil));
            return false;
        }
    wide o[2];
    int64_t hw[2];
    for (int a = 0; a < 2; a++)
        o[a] = ((wide)x->shape[2 + a] - 1) * w.s[a] - 2 * (wide)w.p[a] + (wide)w.dil[a] * (w.k[a] - 1) +
               w.opad[a] + 1;
    if (!window_fits(n, d, x, &w, o, hw)) return false;
    int64_t y[4] = {x->shape[0], out, hw[0], hw[1]};
    int64_t ws[4] = {x->shape[1], out / groups, w.k[0], w.k[1]};
    return set_output(g, n, d, 4, y) && want_weight(g, n, d, "weight", 4, ws) &&
           bias_weight(g, n, d, out);
}

static bool ir_shape_linear(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (x->rank != 2) {
        ir_node_error(d, n, "linear: input must be [N, F], got %s%s", SHP(x),
                      x->rank > 2 ? " (flatten it first)" : "");
        return false;
    }
    int64_t out = ir_attr_int(n, "out");
    if (!int_at_least(n, d, "out", out, 1)) return false;
    int64_t y[2] = {x->shape[0], out}, ws[2] = {out, x->shape[1]};
    return set_output(g, n, d, 2, y) && want_weight(g, n, d, "weight", 2, ws) &&
           bias_weight(g, n, d, out);
}

static bool ir_shape_batchnorm(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (x->rank != 2 && x->rank != 4) {
        ir_node_error(d, n, "batchnorm: input must be [N, C] or [N, C, H, W], got %s", SHP(x));
        return false;
    }
    static const char *const params[] = {"weight", "bias", "running_mean", "running_var"};
    if (!set_output(g, n, d, x->rank, x->shape)) return false;
    for (int k = 0; k < 4; k++)
        if (!want_weight(g, n, d, params[k], 1, &x->shape[1])) return false;
    return true;
}

/* Normalised over dim 1 (the channels of [N, C, H, W], the features of [N, F]) at each other
 * position: nn.LayerNorm(C) on channels-last data, as ConvNeXt's LayerNorm2d. */
static bool ir_shape_layernorm(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (x->rank != 2 && x->rank != 4) {
        ir_node_error(d, n, "layernorm: input must be [N, C] or [N, C, H, W], got %s", SHP(x));
        return false;
    }
    double eps = ir_attr_float(n, "eps");
    if (!(eps >= 0)) {
        ir_node_error(d, n, "layernorm: eps must be >= 0, got %g", eps);
        return false;
    }
    if (!set_output(g, n, d, x->rank, x->shape)) return false;
    if (!ir_attr_bool(n, "affine"))
        return no_weight(g, n, d, "weight", "affine=false") && no_weight(g, n, d, "bias", "affine=false");
    return want_weight(g, n, d, "weight", 1, &x->shape[1]) && want_weight(g, n, d, "bias", 1, &x->shape[1]);
}

/* A per-channel scale (and shift when bias=true) of dim 1: PyTorch's `param * x` with a
 * parameter of shape [C, 1, 1] (ConvNeXt's layer scale). Any rank >= 2. */
static bool ir_shape_scale(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (x->rank < 2) {
        ir_node_error(d, n, "scale: input must have a channel dimension (rank >= 2), got %s", SHP(x));
        return false;
    }
    return set_output(g, n, d, x->rank, x->shape) && want_weight(g, n, d, "weight", 1, &x->shape[1]) &&
           bias_weight(g, n, d, x->shape[1]);
}

/* Elementwise ops of one input; the few with attribute constraints check them here. */
static bool ir_shape_unary(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (n->op == OP_CLAMP) {
        bool lo = ir_attr_set(n, "min"), hi = ir_attr_set(n, "max");
        if (!lo && !hi) {
            ir_node_error(d, n, "clamp: at least one of min and max must be given");
            return false;
        }
        /* torch.clamp would accept min > max, but nn.Hardtanh (what clamp means here) rejects it */
        if (lo && hi && ir_attr_float(n, "min") > ir_attr_float(n, "max")) {
            ir_node_error(d, n, "clamp: min %g is greater than max %g", ir_attr_float(n, "min"),
                          ir_attr_float(n, "max"));
            return false;
        }
    }
    if (n->op == OP_DROPOUT) {
        double p = ir_attr_float(n, "p");
        if (!(p >= 0 && p <= 1)) {
            ir_node_error(d, n, "dropout: p must be between 0 and 1, got %g", p);
            return false;
        }
    }
    return set_output(g, n, d, x->rank, x->shape);
}

static bool ir_shape_gelu(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    const char *a = ir_attr_str(n, "approximate");
    if (strcmp(a, "none") && strcmp(a, "tanh")) {
        ir_node_error(d, n, "gelu: approximate must be \"none\" or \"tanh\", got \"%s\"", a);
        return false;
    }
    return set_output(g, n, d, x->rank, x->shape);
}

/* One slope, or one per channel (dim 1; a rank-1 input has one channel, as in F.prelu). */
static bool ir_shape_prelu(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    int64_t np = ir_attr_int(n, "num_parameters");
    int64_t c = x->rank >= 2 ? x->shape[1] : 1;
    if (np != 1 && np != c) {
        ir_node_error(d, n, "prelu: num_parameters=%lld must be 1 or the %lld channels of %s", I64(np),
                      I64(c), SHP(x));
        return false;
    }
    return set_output(g, n, d, x->rank, x->shape) && want_weight(g, n, d, "weight", 1, &np);
}

/* maxpool2d and avgpool2d. PyTorch bounds the pad by half the kernel (not the dilated one). */
static bool ir_shape_pool2d(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    Window w;
    if (!need_nchw(n, d, x) || !read_window(n, d, &w)) return false;
    if (w.p[0] > w.k[0] / 2 || w.p[1] > w.k[1] / 2) {
        ir_node_error(d, n, "%s: pad %s must be at most half the kernel %s", OPN(n), DIMS(2, w.p),
                      DIMS(2, w.k));
        return false;
    }
    wide o[2];
    int64_t hw[2];
    for (int a = 0; a < 2; a++)
        o[a] = window_out(x->shape[2 + a], w.k[a], w.s[a], w.p[a], w.dil[a], w.ceil_mode);
    if (!window_fits(n, d, x, &w, o, hw)) return false;
    int64_t y[4] = {x->shape[0], x->shape[1], hw[0], hw[1]};
    if (!set_output(g, n, d, 4, y)) return false;
    if (!ir_attr_set(n, "stride")) ir_set_pair(g, n, "stride", w.s[0], w.s[1]);
    return true;
}

static bool ir_shape_global_avgpool(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (!need_nchw(n, d, x)) return false;
    int64_t y[4] = {x->shape[0], x->shape[1], 1, 1};
    return set_output(g, n, d, 4, y);
}

static bool ir_shape_adaptive_avgpool(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    int64_t size[2];
    ir_attr_pair(n, "size", size);
    if (!need_nchw(n, d, x) || !pair_at_least(n, d, "size", size, 1)) return false;
    int64_t y[4] = {x->shape[0], x->shape[1], size[0], size[1]};
    return set_output(g, n, d, 4, y);
}

/* Equal shapes (any rank), or [N, C, 1, 1] against [N, C, H, W] from either side. */
static bool ir_shape_binary(Graph *g, Node *n, Diags *d) {
    const Tensor *a = input(g, n, 0), *b = input(g, n, 1);
    if (a->rank == b->rank && !memcmp(a->shape, b->shape, (size_t)a->rank * sizeof *a->shape))
        return set_output(g, n, d, a->rank, a->shape);
    if (a->rank == 4 && b->rank == 4 && a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1]) {
        if (b->shape[2] == 1 && b->shape[3] == 1) return set_output(g, n, d, 4, a->shape);
        if (a->shape[2] == 1 && a->shape[3] == 1) return set_output(g, n, d, 4, b->shape);
    }
    ir_node_error(d, n, "%s: shapes %s and %s do not broadcast", OPN(n), SHP(a), SHP(b));
    return false;
}

static bool ir_shape_concat(Graph *g, Node *n, Diags *d) {
    const Tensor *x0 = input(g, n, 0);
    int axis;
    if (!norm_axis(n, d, x0, ir_attr_int(n, "axis"), &axis)) return false;
    wide sum = 0;
    for (int k = 0; k < n->nin; k++) {
        const Tensor *x = input(g, n, k);
        if (x->rank != x0->rank) {
            ir_node_error(d, n, "concat: input %d has rank %d (%s), expected %d like input 1 (%s)", k + 1,
                          x->rank, SHP(x), x0->rank, SHP(x0));
            return false;
        }
        for (int i = 0; i < x->rank; i++)
            if (i != axis && x->shape[i] != x0->shape[i]) {
                ir_node_error(d, n, "concat: input %d has %s=%lld, expected %lld (input %d is %s, input 1 is %s)",
                              k + 1, DIMNAME(x->rank, i), I64(x->shape[i]), I64(x0->shape[i]), k + 1,
                              SHP(x), SHP(x0));
                return false;
            }
        sum += x->shape[axis];
    }
    int64_t y[IR_MAX_RANK];
    memcpy(y, x0->shape, sizeof y);
    if (sum > INT64_MAX) {
        ir_node_error(d, n, "concat: the inputs' %s sizes add up to more than fit in 64 bits",
                      DIMNAME(x0->rank, axis));
        return false;
    }
    y[axis] = (int64_t)sum;
    if (!set_output(g, n, d, x0->rank, y)) return false;
    ir_set_int(g, n, "axis", axis);
    return true;
}

/* x.narrow(axis, start, end - start). Negative start and end count from the end of the axis;
 * there is no clamping: a range reaching outside the axis or an empty one is an error, as
 * narrow reports it (Python slicing would silently clamp and hide the mistake). */
static bool ir_shape_slice(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    int axis;
    if (!norm_axis(n, d, x, ir_attr_int(n, "axis"), &axis)) return false;
    int64_t dim = x->shape[axis];
    const char *dn = DIMNAME(x->rank, axis);
    int64_t start = ir_attr_int(n, "start");
    int64_t end = ir_attr_set(n, "end") ? ir_attr_int(n, "end") : dim;
    int64_t s = start < 0 ? start + dim : start, e = end < 0 ? end + dim : end;
    if (s < 0 || s >= dim) {
        ir_node_error(d, n, "slice: start %lld is out of range for %s=%lld of %s", I64(start), dn, I64(dim),
                      SHP(x));
        return false;
    }
    if (e < 0 || e > dim) {
        ir_node_error(d, n, "slice: end %lld is out of range for %s=%lld of %s", I64(end), dn, I64(dim),
                      SHP(x));
        return false;
    }
    if (e <= s) {
        ir_node_error(d, n, "slice: start %lld and end %lld select nothing of %s=%lld of %s", I64(start),
                      I64(end), dn, I64(dim), SHP(x));
        return false;
    }
    int64_t y[IR_MAX_RANK];
    memcpy(y, x->shape, sizeof y);
    y[axis] = e - s;
    if (!set_output(g, n, d, x->rank, y)) return false;
    ir_set_int(g, n, "axis", axis);
    ir_set_int(g, n, "start", s);
    ir_set_int(g, n, "end", e);
    return true;
}

static bool ir_shape_channel_shuffle(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    int64_t groups = ir_attr_int(n, "groups");
    if (!need_nchw(n, d, x) || !int_at_least(n, d, "groups", groups, 1)) return false;
    if (x->shape[1] % groups) {
        ir_node_error(d, n, "channel_shuffle: groups=%lld does not divide C=%lld of %s", I64(groups),
                      I64(x->shape[1]), SHP(x));
        return false;
    }
    return set_output(g, n, d, 4, x->shape);
}

/* F.pad on H and W with [left, right, top, bottom]. Constant padding may be negative (it crops,
 * as in PyTorch); reflect padding must be 0 <= p < the dimension, as PyTorch requires. */
static bool ir_shape_pad(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (!need_nchw(n, d, x)) return false;
    const Value *pv = ir_attr(n, "pad");
    if (pv->n != 4) {
        ir_node_error(d, n, "pad: pad must have 4 entries [left, right, top, bottom], got %d", pv->n);
        return false;
    }
    int64_t p[4];
    ir_attr_ints(n, "pad", p, 4);
    const char *mode = ir_attr_str(n, "mode");
    bool reflect = !strcmp(mode, "reflect");
    if (!reflect && strcmp(mode, "constant")) {
        ir_node_error(d, n, "pad: mode must be \"constant\" or \"reflect\", got \"%s\"", mode);
        return false;
    }
    if (reflect) {
        if (ir_attr_float(n, "value") != 0) {
            ir_node_error(d, n, "pad: mode \"reflect\" takes no value, got %g", ir_attr_float(n, "value"));
            return false;
        }
        if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0) {
            ir_node_error(d, n, "pad: reflect padding must not be negative, got %s", DIMS(4, p));
            return false;
        }
        for (int a = 0; a < 2; a++) {
            int64_t size = x->shape[3 - a], lo = p[2 * a], hi = p[2 * a + 1];
            if (lo >= size || hi >= size) {
                ir_node_error(d, n, "pad: reflect padding (%lld, %lld) must be less than %s=%lld of %s",
                              I64(lo), I64(hi), a ? "H" : "W", I64(size), SHP(x));
                return false;
            }
        }
    }
    wide h = (wide)x->shape[2] + p[2] + p[3], w = (wide)x->shape[3] + p[0] + p[1];
    if (h < 1 || w < 1) {
        ir_node_error(d, n, "pad: padding %s leaves nothing of %s", DIMS(4, p), SHP(x));
        return false;
    }
    if (h > INT64_MAX || w > INT64_MAX) {
        ir_node_error(d, n, "pad: padding %s makes %s too large for 64 bits", DIMS(4, p), SHP(x));
        return false;
    }
    int64_t y[4] = {x->shape[0], x->shape[1], (int64_t)h, (int64_t)w};
    return set_output(g, n, d, 4, y);
}

/* F.interpolate with size or scale_factor. The output size is stored in `size` even when
 * `scale` was given (the interpreter still needs `scale`: the source coordinate scale is then
 * 1/s, not in/out); so a node carrying both is accepted when they agree, which is also what
 * makes re-inference after canonicalisation pass. */
static bool ir_shape_upsample(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (!need_nchw(n, d, x)) return false;
    const char *mode = ir_attr_str(n, "mode");
    bool bilinear = !strcmp(mode, "bilinear");
    if (!bilinear && strcmp(mode, "nearest")) {
        ir_node_error(d, n, "upsample: mode must be \"nearest\" or \"bilinear\", got \"%s\"", mode);
        return false;
    }
    if (!bilinear && ir_attr_set(n, "align_corners")) {
        ir_node_error(d, n, "upsample: align_corners is only valid with mode=\"bilinear\"");
        return false;
    }
    bool has_size = ir_attr_set(n, "size"), has_scale = ir_attr_set(n, "scale");
    if (!has_size && !has_scale) {
        ir_node_error(d, n, "upsample: give size or scale");
        return false;
    }
    int64_t hw[2];
    if (has_size) {
        ir_attr_pair(n, "size", hw);
        if (!pair_at_least(n, d, "size", hw, 1)) return false;
    }
    if (has_scale) {
        double s = ir_attr_float(n, "scale");
        if (!(s > 0) || !isfinite(s)) {
            ir_node_error(d, n, "upsample: scale must be a positive number, got %g", s);
            return false;
        }
        int64_t sh[2];
        for (int a = 0; a < 2; a++) {
            /* PyTorch: floor(float(in * s)) in double */
            double v = floor((double)x->shape[2 + a] * s);
            if (v < 1) {
                ir_node_error(d, n, "upsample: scale %g gives an empty output from %s", s, SHP(x));
                return false;
            }
            if (v >= 9.2e18) {
                ir_node_error(d, n, "upsample: scale %g makes %s too large for 64 bits", s, SHP(x));
                return false;
            }
            sh[a] = (int64_t)v;
        }
        if (has_size && (sh[0] != hw[0] || sh[1] != hw[1])) {
            ir_node_error(d, n, "upsample: give size or scale, not both (size %s, scale %g gives %s from %s)",
                          DIMS(2, hw), s, DIMS(2, sh), SHP(x));
            return false;
        }
        hw[0] = sh[0], hw[1] = sh[1];
    }
    int64_t y[4] = {x->shape[0], x->shape[1], hw[0], hw[1]};
    if (!set_output(g, n, d, 4, y)) return false;
    ir_set_pair(g, n, "size", hw[0], hw[1]);
    if (bilinear && !ir_attr_set(n, "align_corners")) ir_set_bool(g, n, "align_corners", false);
    return true;
}

static bool ir_shape_flatten(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    if (x->rank < 2) {
        ir_node_error(d, n, "flatten: input must have rank 2 or more, got %s", SHP(x));
        return false;
    }
    wide f = 1;
    for (int i = 1; i < x->rank && f <= INT64_MAX; i++) f *= x->shape[i];
    if (f > INT64_MAX) {
        ir_node_error(d, n, "flatten: %s has more elements than fit in 64 bits", SHP(x));
        return false;
    }
    int64_t y[2] = {x->shape[0], (int64_t)f};
    return set_output(g, n, d, 2, y);
}

static bool ir_shape_softmax(Graph *g, Node *n, Diags *d) {
    const Tensor *x = input(g, n, 0);
    int axis;
    if (!norm_axis(n, d, x, ir_attr_int(n, "axis"), &axis)) return false;
    if (!set_output(g, n, d, x->rank, x->shape)) return false;
    ir_set_int(g, n, "axis", axis);
    return true;
}

/* ---- dispatch -------------------------------------------------------------------------- */

typedef bool (*ShapeRule)(Graph *g, Node *n, Diags *d);

static const ShapeRule shape_rules[OP_COUNT] = {
#define OP(E, id, in, at, w, shape, fl) [OP_##E] = ir_shape_##shape,
#include "../ops.def"
#undef OP
};

/* The rules may assume what is checked here: the arity, input ids, known input shapes and
 * required attributes (lowering reports those first; a pass or a test may not). */
bool ir_infer_node(Graph *g, Node *n, Diags *d) {
    NETC_ASSERT(n->op >= 0 && n->op < OP_COUNT);
    NETC_ASSERT(n->out >= 0 && n->out < g->tensors.len);
    const OpInfo *o = op_info(n->op);
    if (n->nin < o->min_inputs || (o->max_inputs >= 0 && n->nin > o->max_inputs)) {
        if (o->max_inputs < 0)
            ir_node_error(d, n, "%s: needs at least %d inputs, got %d", o->name, o->min_inputs, n->nin);
        else
            ir_node_error(d, n, "%s: takes %d input%s, got %d", o->name, o->min_inputs,
                          o->min_inputs == 1 ? "" : "s", n->nin);
        return false;
    }
    for (int k = 0; k < n->nin; k++) {
        if (n->in[k] < 0 || n->in[k] >= g->tensors.len) {
            ir_node_error(d, n, "verifier: %s '%s' input %d is not a tensor", o->name, n->name, k + 1);
            return false;
        }
        const Tensor *x = input(g, n, k);
        if (x->rank < 1 || x->rank > IR_MAX_RANK) {
            ir_node_error(d, n, "%s: input %d ('%s') has no known shape", o->name, k + 1, x->name);
            return false;
        }
    }
    for (int i = 0; i < o->nattrs; i++)
        if (o->attrs[i].required && n->attrs[i].kind == VAL_NONE) {
            ir_node_error(d, n, "%s: missing attribute '%s'", o->name, o->attrs[i].name);
            return false;
        }
    if (!shape_rules[n->op](g, n, d)) return false;
    /* netc runs on one machine's memory: refuse tensors no workspace or weight blob can hold
       (4 GiB of floats per tensor), before anything tries to allocate them */
    const int64_t limit = (int64_t)1 << 30;
    const Tensor *y = ir_tensor(g, n->out);
    char buf[160];
    if (ir_numel(y) > limit) {
        ir_node_error(d, n, "%s: output %s has more than 2^30 elements", o->name, ir_shape_str(y, buf, sizeof buf));
        return false;
    }
    for (int k = 0; k < o->nweights; k++) {
        if (n->w[k] < 0) continue;
        const Tensor *w = ir_tensor(g, n->w[k]);
        if (ir_numel(w) > limit) {
            ir_node_error(d, n, "%s: weight '%s' %s has more than 2^30 elements", o->name, w->name,
                          ir_shape_str(w, buf, sizeof buf));
            return false;
        }
    }
    return true;
}

/* ---- counts ---------------------------------------------------------------------------- */

/* Saturates instead of overflowing: the counts are statistics, never sizes. */
static int64_t prod_sat(int count, const int64_t *v) {
    int64_t p = 1;
    for (int i = 0; i < count; i++)
        if (__builtin_mul_overflow(p, v[i], &p)) return INT64_MAX;
    return p;
}

int64_t ir_node_macs(const Graph *g, const Node *n) {
    const Tensor *x = input(g, n, 0), *y = ir_tensor(g, n->out);
    switch (n->op) {
    case OP_CONV2D: {
        int64_t k[2];
        ir_attr_pair(n, "kernel", k);
        /* each output element: (IC / groups) · KH · KW multiply-adds */
        int64_t f[7] = {y->shape[0], y->shape[1], y->shape[2], y->shape[3],
                        x->shape[1] / ir_attr_int(n, "groups"), k[0], k[1]};
        return prod_sat(7, f);
    }
    case OP_CONV_TRANSPOSE2D: {
        int64_t k[2];
        ir_attr_pair(n, "kernel", k);
        /* each input element scatters into (OC / groups) · KH · KW outputs */
        int64_t f[7] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3],
                        y->shape[1] / ir_attr_int(n, "groups"), k[0], k[1]};
        return prod_sat(7, f);
    }
    case OP_LINEAR: {
        int64_t f[3] = {x->shape[0], x->shape[1], y->shape[1]};
        return prod_sat(3, f);
    }
    default: return 0;
    }
}

int64_t ir_node_weight_count(const Graph *g, const Node *n) {
    int64_t total = 0;
    const OpInfo *o = op_info(n->op);
    for (int k = 0; k < o->nweights; k++) {
        if (n->w[k] < 0) continue;
        const Tensor *w = ir_tensor(g, n->w[k]);
        if (__builtin_add_overflow(total, prod_sat(w->rank, w->shape), &total)) return INT64_MAX;
    }
    return total;
}

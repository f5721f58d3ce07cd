/* interp_elementwise.c — reference elementwise kernels: the activations, batchnorm, prelu,
 * add/sub/mul/div with broadcasting, dropout (identity at inference). */
#include <math.h>
#include <string.h>

#include "interp_internal.h"

/* ---- activations: one map loop, one scalar function per op ------------------------------ */

typedef struct ActParams {
    double a, b;       /* slope, alpha, clamp min/max */
    bool has_a, has_b; /* clamp: which bounds are set */
    bool tanh_form;    /* gelu approximate="tanh" */
} ActParams;

typedef double (*ActFn)(double x, const ActParams *p);

static void map_unary(const Graph *g, const Node *n, const float *x, float *out, ActFn f,
                      const ActParams *p) {
    int64_t cnt = ir_numel(interp_out_tensor(g, n));
    for (int64_t i = 0; i < cnt; i++) out[i] = (float)f(x[i], p);
}

/* Comparisons written so that a NaN input comes out NaN, as in PyTorch. */
static double act_relu(double x, const ActParams *p) {
    (void)p;
    return x < 0 ? 0 : x;
}
static double act_relu6(double x, const ActParams *p) {
    (void)p;
    return x < 0 ? 0 : x > 6 ? 6 : x;
}
/* the slope in float, as PyTorch (and the compiled code) multiply: the product of two floats is
 * exact in double, so the result is float's correctly rounded product */
static double act_leaky_relu(double x, const ActParams *p) { return x < 0 ? (double)(float)p->a * x : x; }
static double act_clamp(double x, const ActParams *p) {
    if (isnan(x)) return x;
    if (p->has_a && x < p->a) x = p->a;
    if (p->has_b && x > p->b) x = p->b; /* max wins when min > max, as in torch.clamp */
    return x;
}
static double act_sigmoid(double x, const ActParams *p) {
    (void)p;
    return 1.0 / (1.0 + exp(-x));
}
static double act_tanh(double x, const ActParams *p) {
    (void)p;
    return tanh(x);
}
static double act_silu(double x, const ActParams *p) {
    (void)p;
    return x / (1.0 + exp(-x));
}
/* PyTorch's formulas in float, as it evaluates them: min(max(x + 3, 0), 6) / 6 and
 * x * min(max(x + 3, 0), 6) / 6 — the product first, so hardswish(1e30) is 1.00000009e30 and
 * hardswish(3e38) overflows to inf there and here. */
static float hard_clamp(float x) {
    float r = x + 3.0f;
    return r < 0 ? 0 : r > 6 ? 6 : r;
}
static double act_hardsigmoid(double x, const ActParams *p) {
    (void)p;
    float r = hard_clamp((float)x);
    return r / 6.0f;
}
static double act_hardswish(double x, const ActParams *p) {
    (void)p;
    float f = (float)x, r = f * hard_clamp(f);
    return r / 6.0f;
}
/* erf form: x/2 (1 + erf(x/√2)); tanh form: x/2 (1 + tanh(√(2/π) (x + 0.044715 x³))) */
static double act_gelu(double x, const ActParams *p) {
    if (p->tanh_form) return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
}
static double act_elu(double x, const ActParams *p) { return x > 0 ? x : p->a * expm1(x); }

#define UNARY_KERNEL(id, fn, ...)                                                                  \
    void interp_##id(const Graph *g, const Node *n, const float *const *in, float *out) {          \
        ActParams p = {__VA_ARGS__};                                                               \
        map_unary(g, n, in[0], out, fn, &p);                                                       \
    }

UNARY_KERNEL(relu, act_relu, 0)
UNARY_KERNEL(relu6, act_relu6, 0)
UNARY_KERNEL(leaky_relu, act_leaky_relu, .a = ir_attr_float(n, "slope"))
UNARY_KERNEL(clamp, act_clamp, .has_a = ir_attr_set(n, "min"), .has_b = ir_attr_set(n, "max"),
             .a = ir_attr_set(n, "min") ? ir_attr_float(n, "min") : 0,
             .b = ir_attr_set(n, "max") ? ir_attr_float(n, "max") : 0)
UNARY_KERNEL(sigmoid, act_sigmoid, 0)
UNARY_KERNEL(tanh, act_tanh, 0)
UNARY_KERNEL(silu, act_silu, 0)
UNARY_KERNEL(hardswish, act_hardswish, 0)
UNARY_KERNEL(hardsigmoid, act_hardsigmoid, 0)
UNARY_KERNEL(gelu, act_gelu, .tanh_form = strcmp(ir_attr_str(n, "approximate"), "tanh") == 0)
UNARY_KERNEL(elu, act_elu, .a = ir_attr_float(n, "alpha"))

void interp_dropout(const Graph *g, const Node *n, const float *const *in, float *out) {
    memcpy(out, in[0], (size_t)ir_numel(interp_out_tensor(g, n)) * sizeof(float));
}

/* ---- per-channel ops: channel is dim 1 ([N, C] or [N, C, H, W]) --------------------------- */

void interp_batchnorm(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *t = interp_in_tensor(g, n, 0);
    const float *w = interp_weight(g, n, "weight"), *b = interp_weight(g, n, "bias");
    const float *mean = interp_weight(g, n, "running_mean");
    const float *var = interp_weight(g, n, "running_var");
    double eps = ir_attr_float(n, "eps");
    int64_t N = t->shape[0], C = t->shape[1], inner = interp_dims_product(t, 2, t->rank);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < C; c++) {
            double scale = (double)w[c] / sqrt((double)var[c] + eps);
            int64_t base = (nn * C + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                out[base + i] = (float)(((double)in[0][base + i] - mean[c]) * scale + b[c]);
        }
}

/* y = x * weight[c] (+ bias[c]), channel = dim 1 of any rank >= 2. */
void interp_scale(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *t = interp_in_tensor(g, n, 0);
    const float *w = interp_weight(g, n, "weight");
    const float *b = ir_attr_bool(n, "bias") ? interp_weight(g, n, "bias") : NULL;
    int64_t N = t->shape[0], C = t->shape[1], inner = interp_dims_product(t, 2, t->rank);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < C; c++) {
            int64_t base = (nn * C + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                out[base + i] = (float)((double)in[0][base + i] * w[c] + (b ? (double)b[c] : 0.0));
        }
}

/* Over dim 1 at every other position, in double: mean, then the biased variance of the
 * deviations (two passes, as exact as the data allows), y = (x - mean) / sqrt(var + eps). */
void interp_layernorm(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *t = interp_in_tensor(g, n, 0);
    bool affine = ir_attr_bool(n, "affine");
    const float *w = affine ? interp_weight(g, n, "weight") : NULL;
    const float *b = affine ? interp_weight(g, n, "bias") : NULL;
    double eps = ir_attr_float(n, "eps");
    int64_t N = t->shape[0], C = t->shape[1], inner = interp_dims_product(t, 2, t->rank);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in[0] + nn * C * inner + i;
            float *y = out + nn * C * inner + i;
            double mean = 0, var = 0;
            for (int64_t c = 0; c < C; c++) mean += x[c * inner];
            mean /= (double)C;
            for (int64_t c = 0; c < C; c++) {
                double dv = x[c * inner] - mean;
                var += dv * dv;
            }
            double rstd = 1.0 / sqrt(var / (double)C + eps);
            for (int64_t c = 0; c < C; c++) {
                double v = ((double)x[c * inner] - mean) * rstd;
                y[c * inner] = (float)(affine ? v * w[c] + b[c] : v);
            }
        }
}

/* One slope for every element, or one per channel (dim 1). */
void interp_prelu(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *t = interp_in_tensor(g, n, 0), *wt = ir_weight(g, n, "weight");
    const float *a = wt->data;
    int64_t nparams = ir_numel(wt);
    int64_t C = t->rank >= 2 ? t->shape[1] : 1;
    int64_t inner = t->rank >= 2 ? interp_dims_product(t, 2, t->rank) : 1;
    int64_t cnt = ir_numel(t);
    for (int64_t i = 0; i < cnt; i++) {
        double slope = nparams == 1 ? a[0] : a[(i / inner) % C];
        double x = in[0][i];
        out[i] = (float)(x < 0 ? slope * x : x);
    }
}

/* ---- binary ops: NumPy broadcasting (dims aligned right, a dim of 1 repeats) --------------- */

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } BinOp;

/* Strides of t seen through the output's shape: 0 where t's dim is 1 (or absent). */
static void broadcast_strides(const Tensor *t, const Tensor *o, int64_t *st) {
    int64_t s = 1;
    for (int d = o->rank - 1; d >= 0; d--) {
        int td = d - (o->rank - t->rank);
        if (td < 0) {
            st[d] = 0;
            continue;
        }
        st[d] = t->shape[td] == 1 ? 0 : s;
        s *= t->shape[td];
    }
}

static void binary(const Graph *g, const Node *n, const float *const *in, float *out, BinOp op) {
    const Tensor *ta = interp_in_tensor(g, n, 0), *tb = interp_in_tensor(g, n, 1);
    const Tensor *to = interp_out_tensor(g, n);
    int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    broadcast_strides(ta, to, sa);
    broadcast_strides(tb, to, sb);
    int64_t cnt = ir_numel(to), oa = 0, ob = 0;
    for (int64_t i = 0; i < cnt; i++) {
        float a = in[0][oa], b = in[1][ob];
        switch (op) {
        case BIN_ADD: out[i] = a + b; break;
        case BIN_SUB: out[i] = a - b; break;
        case BIN_MUL: out[i] = a * b; break;
        case BIN_DIV: out[i] = a / b; break;
        }
        /* advance the output coordinate like an odometer, moving both input offsets along */
        for (int d = to->rank - 1; d >= 0; d--) {
            idx[d]++;
            oa += sa[d];
            ob += sb[d];
            if (idx[d] < to->shape[d]) break;
            oa -= sa[d] * idx[d];
            ob -= sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

void interp_add(const Graph *g, const Node *n, const float *const *in, float *out) {
    binary(g, n, in, out, BIN_ADD);
}
void interp_sub(const Graph *g, const Node *n, const float *const *in, float *out) {
    binary(g, n, in, out, BIN_SUB);
}
void interp_mul(const Graph *g, const Node *n, const float *const *in, float *out) {
    binary(g, n, in, out, BIN_MUL);
}
void interp_div(const Graph *g, const Node *n, const float *const *in, float *out) {
    binary(g, n, in, out, BIN_DIV);
}

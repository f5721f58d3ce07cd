/* interp_conv.c — reference kernels with weights and reductions over channels: conv2d,
 * conv_transpose2d, linear. Plain loops, double accumulation. */
#include <stdlib.h>

#include "interp_internal.h"

/* F.conv2d: out[n,o,y,x] = b[o] + sum over the group's input channels c and taps (i, j) of
 * in[n, g*cpg + c, y*s - p + i*d, x*s - p + j*d] * W[o, c, i, j], zero outside the input.
 * One output row at a time: each element's sum runs in the order c, i, j (as the formula reads),
 * with a whole row of double accumulators, so the loop over x is plain and fast. */
/* acc[x] += row[x * stride] * w for x in [0, n): the interpreter's hot loop. Its caller checks
 * the row's range once; the sanitizers' per-element checks here made the sanitized test suite
 * spend 80 % of its time in this loop. */
__attribute__((no_sanitize("address", "undefined"))) static void axpy_row(double *acc, const float *row, int64_t stride, int64_t n,
                                                          double w) {
    if (stride == 1)
        for (int64_t x = 0; x < n; x++) acc[x] += (double)row[x] * w;
    else
        for (int64_t x = 0; x < n; x++) acc[x] += (double)row[x * stride] * w;
}

void interp_conv2d(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int64_t k[2], s[2], p[2], dl[2];
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    ir_attr_pair(n, "pad", p);
    ir_attr_pair(n, "dilation", dl);
    int64_t groups = ir_attr_int(n, "groups");
    const float *w = interp_weight(g, n, "weight"), *b = interp_weight(g, n, "bias");
    int64_t N = ti->shape[0], C = ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t O = to->shape[1], OH = to->shape[2], OW = to->shape[3];
    int64_t cpg = C / groups, opg = O / groups;
    double *acc = xmalloc((size_t)(OW ? OW : 1) * sizeof *acc);
    /* for tap j: the x with 0 <= x*s - p + j*d < W */
    int64_t *x0 = xmalloc((size_t)(k[1] ? k[1] : 1) * sizeof *x0), *x1 = xmalloc((size_t)(k[1] ? k[1] : 1) * sizeof *x1);
    for (int64_t j = 0; j < k[1]; j++) {
        int64_t off = j * dl[1] - p[1];
        int64_t lo = off >= 0 ? 0 : (-off + s[1] - 1) / s[1];
        int64_t hi = W - off <= 0 ? 0 : (W - off + s[1] - 1) / s[1];
        x0[j] = lo < OW ? lo : OW;
        x1[j] = hi < OW ? hi : OW;
        if (x1[j] < x0[j]) x1[j] = x0[j];
    }
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t o = 0; o < O; o++) {
            int64_t grp = o / opg;
            for (int64_t y = 0; y < OH; y++) {
                for (int64_t x = 0; x < OW; x++) acc[x] = b ? b[o] : 0.0;
                for (int64_t c = 0; c < cpg; c++) {
                    const float *src = in[0] + ((nn * C + grp * cpg + c) * H) * W;
                    const float *wk = w + ((o * cpg + c) * k[0]) * k[1];
                    for (int64_t i = 0; i < k[0]; i++) {
                        int64_t iy = y * s[0] - p[0] + i * dl[0];
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t j = 0; j < k[1]; j++) {
                            if (x1[j] == x0[j]) continue;
                            /* the columns read, x*s - p + j*d for x in [x0, x1), lie in [0, W) */
                            int64_t first = x0[j] * s[1] - p[1] + j * dl[1], last = (x1[j] - 1) * s[1] - p[1] + j * dl[1];
                            NETC_ASSERT(first >= 0 && last < W);
                            axpy_row(acc + x0[j], src + iy * W + first, s[1], x1[j] - x0[j], wk[i * k[1] + j]);
                        }
                    }
                }
                float *dst = out + ((nn * O + o) * OH + y) * OW;
                for (int64_t x = 0; x < OW; x++) dst[x] = (float)acc[x];
            }
        }
    free(acc), free(x0), free(x1);
}

/* F.conv_transpose2d, written as a gather: input pixel (iy, ix) reaches output row
 * y = iy*s - p + i*d through tap i, so for an output row the contributing (iy, i) are those with
 * y + p - i*d divisible by s. Weight layout [C_in, O/groups, kh, kw]. */
void interp_conv_transpose2d(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int64_t k[2], s[2], p[2], dl[2];
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    ir_attr_pair(n, "pad", p);
    ir_attr_pair(n, "dilation", dl);
    int64_t groups = ir_attr_int(n, "groups");
    const float *w = interp_weight(g, n, "weight"), *b = interp_weight(g, n, "bias");
    int64_t N = ti->shape[0], C = ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t O = to->shape[1], OH = to->shape[2], OW = to->shape[3];
    int64_t cpg = C / groups, opg = O / groups;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t o = 0; o < O; o++) {
            int64_t grp = o / opg, ol = o % opg;
            for (int64_t y = 0; y < OH; y++)
                for (int64_t x = 0; x < OW; x++) {
                    double acc = b ? b[o] : 0.0;
                    for (int64_t i = 0; i < k[0]; i++) {
                        int64_t ny = y + p[0] - i * dl[0];
                        if (ny < 0 || ny % s[0]) continue;
                        int64_t iy = ny / s[0];
                        if (iy >= H) continue;
                        for (int64_t j = 0; j < k[1]; j++) {
                            int64_t nx = x + p[1] - j * dl[1];
                            if (nx < 0 || nx % s[1]) continue;
                            int64_t ix = nx / s[1];
                            if (ix >= W) continue;
                            for (int64_t c = 0; c < cpg; c++) {
                                int64_t ci = grp * cpg + c;
                                acc += (double)in[0][((nn * C + ci) * H + iy) * W + ix] *
                                       w[((ci * opg + ol) * k[0] + i) * k[1] + j];
                            }
                        }
                    }
                    out[((nn * O + o) * OH + y) * OW + x] = (float)acc;
                }
        }
}

/* y = x Wᵀ + b over the last dimension; every leading dimension is a batch row. */
void interp_linear(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    const float *w = interp_weight(g, n, "weight"), *b = interp_weight(g, n, "bias");
    int64_t F = ti->shape[ti->rank - 1], O = to->shape[to->rank - 1];
    int64_t rows = ir_numel(ti) / (F ? F : 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < O; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t f = 0; f < F; f++) acc += (double)in[0][r * F + f] * w[o * F + f];
            out[r * O + o] = (float)acc;
        }
}

/* interp_pool.c — reference pooling kernels: maxpool2d, avgpool2d, global_avgpool,
 * adaptive_avgpool, with PyTorch's window, padding and divisor rules.
 *
 * The averages sum in float, row by row, and divide as PyTorch's CPU kernels do (not in double,
 * unlike the other reductions here): that makes avgpool2d and adaptive_avgpool bit-exact with
 * PyTorch, and a window of large values (3e38 + 3e38) overflows to inf as it does there. */
#include <math.h>
#include <stdbool.h>

#include "interp_internal.h"

/* Window of output row y starts at y*s - p; taps at start + i*d. Taps outside the input are
 * the -inf padding (or the ceil_mode overhang), so they are skipped. A NaN wins, as in PyTorch. */
void interp_maxpool2d(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int64_t k[2], s[2], p[2], dl[2];
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    ir_attr_pair(n, "pad", p);
    ir_attr_pair(n, "dilation", dl);
    int64_t NC = ti->shape[0] * ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t OH = to->shape[2], OW = to->shape[3];
    for (int64_t c = 0; c < NC; c++) {
        const float *src = in[0] + c * H * W;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x = 0; x < OW; x++) {
                float m = -INFINITY;
                for (int64_t i = 0; i < k[0]; i++) {
                    int64_t iy = y * s[0] - p[0] + i * dl[0];
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t j = 0; j < k[1]; j++) {
                        int64_t ix = x * s[1] - p[1] + j * dl[1];
                        if (ix < 0 || ix >= W) continue;
                        float v = src[iy * W + ix];
                        if (v > m || isnan(v)) m = v;
                    }
                }
                out[(c * OH + y) * OW + x] = m;
            }
    }
}

/* PyTorch's avg_pool2d: the window [y*s - p, y*s - p + k) is first clipped to the padded input
 * [-p, H + p) — that size is the divisor with count_include_pad (padding counts, the ceil_mode
 * overhang does not) — then to the input [0, H), whose size is the divisor without it. */
void interp_avgpool2d(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int64_t k[2], s[2], p[2];
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    ir_attr_pair(n, "pad", p);
    bool include_pad = ir_attr_bool(n, "count_include_pad");
    int64_t NC = ti->shape[0] * ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t OH = to->shape[2], OW = to->shape[3];
    for (int64_t c = 0; c < NC; c++) {
        const float *src = in[0] + c * H * W;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x = 0; x < OW; x++) {
                int64_t y0 = y * s[0] - p[0], x0 = x * s[1] - p[1];
                int64_t y1 = y0 + k[0] < H + p[0] ? y0 + k[0] : H + p[0];
                int64_t x1 = x0 + k[1] < W + p[1] ? x0 + k[1] : W + p[1];
                int64_t padded_count = (y1 - y0) * (x1 - x0);
                if (y0 < 0) y0 = 0;
                if (x0 < 0) x0 = 0;
                if (y1 > H) y1 = H;
                if (x1 > W) x1 = W;
                float *dst = &out[(c * OH + y) * OW + x];
                if (y0 >= y1 || x0 >= x1) { /* a window entirely in the padding */
                    *dst = 0.0f;
                    continue;
                }
                float sum = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) sum += src[iy * W + ix];
                int64_t count = include_pad ? padded_count : (y1 - y0) * (x1 - x0);
                *dst = sum / (float)count;
            }
    }
}

/* PyTorch computes this as x.mean((-2, -1)): its float sum runs in another order (so the
 * result may differ in the last bits), then divides once by H*W, as here. */
void interp_global_avgpool(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0);
    int64_t NC = ti->shape[0] * ti->shape[1], HW = ti->shape[2] * ti->shape[3];
    for (int64_t c = 0; c < NC; c++) {
        float sum = 0.0f;
        for (int64_t i = 0; i < HW; i++) sum += in[0][c * HW + i];
        out[c] = sum / (float)HW;
    }
}

/* F.adaptive_avg_pool2d: output cell i averages input [floor(i*in/out), ceil((i+1)*in/out)),
 * dividing by the bin's height, then by its width, as PyTorch's kernel does; a 1×1 output is
 * PyTorch's mean (global_avgpool). */
void interp_adaptive_avgpool(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int64_t NC = ti->shape[0] * ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t OH = to->shape[2], OW = to->shape[3];
    if (OH == 1 && OW == 1) {
        interp_global_avgpool(g, n, in, out);
        return;
    }
    for (int64_t c = 0; c < NC; c++) {
        const float *src = in[0] + c * H * W;
        for (int64_t y = 0; y < OH; y++) {
            int64_t y0 = y * H / OH, y1 = ((y + 1) * H + OH - 1) / OH;
            for (int64_t x = 0; x < OW; x++) {
                int64_t x0 = x * W / OW, x1 = ((x + 1) * W + OW - 1) / OW;
                float sum = 0.0f;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) sum += src[iy * W + ix];
                out[(c * OH + y) * OW + x] = sum / (float)(y1 - y0) / (float)(x1 - x0);
            }
        }
    }
}

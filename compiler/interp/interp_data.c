/* interp_data.c — reference data-movement kernels: concat, slice, channel_shuffle, pad,
 * upsample (nearest, bilinear), flatten, softmax. */
#include <math.h>
#include <string.h>

#include "interp_internal.h"

/* Every input is [outer, d_k, inner] around the axis; the output interleaves them per outer. */
void interp_concat(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *to = interp_out_tensor(g, n);
    int axis = (int)ir_attr_int(n, "axis");
    int64_t outer = interp_dims_product(to, 0, axis),
            inner = interp_dims_product(to, axis + 1, to->rank);
    int64_t row = to->shape[axis] * inner;
    int64_t at = 0;
    for (int k = 0; k < n->nin; k++) {
        int64_t chunk = interp_in_tensor(g, n, k)->shape[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out + o * row + at, in[k] + o * chunk, (size_t)chunk * sizeof(float));
        at += chunk;
    }
}

/* x.narrow(axis, start, end - start); shape inference made start, end and axis canonical. */
void interp_slice(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int axis = (int)ir_attr_int(n, "axis");
    int64_t start = ir_attr_int(n, "start");
    int64_t outer = interp_dims_product(ti, 0, axis),
            inner = interp_dims_product(ti, axis + 1, ti->rank);
    int64_t in_row = ti->shape[axis] * inner, out_row = to->shape[axis] * inner;
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + o * out_row, in[0] + o * in_row + start * inner,
               (size_t)out_row * sizeof(float));
}

/* ShuffleNet: view [N, g, C/g, H, W], swap the two channel axes, so output channel
 * j*g + i holds input channel i*(C/g) + j. */
void interp_channel_shuffle(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *t = interp_in_tensor(g, n, 0);
    int64_t groups = ir_attr_int(n, "groups");
    int64_t N = t->shape[0], C = t->shape[1], HW = interp_dims_product(t, 2, t->rank);
    int64_t cpg = C / groups;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t i = 0; i < groups; i++)
            for (int64_t j = 0; j < cpg; j++)
                memcpy(out + (nn * C + j * groups + i) * HW, in[0] + (nn * C + i * cpg + j) * HW,
                       (size_t)HW * sizeof(float));
}

/* Source index of output index o along one axis for reflect padding, as PyTorch's
 * reflection_pad2d computes it (negative pads crop). */
int64_t interp_reflect_index(int64_t o, int64_t pad_before, int64_t size) {
    int64_t i_start = pad_before < 0 ? -pad_before : 0;
    int64_t o_start = pad_before > 0 ? pad_before : 0;
    int64_t ip;
    if (o < pad_before)
        ip = 2 * pad_before - o;
    else if (o < size + pad_before)
        ip = o;
    else
        ip = 2 * (size + pad_before - 1) - o;
    return ip - o_start + i_start;
}

/* F.pad on the last two dims with [left, right, top, bottom]. */
void interp_pad(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    int64_t pads[4] = {0};
    ir_attr_ints(n, "pad", pads, 4);
    bool reflect = strcmp(ir_attr_str(n, "mode"), "reflect") == 0;
    float value = (float)ir_attr_float(n, "value");
    int r = ti->rank;
    int64_t planes = interp_dims_product(ti, 0, r - 2);
    int64_t H = ti->shape[r - 2], W = ti->shape[r - 1], OH = to->shape[r - 2],
            OW = to->shape[r - 1];
    for (int64_t c = 0; c < planes; c++) {
        const float *src = in[0] + c * H * W;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x = 0; x < OW; x++) {
                float *dst = &out[(c * OH + y) * OW + x];
                if (reflect) {
                    *dst = src[interp_reflect_index(y, pads[2], H) * W + interp_reflect_index(x, pads[0], W)];
                } else {
                    int64_t iy = y - pads[2], ix = x - pads[0];
                    *dst = iy >= 0 && iy < H && ix >= 0 && ix < W ? src[iy * W + ix] : value;
                }
            }
    }
}

/* The per-axis scale PyTorch's CPU kernels use, in float32 as they compute it:
 * align_corners: (in-1)/(out-1) (0 when out is 1); else 1/s when scale= was given, in/out. */
float interp_upsample_scale(int64_t in_size, int64_t out_size, bool align_corners, bool has_scale,
                            double s) {
    if (align_corners) return out_size > 1 ? (float)(in_size - 1) / (float)(out_size - 1) : 0.0f;
    if (has_scale && s > 0) return (float)(1.0 / s);
    return (float)in_size / (float)out_size;
}

/* Source indices and weights of one axis of bilinear interpolation, following PyTorch's
 * compute_source_index_and_lambda: same size copies; otherwise the source coordinate is
 * computed in double from the float scale (half-pixel centres clamped at 0 unless
 * align_corners), truncated to i0 (clamped to in-1), i1 = i0 + 1 except at the last row, and
 * the weight l1 = src - i0 rounded to float. */
void interp_bilinear_axis(int64_t o, int64_t in_size, int64_t out_size, bool align_corners,
                          float scale, int64_t *i0, int64_t *i1, float *l0, float *l1) {
    if (in_size == out_size) {
        *i0 = *i1 = o;
        *l0 = 1.0f;
        *l1 = 0.0f;
        return;
    }
    double src;
    if (align_corners) {
        src = (double)scale * (double)o;
    } else {
        src = (double)scale * ((double)o + 0.5) - 0.5;
        if (src < 0) src = 0;
    }
    int64_t a = (int64_t)src;
    if (a > in_size - 1) a = in_size - 1;
    *i0 = a;
    *i1 = a < in_size - 1 ? a + 1 : a;
    *l1 = (float)(src - (double)a);
    *l0 = 1.0f - *l1;
}

/* F.interpolate on [N, C, H, W]. Shape inference sets `size` to the output size; `scale` stays
 * set when the user gave scale=, and then PyTorch uses 1/scale, not in/out. */
void interp_upsample(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *ti = interp_in_tensor(g, n, 0), *to = interp_out_tensor(g, n);
    bool bilinear = strcmp(ir_attr_str(n, "mode"), "bilinear") == 0;
    bool ac = ir_attr_set(n, "align_corners") && ir_attr_bool(n, "align_corners");
    bool has_scale = ir_attr_set(n, "scale");
    double s = has_scale ? ir_attr_float(n, "scale") : 0.0;
    int64_t NC = ti->shape[0] * ti->shape[1], H = ti->shape[2], W = ti->shape[3];
    int64_t OH = to->shape[2], OW = to->shape[3];
    float sh = interp_upsample_scale(H, OH, ac, has_scale, s),
          sw = interp_upsample_scale(W, OW, ac, has_scale, s);
    for (int64_t c = 0; c < NC; c++) {
        const float *src = in[0] + c * H * W;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x = 0; x < OW; x++) {
                float *dst = &out[(c * OH + y) * OW + x];
                if (!bilinear) {
                    /* floor(dst * scale) with the product in float32, clamped to in-1 */
                    int64_t iy = (int64_t)floorf((float)y * sh),
                            ix = (int64_t)floorf((float)x * sw);
                    if (iy > H - 1) iy = H - 1;
                    if (ix > W - 1) ix = W - 1;
                    *dst = src[iy * W + ix];
                    continue;
                }
                int64_t y0, y1, x0, x1;
                float ly0, ly1, lx0, lx1;
                interp_bilinear_axis(y, H, OH, ac, sh, &y0, &y1, &ly0, &ly1);
                interp_bilinear_axis(x, W, OW, ac, sw, &x0, &x1, &lx0, &lx1);
                double top = (double)lx0 * src[y0 * W + x0] + (double)lx1 * src[y0 * W + x1];
                double bottom = (double)lx0 * src[y1 * W + x0] + (double)lx1 * src[y1 * W + x1];
                *dst = (float)((double)ly0 * top + (double)ly1 * bottom);
            }
    }
}

void interp_flatten(const Graph *g, const Node *n, const float *const *in, float *out) {
    memcpy(out, in[0], (size_t)ir_numel(interp_out_tensor(g, n)) * sizeof(float));
}

/* Numerically stable: exp(x - max) / sum, along the axis of a [outer, d, inner] view. */
void interp_softmax(const Graph *g, const Node *n, const float *const *in, float *out) {
    const Tensor *t = interp_in_tensor(g, n, 0);
    int axis = (int)ir_attr_int(n, "axis");
    int64_t outer = interp_dims_product(t, 0, axis),
            inner = interp_dims_product(t, axis + 1, t->rank);
    int64_t d = t->shape[axis];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *x = in[0] + o * d * inner + i;
            float *y = out + o * d * inner + i;
            double m = -INFINITY, sum = 0.0;
            for (int64_t k = 0; k < d; k++)
                if (x[k * inner] > m) m = x[k * inner];
            for (int64_t k = 0; k < d; k++) sum += exp((double)x[k * inner] - m);
            for (int64_t k = 0; k < d; k++)
                y[k * inner] = (float)(exp((double)x[k * inner] - m) / sum);
        }
}

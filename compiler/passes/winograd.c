/* winograd.c — mark 3×3 convolutions to be computed by Winograd F(4,3) where that pays and its
 * float error is within --winograd-tol.
 *
 * Requires: a verified graph with bound weights, after fold-bn and split3x3 (the check measures
 * the weights that will run; fold-bn after this pass rescales output channels, which leaves each
 * channel's own relative error as it was, though the measure over all channels may move).
 * Eligible: conv2d, 3×3, stride 1, groups 1, any padding and dilation (ir_winograd_eligible): a
 *   conv of dilation d is d·d stride-1 convs on the phases' sub-grids (outputs p, p + d, ...
 *   reading inputs p - pad + d·k), which the kernel tiles separately, so the error check below
 *   holds for it as it is.
 * Per eligible layer:
 *   Cost: only where it should pay: input channels 16 ≤ C ≤ 128, output channels O ≥ 16, an output of
 *     at least 8×8 and at least 32 output tiles (N·⌈OH/4⌉·⌈OW/4⌉). F(4,3) takes 36 multiplies per
 *     4×4 tile and channel pair instead of 144, but each tile costs an input and an output
 *     transform per channel (few channels: the transforms dominate), partial tiles at the borders
 *     are computed whole (small outputs: 7×7 computes 8×8), and the transformed weights are 4×
 *     the direct ones, read from memory once per inference: each must serve enough tiles. Measured
 *     at 1 thread (AVX-512), each layer alone: 56×56 (196 tiles, 64 channels) 2.8× faster than
 *     direct, 28×28 (49 tiles, 128) 2×, 14×14 (16 tiles, 256) 1.4×; inside ResNet-18, where the
 *     transformed weights come from memory (9.4 MB per 14×14 layer), the 14×14 layers were slower
 *     than direct and the others stayed well ahead. Above 128 input channels an output block's
 *     transformed weights (36·C floats per output channel, 2.4 MB for a block of 64 at C = 256)
 *     no longer stay in L2 across the items of the block, each item transforms only a few tiles
 *     (its buffers hold 36 transformed values per tile and channel), and the weights stream from
 *     memory per item: slower than direct wherever measured, e.g. the ASPP head's rate-4 branch
 *     (256 channels, 33², 81 tiles of the phases' sub-grids) 6.3 ms against 5.8 direct, FCN's
 *     head (2048 channels, 65²) 1631 ms against 581. A schedule that transforms the whole input
 *     first (ncnn's) would serve those; this kernel does not have one yet.
 *   Error: on a seeded random input patch of 2×2 tiles (10×10 inputs, all inside the image, so no
 *     tap reads padding) at the layer's full input-channel depth, with its real weights, F(4,3)
 *     computed in float in the kernel's order (winograd.h: weights transformed in double and
 *     rounded, Bᵀ d B and Aᵀ m A as the kernel evaluates them, each position's sum over input
 *     channels in the kernel's chunks) against direct convolution in double; the error is
 *     max|Δ| / max|ref| over the patch's outputs for a sample of output channels (all of them
 *     while C·O is small, else evenly spaced, at least 8: the check costs about 4M
 *     multiply-adds, 2-3 ms, per layer). The kernel fuses multiply-adds the check rounds twice: it is checked from slightly
 *     above. The layer stays direct when the error exceeds the tolerance.
 * Rewrites: sets Node.algo = CONV_ALGO_WINOGRAD43 (one rewrite per layer, for --pass-limit);
 * nothing else changes, so every fact an earlier pass made (epilogues, in-place nodes, concat
 * slices) is kept; the code generator honours them in its store step.
 * Guarantees: outputs unchanged up to the tolerance. Invalidates: nothing. */
#include <math.h>
#include <stdlib.h>

#include "passes.h"
#include "winograd.h"

enum {
    MIN_CHANNELS = 16,
    WIDE_CHANNELS = 128,  /* above: MIN_WIDE_TILES */
    MAX_IN_CHANNELS = 256,
    MIN_OUT = 8,
    MIN_TILES = 32,
    MIN_WIDE_TILES = 128,
    PATCH_TILES = 2,
    CHECK_MACS = 4000000
};

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The error of F(m,3) in float against direct convolution in double on a random patch of
 * PATCH_TILES² tiles of m×m (see the header); W is [O, C, 3, 3]. */
static double winograd_error(int m, const float *W, int64_t O, int64_t C, uint64_t seed) {
    enum { NT = PATCH_TILES * PATCH_TILES };
    const int T = wino_t(m), P = wino_p(m), S = PATCH_TILES * m, IN = S + 2;
    int64_t per = 9 * C * (int64_t)S * S + P * C * NT; /* multiply-adds per output channel */
    int64_t ns = CHECK_MACS / per;
    if (ns < 8) ns = 8;
    if (ns > O) ns = O;
    float *x = xmalloc((size_t)(C * IN * IN) * sizeof *x);          /* [c][y][x] */
    float *V = xmalloc((size_t)(NT * P * C) * sizeof *V);           /* [tile][p][c] */
    float *U = xmalloc((size_t)(P * C) * sizeof *U);                /* [c][p] of one output channel */
    for (int64_t i = 0; i < C * IN * IN; i++) x[i] = (float)((double)(rng_next(&seed) >> 11) / 4503599627370496.0 - 1.0);
    /* the input transform of every tile and channel: down the columns, then along the rows */
    for (int t = 0; t < NT; t++)
        for (int64_t c = 0; c < C; c++) {
            const float *d = x + (c * IN + (t / PATCH_TILES) * m) * IN + (t % PATCH_TILES) * m;
            float col[WINO_TMAX], z[WINO_TMAX], zt[WINO_TMAX][WINO_TMAX], v[WINO_TMAX];
            for (int j = 0; j < T; j++) {
                for (int i = 0; i < T; i++) col[i] = d[i * IN + j];
                wino_bt(m, col, z);
                for (int i = 0; i < T; i++) zt[i][j] = z[i];
            }
            for (int i = 0; i < T; i++) {
                wino_bt(m, zt[i], v);
                for (int j = 0; j < T; j++) V[(t * P + i * T + j) * C + c] = v[j];
            }
        }
    double max_d = 0, max_r = 0;
    bool finite = true;
    for (int64_t k = 0; k < ns; k++) {
        int64_t o = k * O / ns;
        const float *wo = W + o * C * 9;
        for (int64_t c = 0; c < C; c++) wino_kernel(m, wo + c * 9, U + c * P);
        for (int t = 0; t < NT; t++) {
            float s[WINO_PMAX], col[WINO_TMAX], y4[4], yt[4][WINO_TMAX], y[4][4];
            for (int p = 0; p < P; p++) {
                float sum = 0;
                const float *v = V + (t * P + p) * C;
                for (int64_t c0 = 0; c0 < C; c0 += WINO_CHUNK) {
                    float acc = 0;
                    for (int64_t c = c0; c < C && c < c0 + WINO_CHUNK; c++) acc += v[c] * U[c * P + p];
                    sum = c0 ? sum + acc : acc;
                }
                s[p] = sum;
            }
            for (int j = 0; j < T; j++) {
                for (int i = 0; i < T; i++) col[i] = s[i * T + j];
                wino_at(m, col, y4);
                for (int i = 0; i < m; i++) yt[i][j] = y4[i];
            }
            for (int i = 0; i < m; i++) wino_at(m, yt[i], y[i]);
            int ty = t / PATCH_TILES * m, tx = t % PATCH_TILES * m;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) {
                    double ref = 0;
                    for (int64_t c = 0; c < C; c++) {
                        const float *d = x + (c * IN + ty + i) * IN + tx + j;
                        const float *w = wo + c * 9;
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) ref += (double)w[ky * 3 + kx] * (double)d[ky * IN + kx];
                    }
                    double dd = fabs((double)y[i][j] - ref);
                    if (dd > max_d) max_d = dd;
                    finite &= isfinite(dd);
                    if (fabs(ref) > max_r) max_r = fabs(ref);
                }
        }
    }
    free(x), free(V), free(U);
    return !finite ? NAN : max_d == 0 ? 0 : max_d / max_r;
}

/* Tiles of one output dimension of `len` pixels at dilation d: the phases' sub-grids (pixels
 * p, p + d, ...) are tiled separately. */
static int64_t dim_tiles(int64_t len, int64_t d) {
    int64_t t = 0;
    for (int64_t p = 0; p < d && p < len; p++) t += ((len - p + d - 1) / d + 3) / 4;
    return t;
}

/* Why a layer would not pay, or NULL when it should. A dilated conv is d·d stride-1 convs on
 * sub-grids of about (OH/d)×(OW/d): the size rules apply to a sub-grid. */
static const char *no_gain(const Graph *g, const Node *n, char *buf, size_t cap) {
    const Tensor *x = ir_tensor(g, n->in[0]), *y = ir_tensor(g, n->out);
    int64_t dl[2];
    ir_attr_pair(n, "dilation", dl);
    int64_t sh = (y->shape[2] + dl[0] - 1) / dl[0], sw = (y->shape[3] + dl[1] - 1) / dl[1];
    int64_t tiles = y->shape[0] * dim_tiles(y->shape[2], dl[0]) * dim_tiles(y->shape[3], dl[1]);
    if (x->shape[1] < MIN_CHANNELS || y->shape[1] < MIN_CHANNELS)
        snprintf(buf, cap, "%lld -> %lld channels (fewer than %d: the transforms would dominate)", (long long)x->shape[1],
                 (long long)y->shape[1], MIN_CHANNELS);
    else if (x->shape[1] > MAX_IN_CHANNELS)
        snprintf(buf, cap, "%lld input channels (more than %d: the transformed weights stream from memory for a "
                 "few tiles at a time)", (long long)x->shape[1], MAX_IN_CHANNELS);
    else if (x->shape[1] > WIDE_CHANNELS && tiles < MIN_WIDE_TILES)
        snprintf(buf, cap, "%lld input channels and %lld tiles of 4x4 (more than %d channels need %d tiles: the "
                 "transformed weights stream from memory for a few tiles at a time)", (long long)x->shape[1],
                 (long long)tiles, WIDE_CHANNELS, MIN_WIDE_TILES);
    else if ((dl[0] > 1 || dl[1] > 1) && (sh < MIN_OUT || sw < MIN_OUT))
        snprintf(buf, cap, "dilation %lldx%lld: sub-grids of %lldx%lld outputs (smaller than %dx%d: partial tiles)",
                 (long long)dl[0], (long long)dl[1], (long long)sh, (long long)sw, MIN_OUT, MIN_OUT);
    else if (y->shape[2] < MIN_OUT || y->shape[3] < MIN_OUT)
        snprintf(buf, cap, "output %lldx%lld (smaller than %dx%d: partial tiles)", (long long)y->shape[2],
                 (long long)y->shape[3], MIN_OUT, MIN_OUT);
    else if (tiles < MIN_TILES)
        snprintf(buf, cap, "output %lldx%lld is %lld tiles of 4x4 (fewer than %d: each transformed weight would serve "
                 "too few)", (long long)y->shape[2], (long long)y->shape[3], (long long)tiles, MIN_TILES);
    else
        return NULL;
    return buf;
}

static uint64_t name_seed(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

bool pass_winograd(Graph *g, PassCtx *c) {
    int chosen = 0, seen = 0, changed = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead || n->op != OP_CONV2D) continue;
        int64_t k[2], s[2];
        ir_attr_pair(n, "kernel", k);
        if (k[0] != 3 || k[1] != 3) continue;
        seen++;
        if (ir_winograd_m(n)) { /* an earlier run chose it */
            chosen++;
            continue;
        }
        if (n->algo != CONV_ALGO_DIRECT) continue; /* fuse-dw computes it inside its reader */
        char why[256];
        if (!ir_winograd_eligible(g, n)) {
            ir_attr_pair(n, "stride", s);
            if (ir_attr_int(n, "groups") != 1)
                pass_stat(c, "%s declined: grouped (groups=%lld)", n->name, (long long)ir_attr_int(n, "groups"));
            else
                pass_stat(c, "%s declined: stride %lldx%lld", n->name, (long long)s[0], (long long)s[1]);
            continue;
        }
        int m = 4;
        if (no_gain(g, n, why, sizeof why)) {
            pass_stat(c, "%s declined: %s", n->name, why);
            continue;
        }
        const Tensor *w = ir_weight(g, n, "weight");
        double err = winograd_error(m, w->data, w->shape[0], w->shape[1], name_seed(n->name));
        if (!(err <= c->winograd_tol)) {
            pass_stat(c, "%s declined: rel.err %.1e > tolerance %.1e", n->name, err, c->winograd_tol);
            continue;
        }
        if (!pass_may_rewrite(c)) break;
        n->algo = m == 2 ? CONV_ALGO_WINOGRAD23 : CONV_ALGO_WINOGRAD43;
        chosen++, changed++;
        pass_stat(c, "%s winograd F(%d,3), rel.err %.1e", n->name, m, err);
    }
    pass_stat(c, "%d of %d 3x3 convolutions by Winograd F(4,3) (tolerance %.1e)", chosen, seen, c->winograd_tol);
    return changed > 0;
}

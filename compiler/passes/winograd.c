/* winograd.c — mark 3×3 convolutions to be computed by Winograd F(4,3) or F(2,3) where that pays
 * and its float error is within --winograd-tol.
 *
 * Requires: a verified graph with bound weights, after fold-bn and split3x3 (the check measures
 * the weights that will run; fold-bn after this pass rescales output channels, which leaves each
 * channel's own relative error as it was, though the measure over all channels may move).
 * Eligible: conv2d, 3×3, stride 1, groups 1, any padding and dilation (ir_winograd_eligible): a
 * conv of dilation d is d·d stride-1 convs on the phases' sub-grids (outputs p, p + d, ...
 * reading inputs p - pad + d·k), which the kernel tiles separately: the size rules below apply
 * to a sub-grid, and the error check holds for it as it is.
 * Per eligible layer, F(4,3) where it pays, else F(2,3) where it pays, else direct; where F(4,3)
 * pays but exceeds the tolerance, F(2,3) (about 10× more accurate) when it pays too.
 *   Cost: F(m,3) takes (m+2)² multiplies per m×m tile and channel pair instead of 9m² (F(4,3):
 *     36 for 16 outputs, F(2,3): 16 for 4), but each tile costs an input and an output transform
 *     per channel (few channels: the transforms dominate), partial tiles at the borders are
 *     computed whole (7×7 computes 8×8 by F(4,3)), and the transformed weights are (m+2)²/9 times
 *     the direct ones (4× and 1.8×), read from memory once per inference: each must serve enough
 *     tiles. So F(m,3) pays when:
 *       input channels C and output channels O ≥ 16 for F(4,3), ≥ 64 for F(2,3) (ResNet's 64-512
 *       are all it was measured on), an output of at least 2m × 2m, and at least 32 output tiles
 *       of m×m (N·⌈OH/m⌉·⌈OW/m⌉).
 *     On ResNet's layers that is F(4,3) at 56² (196 tiles) and 28² (49), F(2,3) at 14² (49 tiles
 *     of 2×2; 16 of 4×4), direct at 7² (16 tiles of 2×2). Measured inside the models (the
 *     transformed weights come from memory, unlike a layer run alone), ms per layer: median over
 *     the layers of a kind and 5 rounds of 30 inferences, the contenders alternating (each with
 *     every layer forced to one algorithm), 1 thread, netc -O2, 2026-12-02, on a 2-core VM whose
 *     speed swings by ±25 % within minutes (3 earlier rounds agree within 15 %):
 *                               AVX-512 (rocketlake)            AVX2 (--cpu=x86-64-v3)
 *                          direct  F(4,3)  F(2,3)           direct  F(4,3)  F(2,3)
 *       ResNet-18 56²×64     1.20    0.49    0.72             2.39    0.78    1.07
 *                 28²×128    1.15    0.69    0.74             2.45    1.03    1.37
 *                 14²×256    1.09    1.24    0.95             2.07    1.56    1.47
 *                  7²×512    1.54    3.38    2.10             2.15    3.47    2.27
 *       ResNet-50 56²×64     1.23    0.50    0.73             2.35    0.77    1.07
 *                 28²×128    1.18    0.72    0.78             2.31    0.97    1.33
 *                 14²×256    1.12    1.29    0.95             2.02    1.39    1.52
 *                  7²×512    1.57    3.50    2.02             2.07    3.31    2.19
 *     F(2,3) at 14² is the fastest with AVX-512 and on a par with F(4,3) with AVX2 (ahead in
 *     ResNet-18, behind in ResNet-50); the choice is the graph's, the same for every CPU variant
 *     of a fat artifact, so it takes the one ahead of direct on both. At 7²×512 F(2,3) streams
 *     16.8 MB of weights for 16 tiles: never ahead. Alone (weights warm in cache) the 14² layer
 *     takes 0.84 ms by F(2,3), 0.85 by F(4,3), 1.12 direct (AVX-512). Whole models, same runs
 *     (medians of the 5 rounds), direct / netc before F(2,3) (F(4,3) only, and the kernel before
 *     its whole-image items, prefetch and output-block groups) / now: ResNet-18 20.0 / 15.9 / 15.2
 *     ms with AVX-512, 36.5 / 28.5 / 23.7 with AVX2; ResNet-50 50.3 / 46.3 / 46.3 and
 *     82.6 / 75.7 / 70.6.
 *     Wider layers, measured the same way (all layers of the model forced to one algorithm, AVX-512,
 *     1 thread, ms per layer):
 *                                                 direct  F(4,3)  F(2,3)
 *       VGG-16 224²×64                             19.7     7.4    11.8
 *              56²×256                             18.4    13.6    11.0
 *              28²×256 -> 512                       8.8     7.9     6.1
 *              28²×512                             18.4    27.5    18.7
 *              14²×512                              4.5    11.2     5.9
 *       ASPP head (33²×256) rate 4 (sub-grids 9²)   5.8     6.5     4.6
 *                           rate 8 (5²)             5.0     6.3     4.5
 *                           rate 12 (3²)            4.1     9.7     6.5
 *       FCN-ResNet50 (520²) head, 65²×2048        581    1631       -   (F(4,3) before items took
 *                                                                      every tile that fits)
 *     So F(4,3) takes at most 128 input channels (above, F(2,3)'s 2.25× smaller transformed
 *     weights win) and neither more than 256 (the transformed weights no longer fit an item's
 *     share of the cache and stream from memory for a few tiles at a time); a dilated layer's
 *     size rules apply to its sub-grids (rate 12 on 33²: 3×3, declined).
 *   Error: on a seeded random input patch of 2×2 tiles ((2m+2)² inputs, all inside the image, so
 *     no tap reads padding) at the layer's full input-channel depth, with its real weights, F(m,3)
 *     computed in float in the kernel's order (winograd.h: weights transformed in double and
 *     rounded, Bᵀ d B and Aᵀ m A as the kernel evaluates them, each position's sum over input
 *     channels in the kernel's chunks) against direct convolution in double; the error is
 *     max|Δ| / max|ref| over the patch's outputs for a sample of output channels (all of them
 *     while C·O is small, else evenly spaced, at least 8: the check costs about 4M
 *     multiply-adds, 2-3 ms, per layer and tile size). The kernel fuses multiply-adds the check
 *     rounds twice: it is checked from slightly above. ResNet-18's layers measure 2.4-6e-6 by
 *     F(4,3), 2-4e-7 by F(2,3).
 * Rewrites: sets Node.algo = CONV_ALGO_WINOGRAD43 or CONV_ALGO_WINOGRAD23 (one rewrite per layer,
 * for --pass-limit); nothing else changes, so every fact an earlier pass made (epilogues, in-place
 * nodes, concat slices) is kept; the code generator honours them in its store step.
 * Guarantees: outputs unchanged up to the tolerance. Invalidates: nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "winograd.h"

enum {
    MIN_CHANNELS = 16,
    MIN_CHANNELS23 = 64,
    MAX_IN_CHANNELS = 256, /* above: the transformed weights stream from memory a few tiles at a time */
    MAX_CHANNELS43 = 128,  /* above: F(2,3), whose transformed weights are 2.25x smaller */
    MIN_TILES = 32,
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

/* Tiles of m along one output dimension of `len` pixels at dilation d: the phases' sub-grids
 * (pixels p, p + d, ...) are tiled separately. */
static int64_t dim_tiles(int64_t len, int64_t d, int m) {
    int64_t t = 0;
    for (int64_t p = 0; p < d && p < len; p++) t += ((len - p + d - 1) / d + m - 1) / m;
    return t;
}

/* Output tiles of m×m of n (all images, all phases). */
static int64_t tiles_of(const Graph *g, const Node *n, int m) {
    const Tensor *y = ir_tensor(g, n->out);
    int64_t dl[2];
    ir_attr_pair(n, "dilation", dl);
    return y->shape[0] * dim_tiles(y->shape[2], dl[0], m) * dim_tiles(y->shape[3], dl[1], m);
}

/* Whether F(m,3) should pay on n (the header's cost model); if not, "F(m,3): why" appended to buf
 * (after a "; "). */
static bool pays(const Graph *g, const Node *n, int m, char *buf, size_t cap) {
    const Tensor *x = ir_tensor(g, n->in[0]), *y = ir_tensor(g, n->out);
    int64_t dl[2];
    ir_attr_pair(n, "dilation", dl);
    long long C = x->shape[1], O = y->shape[1], tiles = tiles_of(g, n, m);
    long long OH = (y->shape[2] + dl[0] - 1) / dl[0], OW = (y->shape[3] + dl[1] - 1) / dl[1]; /* a sub-grid */
    bool dil = dl[0] > 1 || dl[1] > 1;
    int minc = m == 4 ? MIN_CHANNELS : MIN_CHANNELS23, mino = 2 * m;
    size_t len = strlen(buf);
    char *p = buf + len;
    int at = snprintf(p, cap - len, "%sF(%d,3): ", len ? "; " : "", m);
    p += at, cap -= len + (size_t)at;
    if (C < minc || O < minc)
        snprintf(p, cap, "%lld -> %lld channels (fewer than %d: %s)", C, O, minc,
                 m == 4 ? "the transforms would dominate" : "not measured below");
    else if (C > MAX_IN_CHANNELS)
        snprintf(p, cap, "%lld input channels (more than %d: the transformed weights stream from memory for a few "
                 "tiles at a time)", C, MAX_IN_CHANNELS);
    else if (OH < mino || OW < mino)
        snprintf(p, cap, "%s %lldx%lld (smaller than %dx%d: partial tiles)", dil ? "dilated: sub-grids of" : "output", OH,
                 OW, mino, mino);
    else if (tiles < MIN_TILES)
        snprintf(p, cap, "output %lldx%lld is %lld tiles of %dx%d (fewer than %d: each transformed weight would serve too "
                 "few)", (long long)y->shape[2], (long long)y->shape[3], tiles, m, m, MIN_TILES);
    else if (m == 4 && C > MAX_CHANNELS43)
        snprintf(p, cap, "%lld input channels (more than %d: F(2,3)'s smaller transformed weights measured faster)", C,
                 MAX_CHANNELS43);
    else {
        buf[len] = 0;
        return true;
    }
    return false;
}

static uint64_t name_seed(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

bool pass_winograd(Graph *g, PassCtx *c) {
    int chosen = 0, chosen_m[2] = {0, 0}, seen = 0, changed = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead || n->op != OP_CONV2D) continue;
        int64_t k[2], s[2];
        ir_attr_pair(n, "kernel", k);
        if (k[0] != 3 || k[1] != 3) continue;
        seen++;
        if (ir_winograd_m(n)) { /* an earlier run chose it */
            chosen++, chosen_m[ir_winograd_m(n) == 2]++;
            continue;
        }
        if (n->algo != CONV_ALGO_DIRECT) continue; /* fuse-dw computes it inside its reader */
        char why[320];
        if (!ir_winograd_eligible(g, n)) {
            ir_attr_pair(n, "stride", s);
            if (ir_attr_int(n, "groups") != 1)
                pass_stat(c, "%s declined: grouped (groups=%lld)", n->name, (long long)ir_attr_int(n, "groups"));
            else
                pass_stat(c, "%s declined: stride %lldx%lld", n->name, (long long)s[0], (long long)s[1]);
            continue;
        }
        /* F(4,3) where it pays, else F(2,3) where it pays; F(2,3) also where F(4,3) pays but
           exceeds the tolerance (it measured faster than direct wherever F(4,3) pays) */
        const Tensor *w = ir_weight(g, n, "weight");
        int m = 0, tm[2], ntried = 0;
        double err = 0, errs[2];
        why[0] = 0;
        for (int k = 4; k >= 2 && !m; k -= 2) {
            if (!pays(g, n, k, why, sizeof why)) continue;
            tm[ntried] = k;
            errs[ntried] = winograd_error(k, w->data, w->shape[0], w->shape[1], name_seed(n->name));
            if (errs[ntried++] <= c->winograd_tol) m = k, err = errs[ntried - 1];
        }
        if (!ntried) {
            pass_stat(c, "%s declined: %s", n->name, why);
            continue;
        }
        char over[96] = ""; /* the candidates over the tolerance: "F(4,3) rel.err 2.1e-05" */
        for (int k = 0, at = 0; k < ntried - (m != 0); k++)
            at += snprintf(over + at, sizeof over - (size_t)at, "%sF(%d,3) rel.err %.1e", k ? ", " : "", tm[k], errs[k]);
        if (!m) {
            pass_stat(c, "%s declined: %s > tolerance %.1e", n->name, over, c->winograd_tol);
            continue;
        }
        if (!pass_may_rewrite(c)) break;
        n->algo = m == 2 ? CONV_ALGO_WINOGRAD23 : CONV_ALGO_WINOGRAD43;
        chosen++, changed++;
        chosen_m[m == 2]++;
        if (over[0]) pass_stat(c, "%s winograd F(%d,3), rel.err %.1e (%s > tolerance)", n->name, m, err, over);
        else pass_stat(c, "%s winograd F(%d,3), rel.err %.1e", n->name, m, err);
    }
    pass_stat(c, "%d of %d 3x3 convolutions by Winograd: %d F(4,3), %d F(2,3) (tolerance %.1e)", chosen, seen, chosen_m[0],
              chosen_m[1], c->winograd_tol);
    return changed > 0;
}

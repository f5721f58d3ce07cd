/* winograd.h — Winograd F(4,3): 4×4 outputs of a 3×3 correlation from a 6×6 input tile, with the
 * interpolation points 0, ±1, ±2, ∞ (Lavin and Gray 2016, as ncnn uses). The 1-D transforms are
 * written once here: in double for the weight transform the code generator packs, and in float
 * in the order the generated kernel computes them (cg_winograd.c emits the same expressions),
 * for the winograd pass's error check. A 2-D transform applies the 1-D one down each column, then
 * along each row:  Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A  for a 3×3 kernel g and a 6×6 tile d.
 *
 *   Bᵀ = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   Aᵀ = [1 1  1 1  1 0]
 *        [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]        [0 1 -1 2 -2 0]
 *        [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]        [0 1  1 4  4 0]
 *        [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]        [0 1 -1 8 -8 1]
 *        [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
 *        [0  4  0 -5 0 1]       [  0     0    1 ]
 */
#ifndef NETC_WINOGRAD_H
#define NETC_WINOGRAD_H

enum { WINO_M = 4, WINO_T = 6, WINO_P = 36 }; /* outputs per tile side, inputs per tile side, positions */

/* Each position's sum over input channels runs in chunks of WINO_CHUNK channels, the chunks'
 * sums added up after: the transformed terms are large next to their sum (the output transform
 * cancels them), so one long float sum is F(4,3)'s largest error; in chunks of 64 it is about
 * half at 256 and 512 channels (simulated in float; chunks of 32 gain little more and cost 10 %
 * on a 64-channel layer: one load, add and store of each accumulator per chunk). */
enum { WINO_CHUNK = 64 };

/* u = G g (3 -> 6), in double */
static inline void wino_g(const double g[3], double u[6]) {
    u[0] = g[0] / 4;
    u[1] = -(g[0] + g[1] + g[2]) / 6;
    u[2] = -(g[0] - g[1] + g[2]) / 6;
    u[3] = g[0] / 24 + g[1] / 12 + g[2] / 6;
    u[4] = g[0] / 24 - g[1] / 12 + g[2] / 6;
    u[5] = g[2];
}

/* U = G g Gᵀ of one 3×3 kernel (row-major), computed in double and rounded once: u[6·i + j] */
static inline void wino_kernel(const float *g, float *u) {
    double col[3], t[6][3], row[6];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < 3; i++) col[i] = g[i * 3 + j];
        wino_g(col, row);
        for (int i = 0; i < 6; i++) t[i][j] = row[i];
    }
    for (int i = 0; i < 6; i++) {
        wino_g(t[i], row);
        for (int j = 0; j < 6; j++) u[i * 6 + j] = (float)row[j];
    }
}

/* z = Bᵀ d (6 -> 6), in float, as the kernel computes it (its fma(a, b, c) is a·b + c here) */
static inline void wino_bt(const float d[6], float z[6]) {
    float a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
    float c = d[4] - d[2], e = (d[3] - d[1]) * 2.0f;
    z[0] = 4.0f * d[0] + (-5.0f * d[2] + d[4]);
    z[1] = a + b;
    z[2] = a - b;
    z[3] = c + e;
    z[4] = c - e;
    z[5] = 4.0f * d[1] + (-5.0f * d[3] + d[5]);
}

/* y = Aᵀ m (6 -> 4), in float, as the kernel computes it */
static inline void wino_at(const float m[6], float y[4]) {
    float a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = 2.0f * d + b;
    y[2] = 4.0f * c + a;
    y[3] = 8.0f * d + (b + m[5]);
}

#endif

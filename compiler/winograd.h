/* winograd.h — Winograd F(m,3), m = 4 or 2: m×m outputs of a 3×3 correlation from a T×T input
 * tile, T = m + 2, with the interpolation points 0, ±1, ±2, ∞ for F(4,3) and 0, ±1, ∞ for F(2,3)
 * (Lavin and Gray 2016, as ncnn uses). The 1-D transforms are written once here: in double for
 * the weight transform the code generator packs, and in float in the order the generated kernel
 * computes them (cg_winograd.c emits the same expressions), for the winograd pass's error check.
 * A 2-D transform applies the 1-D one down each column, then along each row:
 * Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A  for a 3×3 kernel g and a T×T tile d.
 *
 * F(4,3), 6×6 tiles, 36 positions:
 *   Bᵀ = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   Aᵀ = [1 1  1 1  1 0]
 *        [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]        [0 1 -1 2 -2 0]
 *        [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]        [0 1  1 4  4 0]
 *        [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]        [0 1 -1 8 -8 1]
 *        [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
 *        [0  4  0 -5 0 1]       [  0     0    1 ]
 * F(2,3), 4×4 tiles, 16 positions (16 multiplies per 2×2 outputs instead of 36: less gain than
 * F(4,3)'s 36 per 4×4, but a quarter of the partial tile wasted at 7×7 and 14×14, 4× the tiles
 * per image to share each transformed weight, and transforms of adds only):
 *   Bᵀ = [1  0 -1  0]   G = [ 1    0    0 ]   Aᵀ = [1 1  1  0]
 *        [0  1  1  0]       [1/2  1/2  1/2]        [0 1 -1 -1]
 *        [0 -1  1  0]       [1/2 -1/2  1/2]
 *        [0  1  0 -1]       [ 0    0    1 ]
 */
#ifndef NETC_WINOGRAD_H
#define NETC_WINOGRAD_H

enum { WINO_TMAX = 6, WINO_PMAX = 36 }; /* the larger tile side and position count, F(4,3)'s */

/* inputs per tile side and positions of F(m,3) */
static inline int wino_t(int m) { return m + 2; }
static inline int wino_p(int m) { return (m + 2) * (m + 2); }

/* Each position's sum over input channels runs in chunks of WINO_CHUNK channels, the chunks'
 * sums added up after: the transformed terms are large next to their sum (the output transform
 * cancels them), so one long float sum is F(4,3)'s largest error; in chunks of 64 it is about
 * half at 256 and 512 channels (simulated in float; chunks of 32 gain little more and cost 10 %
 * on a 64-channel layer: one load, add and store of each accumulator per chunk). */
enum { WINO_CHUNK = 64 };

/* u = G g (3 -> m + 2), in double */
static inline void wino_g(int m, const double g[3], double u[WINO_TMAX]) {
    if (m == 2) {
        u[0] = g[0];
        u[1] = (g[0] + g[1] + g[2]) / 2;
        u[2] = (g[0] - g[1] + g[2]) / 2;
        u[3] = g[2];
        return;
    }
    u[0] = g[0] / 4;
    u[1] = -(g[0] + g[1] + g[2]) / 6;
    u[2] = -(g[0] - g[1] + g[2]) / 6;
    u[3] = g[0] / 24 + g[1] / 12 + g[2] / 6;
    u[4] = g[0] / 24 - g[1] / 12 + g[2] / 6;
    u[5] = g[2];
}

/* U = G g Gᵀ of one 3×3 kernel (row-major), computed in double and rounded once: u[T·i + j] */
static inline void wino_kernel(int m, const float *g, float *u) {
    int T = wino_t(m);
    double col[3], t[WINO_TMAX][3], row[WINO_TMAX];
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < 3; i++) col[i] = g[i * 3 + j];
        wino_g(m, col, row);
        for (int i = 0; i < T; i++) t[i][j] = row[i];
    }
    for (int i = 0; i < T; i++) {
        wino_g(m, t[i], row);
        for (int j = 0; j < T; j++) u[i * T + j] = (float)row[j];
    }
}

/* z = Bᵀ d (T -> T), in float, as the kernel computes it (its fma(a, b, c) is a·b + c here) */
static inline void wino_bt(int m, const float d[WINO_TMAX], float z[WINO_TMAX]) {
    if (m == 2) {
        z[0] = d[0] - d[2];
        z[1] = d[1] + d[2];
        z[2] = d[2] - d[1];
        z[3] = d[1] - d[3];
        return;
    }
    float a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
    float c = d[4] - d[2], e = (d[3] - d[1]) * 2.0f;
    z[0] = 4.0f * d[0] + (-5.0f * d[2] + d[4]);
    z[1] = a + b;
    z[2] = a - b;
    z[3] = c + e;
    z[4] = c - e;
    z[5] = 4.0f * d[1] + (-5.0f * d[3] + d[5]);
}

/* y = Aᵀ s (T -> m), in float, as the kernel computes it */
static inline void wino_at(int m, const float s[WINO_TMAX], float y[4]) {
    if (m == 2) {
        float a = s[1] + s[2];
        y[0] = s[0] + a;
        y[1] = (s[1] - s[2]) - s[3];
        return;
    }
    float a = s[1] + s[2], b = s[1] - s[2], c = s[3] + s[4], d = s[3] - s[4];
    y[0] = s[0] + a + c;
    y[1] = 2.0f * d + b;
    y[2] = 4.0f * c + a;
    y[3] = 8.0f * d + (b + s[5]);
}

#endif

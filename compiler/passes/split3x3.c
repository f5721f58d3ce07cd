/* split3x3.c — split a 3×3 convolution into a 1×3 then a 3×1 convolution where a low-rank
 * factorisation of its weight is exact (or within --split-tol) and cheaper.
 *
 * Requires: a verified graph with bound weights, after fold-bn (the rank is that of the weight
 * that will run). For W[o, i, h, w] (groups = 1) the matrix M[(o,h), (i,w)] (3·O × 3·I) has a
 * truncated SVD M ≈ U_r Σ_r V_rᵀ; the 1×3 conv I -> r takes Σ^½ Vᵀ as W1[r, i, 0, w], the 3×1 conv
 * r -> O takes U Σ^½ as W2[o, r, h, 0] and the bias, so that
 *     Σ_{i,h,w} W[o,i,h,w] x[i, h, w] = Σ_h Σ_r W2[o,r,h] Σ_{i,w} W1[r,i,w] x[i, h, w].
 * Stride, padding and dilation split by axis: the 1×3 takes (1, s_w), (0, p_w), (1, d_w), the
 * 3×1 takes (s_h, 1), (p_h, 0), (d_h, 1) — exact with zero padding.
 * Rank: the smallest r whose relative Frobenius error ‖M − M_r‖ / ‖M‖ ≤ tol, in double.
 * Cost: split only when 3·r·I·H_mid·W_out + 3·r·O·H_out·W_out < 9·I·O·H_out·W_out.
 * Speed: the break-even rank r_be comes first; a randomized range finder with r_be + 10
 * columns decides from ‖M‖² − ‖QᵀM‖² whether rank r_be suffices before any SVD, so a full-rank
 * layer is declined after two matrix products and a QR.
 * Depthwise 3×3 (groups = C = O) splits into depthwise 1×3 and 3×1 only when every channel's
 * kernel is rank 1 within the tolerance, each channel measured against its own norm (a weak
 * channel must not hide behind strong ones); other grouped convolutions are declined.
 * Handles what earlier passes leave: the conv's fused epilogue moves to the 3×1 conv, its concat
 * slice to the 3×1's output.
 * Guarantees: outputs unchanged up to the tolerance. Invalidates: the node list (two nodes
 * replace one). */
#include <cblas.h>
#include <dlfcn.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "passes.h"

typedef struct Geo {
    int64_t ci, co, H, W, Hout, Wout; /* in channels per group, out channels */
    int64_t k[2], s[2], p[2], dl[2];
} Geo;

static void geometry(const Graph *g, const Node *n, Geo *q) {
    const Tensor *x = ir_tensor(g, n->in[0]), *y = ir_tensor(g, n->out);
    int64_t groups = ir_attr_int(n, "groups");
    q->ci = x->shape[1] / groups, q->co = y->shape[1];
    q->H = x->shape[2], q->W = x->shape[3], q->Hout = y->shape[2], q->Wout = y->shape[3];
    ir_attr_pair(n, "kernel", q->k);
    ir_attr_pair(n, "stride", q->s);
    ir_attr_pair(n, "pad", q->p);
    ir_attr_pair(n, "dilation", q->dl);
}

/* Two convolutions replace n: a (1×3, in -> r) and b (3×1, r -> out, with n's bias). */
static void replace_with_pair(Graph *g, PassCtx *c, Node *n, int pos, const Geo *q, int64_t r, bool depthwise,
                              float *w1, float *w2) {
    char name[512];
    snprintf(name, sizeof name, "%s/1x3", n->name);
    Node *a = ir_add_node(g, OP_CONV2D, name, &n->in[0], 1, n->loc);
    a->calls = n->calls;
    ir_set_int(g, a, "out", r);
    ir_set_pair(g, a, "kernel", 1, 3);
    ir_set_pair(g, a, "stride", 1, q->s[1]);
    ir_set_pair(g, a, "pad", 0, q->p[1]);
    ir_set_pair(g, a, "dilation", 1, q->dl[1]);
    ir_set_bool(g, a, "bias", false);
    if (depthwise) ir_set_int(g, a, "groups", r);
    ir_infer_node(g, a, c->d);
    pass_set_weight(ir_weight(g, a, "weight"), w1);

    snprintf(name, sizeof name, "%s/3x1", n->name);
    Node *b = ir_add_node(g, OP_CONV2D, name, &a->out, 1, n->loc);
    b->calls = n->calls;
    const Tensor *bias = ir_weight(g, n, "bias");
    ir_set_int(g, b, "out", q->co);
    ir_set_pair(g, b, "kernel", 3, 1);
    ir_set_pair(g, b, "stride", q->s[0], 1);
    ir_set_pair(g, b, "pad", q->p[0], 0);
    ir_set_pair(g, b, "dilation", q->dl[0], 1);
    ir_set_bool(g, b, "bias", bias != NULL);
    if (depthwise) ir_set_int(g, b, "groups", q->co);
    ir_infer_node(g, b, c->d);
    pass_set_weight(ir_weight(g, b, "weight"), w2);
    if (bias) {
        float *nb = xmalloc((size_t)q->co * sizeof *nb);
        memcpy(nb, bias->data, (size_t)q->co * sizeof *nb);
        pass_set_weight(ir_weight(g, b, "bias"), nb);
    }
    /* what earlier passes attached to n's output goes with it: the epilogue runs after the 3x1 */
    memcpy(b->epi, n->epi, sizeof b->epi);
    b->nepi = n->nepi;
    pass_move_slice(g, n->out, b->out);
    pass_replace_uses(g, n->out, b->out);
    n->dead = true;
    /* move a and b (appended at the end) to n's place in the schedule */
    int len = g->nodes.len;
    memmove(&g->nodes.items[pos + 2], &g->nodes.items[pos], (size_t)(len - 2 - pos) * sizeof(void *));
    g->nodes.items[pos] = a;
    g->nodes.items[pos + 1] = b;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *x = ir_node(g, i);
        x->id = i;
        ir_tensor(g, x->out)->producer = i;
    }
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double gaussian(uint64_t *s) {
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Best rank ≤ kmax approximation of M (m×n, row-major) through a randomized range finder.
 * Returns the rank r ≤ kmax meeting the tolerance (and its error in *err), with factors
 * L (m×r) and R (r×n), M ≈ L R, split as U Σ^½ and Σ^½ Vᵀ; or -1 when rank kmax does not meet it. */
static int64_t low_rank(const double *M, int64_t m, int64_t n, int64_t kmax, double tol, int power_iters, double **L,
                        double **R, double *err) {
    int64_t mn = m < n ? m : n;
    int64_t k = kmax + 10 < mn ? kmax + 10 : mn;
    double norm2 = 0;
    for (int64_t i = 0; i < m * n; i++) norm2 += M[i] * M[i];
    if (norm2 == 0) return -1;
    double *Om = xmalloc((size_t)(n * k) * sizeof *Om), *Y = xmalloc((size_t)(m * k) * sizeof *Y);
    uint64_t seed = 12345;
    for (int64_t i = 0; i < n * k; i++) Om[i] = gaussian(&seed);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)n, 1.0, M, (int)n, Om, (int)k, 0.0, Y,
                (int)k);
    /* power iterations sharpen the range when the spectrum decays slowly (lossy tolerances) */
    double *Z = xmalloc((size_t)(n * k) * sizeof *Z);
    double *tau = xmalloc((size_t)k * sizeof *tau);
    for (int it = 0; it < power_iters; it++) {
        LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)m, (int)k, Y, (int)k, tau);
        LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)m, (int)k, (int)k, Y, (int)k, tau);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)k, (int)m, 1.0, M, (int)n, Y, (int)k, 0.0, Z,
                    (int)k);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)n, 1.0, M, (int)n, Z, (int)k, 0.0,
                    Y, (int)k);
    }
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)m, (int)k, Y, (int)k, tau);
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)m, (int)k, (int)k, Y, (int)k, tau); /* Y = Q, m×k */
    double *B = xmalloc((size_t)(k * n) * sizeof *B);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)n, (int)m, 1.0, Y, (int)k, M, (int)n, 0.0, B,
                (int)n);
    double bnorm2 = 0;
    for (int64_t i = 0; i < k * n; i++) bnorm2 += B[i] * B[i];
    double resid2 = norm2 - bnorm2 > 0 ? norm2 - bnorm2 : 0;
    double lim2 = tol * tol * norm2;
    int64_t r = -1;
    if (resid2 <= lim2) {
        /* SVD of the small k×n matrix: B = Ub S Vt */
        int64_t kk = k < n ? k : n;
        double *S = xmalloc((size_t)kk * sizeof *S), *Ub = xmalloc((size_t)(k * kk) * sizeof *Ub);
        double *Vt = xmalloc((size_t)(kk * n) * sizeof *Vt);
        if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (int)k, (int)n, B, (int)n, S, Ub, (int)kk, Vt, (int)n) == 0) {
            double tail2 = resid2;
            int64_t best = kk;
            for (int64_t j = kk - 1; j >= 0; j--) {
                if (tail2 + S[j] * S[j] > lim2) break;
                tail2 += S[j] * S[j];
                best = j;
            }
            /* tail2 now is the error of rank `best` */
            tail2 = resid2;
            for (int64_t j = best; j < kk; j++) tail2 += S[j] * S[j];
            if (best <= kmax && best > 0) {
                r = best;
                *err = sqrt(tail2 / norm2);
                *L = xmalloc((size_t)(m * r) * sizeof **L);
                *R = xmalloc((size_t)(r * n) * sizeof **R);
                /* L = Q Ub[:, :r] Σ^½ ; R = Σ^½ Vt[:r, :] */
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < r; j++) {
                        double acc = 0;
                        for (int64_t t = 0; t < k; t++) acc += Y[i * k + t] * Ub[t * kk + j];
                        (*L)[i * r + j] = acc * sqrt(S[j]);
                    }
                for (int64_t j = 0; j < r; j++)
                    for (int64_t t = 0; t < n; t++) (*R)[j * n + t] = sqrt(S[j]) * Vt[j * n + t];
            }
        }
        free(S), free(Ub), free(Vt);
    }
    free(Om), free(Y), free(Z), free(tau), free(B);
    return r;
}

/* A quick, rigorous decline. Deleting rows or columns never raises a singular value, so any
 * submatrix S of M with r+1 rows has σ_{r+1}(M) ≥ σ_min(S). When the (r+1)×(r+1) Gram matrix
 * S Sᵀ minus δ·I is positive definite (its Cholesky factorisation succeeds) with
 * δ = (tol·‖M‖)² plus a margin for rounding, σ_{r+1}(M) > tol·‖M‖ and no rank-r factorisation
 * meets the tolerance. Rows and columns at random: first r+1 rows by r+9 columns (nearly square:
 * its σ_min is small, but at the default tolerance still far above tol·‖M‖, and it halves the
 * work), then, if that does not decide, every column (a wide submatrix is well conditioned
 * when M has full rank). One DSYRK and one DPOTRF each, no SVD. */
/* S = M[rows, cols] where M[(o,h), (i,w)] = W[o, i, h, w] of a [co, ci, 3, 3] weight: element
 * (o*3+h, i*3+w) sits at W[(o*ci*3 + h)*3 ... ] = W[o*9*ci + 3*h + 9*i + w], read in place. */
static bool gram_above(const float *W, int64_t ci, const int64_t *rows, int64_t k, const int64_t *cols, int64_t c,
                       double norm2, double tol) {
    double *S = xmalloc((size_t)(k * c) * sizeof *S), *A = xcalloc((size_t)(k * k), sizeof *A);
    int64_t *coff = xmalloc((size_t)c * sizeof *coff);
    for (int64_t j = 0; j < c; j++) coff[j] = 9 * (cols[j] / 3) + cols[j] % 3;
    double snorm2 = 0;
    for (int64_t i = 0; i < k; i++) {
        const float *src = W + 9 * ci * (rows[i] / 3) + 3 * (rows[i] % 3);
        double *dst = S + i * c;
        for (int64_t j = 0; j < c; j++) dst[j] = src[coff[j]], snorm2 += dst[j] * dst[j];
    }
    free(coff);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)k, (int)c, 1.0, S, (int)c, 0.0, A, (int)k);
    /* the computed Gram matrix and Cholesky are exact for a matrix within ~(c + k)·u·‖S‖² of
       them: the margin keeps the conclusion true in exact arithmetic */
    double delta = tol * tol * norm2 + 4.0 * (double)(c + k) * 1.1102230246251565e-16 * snorm2;
    for (int64_t i = 0; i < k; i++) A[i * k + i] -= delta;
    /* row-major lower = column-major upper: no transposed copy */
    bool above = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', (int)k, A, (int)k) == 0;
    free(S), free(A);
    return above;
}

static void sample(int64_t *idx, int64_t n, int64_t k, uint64_t *seed) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = 0; i < k; i++) { /* partial Fisher-Yates */
        int64_t j = i + (int64_t)(rng_next(seed) % (uint64_t)(n - i)), t = idx[i];
        idx[i] = idx[j], idx[j] = t;
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool surely_above(const float *W, int64_t co, int64_t ci, int64_t r, double tol) {
    int64_t k = r + 1, m = 3 * co, n = 3 * ci;
    if (k > m || k > n) return false;
    double norm2 = 0;
    for (int64_t i = 0; i < m * n; i++) norm2 += (double)W[i] * W[i];
    int64_t *rows = xmalloc((size_t)m * sizeof *rows), *cols = xmalloc((size_t)n * sizeof *cols);
    uint64_t seed = 777;
    sample(rows, m, k, &seed);
    qsort(rows, (size_t)k, sizeof *rows, cmp_i64); /* read M in order */
    int64_t c = k + 8 < n ? k + 8 : n;
    sample(cols, n, c, &seed);
    qsort(cols, (size_t)c, sizeof *cols, cmp_i64);
    bool above = gram_above(W, ci, rows, k, cols, c, norm2, tol);
    if (!above && c < n) {
        for (int64_t j = 0; j < n; j++) cols[j] = j;
        above = gram_above(W, ci, rows, k, cols, n, norm2, tol);
    }
    free(rows), free(cols);
    return above;
}

static double mac_ratio(const Geo *q, int64_t r, bool dw) {
    double before = 9.0 * (double)(dw ? 1 : q->ci) * (double)q->co * (double)(q->Hout * q->Wout);
    double after = dw ? 3.0 * (double)q->co * (double)(q->H * q->Wout) + 3.0 * (double)q->co * (double)(q->Hout * q->Wout)
                      : 3.0 * (double)r * (double)q->ci * (double)(q->H * q->Wout) +
                            3.0 * (double)r * (double)q->co * (double)(q->Hout * q->Wout);
    return after / before;
}

/* The break-even rank: the largest r with 3r(I·H_mid + O·H_out)·W_out < 9·I·O·H_out·W_out. */
static int64_t break_even(const Geo *q) {
    int64_t m = 3 * q->co, nn = 3 * q->ci, full = m < nn ? m : nn;
    double denom = 3.0 * ((double)q->ci * (double)q->H + (double)q->co * (double)q->Hout) * (double)q->Wout;
    double lim = 9.0 * (double)q->ci * (double)q->co * (double)q->Hout * (double)q->Wout / denom;
    int64_t r_be = (int64_t)ceil(lim) - 1;
    return r_be > full ? full : r_be;
}

/* ---- the quick declines of all dense layers, decided up front on every core ---------------- */

typedef struct Decline {
    const char *name; /* the node */
    const float *W;
    int64_t co, ci, r_be;
    double tol;
    bool above;
} Decline;

typedef struct DeclineJob {
    Decline *items;
    int n, next;
    pthread_mutex_t lock;
} DeclineJob;

static void *decline_worker(void *arg) {
    DeclineJob *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int i = j->next++;
        pthread_mutex_unlock(&j->lock);
        if (i >= j->n) return NULL;
        Decline *d = &j->items[i];
        d->above = surely_above(d->W, d->co, d->ci, d->r_be, d->tol);
    }
}

static int by_work_desc(const void *a, const void *b) { /* biggest first: the threads end together */
    const Decline *x = a, *y = b;
    double wx = (double)x->r_be * (double)x->r_be * (double)x->r_be, wy = (double)y->r_be * (double)y->r_be * (double)y->r_be;
    return (wx < wy) - (wx > wy);
}

static void decide_declines(Decline *items, int n) {
    qsort(items, (size_t)n, sizeof *items, by_work_desc);
    DeclineJob j = {.items = items, .n = n};
    pthread_mutex_init(&j.lock, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    if (threads > n) threads = n;
    pthread_t tid[8];
    int started = 0;
    for (int i = 1; i < threads; i++)
        if (pthread_create(&tid[started], NULL, decline_worker, &j) == 0) started++;
    decline_worker(&j);
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&j.lock);
}

static bool split_dense(Graph *g, PassCtx *c, Node *n, int pos, const Geo *q, const Decline *decl, int ndecl,
                        int *splits) {
    int64_t m = 3 * q->co, nn = 3 * q->ci, full = m < nn ? m : nn;
    int64_t r_be = break_even(q);
    if (r_be < 1) {
        pass_stat(c, "%s declined: no rank pays off (a rank-1 split would cost %.2f× the MACs)", n->name, mac_ratio(q, 1, false));
        return false;
    }
    const float *W = ir_weight(g, n, "weight")->data;
    double *L = NULL, *R = NULL, err = 0;
    int64_t r = -1;
    bool sa = false;
    for (int i = 0; i < ndecl; i++)
        if (decl[i].name == n->name) sa = decl[i].above;
    if (!sa) { /* the factorisation, on M[(o,h), (i,w)] = W[o, i, h, w] */
        double *M = xmalloc((size_t)(m * nn) * sizeof *M);
        for (int64_t o = 0; o < q->co; o++)
            for (int64_t i = 0; i < q->ci; i++)
                for (int64_t h = 0; h < 3; h++)
                    for (int64_t w = 0; w < 3; w++) M[(o * 3 + h) * nn + i * 3 + w] = W[((o * q->ci + i) * 3 + h) * 3 + w];
        r = low_rank(M, m, nn, r_be, c->split_tol, 0, &L, &R, &err);
        if (r < 0 && c->split_tol > 1e-5) r = low_rank(M, m, nn, r_be, c->split_tol, 2, &L, &R, &err);
        free(M);
    }
    if (r < 0) {
        pass_stat(c, "%s declined: rank > %lld of %lld (break-even %lld): a split at full rank would cost %.2f× the MACs",
                  n->name, (long long)r_be, (long long)full, (long long)r_be, mac_ratio(q, full, false));
        return false;
    }
    if (!pass_may_rewrite(c)) {
        free(L), free(R);
        return false;
    }
    float *w1 = xmalloc((size_t)(r * q->ci * 3) * sizeof *w1), *w2 = xmalloc((size_t)(q->co * r * 3) * sizeof *w2);
    for (int64_t j = 0; j < r; j++) /* W1[j, i, 0, w] = R[j, (i,w)] */
        for (int64_t t = 0; t < nn; t++) w1[j * nn + t] = (float)R[j * nn + t];
    for (int64_t o = 0; o < q->co; o++) /* W2[o, j, h, 0] = L[(o,h), j] */
        for (int64_t j = 0; j < r; j++)
            for (int64_t h = 0; h < 3; h++) w2[(o * r + j) * 3 + h] = (float)L[(o * 3 + h) * r + j];
    free(L), free(R);
    pass_stat(c, "%s rank %lld/%lld, rel.err %.1e, MACs %+.0f%%", n->name, (long long)r, (long long)full, err,
              (mac_ratio(q, r, false) - 1) * 100);
    replace_with_pair(g, c, n, pos, q, r, false, w1, w2);
    (*splits)++;
    return true;
}

/* Depthwise: each channel's 3×3 kernel must be rank 1 within the tolerance of its own norm,
 * √(σ2² + σ3²) / ‖K_c‖ ≤ tol for every channel c (a zero kernel is rank 0: exact). */
static bool split_depthwise(Graph *g, PassCtx *c, Node *n, int pos, const Geo *q, int *splits) {
    double ratio = mac_ratio(q, 1, true);
    if (ratio >= 1) {
        pass_stat(c, "%s declined: depthwise at stride %lld, a split would cost %.2f× the MACs", n->name,
                  (long long)q->s[0], ratio);
        return false;
    }
    const float *W = ir_weight(g, n, "weight")->data;
    int64_t C = q->co;
    float *w1 = xmalloc((size_t)(C * 3) * sizeof *w1), *w2 = xmalloc((size_t)(C * 3) * sizeof *w2);
    double err = 0; /* the worst channel's */
    int64_t worst = 0;
    for (int64_t ch = 0; ch < C; ch++) {
        double a[9], s[3], u[9], vt[9], norm2 = 0;
        for (int k = 0; k < 9; k++) a[k] = W[ch * 9 + k], norm2 += a[k] * a[k];
        bool ok = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'A', 3, 3, a, 3, s, u, 3, vt, 3) == 0;
        if (!ok) s[0] = s[1] = s[2] = 0;
        double e = !ok ? INFINITY : norm2 > 0 ? sqrt((s[1] * s[1] + s[2] * s[2]) / norm2) : 0;
        if (e > err) err = e, worst = ch;
        for (int k = 0; k < 3; k++) {
            w1[ch * 3 + k] = (float)(sqrt(s[0]) * vt[k]);    /* 1×3: row of Vᵀ */
            w2[ch * 3 + k] = (float)(sqrt(s[0]) * u[k * 3]); /* 3×1: column of U */
        }
    }
    if (err > c->split_tol) {
        pass_stat(c, "%s declined: depthwise kernels are not all rank 1 (channel %lld: rel.err of rank 1 %.1e)", n->name,
                  (long long)worst, err);
        free(w1), free(w2);
        return false;
    }
    if (!pass_may_rewrite(c)) {
        free(w1), free(w2);
        return false;
    }
    pass_stat(c, "%s depthwise rank 1/3 per channel, rel.err %.1e, MACs %+.0f%%", n->name, err, (ratio - 1) * 100);
    replace_with_pair(g, c, n, pos, q, C, true, w1, w2);
    (*splits)++;
    return true;
}

/* OpenBLAS's own threads busy-wait (sched_yield) between calls, taking a core from code
 * generation after this pass; these matrices are small enough for one thread. */
static void blas_one_thread(void) {
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (set) set(1);
}

bool pass_split3x3(Graph *g, PassCtx *c) {
    blas_one_thread();
    Decline *decl = xcalloc((size_t)g->nodes.len + 1, sizeof *decl);
    int ndecl = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead || n->op != OP_CONV2D || ir_attr_int(n, "groups") != 1) continue;
        Geo q;
        geometry(g, n, &q);
        if (q.k[0] != 3 || q.k[1] != 3 || break_even(&q) < 1) continue;
        decl[ndecl++] = (Decline){.name = n->name, .W = ir_weight(g, n, "weight")->data, .co = q.co, .ci = q.ci,
                                  .r_be = break_even(&q), .tol = c->split_tol};
    }
    decide_declines(decl, ndecl);
    int splits = 0, seen = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        Node *n = ir_node(g, i);
        if (n->dead || n->op != OP_CONV2D) continue;
        Geo q;
        geometry(g, n, &q);
        if (q.k[0] != 3 || q.k[1] != 3) continue;
        seen++;
        int64_t groups = ir_attr_int(n, "groups");
        const Tensor *x = ir_tensor(g, n->in[0]);
        bool changed;
        if (n->algo == CONV_ALGO_DW_IN_CONSUMER) {
            pass_stat(c, "%s declined: computed row by row inside the 1x1 conv reading it (fuse-dw)", n->name);
            continue;
        }
        if (groups == 1) {
            changed = split_dense(g, c, n, i, &q, decl, ndecl, &splits);
        } else if (groups == x->shape[1] && q.co == groups) {
            changed = split_depthwise(g, c, n, i, &q, &splits);
        } else {
            pass_stat(c, "%s declined: grouped convolution (groups=%lld)", n->name, (long long)groups);
            changed = false;
        }
        if (changed) i += 2; /* skip the two new nodes */
    }
    free(decl);
    pass_stat(c, "split %d of %d 3x3 convolutions (tolerance %.1e)", splits, seen, c->split_tol);
    return splits > 0;
}

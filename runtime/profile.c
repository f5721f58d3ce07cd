/* profile.c — per-node times of a model's runs: a pool that forwards parallel_for to the
 * caller's pool and sets the profile hook generated code calls around each node's kernels. */
#include "netrt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct netrt_profile {
    netrt_pool base;   /* first: generated code calls base.parallel_for and base.profile */
    netrt_pool *inner; /* the caller's pool, or NULL: serial */
    const netrt_model *m;
    int n;             /* profile entries */
    int max_runs, runs;
    double *ms;        /* [max_runs][n + 1]: each entry's time in the run, then the whole run */
    double *t0;        /* [n]: when the entry began */
    int64_t *calls;    /* [n] */
    double *scratch;   /* [max_runs], for medians */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void forward(netrt_pool *pool, int64_t n, netrt_task_fn fn, void *ctx) {
    netrt_profile *p = (netrt_profile *)pool;
    if (p->inner) p->inner->parallel_for(p->inner, n, fn, ctx);
    else if (n > 0) fn(ctx, 0, n);
}

/* An entry may begin and end more than once in a run (a model's own code could); its time is
 * the sum. Calls past max_runs, or with an id outside the table, are ignored. */
static void hook(netrt_pool *pool, int32_t id, int32_t phase) {
    netrt_profile *p = (netrt_profile *)pool;
    if (id < 0 || id >= p->n || p->runs >= p->max_runs) return;
    double t = now_ms();
    if (phase == 0) {
        p->t0[id] = t;
        p->calls[id]++;
    } else {
        p->ms[(size_t)p->runs * (size_t)(p->n + 1) + (size_t)id] += t - p->t0[id];
    }
}

netrt_profile *netrt_profile_create(netrt_pool *pool, const netrt_model *m, int max_runs) {
    int n = netrt_profile_nodes(m, NULL);
    if (n < 1 || max_runs < 1) return NULL;
    netrt_profile *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->base.parallel_for = forward;
    p->base.profile = hook;
    p->inner = pool, p->m = m, p->n = n, p->max_runs = max_runs;
    p->ms = calloc((size_t)max_runs * (size_t)(n + 1), sizeof *p->ms);
    p->t0 = calloc((size_t)n, sizeof *p->t0);
    p->calls = calloc((size_t)n, sizeof *p->calls);
    p->scratch = calloc((size_t)max_runs, sizeof *p->scratch);
    if (!p->ms || !p->t0 || !p->calls || !p->scratch) {
        netrt_profile_destroy(p);
        return NULL;
    }
    return p;
}

void netrt_profile_destroy(netrt_profile *p) {
    if (!p) return;
    free(p->ms), free(p->t0), free(p->calls), free(p->scratch);
    free(p);
}

netrt_status netrt_profile_run(netrt_profile *p, const float *const *inputs, float *const *outputs, void *workspace) {
    if (!p || p->runs >= p->max_runs) return NETRT_ERR_ARG;
    double *row = p->ms + (size_t)p->runs * (size_t)(p->n + 1);
    memset(row, 0, (size_t)(p->n + 1) * sizeof *row);
    double t0 = now_ms();
    netrt_status st = netrt_run(p->m, inputs, outputs, workspace, &p->base);
    row[p->n] = now_ms() - t0;
    if (st == NETRT_OK) p->runs++;
    return st;
}

int netrt_profile_runs(const netrt_profile *p) { return p ? p->runs : 0; }

/* The run's time outside its entries. */
static double outside(const netrt_profile *p, int run) {
    const double *row = p->ms + (size_t)run * (size_t)(p->n + 1);
    double inside = 0;
    for (int i = 0; i < p->n; i++) inside += row[i];
    /* entries never overlap and lie inside the run: only rounding could make this negative */
    return row[p->n] > inside ? row[p->n] - inside : 0;
}

double netrt_profile_ms(const netrt_profile *p, int run, int id) {
    if (!p || run < 0 || run >= p->runs || id < -1 || id >= p->n) return -1;
    return p->ms[(size_t)run * (size_t)(p->n + 1) + (size_t)(id < 0 ? p->n : id)];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double netrt_profile_median_ms(const netrt_profile *p, int id) {
    if (!p || p->runs < 1 || id < -2 || id >= p->n) return -1;
    for (int r = 0; r < p->runs; r++) p->scratch[r] = id == -2 ? outside(p, r) : netrt_profile_ms(p, r, id);
    qsort(p->scratch, (size_t)p->runs, sizeof *p->scratch, cmp_double);
    int h = p->runs / 2;
    return p->runs % 2 ? p->scratch[h] : (p->scratch[h - 1] + p->scratch[h]) / 2;
}

int64_t netrt_profile_calls(const netrt_profile *p, int id) {
    return p && id >= 0 && id < p->n ? p->calls[id] : 0;
}

/* cg_pool.c — kernels for the pools: maxpool2d, avgpool2d, global_avgpool, adaptive_avgpool.
 * All four are one kernel. Along each axis, output index o reads `count` input rows (columns)
 * from `start` in steps of the dilation, and an average divides by `div`: these are computed
 * at compile time with the interpreter's rules (padding, ceil_mode overhang, divisor with or
 * without the padding, adaptive bins) and emitted as constant tables, or as arithmetic when
 * they are the same window everywhere. Per output pixel, the channels are reduced over the
 * window in groups of vectors (channels contiguous) or one at a time (strided channels).
 * Averages sum in float row by row and divide as the interpreter (PyTorch's kernels) does,
 * so they are bit-exact with it, overflow to inf included. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg_chan.h"

typedef struct PoolAxis {
    int64_t out;
    int64_t *start, *count, *div; /* per output index */
    int64_t dil;
    bool uniform; /* start = start[0] + o*step, count and div the same for every o */
    int64_t step;
    LLVMValueRef t_start, t_count, t_div;
} PoolAxis;

typedef struct Pool {
    const Node *n;
    bool max;
    bool div_by_axis; /* adaptive_avgpool: sum / rows / columns, two divisions (PyTorch's) */
    CgView in, out;
    PoolAxis ax[2];
    CgcChan ch;
    CgcSplit sp;
    /* while emitting one output pixel */
    LLVMValueRef nn, ys, yc, xs, xc, ydiv, xdiv, out_pix;
} Pool;

static void axis_alloc(PoolAxis *a, int64_t out, int64_t dil) {
    *a = (PoolAxis){.out = out, .dil = dil};
    a->start = xcalloc((size_t)out, sizeof *a->start);
    a->count = xcalloc((size_t)out, sizeof *a->count);
    a->div = xcalloc((size_t)out, sizeof *a->div);
}

static void axis_free(PoolAxis *a) {
    free(a->start);
    free(a->count);
    free(a->div);
}

/* Maxpool: taps at o*s - p + i*d, i < k; those outside [0, size) are the -inf padding, so the
 * window is the run of valid taps. */
static void axis_max(PoolAxis *a, int64_t size, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d) {
    axis_alloc(a, out, d);
    for (int64_t o = 0; o < out; o++) {
        int64_t first = o * s - p, i0 = 0, i1 = k;
        while (i0 < k && first + i0 * d < 0) i0++;
        while (i1 > i0 && first + (i1 - 1) * d >= size) i1--;
        a->start[o] = first + i0 * d;
        a->count[o] = i1 - i0;
        a->div[o] = 1;
    }
}

/* Avgpool, as the interpreter: the window [o*s - p, +k) clipped to the padded input
 * [-p, size + p) gives the divisor with count_include_pad; clipped to the input, the taps (and
 * the divisor without it). A divisor of 0 (a window with no taps, whose sum is 0) becomes 1 so
 * the result is the interpreter's 0. */
static void axis_avg(PoolAxis *a, int64_t size, int64_t out, int64_t k, int64_t s, int64_t p, bool include_pad) {
    axis_alloc(a, out, 1);
    for (int64_t o = 0; o < out; o++) {
        int64_t y0 = o * s - p, y1 = y0 + k < size + p ? y0 + k : size + p;
        int64_t padded = y1 - y0;
        if (y0 < 0) y0 = 0;
        if (y1 > size) y1 = size;
        int64_t cnt = y1 > y0 ? y1 - y0 : 0;
        a->start[o] = y0;
        a->count[o] = cnt;
        a->div[o] = include_pad ? padded : cnt;
        if (a->div[o] < 1) a->div[o] = 1;
    }
}

/* F.adaptive_avg_pool2d: bin o averages [floor(o*size/out), ceil((o+1)*size/out)). */
static void axis_adaptive(PoolAxis *a, int64_t size, int64_t out) {
    axis_alloc(a, out, 1);
    for (int64_t o = 0; o < out; o++) {
        int64_t y0 = o * size / out, y1 = ((o + 1) * size + out - 1) / out;
        a->start[o] = y0;
        a->count[o] = a->div[o] = y1 - y0;
    }
}

static void axis_emit(Cg *cg, PoolAxis *a, const char *node, const char *which) {
    a->step = a->out > 1 ? a->start[1] - a->start[0] : 0;
    a->uniform = true;
    for (int64_t o = 0; o < a->out; o++)
        a->uniform &= a->start[o] == a->start[0] + o * a->step && a->count[o] == a->count[0] && a->div[o] == a->div[0];
    if (a->uniform) return;
    char name[300];
    snprintf(name, sizeof name, "pool.%s.%s.start", node, which);
    a->t_start = cgc_table_i64(cg, a->start, a->out, name);
    snprintf(name, sizeof name, "pool.%s.%s.count", node, which);
    a->t_count = cgc_table_i64(cg, a->count, a->out, name);
    snprintf(name, sizeof name, "pool.%s.%s.div", node, which);
    a->t_div = cgc_table_i64(cg, a->div, a->out, name);
}

static void axis_at(Cg *cg, const PoolAxis *a, LLVMValueRef o, LLVMValueRef *start, LLVMValueRef *count,
                    LLVMValueRef *div) {
    if (a->uniform) {
        *start = cg_addc(cg, cg_mulc(cg, o, a->step), a->start[0]);
        *count = cg_i64(cg, a->count[0]);
        *div = cg_i64(cg, a->div[0]);
        return;
    }
    *start = cgc_load_i64(cg, a->t_start, o);
    *count = cgc_load_i64(cg, a->t_count, o);
    *div = cgc_load_i64(cg, a->t_div, o);
}

/* An i64 divisor as a float for the group's lanes. */
static LLVMValueRef divisor(Cg *cg, const CgcGrp *g, LLVMValueRef div) {
    LLVMValueRef d = LLVMBuildSIToFP(cg->b, div, cg->t_f32, "");
    return g->vec ? cg_splat(cg, d) : d;
}

/* One group of channels of one output pixel: reduce over the window's rows and columns.
 * Maxpool keeps the interpreter's rule m = v > m ? v : m (cg_fmax: one vmaxps on x86) and,
 * beside it, a flag of the lanes that saw a NaN: a NaN anywhere in the window makes the result
 * NaN. */
static void pool_group(Cg *cg, const CgcGrp *g, void *user) {
    Pool *p = user;
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef at = cgc_type(cg, g);
    LLVMTypeRef flag_t = g->vec ? cg->t_vi1 : cg->t_i1;
    LLVMValueRef init = p->max ? cgc_const(cg, g, -INFINITY) : LLVMConstNull(at);
    LLVMValueRef ycar[CGC_MAXG], xcar[CGC_MAXG], ynan[CGC_MAXG] = {0}, xnan[CGC_MAXG] = {0};
    CgLoop ly, lx;
    cg_loop_begin(cg, &ly, cg_i64(cg, 0), p->yc, 1, "ty");
    for (int v = 0; v < g->nv; v++) {
        ycar[v] = cgc_carry(cg, &ly, init);
        if (p->max) ynan[v] = cgc_carry(cg, &ly, LLVMConstNull(flag_t));
    }
    LLVMValueRef iy = cg_add(cg, p->ys, cg_mulc(cg, ly.iv, p->ax[0].dil));
    cg_loop_begin(cg, &lx, cg_i64(cg, 0), p->xc, 1, "tx");
    for (int v = 0; v < g->nv; v++) {
        xcar[v] = cgc_carry(cg, &lx, ycar[v]);
        if (p->max) xnan[v] = cgc_carry(cg, &lx, ynan[v]);
    }
    LLVMValueRef ix = cg_add(cg, p->xs, cg_mulc(cg, lx.iv, p->ax[1].dil));
    LLVMValueRef pix = cgc_off4(cg, &p->in, p->nn, NULL, iy, ix);
    for (int v = 0; v < g->nv; v++) {
        LLVMValueRef x = cgc_load(cg, g, v, &p->in, pix);
        if (p->max) {
            cgc_carry_next(cg, xcar[v], cg_fmax(cg, xcar[v], x)); /* a NaN x is skipped here */
            cgc_carry_next(cg, xnan[v], LLVMBuildOr(b, xnan[v], LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), "nan"));
        } else {
            cgc_carry_next(cg, xcar[v], LLVMBuildFAdd(b, xcar[v], x, ""));
        }
    }
    cg_loop_end(cg, &lx);
    for (int v = 0; v < g->nv; v++) {
        cgc_carry_next(cg, ycar[v], xcar[v]);
        if (p->max) cgc_carry_next(cg, ynan[v], xnan[v]);
    }
    cg_loop_end(cg, &ly);
    for (int v = 0; v < g->nv; v++) {
        LLVMValueRef r = ycar[v];
        if (p->max) {
            r = LLVMBuildSelect(b, ynan[v], cgc_const(cg, g, NAN), r, "");
        } else if (p->div_by_axis) {
            r = LLVMBuildFDiv(b, r, divisor(cg, g, p->ydiv), "");
            r = LLVMBuildFDiv(b, r, divisor(cg, g, p->xdiv), "");
        } else {
            r = LLVMBuildFDiv(b, r, divisor(cg, g, cg_mul(cg, p->ydiv, p->xdiv)), "");
        }
        cgc_store(cg, g, v, &p->out, p->out_pix, r);
    }
}

static void pool_body(Cg *cg, LLVMValueRef item, void *user) {
    Pool *p = user;
    LLVMValueRef row, x0, x1, chunk;
    cgc_split_decode(cg, &p->sp, &p->ch, item, &row, &x0, &x1, &chunk);
    int64_t OH = p->out.shape[2];
    LLVMValueRef oy = cg_remc(cg, row, OH);
    p->nn = cg_divc(cg, row, OH);
    axis_at(cg, &p->ax[0], oy, &p->ys, &p->yc, &p->ydiv);
    CgLoop lx;
    cg_loop_begin(cg, &lx, x0, x1, 1, "ox");
    axis_at(cg, &p->ax[1], lx.iv, &p->xs, &p->xc, &p->xdiv);
    p->out_pix = cgc_off4(cg, &p->out, p->nn, NULL, oy, lx.iv);
    cgc_chan_emit(cg, &p->ch, chunk, pool_group, p);
    cg_loop_end(cg, &lx);
}

/* The axes are set up; emit the kernel and free the tables. */
static bool pool_emit(Cg *cg, Pool *p, const char *name) {
    const Node *n = p->n;
    p->in = cg->views[n->in[0]];
    p->out = cg->views[n->out];
    axis_emit(cg, &p->ax[0], n->name, "y");
    axis_emit(cg, &p->ax[1], n->name, "x");
    cgc_chan_init(cg, &p->ch, p->out.shape[1], cgc_unit_c(&p->in) && cgc_unit_c(&p->out), CGC_MAXG);
    cgc_split(&p->sp, &p->ch, p->out.shape[0] * p->out.shape[2], p->out.shape[3]);
    cg_parallel(cg, name, p->sp.items, pool_body, p);
    axis_free(&p->ax[0]);
    axis_free(&p->ax[1]);
    return true;
}

bool cg_kernel_maxpool2d(Cg *cg, const Node *n) {
    const Tensor *x = ir_tensor(cg->g, n->in[0]), *y = ir_tensor(cg->g, n->out);
    int64_t k[2], s[2], p[2], d[2];
    ir_attr_pair(n, "kernel", k);
    if (ir_attr_set(n, "stride"))
        ir_attr_pair(n, "stride", s);
    else
        s[0] = k[0], s[1] = k[1];
    ir_attr_pair(n, "pad", p);
    ir_attr_pair(n, "dilation", d);
    Pool pl = {.n = n, .max = true};
    for (int a = 0; a < 2; a++) axis_max(&pl.ax[a], x->shape[2 + a], y->shape[2 + a], k[a], s[a], p[a], d[a]);
    return pool_emit(cg, &pl, "maxpool2d");
}

bool cg_kernel_avgpool2d(Cg *cg, const Node *n) {
    const Tensor *x = ir_tensor(cg->g, n->in[0]), *y = ir_tensor(cg->g, n->out);
    int64_t k[2], s[2], p[2];
    ir_attr_pair(n, "kernel", k);
    if (ir_attr_set(n, "stride"))
        ir_attr_pair(n, "stride", s);
    else
        s[0] = k[0], s[1] = k[1];
    ir_attr_pair(n, "pad", p);
    bool include_pad = ir_attr_bool(n, "count_include_pad");
    Pool pl = {.n = n};
    for (int a = 0; a < 2; a++) axis_avg(&pl.ax[a], x->shape[2 + a], y->shape[2 + a], k[a], s[a], p[a], include_pad);
    return pool_emit(cg, &pl, "avgpool2d");
}

bool cg_kernel_global_avgpool(Cg *cg, const Node *n) {
    const Tensor *x = ir_tensor(cg->g, n->in[0]);
    Pool pl = {.n = n};
    for (int a = 0; a < 2; a++) axis_adaptive(&pl.ax[a], x->shape[2 + a], 1);
    return pool_emit(cg, &pl, "global_avgpool");
}

bool cg_kernel_adaptive_avgpool(Cg *cg, const Node *n) {
    const Tensor *x = ir_tensor(cg->g, n->in[0]), *y = ir_tensor(cg->g, n->out);
    Pool pl = {.n = n, .div_by_axis = y->shape[2] * y->shape[3] > 1}; /* a 1×1 output divides once */
    for (int a = 0; a < 2; a++) axis_adaptive(&pl.ax[a], x->shape[2 + a], y->shape[2 + a]);
    return pool_emit(cg, &pl, "adaptive_avgpool");
}

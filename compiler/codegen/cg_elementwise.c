/* cg_elementwise.c — kernels for elementwise ops: every activation, prelu, batchnorm, scale, the
 * binary ops with [N,C,1,1] broadcast, dropout. Three shapes of loop, chosen per node from the
 * views: flat (same dense layout everywhere: one long vector loop), per channel (channels
 * innermost: a vector loop over C per pixel, per-channel parameters as vectors), and a scalar
 * fallback over logical indices for anything else. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

typedef struct Ew {
    const Node *n;
    CgView out;
    CgView in[2]; /* broadcast to the output's shape: stride 0 on broadcast dimensions */
    int nin;
    LLVMValueRef par[2]; /* per-channel parameter arrays (float[C]) or NULL */
    int npar;
    bool scalar_par;     /* prelu with one parameter: par[0] holds one float */
} Ew;

/* y = f(x...) for one node; p[] are the per-channel parameters for these lanes. */
static LLVMValueRef ew_apply(Cg *cg, const Ew *e, LLVMValueRef *x, LLVMValueRef *p) {
    const Node *n = e->n;
    LLVMBuilderRef b = cg->b;
    switch (n->op) {
    case OP_ADD: return LLVMBuildFAdd(b, x[0], x[1], "");
    case OP_SUB: return LLVMBuildFSub(b, x[0], x[1], "");
    case OP_MUL: return LLVMBuildFMul(b, x[0], x[1], "");
    case OP_DIV: return LLVMBuildFDiv(b, x[0], x[1], "");
    case OP_BATCHNORM:
    case OP_SCALE: return cg_fma(cg, x[0], p[0], p[1]);
    case OP_PRELU: return cg_activation(cg, n, x[0], p[0]);
    default: return cg_activation(cg, n, x[0], NULL);
    }
}

static bool same_strides(const CgView *a, const CgView *b) {
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] > 1 && a->stride[i] != b->stride[i]) return false;
    return true;
}

/* Dense: the elements fill [offset, offset + numel) in some order of the dimensions. */
static bool dense(const CgView *v) {
    int64_t expect = 1;
    bool used[IR_MAX_RANK] = {0};
    for (int k = 0; k < v->rank; k++) {
        int pick = -1;
        for (int i = 0; i < v->rank; i++)
            if (!used[i] && v->shape[i] > 1 && (pick < 0 || v->stride[i] < v->stride[pick])) pick = i;
        if (pick < 0) break;
        if (v->stride[pick] != expect) return false;
        used[pick] = true;
        expect *= v->shape[pick];
    }
    return true;
}

static int64_t numel(const CgView *v) {
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->shape[i];
    return n;
}

/* ---- flat ---------------------------------------------------------------------------------- */

enum { FLAT_CHUNK = 8192 };

static void flat_vec(Cg *cg, const Ew *e, LLVMValueRef off, LLVMValueRef mask) {
    LLVMValueRef x[2], p[2] = {0};
    for (int i = 0; i < e->nin; i++) {
        LLVMValueRef ptr = cg_view_ptr(cg, &e->in[i], off);
        x[i] = mask ? cg_vload_masked(cg, ptr, mask) : cg_vload(cg, ptr);
    }
    if (e->scalar_par) p[0] = cg_splat(cg, LLVMBuildLoad2(cg->b, cg->t_f32, e->par[0], ""));
    LLVMValueRef y = cg_epilogue(cg, e->n, ew_apply(cg, e, x, p), NULL, mask);
    LLVMValueRef ptr = cg_view_ptr(cg, &e->out, off);
    if (mask) cg_vstore_masked(cg, y, ptr, mask);
    else cg_vstore(cg, y, ptr);
}

static void flat_body(Cg *cg, LLVMValueRef item, void *user) {
    const Ew *e = user;
    int64_t total = numel(&e->out);
    LLVMValueRef start = cg_mulc(cg, item, FLAT_CHUNK);
    LLVMValueRef end = cg_min(cg, cg_addc(cg, start, FLAT_CHUNK), cg_i64(cg, total));
    /* full vectors, then one masked tail */
    LLVMValueRef len = LLVMBuildSub(cg->b, end, start, "");
    LLVMValueRef full_end = cg_add(cg, start, cg_mulc(cg, cg_divc(cg, len, cg->vw), cg->vw));
    CgLoop l;
    cg_loop_begin(cg, &l, start, full_end, cg->vw, "v");
    flat_vec(cg, e, l.iv, NULL);
    cg_loop_end(cg, &l);
    CgIf tail;
    cg_if_begin(cg, &tail, LLVMBuildICmp(cg->b, LLVMIntSLT, full_end, end, ""), "tail");
    flat_vec(cg, e, full_end, cg_mask_rt(cg, LLVMBuildSub(cg->b, end, full_end, "")));
    cg_if_end(cg, &tail);
}

/* ---- per channel (channels innermost) ------------------------------------------------------- */

/* Rank 2 ([N, C]) or 4 ([N, C, H, W]) with every operand's channels contiguous: a pixel loop,
 * and per pixel a vector loop over C. Each operand addresses a pixel through its own strides,
 * so concat slices (a larger pixel stride) and [N, C, 1, 1] operands (H, W strides 0) fit. */
typedef struct ChanJob {
    const Ew *e;
    int64_t C, H, W, pixels;
    int64_t per_item; /* pixels per work item */
} ChanJob;

static bool chan_ok(const CgView *v) { return (v->rank == 2 || v->rank == 4) && (v->stride[1] == 1 || v->shape[1] == 1); }

/* element offset of (pixel, channel c) in view v */
static LLVMValueRef chan_off(Cg *cg, const ChanJob *j, const CgView *v, LLVMValueRef n, LLVMValueRef h, LLVMValueRef w,
                             LLVMValueRef c) {
    LLVMValueRef off = cg_add(cg, cg_mulc(cg, n, v->stride[0]), c);
    if (v->rank == 4) off = cg_add(cg, off, cg_add(cg, cg_mulc(cg, h, v->stride[2]), cg_mulc(cg, w, v->stride[3])));
    (void)j;
    return off;
}

static void chan_vec(Cg *cg, const ChanJob *j, LLVMValueRef *pos, LLVMValueRef c, LLVMValueRef mask) {
    const Ew *e = j->e;
    LLVMValueRef x[2], p[2] = {0};
    for (int i = 0; i < e->nin; i++) {
        LLVMValueRef ptr = cg_view_ptr(cg, &e->in[i], chan_off(cg, j, &e->in[i], pos[0], pos[1], pos[2], c));
        x[i] = mask ? cg_vload_masked(cg, ptr, mask) : cg_vload(cg, ptr);
    }
    for (int i = 0; i < e->npar; i++) {
        if (e->scalar_par) {
            p[i] = cg_splat(cg, LLVMBuildLoad2(cg->b, cg->t_f32, e->par[i], ""));
        } else {
            LLVMValueRef ptr = cg_gep(cg, e->par[i], c);
            p[i] = mask ? cg_vload_masked(cg, ptr, mask) : cg_vload(cg, ptr);
        }
    }
    LLVMValueRef idx[IR_MAX_RANK] = {pos[0], c, pos[1], pos[2]};
    LLVMValueRef y = cg_epilogue(cg, e->n, ew_apply(cg, e, x, p), idx, mask);
    LLVMValueRef ptr = cg_view_ptr(cg, &e->out, chan_off(cg, j, &e->out, pos[0], pos[1], pos[2], c));
    if (mask) cg_vstore_masked(cg, y, ptr, mask);
    else cg_vstore(cg, y, ptr);
}

static void chan_body(Cg *cg, LLVMValueRef item, void *user) {
    const ChanJob *j = user;
    LLVMValueRef p0 = cg_mulc(cg, item, j->per_item);
    LLVMValueRef p1 = cg_min(cg, cg_addc(cg, p0, j->per_item), cg_i64(cg, j->pixels));
    CgLoop lp;
    cg_loop_begin(cg, &lp, p0, p1, 1, "pix");
    LLVMValueRef pos[3];
    pos[0] = cg_divc(cg, lp.iv, j->H * j->W);
    pos[1] = cg_remc(cg, cg_divc(cg, lp.iv, j->W), j->H);
    pos[2] = cg_remc(cg, lp.iv, j->W);
    int64_t C = j->C, full = C / cg->vw * cg->vw;
    if (full) {
        CgLoop lc;
        cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, full), cg->vw, "c");
        chan_vec(cg, j, pos, lc.iv, NULL);
        cg_loop_end(cg, &lc);
    }
    if (C > full) chan_vec(cg, j, pos, cg_i64(cg, full), cg_mask(cg, C - full));
    cg_loop_end(cg, &lp);
}

/* ---- scalar fallback over logical indices --------------------------------------------------- */

static void scalar_body(Cg *cg, LLVMValueRef item, void *user) {
    const Ew *e = user;
    const CgView *o = &e->out;
    int r = o->rank;
    LLVMValueRef idx[IR_MAX_RANK], rem = item;
    for (int i = r - 2; i >= 0; i--) {
        idx[i] = cg_remc(cg, rem, o->shape[i]);
        rem = cg_divc(cg, rem, o->shape[i]);
    }
    CgLoop l;
    cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, r ? o->shape[r - 1] : 1), 1, "i");
    if (r) idx[r - 1] = l.iv;
    LLVMValueRef x[2], p[2] = {0};
    for (int i = 0; i < e->nin; i++)
        x[i] = LLVMBuildLoad2(cg->b, cg->t_f32, r ? cg_view_at(cg, &e->in[i], idx) : cg_view_ptr(cg, &e->in[i], cg_i64(cg, 0)), "");
    for (int i = 0; i < e->npar; i++) {
        LLVMValueRef c = e->scalar_par || r < 2 ? cg_i64(cg, 0) : idx[1];
        p[i] = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, e->par[i], c), "");
    }
    LLVMValueRef y = ew_apply(cg, e, x, p);
    if (r >= 2) y = cg_epilogue(cg, e->n, y, idx, NULL);
    else if (e->n->nepi) {
        LLVMValueRef idx2[2] = {r ? idx[0] : cg_i64(cg, 0), cg_i64(cg, 0)};
        y = cg_epilogue(cg, e->n, y, idx2, NULL);
    }
    LLVMBuildStore(cg->b, y, r ? cg_view_at(cg, o, idx) : cg_view_ptr(cg, o, cg_i64(cg, 0)));
    cg_loop_end(cg, &l);
}

/* ---- the generator --------------------------------------------------------------------------- */

static CgView broadcast_to(const CgView *in, const CgView *out) {
    CgView v = *in;
    for (int i = 0; i < out->rank; i++) {
        if (in->shape[i] == 1 && out->shape[i] > 1) v.stride[i] = 0;
        v.shape[i] = out->shape[i];
    }
    return v;
}

static bool emit_ew(Cg *cg, Ew *e, const char *name) {
    e->out = cg->views[e->n->out];
    for (int i = 0; i < e->nin; i++) e->in[i] = broadcast_to(&cg->views[e->n->in[i]], &e->out);
    bool flat = dense(&e->out) && (e->npar == 0 || e->scalar_par) && !cg_epilogue_needs_channel(cg, e->n);
    for (int i = 0; i < e->nin; i++) flat &= same_strides(&e->in[i], &e->out);
    int64_t total = numel(&e->out);
    if (flat) {
        cg_parallel(cg, name, (total + FLAT_CHUNK - 1) / FLAT_CHUNK, flat_body, e);
        return true;
    }
    bool chan = chan_ok(&e->out);
    for (int i = 0; chan && i < e->nin; i++) chan = chan_ok(&e->in[i]);
    if (chan) {
        const CgView *o = &e->out;
        ChanJob j = {.e = e, .C = o->shape[1], .H = o->rank == 4 ? o->shape[2] : 1, .W = o->rank == 4 ? o->shape[3] : 1};
        j.pixels = o->shape[0] * j.H * j.W;
        j.per_item = j.C >= 2048 ? 1 : 2048 / j.C;
        cg_parallel(cg, name, (j.pixels + j.per_item - 1) / j.per_item, chan_body, &j);
        return true;
    }
    int64_t last = e->out.rank ? e->out.shape[e->out.rank - 1] : 1;
    cg_parallel(cg, name, total / (last ? last : 1), scalar_body, e);
    return true;
}

static bool unary(Cg *cg, const Node *n) {
    Ew e = {.n = n, .nin = 1};
    return emit_ew(cg, &e, op_info(n->op)->name);
}

static bool binary(Cg *cg, const Node *n) {
    Ew e = {.n = n, .nin = 2};
    return emit_ew(cg, &e, op_info(n->op)->name);
}

bool cg_kernel_relu(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_relu6(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_leaky_relu(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_clamp(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_sigmoid(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_tanh(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_silu(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_hardswish(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_hardsigmoid(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_gelu(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_elu(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_dropout(Cg *cg, const Node *n) { return unary(cg, n); }
bool cg_kernel_add(Cg *cg, const Node *n) { return binary(cg, n); }
bool cg_kernel_sub(Cg *cg, const Node *n) { return binary(cg, n); }
bool cg_kernel_mul(Cg *cg, const Node *n) { return binary(cg, n); }
bool cg_kernel_div(Cg *cg, const Node *n) { return binary(cg, n); }

bool cg_kernel_prelu(Cg *cg, const Node *n) {
    const Tensor *w = ir_weight(cg->g, n, "weight");
    Ew e = {.n = n, .nin = 1, .npar = 1, .scalar_par = ir_numel(w) == 1};
    char name[256];
    snprintf(name, sizeof name, "w.%s", w->name);
    e.par[0] = cg_weights(cg, w->data, ir_numel(w), name);
    return emit_ew(cg, &e, "prelu");
}

/* Batchnorm as one FMA: scale = gamma / sqrt(var + eps), shift = beta - mean * scale, folded in
 * double at compile time. */
bool cg_kernel_batchnorm(Cg *cg, const Node *n) {
    const Tensor *gm = ir_weight(cg->g, n, "weight"), *bt = ir_weight(cg->g, n, "bias");
    const Tensor *mu = ir_weight(cg->g, n, "running_mean"), *var = ir_weight(cg->g, n, "running_var");
    int64_t C = ir_numel(gm);
    double eps = ir_attr_float(n, "eps");
    float *scale = xmalloc((size_t)C * sizeof *scale), *shift = xmalloc((size_t)C * sizeof *shift);
    for (int64_t c = 0; c < C; c++) {
        double s = (double)gm->data[c] / sqrt((double)var->data[c] + eps);
        scale[c] = (float)s;
        shift[c] = (float)((double)bt->data[c] - (double)mu->data[c] * s);
    }
    char name[256];
    Ew e = {.n = n, .nin = 1, .npar = 2};
    snprintf(name, sizeof name, "w.%s.scale", n->name);
    e.par[0] = cg_weights(cg, scale, C, name);
    snprintf(name, sizeof name, "w.%s.shift", n->name);
    e.par[1] = cg_weights(cg, shift, C, name);
    free(scale);
    free(shift);
    return emit_ew(cg, &e, "batchnorm");
}

/* scale as the same FMA: x * weight + (bias or 0). */
bool cg_kernel_scale(Cg *cg, const Node *n) {
    const Tensor *w = ir_weight(cg->g, n, "weight");
    int64_t C = ir_numel(w);
    float *shift = xcalloc((size_t)C, sizeof *shift);
    if (ir_attr_bool(n, "bias")) memcpy(shift, ir_weight(cg->g, n, "bias")->data, (size_t)C * sizeof *shift);
    char name[256];
    Ew e = {.n = n, .nin = 1, .npar = 2};
    snprintf(name, sizeof name, "w.%s", w->name);
    e.par[0] = cg_weights(cg, w->data, C, name);
    snprintf(name, sizeof name, "w.%s.shift", n->name);
    e.par[1] = cg_weights(cg, shift, C, name);
    free(shift);
    return emit_ew(cg, &e, "scale");
}

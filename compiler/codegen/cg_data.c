/* cg_data.c — kernels for data movement: concat, slice, flatten (strided copies between views),
 * channel_shuffle (a gather through a permutation table), pad and upsample (per output row and
 * column source indices and weights computed at compile time into constant tables, with the
 * interpreter's exact arithmetic), softmax (max-subtracted, along any axis) and layernorm (over
 * the channels), which share one line-reduction loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_chan.h"
#include "interp/interp.h"

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Do two views address the same elements the same way? (concat-elim wrote an input straight
 * into its slice: nothing to copy.) */
static bool same_view(const CgView *a, const CgView *b) {
    if (a->buf != b->buf || a->offset != b->offset || a->rank != b->rank) return false;
    if (a->buf != CG_BUF_WS && a->index != b->index) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->stride[i] != b->stride[i])) return false;
    return true;
}

/* ---- strided copy ---------------------------------------------------------------------------- */

/* A copy between two views of one logical shape, reduced to its essentials: dimensions of size 1
 * dropped, the rest ordered by the destination's strides (so stores run forward) and merged
 * where both sides are contiguous across them. The innermost dimension is a vector loop when
 * it is contiguous on both sides; it is split in chunks when long, and the rows of the next one
 * in blocks when there are too few items. */
enum { COPY_CHUNK = 8192 };

typedef struct CopyDim {
    int64_t n, ds, ss;
} CopyDim;

typedef struct Copy {
    const CgView *dst, *src;
    int nd;
    CopyDim d[IR_MAX_RANK];
    bool vec;
    int64_t chunk, nic;     /* innermost: elements per chunk, chunks */
    int64_t rows, rper, rb; /* the next dimension: rows, rows per block, blocks */
    int64_t items;
} Copy;

static void copy_plan(Copy *c, const CgView *dst, const CgView *src) {
    NETC_ASSERT(dst->rank == src->rank);
    *c = (Copy){.dst = dst, .src = src};
    CopyDim all[IR_MAX_RANK];
    int n = 0;
    for (int i = 0; i < dst->rank; i++) {
        NETC_ASSERT(dst->shape[i] == src->shape[i]);
        if (dst->shape[i] > 1) all[n++] = (CopyDim){dst->shape[i], dst->stride[i], src->stride[i]};
    }
    /* outermost first: by destination stride, descending (insertion sort, n <= 8) */
    for (int i = 1; i < n; i++)
        for (int j = i;
             j > 0 && (all[j].ds > all[j - 1].ds || (all[j].ds == all[j - 1].ds && all[j].ss > all[j - 1].ss)); j--) {
            CopyDim t = all[j];
            all[j] = all[j - 1];
            all[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (c->nd > 0) {
            CopyDim *o = &c->d[c->nd - 1];
            if (o->ds == all[i].n * all[i].ds && o->ss == all[i].n * all[i].ss) {
                *o = (CopyDim){o->n * all[i].n, all[i].ds, all[i].ss};
                continue;
            }
        }
        c->d[c->nd++] = all[i];
    }
    if (c->nd == 0) c->d[c->nd++] = (CopyDim){1, 1, 1};
    const CopyDim *in = &c->d[c->nd - 1];
    c->vec = in->ds == 1 && in->ss == 1;
    c->chunk = in->n > 2 * COPY_CHUNK ? COPY_CHUNK : in->n;
    c->nic = ceil_div(in->n, c->chunk);
    c->rows = c->nd >= 2 ? c->d[c->nd - 2].n : 1;
    int64_t outer = 1;
    for (int i = 0; i + 2 < c->nd; i++) outer *= c->d[i].n;
    c->rb = 1;
    if (outer * c->nic < CGC_MIN_ITEMS) {
        int64_t want = ceil_div(CGC_MIN_ITEMS, outer * c->nic);
        c->rb = want < c->rows ? want : c->rows;
    }
    c->rper = ceil_div(c->rows, c->rb);
    c->rb = ceil_div(c->rows, c->rper);
    c->items = outer * c->rb * c->nic;
}

/* Elements [i0, i1) of the innermost dimension at these offsets. */
static void copy_inner(Cg *cg, const Copy *c, LLVMValueRef doff, LLVMValueRef soff, LLVMValueRef i0, LLVMValueRef i1,
                       int64_t const_len) {
    const CopyDim *in = &c->d[c->nd - 1];
    if (!c->vec) {
        CgLoop l;
        cg_loop_begin(cg, &l, i0, i1, 1, "i");
        LLVMValueRef v =
            LLVMBuildLoad2(cg->b, cg->t_f32, cg_view_ptr(cg, c->src, cg_add(cg, soff, cg_mulc(cg, l.iv, in->ss))), "");
        LLVMBuildStore(cg->b, v, cg_view_ptr(cg, c->dst, cg_add(cg, doff, cg_mulc(cg, l.iv, in->ds))));
        cg_loop_end(cg, &l);
        return;
    }
    int vw = cg->vw;
    LLVMValueRef full_end;
    if (const_len >= 0) {
        full_end = cg_i64(cg, const_len / vw * vw);
    } else {
        LLVMValueRef len = LLVMBuildSub(cg->b, i1, i0, "");
        full_end = cg_add(cg, i0, cg_mulc(cg, cg_divc(cg, len, vw), vw));
    }
    if (const_len < 0 || const_len >= vw) {
        CgLoop l;
        cg_loop_begin(cg, &l, i0, full_end, vw, "v");
        LLVMValueRef v = cg_vload(cg, cg_view_ptr(cg, c->src, cg_add(cg, soff, l.iv)));
        cg_vstore(cg, v, cg_view_ptr(cg, c->dst, cg_add(cg, doff, l.iv)));
        cg_loop_end(cg, &l);
    }
    if (const_len >= 0) {
        if (const_len % vw) {
            LLVMValueRef m = cg_mask(cg, const_len % vw);
            LLVMValueRef v = cg_vload_masked(cg, cg_view_ptr(cg, c->src, cg_add(cg, soff, full_end)), m);
            cg_vstore_masked(cg, v, cg_view_ptr(cg, c->dst, cg_add(cg, doff, full_end)), m);
        }
        return;
    }
    CgIf tail;
    cg_if_begin(cg, &tail, LLVMBuildICmp(cg->b, LLVMIntSLT, full_end, i1, ""), "tail");
    LLVMValueRef m = cg_mask_rt(cg, LLVMBuildSub(cg->b, i1, full_end, ""));
    LLVMValueRef v = cg_vload_masked(cg, cg_view_ptr(cg, c->src, cg_add(cg, soff, full_end)), m);
    cg_vstore_masked(cg, v, cg_view_ptr(cg, c->dst, cg_add(cg, doff, full_end)), m);
    cg_if_end(cg, &tail);
}

static void copy_body(Cg *cg, LLVMValueRef item, void *user) {
    const Copy *c = user;
    LLVMValueRef rest = item, ic = NULL, rbi = NULL;
    if (c->nic > 1) ic = cg_remc(cg, rest, c->nic), rest = cg_divc(cg, rest, c->nic);
    if (c->rb > 1) rbi = cg_remc(cg, rest, c->rb), rest = cg_divc(cg, rest, c->rb);
    LLVMValueRef doff = cg_i64(cg, 0), soff = cg_i64(cg, 0);
    for (int i = c->nd - 3; i >= 0; i--) {
        LLVMValueRef x = i > 0 ? cg_remc(cg, rest, c->d[i].n) : rest;
        if (i > 0) rest = cg_divc(cg, rest, c->d[i].n);
        doff = cg_add(cg, doff, cg_mulc(cg, x, c->d[i].ds));
        soff = cg_add(cg, soff, cg_mulc(cg, x, c->d[i].ss));
    }
    LLVMValueRef r0 = cg_i64(cg, 0), r1 = cg_i64(cg, c->rows);
    if (rbi) {
        r0 = cg_mulc(cg, rbi, c->rper);
        r1 = cg_min(cg, cg_addc(cg, r0, c->rper), r1);
    }
    const CopyDim *in = &c->d[c->nd - 1];
    LLVMValueRef i0 = cg_i64(cg, 0), i1 = cg_i64(cg, in->n);
    int64_t const_len = in->n;
    if (ic) {
        i0 = cg_mulc(cg, ic, c->chunk);
        i1 = cg_min(cg, cg_addc(cg, i0, c->chunk), i1);
        const_len = -1;
    }
    if (c->nd < 2) {
        copy_inner(cg, c, doff, soff, i0, i1, const_len);
        return;
    }
    const CopyDim *row = &c->d[c->nd - 2];
    CgLoop l;
    cg_loop_begin(cg, &l, r0, r1, 1, "row");
    copy_inner(cg, c, cg_add(cg, doff, cg_mulc(cg, l.iv, row->ds)), cg_add(cg, soff, cg_mulc(cg, l.iv, row->ss)), i0,
               i1, const_len);
    cg_loop_end(cg, &l);
}

void cg_copy(Cg *cg, const char *name, const CgView *dst, const CgView *src) {
    if (same_view(dst, src)) return;
    Copy c;
    copy_plan(&c, dst, src);
    cg_parallel(cg, name, c.items, copy_body, &c);
}

/* ---- concat, slice, flatten ------------------------------------------------------------------ */

/* Each input goes to its slice of the output (unless concat-elim already put it there). */
bool cg_kernel_concat(Cg *cg, const Node *n) {
    const CgView *out = &cg->views[n->out];
    int axis = (int)ir_attr_int(n, "axis");
    int64_t at = 0;
    for (int k = 0; k < n->nin; k++) {
        const CgView *in = &cg->views[n->in[k]];
        CgView dst = *out;
        dst.offset += at * out->stride[axis];
        dst.shape[axis] = in->shape[axis];
        cg_copy(cg, "concat", &dst, in);
        at += in->shape[axis];
    }
    return true;
}

bool cg_kernel_slice(Cg *cg, const Node *n) {
    const CgView *out = &cg->views[n->out];
    int axis = (int)ir_attr_int(n, "axis");
    CgView src = cg->views[n->in[0]];
    src.offset += ir_attr_int(n, "start") * src.stride[axis];
    src.shape[axis] = out->shape[axis];
    cg_copy(cg, "slice", out, &src);
    return true;
}

/* The output [N, F] seen with the input's shape: F unflattened in row-major order (so an NHWC
 * input is transposed back to NCHW order). */
bool cg_kernel_flatten(Cg *cg, const Node *n) {
    const CgView *in = &cg->views[n->in[0]], *out = &cg->views[n->out];
    CgView dst = *out;
    dst.rank = in->rank;
    memcpy(dst.shape, in->shape, sizeof dst.shape);
    int64_t s = out->stride[1];
    for (int i = in->rank - 1; i >= 1; i--) {
        dst.stride[i] = s;
        s *= in->shape[i];
    }
    dst.stride[0] = out->stride[0];
    cg_copy(cg, "flatten", &dst, in);
    return true;
}

/* ---- channel_shuffle ------------------------------------------------------------------------- */

typedef struct Shuffle {
    CgView in, out;
    CgcChan ch;
    CgcSplit sp;
    LLVMValueRef perm; /* int32 [C rounded up to vectors]: output channel -> input channel */
    LLVMValueRef nn, oy, in_pix, out_pix;
} Shuffle;

static LLVMValueRef gather(Cg *cg, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef mask) {
    LLVMValueRef ptrs = LLVMBuildGEP2(cg->b, cg->t_f32, base, &idx, 1, "");
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.gather", 18);
    LLVMTypeRef ov[2] = {cg->t_vf, LLVMTypeOf(ptrs)};
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, ov, 2);
    LLVMValueRef args[4] = {ptrs, LLVMConstInt(cg->t_i32, 4, 0), mask, LLVMConstNull(cg->t_vf)};
    return LLVMBuildCall2(cg->b, ft, f, args, 4, "");
}

static void shuffle_group(Cg *cg, const CgcGrp *g, void *user) {
    Shuffle *s = user;
    if (!g->vec) {
        LLVMValueRef c = g->c0;
        LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->t_i32, s->perm, &c, 1, "");
        LLVMValueRef src_c = LLVMBuildSExt(cg->b, LLVMBuildLoad2(cg->b, cg->t_i32, p, ""), cg->t_i64, "");
        LLVMValueRef off = cg_add(cg, s->in_pix, cg_mulc(cg, src_c, s->in.stride[1]));
        LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_f32, cg_view_ptr(cg, &s->in, off), "");
        cgc_store(cg, g, 0, &s->out, s->out_pix, v);
        return;
    }
    LLVMTypeRef vi32 = LLVMVectorType(cg->t_i32, (unsigned)cg->vw);
    LLVMValueRef base = cg_view_ptr(cg, &s->in, s->in_pix);
    for (int v = 0; v < g->nv; v++) {
        LLVMValueRef c = cg_addc(cg, g->c0, (int64_t)v * cg->vw);
        LLVMValueRef idx = LLVMBuildLoad2(cg->b, vi32, LLVMBuildGEP2(cg->b, cg->t_i32, s->perm, &c, 1, ""), "");
        LLVMSetAlignment(idx, 4);
        LLVMValueRef x = gather(cg, base, idx, g->mask[v] ? g->mask[v] : cg_mask(cg, cg->vw));
        cgc_store(cg, g, v, &s->out, s->out_pix, x);
    }
}

static void shuffle_body(Cg *cg, LLVMValueRef item, void *user) {
    Shuffle *s = user;
    LLVMValueRef row, x0, x1, chunk;
    cgc_split_decode(cg, &s->sp, &s->ch, item, &row, &x0, &x1, &chunk);
    int64_t H = s->out.shape[2];
    s->oy = cg_remc(cg, row, H);
    s->nn = cg_divc(cg, row, H);
    CgLoop lx;
    cg_loop_begin(cg, &lx, x0, x1, 1, "x");
    s->in_pix = cgc_off4(cg, &s->in, s->nn, NULL, s->oy, lx.iv);
    s->out_pix = cgc_off4(cg, &s->out, s->nn, NULL, s->oy, lx.iv);
    cgc_chan_emit(cg, &s->ch, chunk, shuffle_group, s);
    cg_loop_end(cg, &lx);
}

/* ShuffleNet: output channel j*g + i is input channel i*(C/g) + j. The vector path gathers
 * each output vector from the input pixel through the permutation table. */
bool cg_kernel_channel_shuffle(Cg *cg, const Node *n) {
    Shuffle s = {.in = cg->views[n->in[0]], .out = cg->views[n->out]};
    int64_t groups = ir_attr_int(n, "groups"), C = s.out.shape[1], cpg = C / groups;
    int64_t padded = ceil_div(C, cg->vw) * cg->vw;
    int32_t *perm = xcalloc((size_t)padded, sizeof *perm);
    for (int64_t c = 0; c < C; c++) perm[c] = (int32_t)((c % groups) * cpg + c / groups);
    char name[300];
    snprintf(name, sizeof name, "shuffle.%s.perm", n->name);
    s.perm = cg_table_i32(cg, perm, padded, name);
    free(perm);
    cgc_chan_init(cg, &s.ch, C, cgc_unit_c(&s.in) && cgc_unit_c(&s.out), 2);
    cgc_split(&s.sp, &s.ch, s.out.shape[0] * s.out.shape[2], s.out.shape[3]);
    cg_parallel(cg, "channel_shuffle", s.sp.items, shuffle_body, &s);
    return true;
}

/* ---- per-pixel resampling: pad and upsample ---------------------------------------------------- */

typedef enum { RS_PAD, RS_NEAREST, RS_BILINEAR } RsKind;

/* Per output row (axis 0) and column (axis 1): source indices i0 (-1: the pad value), i1, and
 * bilinear weights l0, l1. */
typedef struct RsAxis {
    int64_t out;
    int64_t *i0, *i1;
    float *l0, *l1;
    bool identity; /* i0[o] == o, no padding: no table */
    LLVMValueRef t_i0, t_i1, t_l0, t_l1;
} RsAxis;

typedef struct Resample {
    RsKind kind;
    float value;
    bool any_pad; /* some output pixel is the pad value */
    CgView in, out;
    RsAxis ax[2];
    CgcChan ch;
    CgcSplit sp;
    /* while emitting one output pixel */
    LLVMValueRef p00, p01, p10, p11, wy0, wy1, wx0, wx1, out_pix;
} Resample;

static void rs_alloc(RsAxis *a, int64_t out) {
    *a = (RsAxis){.out = out};
    a->i0 = xcalloc((size_t)out, sizeof *a->i0);
    a->i1 = xcalloc((size_t)out, sizeof *a->i1);
    a->l0 = xcalloc((size_t)out, sizeof *a->l0);
    a->l1 = xcalloc((size_t)out, sizeof *a->l1);
}

static void rs_free(RsAxis *a) { free(a->i0), free(a->i1), free(a->l0), free(a->l1); }




static void rs_emit_tables(Cg *cg, Resample *r, RsAxis *a, const char *node, const char *which) {
    a->identity = r->kind != RS_BILINEAR;
    for (int64_t o = 0; o < a->out; o++) a->identity &= a->i0[o] == o;
    if (a->identity) return;
    char name[300];
    snprintf(name, sizeof name, "rs.%s.%s.i0", node, which);
    a->t_i0 = cgc_table_i64(cg, a->i0, a->out, name);
    if (r->kind != RS_BILINEAR) return;
    snprintf(name, sizeof name, "rs.%s.%s.i1", node, which);
    a->t_i1 = cgc_table_i64(cg, a->i1, a->out, name);
    snprintf(name, sizeof name, "rs.%s.%s.l0", node, which);
    a->t_l0 = cg_weights(cg, a->l0, a->out, name);
    snprintf(name, sizeof name, "rs.%s.%s.l1", node, which);
    a->t_l1 = cg_weights(cg, a->l1, a->out, name);
}

static LLVMValueRef rs_index(Cg *cg, const RsAxis *a, LLVMValueRef o, LLVMValueRef table) {
    return a->identity ? o : cgc_load_i64(cg, table, o);
}

static void rs_copy_group(Cg *cg, const CgcGrp *g, void *user) {
    Resample *r = user;
    for (int v = 0; v < g->nv; v++) cgc_store(cg, g, v, &r->out, r->out_pix, cgc_load(cg, g, v, &r->in, r->p00));
}

static void rs_fill_group(Cg *cg, const CgcGrp *g, void *user) {
    Resample *r = user;
    for (int v = 0; v < g->nv; v++) cgc_store(cg, g, v, &r->out, r->out_pix, cgc_const(cg, g, r->value));
}

static LLVMValueRef lanes(Cg *cg, const CgcGrp *g, LLVMValueRef scalar) {
    return g->vec ? cg_splat(cg, scalar) : scalar;
}

/* top = lx0*a + lx1*b, bottom likewise, out = ly0*top + ly1*bottom (the interpreter's order). */
static void rs_bilinear_group(Cg *cg, const CgcGrp *g, void *user) {
    Resample *r = user;
    LLVMValueRef wy0 = lanes(cg, g, r->wy0), wy1 = lanes(cg, g, r->wy1);
    LLVMValueRef wx0 = lanes(cg, g, r->wx0), wx1 = lanes(cg, g, r->wx1);
    LLVMBuilderRef b = cg->b;
    for (int v = 0; v < g->nv; v++) {
        LLVMValueRef a = cgc_load(cg, g, v, &r->in, r->p00), bb = cgc_load(cg, g, v, &r->in, r->p01);
        LLVMValueRef c = cgc_load(cg, g, v, &r->in, r->p10), d = cgc_load(cg, g, v, &r->in, r->p11);
        LLVMValueRef top = cg_fma(cg, wx1, bb, LLVMBuildFMul(b, wx0, a, ""));
        LLVMValueRef bot = cg_fma(cg, wx1, d, LLVMBuildFMul(b, wx0, c, ""));
        LLVMValueRef y = cg_fma(cg, wy1, bot, LLVMBuildFMul(b, wy0, top, ""));
        cgc_store(cg, g, v, &r->out, r->out_pix, y);
    }
}

static void rs_body(Cg *cg, LLVMValueRef item, void *user) {
    Resample *r = user;
    LLVMValueRef row, x0, x1, chunk;
    cgc_split_decode(cg, &r->sp, &r->ch, item, &row, &x0, &x1, &chunk);
    int64_t OH = r->out.shape[2];
    LLVMValueRef oy = cg_remc(cg, row, OH), nn = cg_divc(cg, row, OH);
    LLVMValueRef iy0 = rs_index(cg, &r->ax[0], oy, r->ax[0].t_i0), iy1 = NULL;
    if (r->kind == RS_BILINEAR) {
        iy1 = cgc_load_i64(cg, r->ax[0].t_i1, oy);
        r->wy0 = cgc_load_f32(cg, r->ax[0].t_l0, oy);
        r->wy1 = cgc_load_f32(cg, r->ax[0].t_l1, oy);
    }
    CgLoop lx;
    cg_loop_begin(cg, &lx, x0, x1, 1, "ox");
    LLVMValueRef ix0 = rs_index(cg, &r->ax[1], lx.iv, r->ax[1].t_i0);
    r->out_pix = cgc_off4(cg, &r->out, nn, NULL, oy, lx.iv);
    if (r->kind == RS_BILINEAR) {
        LLVMValueRef ix1 = cgc_load_i64(cg, r->ax[1].t_i1, lx.iv);
        r->wx0 = cgc_load_f32(cg, r->ax[1].t_l0, lx.iv);
        r->wx1 = cgc_load_f32(cg, r->ax[1].t_l1, lx.iv);
        r->p00 = cgc_off4(cg, &r->in, nn, NULL, iy0, ix0);
        r->p01 = cgc_off4(cg, &r->in, nn, NULL, iy0, ix1);
        r->p10 = cgc_off4(cg, &r->in, nn, NULL, iy1, ix0);
        r->p11 = cgc_off4(cg, &r->in, nn, NULL, iy1, ix1);
        cgc_chan_emit(cg, &r->ch, chunk, rs_bilinear_group, r);
    } else if (!r->any_pad) {
        r->p00 = cgc_off4(cg, &r->in, nn, NULL, iy0, ix0);
        cgc_chan_emit(cg, &r->ch, chunk, rs_copy_group, r);
    } else {
        /* index -1 on either axis: the pad value */
        LLVMValueRef inside = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, iy0, cg_i64(cg, 0), ""),
                                           LLVMBuildICmp(cg->b, LLVMIntSGE, ix0, cg_i64(cg, 0), ""), "");
        CgIf in_if, pad_if;
        cg_if_begin(cg, &in_if, inside, "inside");
        r->p00 = cgc_off4(cg, &r->in, nn, NULL, iy0, ix0);
        cgc_chan_emit(cg, &r->ch, chunk, rs_copy_group, r);
        cg_if_end(cg, &in_if);
        cg_if_begin(cg, &pad_if, LLVMBuildNot(cg->b, inside, ""), "padding");
        cgc_chan_emit(cg, &r->ch, chunk, rs_fill_group, r);
        cg_if_end(cg, &pad_if);
    }
    cg_loop_end(cg, &lx);
}

static bool rs_emit(Cg *cg, const Node *n, Resample *r, const char *name) {
    r->in = cg->views[n->in[0]];
    r->out = cg->views[n->out];
    for (int a = 0; a < 2; a++)
        for (int64_t o = 0; o < r->ax[a].out; o++) r->any_pad |= r->ax[a].i0[o] < 0;
    rs_emit_tables(cg, r, &r->ax[0], n->name, "y");
    rs_emit_tables(cg, r, &r->ax[1], n->name, "x");
    cgc_chan_init(cg, &r->ch, r->out.shape[1], cgc_unit_c(&r->in) && cgc_unit_c(&r->out),
                  r->kind == RS_BILINEAR ? 2 : 4);
    cgc_split(&r->sp, &r->ch, r->out.shape[0] * r->out.shape[2], r->out.shape[3]);
    cg_parallel(cg, name, r->sp.items, rs_body, r);
    rs_free(&r->ax[0]);
    rs_free(&r->ax[1]);
    return true;
}

/* F.pad on [left, right, top, bottom]: constant (negative pads crop) or reflect. */
bool cg_kernel_pad(Cg *cg, const Node *n) {
    const Tensor *x = ir_tensor(cg->g, n->in[0]), *y = ir_tensor(cg->g, n->out);
    int64_t pads[4] = {0};
    ir_attr_ints(n, "pad", pads, 4);
    bool reflect = !strcmp(ir_attr_str(n, "mode"), "reflect");
    Resample r = {.kind = RS_PAD, .value = (float)ir_attr_float(n, "value")};
    for (int a = 0; a < 2; a++) {
        int64_t size = x->shape[2 + a], before = pads[2 - 2 * a];
        rs_alloc(&r.ax[a], y->shape[2 + a]);
        for (int64_t o = 0; o < r.ax[a].out; o++) {
            int64_t i = reflect ? interp_reflect_index(o, before, size) : o - before;
            r.ax[a].i0[o] = i >= 0 && i < size ? i : -1;
        }
    }
    return rs_emit(cg, n, &r, "pad");
}

/* F.interpolate, nearest (floor of dst * scale with the product in float32, clamped) or
 * bilinear, with the interpreter's scales. */
bool cg_kernel_upsample(Cg *cg, const Node *n) {
    const Tensor *x = ir_tensor(cg->g, n->in[0]), *y = ir_tensor(cg->g, n->out);
    bool bilinear = !strcmp(ir_attr_str(n, "mode"), "bilinear");
    bool ac = ir_attr_set(n, "align_corners") && ir_attr_bool(n, "align_corners");
    bool has_scale = ir_attr_set(n, "scale");
    double s = has_scale ? ir_attr_float(n, "scale") : 0.0;
    Resample r = {.kind = bilinear ? RS_BILINEAR : RS_NEAREST};
    for (int a = 0; a < 2; a++) {
        int64_t in = x->shape[2 + a], out = y->shape[2 + a];
        float sc = interp_upsample_scale(in, out, ac, has_scale, s);
        RsAxis *ax = &r.ax[a];
        rs_alloc(ax, out);
        for (int64_t o = 0; o < out; o++) {
            if (bilinear) {
                interp_bilinear_axis(o, in, out, ac, sc, &ax->i0[o], &ax->i1[o], &ax->l0[o], &ax->l1[o]);
            } else {
                int64_t i = (int64_t)floorf((float)o * sc);
                ax->i0[o] = i > in - 1 ? in - 1 : i;
            }
        }
    }
    return rs_emit(cg, n, &r, "upsample");
}

/* ---- softmax and layernorm: line reductions along one axis ------------------------------------ */

/* Three shapes: the axis contiguous on both sides (a line of vectors per item, reduced
 * horizontally: NHWC's channel axis, a row-major last axis); another dimension contiguous on
 * both sides (vectors of independent lines, one per lane, walking the axis); else scalar
 * lines. softmax runs three passes along a line (max; exp and sum; divide), layernorm three
 * (sum; sum of squared deviations; normalise, scale and shift). */
typedef enum { SM_LINE_VEC, SM_ACROSS, SM_LINE_SCALAR } SmMode;

typedef struct Smax {
    CgView in, out;
    int axis, vdim;
    int64_t L;
    SmMode mode;
    int nod, od[IR_MAX_RANK]; /* dimensions enumerated by the work items */
    int64_t items;
    bool ln;                  /* layernorm (else softmax) */
    double eps;
    LLVMValueRef w, bias;     /* layernorm's weight and bias (float[L]) or NULL */
} Smax;

static LLVMValueRef ld(Cg *cg, bool vec, const CgView *v, LLVMValueRef off, LLVMValueRef mask) {
    LLVMValueRef p = cg_view_ptr(cg, v, off);
    if (!vec) return LLVMBuildLoad2(cg->b, cg->t_f32, p, "");
    return mask ? cg_vload_masked(cg, p, mask) : cg_vload(cg, p);
}

static void st(Cg *cg, bool vec, const CgView *v, LLVMValueRef off, LLVMValueRef mask, LLVMValueRef x) {
    LLVMValueRef p = cg_view_ptr(cg, v, off);
    if (!vec)
        LLVMBuildStore(cg->b, x, p);
    else if (mask)
        cg_vstore_masked(cg, x, p, mask);
    else
        cg_vstore(cg, x, p);
}

/* layernorm's weight or bias at axis position k: a vector of consecutive entries (the axis is
 * the vector dimension), one entry splat across lanes (lanes are other lines) or a scalar. */
static LLVMValueRef ln_param(Cg *cg, const Smax *s, LLVMValueRef par, bool vec, LLVMValueRef k, LLVMValueRef mask) {
    LLVMValueRef p = cg_gep(cg, par, k);
    if (s->mode == SM_LINE_VEC) return mask ? cg_vload_masked(cg, p, mask) : cg_vload(cg, p);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_f32, p, "");
    return vec ? cg_splat(cg, v) : v;
}

/* One step of a pass along a line: the element(s) at axis position k. softmax pass 0: max;
 * 1: exp(x - m) stored, summed; 2: divide by the sum (acc). layernorm, on x scaled by sc (a
 * power of two), pass 0: max |x|; 1: sum; 2: sum of (x - m)^2; 3: (x - m) * acc (the
 * reciprocal deviation), times weight plus bias, stored.
 * `mask` limits the lanes loaded and stored; with `reduce_lanes` (a line's masked tail, reduced
 * horizontally afterwards) the lanes outside it also take the neutral value (-inf for the max,
 * 0 for a sum). */
static LLVMValueRef sm_step(Cg *cg, const Smax *s, int pass, bool vec, LLVMValueRef k, LLVMValueRef in_off,
                            LLVMValueRef out_off, LLVMValueRef mask, bool reduce_lanes, LLVMValueRef acc,
                            LLVMValueRef m, LLVMValueRef sc) {
    LLVMBuilderRef b = cg->b;
    if (s->ln) {
        LLVMValueRef x = ld(cg, vec, &s->in, in_off, mask);
        if (pass == 0) {
            LLVMValueRef ax = cg_fmax(cg, x, LLVMBuildFNeg(b, x, ""));
            if (mask && reduce_lanes) ax = LLVMBuildSelect(b, mask, ax, cg_vf(cg, 0), "");
            return cg_fmax(cg, acc, ax);
        }
        LLVMValueRef xs = LLVMBuildFMul(b, x, sc, "");
        if (pass == 1) {
            if (mask && reduce_lanes) xs = LLVMBuildSelect(b, mask, xs, cg_vf(cg, 0), "");
            return LLVMBuildFAdd(b, acc, xs, "");
        }
        LLVMValueRef dv = LLVMBuildFSub(b, xs, m, "");
        if (pass == 2) {
            if (mask && reduce_lanes) dv = LLVMBuildSelect(b, mask, dv, cg_vf(cg, 0), "");
            return cg_fma(cg, dv, dv, acc);
        }
        LLVMValueRef y = LLVMBuildFMul(b, dv, acc, "");
        if (s->w) y = cg_fma(cg, y, ln_param(cg, s, s->w, vec, k, mask), ln_param(cg, s, s->bias, vec, k, mask));
        st(cg, vec, &s->out, out_off, mask, y);
        return acc;
    }
    if (pass == 2) {
        LLVMValueRef y = ld(cg, vec, &s->out, out_off, mask);
        st(cg, vec, &s->out, out_off, mask, LLVMBuildFDiv(b, y, acc, ""));
        return acc;
    }
    LLVMValueRef x = ld(cg, vec, &s->in, in_off, mask);
    if (pass == 0) {
        if (mask && reduce_lanes) x = LLVMBuildSelect(b, mask, x, cg_vf(cg, -INFINITY), "");
        return cg_fmax(cg, acc, x);
    }
    LLVMValueRef e = cg_math(cg, "exp", LLVMBuildFSub(b, x, m, ""));
    st(cg, vec, &s->out, out_off, mask, e);
    if (mask && reduce_lanes) e = LLVMBuildSelect(b, mask, e, cg_vf(cg, 0), "");
    return LLVMBuildFAdd(b, acc, e, "");
}

/* A pass over the L elements of a line (or of vw lines side by side). */
static LLVMValueRef sm_pass(Cg *cg, const Smax *s, int pass, LLVMValueRef ib, LLVMValueRef ob, LLVMValueRef lane_mask,
                            LLVMValueRef acc0, LLVMValueRef m, LLVMValueRef sc) {
    int64_t sa_in = s->in.stride[s->axis], sa_out = s->out.stride[s->axis];
    if (s->mode == SM_LINE_VEC) {
        int64_t vw = cg->vw, full = s->L / vw * vw;
        LLVMValueRef acc = acc0;
        if (full) {
            CgLoop l;
            cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, full), vw, "k");
            LLVMValueRef phi = cgc_carry(cg, &l, acc0);
            LLVMValueRef next =
                sm_step(cg, s, pass, true, l.iv, cg_add(cg, ib, l.iv), cg_add(cg, ob, l.iv), NULL, true, phi, m, sc);
            cgc_carry_next(cg, phi, next);
            cg_loop_end(cg, &l);
            acc = phi;
        }
        if (s->L > full)
            acc = sm_step(cg, s, pass, true, cg_i64(cg, full), cg_addc(cg, ib, full), cg_addc(cg, ob, full),
                          cg_mask(cg, s->L - full), true, acc, m, sc);
        return acc;
    }
    bool vec = s->mode == SM_ACROSS;
    CgLoop l;
    cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, s->L), 1, "k");
    LLVMValueRef phi = cgc_carry(cg, &l, acc0);
    LLVMValueRef next = sm_step(cg, s, pass, vec, l.iv, cg_add(cg, ib, cg_mulc(cg, l.iv, sa_in)),
                                cg_add(cg, ob, cg_mulc(cg, l.iv, sa_out)), lane_mask, false, phi, m, sc);
    cgc_carry_next(cg, phi, next);
    cg_loop_end(cg, &l);
    return phi;
}

/* The three passes over one line (reduced to a scalar) or vw lines (lanes). */
static void sm_lines(Cg *cg, const Smax *s, LLVMValueRef ib, LLVMValueRef ob, LLVMValueRef lane_mask) {
    bool vec = s->mode != SM_LINE_SCALAR;
    LLVMValueRef ninf = vec ? cg_vf(cg, -INFINITY) : cg_f32(cg, -INFINITY);
    LLVMValueRef zero = vec ? cg_vf(cg, 0) : cg_f32(cg, 0);
    if (s->ln) {
        /* sc = 2^-e for max|x| in [2^e, 2^(e+1)), e clamped to [-20, 100]: the squares cannot
         * overflow (PyTorch's float moments do past |x| ~ 1e19), and scaling is exact */
        LLVMValueRef amax = sm_pass(cg, s, 0, ib, ob, lane_mask, zero, NULL, NULL);
        if (s->mode == SM_LINE_VEC) amax = cg_splat(cg, cg_hmax(cg, amax));
        amax = cg_fmin(cg, cg_fmax(cg, amax, vec ? cg_vf(cg, 0x1p-20) : cg_f32(cg, 0x1p-20)),
                       vec ? cg_vf(cg, 0x1p100) : cg_f32(cg, 0x1p100));
        LLVMTypeRef ti = vec ? LLVMVectorType(cg->t_i32, (unsigned)cg->vw) : cg->t_i32;
        LLVMValueRef expo_mask = LLVMConstBitCast(vec ? cg_vf(cg, INFINITY) : cg_f32(cg, INFINITY), ti); /* 0x7f800000 */
        LLVMValueRef two54 = LLVMConstBitCast(vec ? cg_vf(cg, 0x1p127) : cg_f32(cg, 0x1p127), ti);    /* 254 << 23 */
        LLVMValueRef e = LLVMBuildAnd(cg->b, LLVMBuildBitCast(cg->b, amax, ti, ""), expo_mask, "");
        LLVMValueRef sc = LLVMBuildBitCast(cg->b, LLVMBuildSub(cg->b, two54, e, ""), LLVMTypeOf(amax), "scale");
        LLVMValueRef inv_l = vec ? cg_vf(cg, 1.0 / (double)s->L) : cg_f32(cg, 1.0 / (double)s->L);
        LLVMValueRef sum = sm_pass(cg, s, 1, ib, ob, lane_mask, zero, NULL, sc);
        if (s->mode == SM_LINE_VEC) sum = cg_splat(cg, cg_hsum(cg, sum));
        LLVMValueRef m = LLVMBuildFMul(cg->b, sum, inv_l, "mean");
        LLVMValueRef ss = sm_pass(cg, s, 2, ib, ob, lane_mask, zero, m, sc);
        if (s->mode == SM_LINE_VEC) ss = cg_splat(cg, cg_hsum(cg, ss));
        /* on the scaled data eps scales too: var(x sc) + eps sc^2 */
        LLVMValueRef eps = LLVMBuildFMul(cg->b, LLVMBuildFMul(cg->b, sc, sc, ""),
                                         vec ? cg_vf(cg, s->eps) : cg_f32(cg, s->eps), "");
        LLVMValueRef var = cg_fma(cg, ss, inv_l, eps);
        /* eps sc^2 underflows to 0 for max|x| past ~1e16: a constant line (every x - m exactly 0)
         * must still give 0, not 0 * inf; with eps = 0 it is 0/0 = NaN, as exactly */
        if (s->eps > 0) var = cg_fmax(cg, var, vec ? cg_vf(cg, 0x1p-126) : cg_f32(cg, 0x1p-126));
        LLVMValueRef sd = cg_intrinsic(cg, "llvm.sqrt", LLVMTypeOf(var), &var, 1);
        LLVMValueRef r = LLVMBuildFDiv(cg->b, vec ? cg_vf(cg, 1) : cg_f32(cg, 1), sd, "rstd");
        sm_pass(cg, s, 3, ib, ob, lane_mask, r, m, sc);
        return;
    }
    LLVMValueRef m = sm_pass(cg, s, 0, ib, ob, lane_mask, ninf, NULL, NULL);
    if (s->mode == SM_LINE_VEC) m = cg_splat(cg, cg_hmax(cg, m));
    LLVMValueRef sum = sm_pass(cg, s, 1, ib, ob, lane_mask, zero, m, NULL);
    if (s->mode == SM_LINE_VEC) sum = cg_splat(cg, cg_hsum(cg, sum));
    sm_pass(cg, s, 2, ib, ob, lane_mask, sum, m, NULL);
}

/* An item: one line (line modes), or one block of vw lines along the contiguous dimension
 * (the last block masked). */
static void sm_body(Cg *cg, LLVMValueRef item, void *user) {
    const Smax *s = user;
    LLVMValueRef idx[IR_MAX_RANK] = {0}, rest = item, blk = NULL;
    int64_t nv = s->mode == SM_ACROSS ? s->in.shape[s->vdim] : 0, nb = ceil_div(nv, cg->vw), full = nv / cg->vw;
    if (s->mode == SM_ACROSS) {
        blk = cg_remc(cg, rest, nb);
        rest = cg_divc(cg, rest, nb);
    }
    for (int k = s->nod - 1; k >= 0; k--) {
        int64_t n = s->in.shape[s->od[k]];
        idx[s->od[k]] = k > 0 ? cg_remc(cg, rest, n) : rest;
        if (k > 0) rest = cg_divc(cg, rest, n);
    }
    LLVMValueRef ib = cgc_off(cg, &s->in, idx), ob = cgc_off(cg, &s->out, idx);
    if (s->mode != SM_ACROSS) {
        sm_lines(cg, s, ib, ob, NULL);
        return;
    }
    LLVMValueRef c0 = cg_mulc(cg, blk, cg->vw);
    ib = cg_add(cg, ib, c0), ob = cg_add(cg, ob, c0);
    if (nv == full * cg->vw || full == 0) {
        sm_lines(cg, s, ib, ob, full ? NULL : cg_mask(cg, nv));
        return;
    }
    CgIf whole, tail;
    cg_if_begin(cg, &whole, LLVMBuildICmp(cg->b, LLVMIntSLT, blk, cg_i64(cg, full), ""), "whole");
    sm_lines(cg, s, ib, ob, NULL);
    cg_if_end(cg, &whole);
    cg_if_begin(cg, &tail, LLVMBuildICmp(cg->b, LLVMIntEQ, blk, cg_i64(cg, full), ""), "tail");
    sm_lines(cg, s, ib, ob, cg_mask(cg, nv - full * cg->vw));
    cg_if_end(cg, &tail);
}

static void sm_emit(Cg *cg, Smax *s, const char *name) {
    s->L = s->in.shape[s->axis];
    bool unit_axis = s->L == 1 || (s->in.stride[s->axis] == 1 && s->out.stride[s->axis] == 1);
    for (int i = 0; i < s->in.rank && !unit_axis; i++)
        if (i != s->axis && s->in.shape[i] > 1 && s->in.stride[i] == 1 && s->out.stride[i] == 1) s->vdim = i;
    s->mode = unit_axis ? SM_LINE_VEC : s->vdim >= 0 ? SM_ACROSS : SM_LINE_SCALAR;
    s->items = s->mode == SM_ACROSS ? ceil_div(s->in.shape[s->vdim], cg->vw) : 1;
    for (int i = 0; i < s->in.rank; i++)
        if (i != s->axis && i != s->vdim && s->in.shape[i] > 1) {
            s->od[s->nod++] = i;
            s->items *= s->in.shape[i];
        }
    cg_parallel(cg, name, s->items, sm_body, s);
}

bool cg_kernel_softmax(Cg *cg, const Node *n) {
    Smax s = {.in = cg->views[n->in[0]], .out = cg->views[n->out], .axis = (int)ir_attr_int(n, "axis"), .vdim = -1};
    sm_emit(cg, &s, "softmax");
    return true;
}

/* layernorm over dim 1 (channels): in float, mean then the mean squared deviation. It has no
 * fused epilogue (fuse-act does not fuse into it). */
bool cg_kernel_layernorm(Cg *cg, const Node *n) {
    Smax s = {.in = cg->views[n->in[0]], .out = cg->views[n->out], .axis = 1, .vdim = -1, .ln = true,
              .eps = ir_attr_float(n, "eps")};
    if (ir_attr_bool(n, "affine")) {
        const Tensor *w = ir_weight(cg->g, n, "weight"), *b = ir_weight(cg->g, n, "bias");
        char name[256];
        snprintf(name, sizeof name, "w.%s", w->name);
        s.w = cg_weights(cg, w->data, ir_numel(w), name);
        snprintf(name, sizeof name, "w.%s", b->name);
        s.bias = cg_weights(cg, b->data, ir_numel(b), name);
    }
    sm_emit(cg, &s, "layernorm");
    return true;
}

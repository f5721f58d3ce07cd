/* cg_chan.c — helpers shared by the pooling and data-movement kernels: tables, loop-carried
 * values, view offsets, the per-pixel channel loop and the split into parallel work items. */
#include "cg_chan.h"

#include <stdlib.h>

LLVMValueRef cgc_table_i64(Cg *cg, const int64_t *v, int64_t n, const char *name) {
    LLVMValueRef *e = xcalloc((size_t)(n ? n : 1), sizeof *e);
    for (int64_t i = 0; i < n; i++) e[i] = cg_i64(cg, v[i]);
    LLVMValueRef init = LLVMConstArray2(cg->t_i64, e, (uint64_t)n);
    free(e);
    return cg_const_global(cg, init, name);
}

LLVMValueRef cgc_load_i64(Cg *cg, LLVMValueRef table, LLVMValueRef idx) {
    LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->t_i64, table, &idx, 1, "");
    return LLVMBuildLoad2(cg->b, cg->t_i64, p, "");
}

LLVMValueRef cgc_load_f32(Cg *cg, LLVMValueRef table, LLVMValueRef idx) {
    return LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, table, idx), "");
}

/* The phi goes after the header's existing phis (the induction variable's), before its
 * compare: phis must lead their block. */
LLVMValueRef cgc_carry(Cg *cg, CgLoop *l, LLVMValueRef init) {
    LLVMBasicBlockRef here = LLVMGetInsertBlock(cg->b);
    LLVMValueRef at = LLVMGetFirstInstruction(l->header);
    while (at && LLVMIsAPHINode(at)) at = LLVMGetNextInstruction(at);
    LLVMPositionBuilderBefore(cg->b, at);
    LLVMValueRef phi = LLVMBuildPhi(cg->b, LLVMTypeOf(init), "carry");
    LLVMBasicBlockRef pre = LLVMGetIncomingBlock(l->phi, 0);
    LLVMAddIncoming(phi, &init, &pre, 1);
    LLVMPositionBuilderAtEnd(cg->b, here);
    return phi;
}

void cgc_carry_next(Cg *cg, LLVMValueRef phi, LLVMValueRef next) {
    LLVMBasicBlockRef from = LLVMGetInsertBlock(cg->b);
    LLVMAddIncoming(phi, &next, &from, 1);
}

LLVMValueRef cgc_off(Cg *cg, const CgView *v, LLVMValueRef *idx) {
    LLVMValueRef off = NULL;
    for (int i = 0; i < v->rank; i++) {
        if (!idx[i] || v->shape[i] == 1 || v->stride[i] == 0) continue;
        LLVMValueRef t = cg_mulc(cg, idx[i], v->stride[i]);
        off = off ? cg_add(cg, off, t) : t;
    }
    return off ? off : cg_i64(cg, 0);
}

void cgc_chan_init(Cg *cg, CgcChan *ch, int64_t C, bool vec, int G) {
    NETC_ASSERT(G >= 1 && G <= CGC_MAXG);
    *ch = (CgcChan){.vec = vec, .C = C, .G = vec ? G : 1};
    ch->width = vec ? (int64_t)ch->G * cg->vw : 1;
    ch->nfull = C / ch->width;
    ch->rem = C - ch->nfull * ch->width;
    ch->nchunks = 1;
    ch->per_chunk = ch->nfull;
}

static void emit_full(Cg *cg, const CgcChan *ch, LLVMValueRef c0, CgcGrpFn fn, void *user) {
    CgcGrp g = {.vec = ch->vec, .nv = ch->G, .c0 = c0};
    fn(cg, &g, user);
}

void cgc_chan_emit(Cg *cg, const CgcChan *ch, LLVMValueRef chunk, CgcGrpFn fn, void *user) {
    if (ch->nfull == 1 && ch->nchunks == 1) {
        emit_full(cg, ch, cg_i64(cg, 0), fn, user);
    } else if (ch->nfull > 0) {
        LLVMValueRef g0 = cg_i64(cg, 0), g1 = cg_i64(cg, ch->nfull);
        if (ch->nchunks > 1) {
            g0 = cg_mulc(cg, chunk, ch->per_chunk);
            g1 = cg_min(cg, cg_addc(cg, g0, ch->per_chunk), g1);
        }
        CgLoop l;
        cg_loop_begin(cg, &l, g0, g1, 1, "cgroup");
        emit_full(cg, ch, cg_mulc(cg, l.iv, ch->width), fn, user);
        cg_loop_end(cg, &l);
    }
    if (ch->rem == 0) return;
    CgIf last = {0};
    if (ch->nchunks > 1)
        cg_if_begin(cg, &last, LLVMBuildICmp(cg->b, LLVMIntEQ, chunk, cg_i64(cg, ch->nchunks - 1), ""), "ctail");
    CgcGrp g = {.vec = true, .nv = (int)((ch->rem + cg->vw - 1) / cg->vw), .c0 = cg_i64(cg, ch->nfull * ch->width)};
    int64_t last_lanes = ch->rem - (int64_t)(g.nv - 1) * cg->vw;
    if (last_lanes < cg->vw) g.mask[g.nv - 1] = cg_mask(cg, last_lanes);
    fn(cg, &g, user);
    if (ch->nchunks > 1) cg_if_end(cg, &last);
}

LLVMValueRef cgc_load(Cg *cg, const CgcGrp *g, int v, const CgView *view, LLVMValueRef pix) {
    if (!g->vec) {
        LLVMValueRef off = view->shape[1] > 1 ? cg_add(cg, pix, cg_mulc(cg, g->c0, view->stride[1])) : pix;
        return LLVMBuildLoad2(cg->b, cg->t_f32, cg_view_ptr(cg, view, off), "");
    }
    LLVMValueRef ptr = cg_view_ptr(cg, view, cg_addc(cg, cg_add(cg, pix, g->c0), (int64_t)v * cg->vw));
    return g->mask[v] ? cg_vload_masked(cg, ptr, g->mask[v]) : cg_vload(cg, ptr);
}

void cgc_store(Cg *cg, const CgcGrp *g, int v, const CgView *view, LLVMValueRef pix, LLVMValueRef val) {
    if (!g->vec) {
        LLVMValueRef off = view->shape[1] > 1 ? cg_add(cg, pix, cg_mulc(cg, g->c0, view->stride[1])) : pix;
        LLVMBuildStore(cg->b, val, cg_view_ptr(cg, view, off));
        return;
    }
    LLVMValueRef ptr = cg_view_ptr(cg, view, cg_addc(cg, cg_add(cg, pix, g->c0), (int64_t)v * cg->vw));
    if (g->mask[v])
        cg_vstore_masked(cg, val, ptr, g->mask[v]);
    else
        cg_vstore(cg, val, ptr);
}

LLVMTypeRef cgc_type(Cg *cg, const CgcGrp *g) { return g->vec ? cg->t_vf : cg->t_f32; }

LLVMValueRef cgc_const(Cg *cg, const CgcGrp *g, double v) { return g->vec ? cg_vf(cg, v) : cg_f32(cg, v); }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void cgc_split(CgcSplit *s, CgcChan *ch, int64_t rows, int64_t cols) {
    *s = (CgcSplit){.rows = rows, .cols = cols, .xblocks = 1, .xper = cols};
    if (rows < CGC_MIN_ITEMS && cols > 1) {
        int64_t want = ceil_div(CGC_MIN_ITEMS, rows ? rows : 1);
        s->xper = ceil_div(cols, want < cols ? want : cols);
        s->xblocks = ceil_div(cols, s->xper);
    }
    int64_t have = rows * s->xblocks;
    if (have < CGC_MIN_ITEMS && ch->nfull >= 2) {
        int64_t want = ceil_div(CGC_MIN_ITEMS, have ? have : 1);
        ch->per_chunk = ceil_div(ch->nfull, want < ch->nfull ? want : ch->nfull);
        ch->nchunks = ceil_div(ch->nfull, ch->per_chunk);
    }
    s->items = rows * s->xblocks * ch->nchunks;
}

void cgc_split_decode(Cg *cg, const CgcSplit *s, const CgcChan *ch, LLVMValueRef item, LLVMValueRef *row,
                      LLVMValueRef *x0, LLVMValueRef *x1, LLVMValueRef *chunk) {
    LLVMValueRef rest = item;
    *chunk = cg_i64(cg, 0);
    if (ch->nchunks > 1) {
        *chunk = cg_remc(cg, rest, ch->nchunks);
        rest = cg_divc(cg, rest, ch->nchunks);
    }
    if (s->xblocks > 1) {
        LLVMValueRef xb = cg_remc(cg, rest, s->xblocks);
        *row = cg_divc(cg, rest, s->xblocks);
        *x0 = cg_mulc(cg, xb, s->xper);
        *x1 = cg_min(cg, cg_addc(cg, *x0, s->xper), cg_i64(cg, s->cols));
    } else {
        *row = rest;
        *x0 = cg_i64(cg, 0);
        *x1 = cg_i64(cg, s->cols);
    }
}

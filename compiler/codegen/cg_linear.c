/* cg_linear.c — linear (y = x Wᵀ + b on [N, IN] views of any strides): a register tile of R
 * rows × K vectors of outputs. Weights W[OUT, IN] are packed at compile time as
 * [out block][in][K·vw] (zero-padded past OUT), so one step of the reduction loads K adjacent
 * weight vectors and broadcasts one input value per row. Work items are (out block, row tile):
 * a block's weights stream once per row tile. */
#include <stdlib.h>
#include <string.h>

#include "cg_tile.h"

typedef struct Lin {
    const Node *node;
    CgView in, out;
    int64_t rows, F, O;
    int R, Rt;             /* rows per tile, rows of the last tile */
    int64_t nrt;           /* row tiles */
    int K[2];              /* vectors per block: full blocks, tail block (0: none) */
    int64_t last_lanes[2];
    int64_t nfull, nblk;
    LLVMValueRef w, bias;
} Lin;

/* The store step: bias and the fused epilogue, then a vector store (masked on the last block)
 * when outputs are contiguous, lane by lane otherwise. */
static void lin_store(Cg *cg, const Lin *l, LLVMValueRef acc, LLVMValueRef optr, LLVMValueRef row, LLVMValueRef oc,
                      int64_t lanes) {
    if (l->bias) acc = LLVMBuildFAdd(cg->b, acc, cg_vload(cg, cg_gep(cg, l->bias, oc)), "");
    LLVMValueRef idx[2] = {row, oc};
    acc = cg_epilogue(cg, l->node, acc, idx, lanes < cg->vw ? cg_mask(cg, lanes) : NULL);
    int64_t s = l->out.stride[1];
    LLVMValueRef p = cg_gep(cg, optr, cg_mulc(cg, oc, s));
    if (s == 1) {
        if (lanes < cg->vw) cg_vstore_masked(cg, acc, p, cg_mask(cg, lanes));
        else cg_vstore(cg, acc, p);
        return;
    }
    for (int64_t i = 0; i < lanes; i++) {
        LLVMValueRef e = LLVMBuildExtractElement(cg->b, acc, LLVMConstInt(cg->t_i32, (unsigned long long)i, 0), "");
        LLVMBuildStore(cg->b, e, cg_gep(cg, p, cg_i64(cg, i * s)));
    }
}

/* R rows from row0 × the block's K vectors. */
static void lin_tile(Cg *cg, const Lin *l, int var, int R, LLVMValueRef row0, LLVMValueRef oc0, LLVMValueRef wblk) {
    int K = l->K[var], vw = cg->vw, nacc = R * K;
    int64_t kv = (int64_t)K * vw, sf = l->in.stride[1];
    LLVMValueRef ibase = cg_view_ptr(cg, &l->in, cg_i64(cg, 0)), obase = cg_view_ptr(cg, &l->out, cg_i64(cg, 0));
    LLVMValueRef irow[TILE_MAX_VALS], acc[TILE_MAX_VALS];
    for (int r = 0; r < R; r++) irow[r] = cg_gep(cg, ibase, cg_mulc(cg, cg_addc(cg, row0, r), l->in.stride[0]));
    for (int i = 0; i < nacc; i++) acc[i] = cg_vf(cg, 0.0);
    TileLoop lf;
    tile_loop_begin(cg, &lf, cg_i64(cg, 0), cg_i64(cg, l->F), 1, acc, nacc, "f");
    LLVMValueRef wp = cg_gep(cg, wblk, cg_mulc(cg, lf.iv, kv));
    LLVMValueRef wv[8];
    for (int k = 0; k < K; k++) wv[k] = tile_wload(cg, cg_gep(cg, wp, cg_i64(cg, (int64_t)k * vw)));
    LLVMValueRef foff = cg_mulc(cg, lf.iv, sf);
    for (int r = 0; r < R; r++) {
        LLVMValueRef x = cg_splat(cg, LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, irow[r], foff), "x"));
        for (int k = 0; k < K; k++) acc[r * K + k] = cg_fma(cg, x, wv[k], acc[r * K + k]);
    }
    tile_loop_end(cg, &lf, acc);
    for (int r = 0; r < R; r++) {
        LLVMValueRef optr = cg_gep(cg, obase, cg_mulc(cg, cg_addc(cg, row0, r), l->out.stride[0]));
        for (int k = 0; k < K; k++)
            lin_store(cg, l, acc[r * K + k], optr, cg_addc(cg, row0, r), cg_addc(cg, oc0, (int64_t)k * vw),
                      k == K - 1 ? l->last_lanes[var] : vw);
    }
}

/* Rows tiles of R, the last one of Rt, for one variant of block. */
static void lin_rows(Cg *cg, const Lin *l, int var, LLVMValueRef rt, LLVMValueRef oc0, LLVMValueRef wblk) {
    LLVMValueRef row0 = cg_mulc(cg, rt, l->R);
    if (l->Rt == l->R) {
        lin_tile(cg, l, var, l->R, row0, oc0, wblk);
        return;
    }
    LLVMValueRef last = LLVMBuildICmp(cg->b, LLVMIntEQ, rt, cg_i64(cg, l->nrt - 1), "");
    LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "rfull");
    LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "rtail");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "rdone");
    LLVMBuildCondBr(cg->b, last, tail, full);
    LLVMPositionBuilderAtEnd(cg->b, full);
    lin_tile(cg, l, var, l->R, row0, oc0, wblk);
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, tail);
    lin_tile(cg, l, var, l->Rt, row0, oc0, wblk);
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, done);
}

/* One work item: (out block, row tile). */
static void lin_body(Cg *cg, LLVMValueRef item, void *user) {
    Lin *l = user;
    LLVMValueRef rt = cg_remc(cg, item, l->nrt), blk = cg_divc(cg, item, l->nrt);
    int64_t bw = (int64_t)l->K[0] * cg->vw, wblock = l->F * bw;
    bool tail = l->nblk > l->nfull;
    if (l->nfull) {
        CgIf f;
        if (tail) cg_if_begin(cg, &f, LLVMBuildICmp(cg->b, LLVMIntSLT, blk, cg_i64(cg, l->nfull), ""), "full");
        lin_rows(cg, l, 0, rt, cg_mulc(cg, blk, bw), cg_gep(cg, l->w, cg_mulc(cg, blk, wblock)));
        if (tail) cg_if_end(cg, &f);
    }
    if (tail) {
        CgIf f;
        if (l->nfull) cg_if_begin(cg, &f, LLVMBuildICmp(cg->b, LLVMIntEQ, blk, cg_i64(cg, l->nfull), ""), "tail");
        lin_rows(cg, l, 1, rt, cg_i64(cg, l->nfull * bw), cg_gep(cg, l->w, cg_i64(cg, l->nfull * wblock)));
        if (l->nfull) cg_if_end(cg, &f);
    }
}

bool cg_kernel_linear(Cg *cg, const Node *n) {
    int vw = cg->vw;
    Lin l = {.node = n, .in = cg->views[n->in[0]], .out = cg->views[n->out]};
    l.rows = l.in.shape[0];
    l.F = l.in.shape[1];
    l.O = l.out.shape[1];
    /* tile: up to 4 rows; as many vectors as the 28-register budget allows, fewer when that
     * leaves under 8 work items for the threads */
    int budget = cg->vregs == 32 ? 28 : 12;
    l.R = (int)(l.rows < 4 ? l.rows : 4);
    if (l.R < 1) l.R = 1;
    l.nrt = ceil_div64(l.rows, l.R);
    l.Rt = (int)(l.rows - (l.nrt - 1) * l.R);
    int64_t nvec = ceil_div64(l.O, vw);
    int K = budget / l.R;
    if (K > 8) K = 8;
    if (K > nvec) K = (int)nvec;
    while (K > 1 && ceil_div64(nvec, K) * l.nrt < 8) K--;
    l.K[0] = K;
    l.nfull = l.O / ((int64_t)K * vw);
    int64_t rem = l.O - l.nfull * K * vw;
    l.K[1] = (int)ceil_div64(rem, vw);
    l.last_lanes[0] = vw;
    l.last_lanes[1] = rem - (int64_t)(l.K[1] - 1) * vw;
    l.nblk = l.nfull + (l.K[1] ? 1 : 0);

    const float *w = ir_weight(cg->g, n, "weight")->data;
    int64_t bw = (int64_t)K * vw, count = l.nblk * bw * l.F;
    float *p = xcalloc((size_t)(count ? count : 1), sizeof *p);
    for (int64_t b = 0; b < l.nblk; b++) {
        int64_t kv = (int64_t)l.K[b < l.nfull ? 0 : 1] * vw, o0 = b * bw;
        float *dst = p + b * l.F * bw;
        for (int64_t f = 0; f < l.F; f++)
            for (int64_t i = 0; i < kv && o0 + i < l.O; i++) dst[f * kv + i] = w[(o0 + i) * l.F + f];
    }
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight", n->name);
    l.w = cg_weights(cg, p, count, name);
    free(p);
    const Tensor *bt = ir_weight(cg->g, n, "bias");
    if (bt) {
        float *bp = xcalloc((size_t)(l.O + vw), sizeof *bp);
        memcpy(bp, bt->data, (size_t)l.O * sizeof *bp);
        snprintf(name, sizeof name, "w.%s.bias", n->name);
        l.bias = cg_weights(cg, bp, l.O + vw, name);
        free(bp);
    }
    cg_parallel(cg, "linear", l.nblk * l.nrt, lin_body, &l);
    return true;
}

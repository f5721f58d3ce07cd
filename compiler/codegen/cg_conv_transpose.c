/* cg_conv_transpose.c — conv_transpose2d as a gather, vectorised over output channels.
 *
 * Output row oy receives input row iy through tap kh when oy + ph - kh·dh = iy·sh with
 * 0 <= iy < H (the same for columns). Which (kh, iy) pairs reach each output row, and which
 * (kw, ix) pairs reach each output column, is known at compile time: it is emitted as constant
 * tables, so the run-time loops walk only the contributing taps, with no divisibility or bounds
 * tests. Per output pixel a tile of K vectors of the group's output channels accumulates over
 * those taps and the group's input channels (broadcast once, used for all K vectors). Weights
 * [C_in, O/groups, kh, kw] are packed as [group][oc block][kh][kw][ic][K·vw]. */
#include <stdlib.h>
#include <string.h>

#include "cg_tile.h"

typedef struct Ct {
    const Node *node;
    ConvGeom g;
    CgView in, out;
    int K[2];              /* vectors per block: full blocks, tail block (0: none) */
    int64_t last_lanes[2]; /* valid lanes of each variant's last vector */
    int64_t nfull, nblk, wblock, wgroup;
    LLVMValueRef w, bias;
    LLVMValueRef hcnt, htab, wcnt, wtab; /* i32 tables: per row/column, count and (k, i) pairs */
} Ct;

/* For each output coordinate o in [0, On): the taps k and input coordinates i with
 * o + p - k·d = i·s, 0 <= i < In. cnt[o], and pairs tab[(o·K + t)·2 + {0, 1}] = (k, i). */
static void tap_tables(Cg *cg, int64_t On, int64_t K, int64_t s, int64_t p, int64_t d, int64_t In, const char *what,
                       LLVMValueRef *cnt_g, LLVMValueRef *tab_g) {
    int32_t *cnt = xcalloc((size_t)On, sizeof *cnt), *tab = xcalloc((size_t)(On * K * 2), sizeof *tab);
    for (int64_t o = 0; o < On; o++)
        for (int64_t k = 0; k < K; k++) {
            int64_t num = o + p - k * d;
            if (num < 0 || num % s) continue;
            int64_t i = num / s;
            if (i >= In) continue;
            int32_t t = cnt[o]++;
            tab[(o * K + t) * 2] = (int32_t)k;
            tab[(o * K + t) * 2 + 1] = (int32_t)i;
        }
    char name[64];
    snprintf(name, sizeof name, "ct.%s.cnt", what);
    *cnt_g = cg_table_i32(cg, cnt, On, name);
    snprintf(name, sizeof name, "ct.%s.tab", what);
    *tab_g = cg_table_i32(cg, tab, On * K * 2, name);
    free(cnt);
    free(tab);
}

static LLVMValueRef load_i32(Cg *cg, LLVMValueRef arr, LLVMValueRef idx) {
    LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->t_i32, arr, &idx, 1, "");
    return LLVMBuildSExt(cg->b, LLVMBuildLoad2(cg->b, cg->t_i32, p, ""), cg->t_i64, "");
}

/* The store step: bias and the fused epilogue, then a vector store when channels are
 * contiguous, lane by lane otherwise. */
static void ct_store(Cg *cg, const Ct *c, LLVMValueRef acc, LLVMValueRef obase, LLVMValueRef n, LLVMValueRef oc,
                     LLVMValueRef oy, LLVMValueRef ox, int64_t lanes) {
    const CgView *o = &c->out;
    if (c->bias) acc = LLVMBuildFAdd(cg->b, acc, cg_vload(cg, cg_gep(cg, c->bias, oc)), "");
    LLVMValueRef idx[4] = {n, oc, oy, ox};
    acc = cg_epilogue(cg, c->node, acc, idx, lanes < cg->vw ? cg_mask(cg, lanes) : NULL);
    LLVMValueRef off = cg_add(cg, cg_add(cg, cg_mulc(cg, n, o->stride[0]), cg_mulc(cg, oc, o->stride[1])),
                              cg_add(cg, cg_mulc(cg, oy, o->stride[2]), cg_mulc(cg, ox, o->stride[3])));
    LLVMValueRef p = cg_gep(cg, obase, off);
    if (o->stride[1] == 1) {
        if (lanes < cg->vw) cg_vstore_masked(cg, acc, p, cg_mask(cg, lanes));
        else cg_vstore(cg, acc, p);
        return;
    }
    for (int64_t l = 0; l < lanes; l++) {
        LLVMValueRef e = LLVMBuildExtractElement(cg->b, acc, LLVMConstInt(cg->t_i32, (unsigned long long)l, 0), "");
        LLVMBuildStore(cg->b, e, cg_gep(cg, p, cg_i64(cg, l * o->stride[1])));
    }
}

/* One output row of one oc block of K vectors: for each pixel, the taps from the tables. */
static void ct_row(Cg *cg, const Ct *c, int var, LLVMValueRef ibase, LLVMValueRef obase, LLVMValueRef n, LLVMValueRef oy,
                   LLVMValueRef ic0, LLVMValueRef oc0, LLVMValueRef wblk) {
    const ConvGeom *g = &c->g;
    const CgView *in = &c->in;
    int K = c->K[var], vw = cg->vw;
    int64_t kv = (int64_t)K * vw;
    LLVMValueRef hn = load_i32(cg, c->hcnt, oy);
    CgLoop lx;
    cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, g->OW), 1, "ox");
    LLVMValueRef wn = load_i32(cg, c->wcnt, lx.iv);
    LLVMValueRef acc[8];
    for (int k = 0; k < K; k++) acc[k] = cg_vf(cg, 0.0);
    TileLoop lh, lw, li;
    tile_loop_begin(cg, &lh, cg_i64(cg, 0), hn, 1, acc, K, "th");
    LLVMValueRef hi = cg_mulc(cg, cg_add(cg, cg_mulc(cg, oy, g->KH), lh.iv), 2);
    LLVMValueRef kh = load_i32(cg, c->htab, hi), iy = load_i32(cg, c->htab, cg_addc(cg, hi, 1));
    tile_loop_begin(cg, &lw, cg_i64(cg, 0), wn, 1, acc, K, "tw");
    LLVMValueRef wi = cg_mulc(cg, cg_add(cg, cg_mulc(cg, lx.iv, g->KW), lw.iv), 2);
    LLVMValueRef kw = load_i32(cg, c->wtab, wi), ix = load_i32(cg, c->wtab, cg_addc(cg, wi, 1));
    LLVMValueRef ioff = cg_add(cg, cg_add(cg, cg_mulc(cg, n, in->stride[0]), cg_mulc(cg, ic0, in->stride[1])),
                               cg_add(cg, cg_mulc(cg, iy, in->stride[2]), cg_mulc(cg, ix, in->stride[3])));
    LLVMValueRef inp = cg_gep(cg, ibase, ioff);
    LLVMValueRef wp = cg_gep(cg, wblk, cg_mulc(cg, cg_add(cg, cg_mulc(cg, kh, g->KW), kw), g->cpg * kv));
    tile_loop_begin(cg, &li, cg_i64(cg, 0), cg_i64(cg, g->cpg), 1, acc, K, "ic");
    LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, inp, cg_mulc(cg, li.iv, in->stride[1])), "x");
    LLVMValueRef xs = cg_splat(cg, x);
    LLVMValueRef wq = cg_gep(cg, wp, cg_mulc(cg, li.iv, kv));
    for (int k = 0; k < K; k++) acc[k] = cg_fma(cg, xs, tile_wload(cg, cg_gep(cg, wq, cg_i64(cg, (int64_t)k * vw))), acc[k]);
    tile_loop_end(cg, &li, acc);
    tile_loop_end(cg, &lw, acc);
    tile_loop_end(cg, &lh, acc);
    for (int k = 0; k < K; k++)
        ct_store(cg, c, acc[k], obase, n, cg_addc(cg, oc0, (int64_t)k * vw), oy, lx.iv,
                 k == K - 1 ? c->last_lanes[var] : vw);
    cg_loop_end(cg, &lx);
}

/* One work item: (group, oc block, image, output row). */
static void ct_body(Cg *cg, LLVMValueRef item, void *user) {
    Ct *c = user;
    const ConvGeom *g = &c->g;
    LLVMValueRef oy = cg_remc(cg, item, g->OH), r = cg_divc(cg, item, g->OH);
    LLVMValueRef n = cg_remc(cg, r, g->N);
    r = cg_divc(cg, r, g->N);
    LLVMValueRef blk = cg_remc(cg, r, c->nblk), grp = cg_divc(cg, r, c->nblk);
    LLVMValueRef ibase = cg_view_ptr(cg, &c->in, cg_i64(cg, 0)), obase = cg_view_ptr(cg, &c->out, cg_i64(cg, 0));
    LLVMValueRef ic0 = cg_mulc(cg, grp, g->cpg), ocg = cg_mulc(cg, grp, g->opg);
    LLVMValueRef wgrp = cg_gep(cg, c->w, cg_mulc(cg, grp, c->wgroup));
    int64_t bw = (int64_t)c->K[0] * cg->vw;
    bool tail = c->nblk > c->nfull;
    if (c->nfull) {
        CgIf f;
        if (tail) cg_if_begin(cg, &f, LLVMBuildICmp(cg->b, LLVMIntSLT, blk, cg_i64(cg, c->nfull), ""), "full");
        ct_row(cg, c, 0, ibase, obase, n, oy, ic0, cg_add(cg, ocg, cg_mulc(cg, blk, bw)),
               cg_gep(cg, wgrp, cg_mulc(cg, blk, c->wblock)));
        if (tail) cg_if_end(cg, &f);
    }
    if (tail) {
        CgIf f;
        if (c->nfull) cg_if_begin(cg, &f, LLVMBuildICmp(cg->b, LLVMIntEQ, blk, cg_i64(cg, c->nfull), ""), "tail");
        ct_row(cg, c, 1, ibase, obase, n, oy, ic0, cg_addc(cg, ocg, c->nfull * bw),
               cg_gep(cg, wgrp, cg_i64(cg, c->nfull * c->wblock)));
        if (c->nfull) cg_if_end(cg, &f);
    }
}

bool cg_kernel_conv_transpose2d(Cg *cg, const Node *n) {
    int vw = cg->vw;
    Ct c = {.node = n, .g = conv_geom(cg->g, n), .in = cg->views[n->in[0]], .out = cg->views[n->out]};
    const ConvGeom *g = &c.g;
    int Kmax = 4;
    c.nfull = g->opg / ((int64_t)Kmax * vw);
    int64_t rem = g->opg - c.nfull * Kmax * vw;
    c.K[0] = Kmax;
    c.K[1] = (int)ceil_div64(rem, vw);
    c.last_lanes[0] = vw;
    c.last_lanes[1] = rem - (int64_t)(c.K[1] - 1) * vw;
    c.nblk = c.nfull + (c.K[1] ? 1 : 0);
    int64_t taps = g->KH * g->KW;
    c.wblock = taps * g->cpg * Kmax * vw;
    c.wgroup = c.nfull * c.wblock + taps * g->cpg * c.K[1] * vw;

    /* pack: W[ci, ol, kh, kw] with ci = group·cpg + ic */
    const float *w = ir_weight(cg->g, n, "weight")->data;
    int64_t count = c.wgroup * g->groups;
    float *p = xcalloc((size_t)count, sizeof *p);
    for (int64_t gr = 0; gr < g->groups; gr++)
        for (int64_t b = 0; b < c.nblk; b++) {
            int64_t kv = (int64_t)c.K[b < c.nfull ? 0 : 1] * vw, ob = b * Kmax * vw;
            float *dst = p + gr * c.wgroup + b * c.wblock;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t ic = 0; ic < g->cpg; ic++)
                    for (int64_t l = 0; l < kv && ob + l < g->opg; l++)
                        dst[(t * g->cpg + ic) * kv + l] = w[((gr * g->cpg + ic) * g->opg + ob + l) * taps + t];
        }
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight", n->name);
    c.w = cg_weights(cg, p, count, name);
    free(p);
    const Tensor *bt = ir_weight(cg->g, n, "bias");
    if (bt) {
        float *bp = xcalloc((size_t)(g->O + vw), sizeof *bp);
        memcpy(bp, bt->data, (size_t)g->O * sizeof *bp);
        snprintf(name, sizeof name, "w.%s.bias", n->name);
        c.bias = cg_weights(cg, bp, g->O + vw, name);
        free(bp);
    }
    tap_tables(cg, g->OH, g->KH, g->sh, g->ph, g->dh, g->H, "h", &c.hcnt, &c.htab);
    tap_tables(cg, g->OW, g->KW, g->sw, g->pw, g->dw, g->W, "w", &c.wcnt, &c.wtab);
    cg_parallel(cg, "conv_transpose2d", g->groups * c.nblk * g->N * g->OH, ct_body, &c);
    return true;
}

/* cg_conv.c — conv2d kernels: a register-tiled direct convolution for dense and grouped convs on
 * channels-innermost views (1×1 convs as a GEMM through the same tile), a depthwise kernel
 * vectorised over channels, and a scalar path for views whose channels are not contiguous.
 *
 * The dense tile: P output pixels of one output row × K vectors of output channels, P·K
 * accumulators in registers. Per (tap, input channel) it loads K weight vectors and broadcasts
 * each of the P input values once, for P·K FMAs. Weights are packed at compile time as
 * [group][oc block][kh][kw][ic][K·vw] (zero-padded past the group's channels), so the K vectors
 * of one step are adjacent. The loops over kh, kw and ic stay rolled (unrolling the taps makes
 * LLVM spill the tile); the kh range is clamped per output row at run time, and the columns of
 * a row are split at compile time into interior tiles (one rolled loop, no bounds checks) and
 * border tiles, each emitted with the taps that fall outside the input left out. */
#include <stdlib.h>
#include <string.h>

#include "cg_tile.h"

/* ---- the store step ------------------------------------------------------------------------- */

void cg_conv_store(Cg *cg, const ConvOut *o, LLVMValueRef acc, LLVMValueRef n, LLVMValueRef oc, LLVMValueRef oy,
                   LLVMValueRef ox, LLVMValueRef mask) {
    bool vec = LLVMGetTypeKind(LLVMTypeOf(acc)) == LLVMVectorTypeKind;
    LLVMValueRef v = acc;
    if (o->bias) {
        LLVMValueRef bp = cg_gep(cg, o->bias, oc);
        LLVMValueRef b = vec ? cg_vload(cg, bp) : LLVMBuildLoad2(cg->b, cg->t_f32, bp, "bias");
        v = LLVMBuildFAdd(cg->b, v, b, "");
    }
    LLVMValueRef idx[4] = {n, oc, oy, ox};
    if (o->flat_ow && cg_epilogue_needs_index(o->n)) {
        idx[0] = cg_divc(cg, ox, o->flat_oh * o->flat_ow);
        idx[2] = cg_remc(cg, cg_divc(cg, ox, o->flat_ow), o->flat_oh);
        idx[3] = cg_remc(cg, ox, o->flat_ow);
    }
    v = cg_epilogue(cg, o->n, v, idx, mask);
    LLVMValueRef p = cg_gep(cg, o->base, cg_conv_out_off(cg, o, n, oc, oy, ox));
    if (!vec) LLVMBuildStore(cg->b, v, p);
    else if (mask) cg_vstore_masked(cg, v, p, mask);
    else cg_vstore(cg, v, p);
}

void cg_partials_load(Cg *cg, LLVMValueRef first, LLVMValueRef *acc, int n, LLVMValueRef const *ptr,
                      LLVMValueRef const *mask) {
    LLVMBasicBlockRef from = LLVMGetInsertBlock(cg->b);
    LLVMBasicBlockRef ld = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "partial");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "sum");
    LLVMBuildCondBr(cg->b, first, go, ld);
    LLVMPositionBuilderAtEnd(cg->b, ld);
    LLVMValueRef part[TILE_MAX_VALS];
    for (int i = 0; i < n; i++) part[i] = mask[i] ? cg_vload_masked(cg, ptr[i], mask[i]) : cg_vload(cg, ptr[i]);
    LLVMBasicBlockRef ld_end = LLVMGetInsertBlock(cg->b);
    LLVMBuildBr(cg->b, go);
    LLVMPositionBuilderAtEnd(cg->b, go);
    for (int i = 0; i < n; i++) {
        LLVMValueRef phi = LLVMBuildPhi(cg->b, cg->t_vf, "acc");
        LLVMAddIncoming(phi, (LLVMValueRef[]){acc[i], part[i]}, (LLVMBasicBlockRef[]){from, ld_end}, 2);
        acc[i] = phi;
    }
}

void cg_partials_store_begin(Cg *cg, CgIf *c, LLVMValueRef last, LLVMValueRef const *acc, int n, LLVMValueRef const *ptr,
                             LLVMValueRef const *mask) {
    LLVMBasicBlockRef raw = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "raw");
    LLVMBasicBlockRef epi = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "epi");
    c->merge_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "stored");
    LLVMBuildCondBr(cg->b, last, epi, raw);
    LLVMPositionBuilderAtEnd(cg->b, raw);
    for (int i = 0; i < n; i++) {
        if (mask[i]) cg_vstore_masked(cg, acc[i], ptr[i], mask[i]);
        else cg_vstore(cg, acc[i], ptr[i]);
    }
    LLVMBuildBr(cg->b, c->merge_bb);
    LLVMPositionBuilderAtEnd(cg->b, epi);
}

LLVMValueRef cg_conv_out_off(Cg *cg, const ConvOut *o, LLVMValueRef n, LLVMValueRef oc, LLVMValueRef oy, LLVMValueRef ox) {
    return cg_add(cg, cg_add(cg, cg_mulc(cg, n, o->sN), cg_mulc(cg, oc, o->sC)),
                  cg_add(cg, cg_mulc(cg, oy, o->sH), cg_mulc(cg, ox, o->sW)));
}

static LLVMValueRef padded_bias(Cg *cg, const Node *n, int64_t O) {
    const Tensor *b = ir_weight(cg->g, n, "bias");
    if (!b) return NULL;
    float *p = xcalloc((size_t)(O + cg->vw), sizeof *p);
    memcpy(p, b->data, (size_t)O * sizeof *p);
    char name[300];
    snprintf(name, sizeof name, "w.%s.bias", n->name);
    LLVMValueRef g = cg_weights(cg, p, O + cg->vw, name);
    free(p);
    return g;
}

ConvOut cg_conv_out(Cg *cg, const Node *n, int64_t O) {
    const CgView *v = &cg->views[n->out];
    return (ConvOut){.n = n, .view = *v, .bias = padded_bias(cg, n, O),
                     .sN = v->stride[0], .sC = v->stride[1], .sH = v->stride[2], .sW = v->stride[3]};
}

/* ---- register budget and tile shapes ----------------------------------------------------------- */

/* Vector registers of the target: 32 with AVX-512 and on aarch64, 16 for AVX2/SSE. */
static int vec_regs(const Cg *cg) { return cg->vregs; }

/* The widest tile of K vectors: P·K accumulators, K weight vectors and one broadcast in
 * registers, within a budget of 28 accumulators on 32 registers (the measured sweet spot). */
static int tile_pmax(const Cg *cg, int K) {
    int regs = vec_regs(cg), budget = regs == 32 ? 28 : 12;
    int p = budget / K, q = (regs - 1 - K) / K;
    p = p < q ? p : q;
    return p < 1 ? 1 : p;
}

/* Cycles (in half-cycles of FMA issue) of one reduction step of a w×K tile: FMAs at 2 per cycle,
 * loads (w broadcasts + K weight vectors) at 2 per cycle, and the FMA latency (4 cycles, so 8
 * independent chains are needed to fill both ports). */
static int64_t tile_cost(int64_t w, int64_t K) {
    int64_t c = w * K, l = w + K;
    if (c < 8) c = 8;
    return c > l ? c : l;
}

/* The tile width for K vectors on a row of OW pixels: the fewest tiles of at most pmax, evened
 * out (30 pixels at pmax 14 → 3 tiles of 10, not 14 + 14 + 2). */
static int tile_width(const Cg *cg, int K, int64_t OW) {
    int64_t pm = tile_pmax(cg, K), T = ceil_div64(OW, pm);
    return (int)ceil_div64(OW, T);
}

static int64_t row_cost(const Cg *cg, int K, int64_t OW) {
    int64_t P = tile_width(cg, K, OW), full = OW / P, rest = OW - full * P;
    return full * tile_cost(P, K) + (rest ? tile_cost(rest, K) : 0);
}

/* ---- the row of tiles: runs of tiles with the same taps, and lone border tiles ---------------- */

/* A group of consecutive taps kw in [ka, kb) that read the same subset `mask` of a tile's pixels
 * (bit p: pixel p's input column is inside the image). Interior tiles have one group. */
typedef struct KwGroup {
    int64_t ka, kb;
    uint64_t mask;
} KwGroup;

/* The kw groups of the tile of `w` columns from x0 (a group of taps that read only padding for
 * every pixel has mask 0); returns their number. */
static int kw_groups(const ConvGeom *g, int64_t x0, int64_t w, KwGroup *out) {
    int n = 0;
    for (int64_t kw = 0; kw < g->KW; kw++) {
        uint64_t m = 0;
        for (int64_t p = 0; p < w; p++) {
            int64_t ix = (x0 + p) * g->sw - g->pw + kw * g->dw;
            if (ix >= 0 && ix < g->W) m |= 1ull << p;
        }
        if (n && out[n - 1].mask == m && out[n - 1].kb == kw) out[n - 1].kb = kw + 1;
        else out[n++] = (KwGroup){kw, kw + 1, m};
    }
    return n;
}

static bool same_groups(const KwGroup *a, int na, const KwGroup *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i].ka != b[i].ka || a[i].kb != b[i].kb || a[i].mask != b[i].mask) return false;
    return true;
}

/* Emits one tile of `width` output columns from x0 (a run-time value) with its kw groups. */
typedef void (*TileFn)(Cg *cg, void *ctx, LLVMValueRef x0, const KwGroup *grp, int ng, int64_t width);

/* Emit one output row as tiles of width P. Consecutive full-width tiles with the same kw groups
 * (masks are relative to the tile, so their code is the same) are one loop, split into `np` parts
 * by the runtime `part`: the interior tiles, and, where a large dilation makes every tile a border
 * tile, the tiles between the borders that read only the middle taps. Any other tile (a lone
 * border tile, the narrower last one) is emitted on its own, run by part t % np. */
static void emit_row_tiles(Cg *cg, const ConvGeom *g, int64_t P, int64_t np, LLVMValueRef part, TileFn fn, void *ctx) {
    NETC_ASSERT(P >= 1 && P <= 64);
    int64_t OW = g->OW, ntile = ceil_div64(OW, P);
    KwGroup *ga = xcalloc((size_t)g->KW, sizeof *ga), *gb = xcalloc((size_t)g->KW, sizeof *gb);
    for (int64_t t = 0; t < ntile;) {
        int64_t w = OW - t * P < P ? OW - t * P : P, e = t + 1;
        int na = kw_groups(g, t * P, w, ga);
        while (w == P && (e + 1) * P <= OW) {
            int nb = kw_groups(g, e * P, P, gb);
            if (!same_groups(ga, na, gb, nb)) break;
            e++;
        }
        if (e - t > 1) {
            LLVMValueRef ta = cg_i64(cg, t), tb = cg_i64(cg, e);
            if (np > 1) { /* part k takes [t + k·cnt/np, t + (k+1)·cnt/np) */
                int64_t cnt = e - t;
                ta = cg_addc(cg, cg_divc(cg, cg_mulc(cg, part, cnt), np), t);
                tb = cg_addc(cg, cg_divc(cg, cg_mulc(cg, cg_addc(cg, part, 1), cnt), np), t);
            }
            CgLoop l;
            cg_loop_begin(cg, &l, ta, tb, 1, "tile");
            fn(cg, ctx, cg_mulc(cg, l.iv, P), ga, na, P);
            cg_loop_end(cg, &l);
        } else if (np > 1) {
            CgIf c;
            cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntEQ, part, cg_i64(cg, t % np), ""), "btile");
            fn(cg, ctx, cg_i64(cg, t * P), ga, na, w);
            cg_if_end(cg, &c);
        } else {
            fn(cg, ctx, cg_i64(cg, t * P), ga, na, w);
        }
        t = e;
    }
    free(ga), free(gb);
}

/* Row parts: split the interior tiles of each row when rows alone give too few work items for an
 * even split over the threads. */
static int64_t row_parts(const ConvGeom *g, int64_t rows, int64_t P) {
    int64_t tiles = g->OW / P;
    if (rows >= 32 || tiles < 2) return 1;
    int64_t np = ceil_div64(32, rows);
    return np < tiles ? np : tiles;
}

/* ---- dense and grouped convolution --------------------------------------------------------------- */

typedef struct Variant {
    int K, P;           /* vectors of output channels, tile width */
    int64_t last_lanes; /* valid lanes of the last vector (vw: all) */
} Variant;

typedef struct Dense {
    ConvGeom g;                    /* after the 1×1 GEMM flattening */
    int64_t isN, isH, isW;         /* input pixel strides (floats) */
    CgView in;
    ConvOut o;
    Variant var[2];                /* [0]: full blocks of K vectors, [1]: the tail block */
    int64_t nfull, nblk;           /* oc blocks per group */
    int64_t wblock, wgroup;        /* packed weight floats per full block, per group */
    int64_t np;                    /* parts per row */
    bool merge;                    /* kw and ic form one contiguous run in input and weights */
    int64_t pf_chunk, pf_step;     /* weight prefetch: floats per (tile, kh) step, per j step; 0: off */
    int64_t KC, nkc;               /* input channels per reduction chunk, chunks (1: no chunking) */
    LLVMValueRef w;
    /* per work item / row, at run time */
    LLVMValueRef in_base, n, oy, kh_lo, kh_hi, wblk, ic0, oc0;
    LLVMValueRef c_lo, c_hi, first, last; /* this chunk's input channels (NULL: all); first / last chunk (NULL: one) */
    LLVMValueRef pf_base; /* this (tile, kh) step's share of the next block's weights */
    LLVMValueRef pf_next; /* i1: the next block's first item is in this task's chunk */
    const Variant *v;
} Dense;

/* acc[p·K + k] += x[pixel p] · w[k] over one (tap, input channel) step, for the pixels in mask;
 * j = kw·cpg + ic numbers the step for the weight prefetch. */
static void dense_step(Cg *cg, const Dense *d, LLVMValueRef *acc, int64_t w, uint64_t mask, LLVMValueRef inp,
                       LLVMValueRef wp, LLVMValueRef j) {
    int K = d->v->K;
    if (d->pf_step) cg_prefetch(cg, cg_gep(cg, d->pf_base, cg_mulc(cg, j, d->pf_step)), 2);
    LLVMValueRef wv[8];
    for (int k = 0; k < K; k++) wv[k] = tile_wload(cg, cg_gep(cg, wp, cg_i64(cg, (int64_t)k * cg->vw)));
    int64_t pstep = d->g.sw * d->isW;
    for (int64_t p = 0; p < w; p++) {
        if (!(mask >> p & 1)) continue;
        LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, inp, cg_i64(cg, p * pstep)), "x");
        LLVMValueRef xs = cg_splat(cg, x);
        for (int k = 0; k < K; k++) acc[p * K + k] = cg_fma(cg, xs, wv[k], acc[p * K + k]);
    }
}

/* The mask of vector k of the block's output channels (NULL: all lanes), and its address at
 * output pixel (oy, ox) of this row. */
static LLVMValueRef dense_mask(Cg *cg, const Dense *d, int k) {
    return k == d->v->K - 1 && d->v->last_lanes < cg->vw ? cg_mask(cg, d->v->last_lanes) : NULL;
}

static LLVMValueRef dense_out(Cg *cg, const Dense *d, LLVMValueRef ox, int k) {
    return cg_gep(cg, d->o.base, cg_conv_out_off(cg, &d->o, d->n, cg_addc(cg, d->oc0, (int64_t)k * cg->vw), d->oy, ox));
}

/* The places of a tile's partial sums (w pixels from x0 × the block's vectors): the output. */
static void dense_partials(Cg *cg, const Dense *d, LLVMValueRef x0, int64_t w, LLVMValueRef *ptr, LLVMValueRef *mask) {
    int K = d->v->K;
    for (int64_t p = 0; p < w; p++)
        for (int k = 0; k < K; k++) ptr[p * K + k] = dense_out(cg, d, cg_addc(cg, x0, p), k), mask[p * K + k] = dense_mask(cg, d, k);
}

static void dense_tile(Cg *cg, void *ctx, LLVMValueRef x0, const KwGroup *grp, int ng, int64_t w) {
    Dense *d = ctx;
    const ConvGeom *g = &d->g;
    int K = d->v->K;
    int nacc = (int)w * K;
    int64_t kstride = (int64_t)K * cg->vw; /* floats per (kw, ic) step of packed weights */
    LLVMValueRef acc[TILE_MAX_VALS];
    for (int i = 0; i < nacc; i++) acc[i] = cg_vf(cg, 0.0);
    LLVMValueRef pptr[TILE_MAX_VALS], pmask[TILE_MAX_VALS]; /* the partial sums' places */
    if (d->first) { /* a later chunk: the partial sums the earlier ones left in the output */
        dense_partials(cg, d, x0, w, pptr, pmask);
        cg_partials_load(cg, d->first, acc, nacc, pptr, pmask);
    }

    TileLoop lh;
    tile_loop_begin(cg, &lh, d->kh_lo, d->kh_hi, 1, acc, nacc, "kh");
    lh.rolled = true; /* tap loops stay loops: the tile's registers are the budget */
    LLVMValueRef iy = cg_addc(cg, cg_add(cg, cg_mulc(cg, d->oy, g->sh), cg_mulc(cg, lh.iv, g->dh)), -g->ph);
    LLVMValueRef ix0 = cg_addc(cg, cg_mulc(cg, x0, g->sw), -g->pw);
    LLVMValueRef roff = cg_add(cg, cg_add(cg, cg_mulc(cg, d->n, d->isN), cg_mulc(cg, iy, d->isH)),
                               cg_add(cg, cg_mulc(cg, ix0, d->isW), d->ic0));
    LLVMValueRef rowp = cg_gep(cg, d->in_base, roff);
    LLVMValueRef wk = cg_gep(cg, d->wblk, cg_mulc(cg, lh.iv, g->KW * g->cpg * kstride));
    if (d->pf_step) {
        /* step (oy, tile, kh) of the row-major walk over a block fetches its chunk of the next
           block, so the next block is in L2 when its first row starts */
        LLVMValueRef t = cg_divc(cg, x0, d->v->P);
        LLVMValueRef row = cg_add(cg, cg_mulc(cg, d->n, g->OH), d->oy);
        LLVMValueRef seq = cg_add(cg, cg_mulc(cg, cg_add(cg, cg_mulc(cg, row, ceil_div64(g->OW, d->v->P)), t), g->KH), lh.iv);
        /* the next block's weights when this chunk of items runs it too; else (another thread's
           block, or none) this block's own, which costs nothing */
        LLVMValueRef next = LLVMBuildSelect(cg->b, d->pf_next, cg_i64(cg, d->wblock), cg_i64(cg, 0), "");
        d->pf_base = cg_gep(cg, d->wblk, cg_add(cg, cg_mulc(cg, seq, d->pf_chunk), next));
    }
    for (int gi = 0; gi < ng; gi++) {
        const KwGroup *kg = &grp[gi];
        if (!kg->mask) continue;
        if (d->merge && d->nkc == 1) {
            /* kw·dw·isW == cpg: the taps' channels are one run of (kb-ka)·cpg floats */
            TileLoop lj;
            tile_loop_begin(cg, &lj, cg_i64(cg, kg->ka * g->cpg), cg_i64(cg, kg->kb * g->cpg), 1, acc, nacc, "j");
            lj.rolled = kg->kb - kg->ka > 1; /* several taps (the stem's 7 x 3 channels); a 1x1's channel loop may unroll */
            dense_step(cg, d, acc, w, kg->mask, cg_gep(cg, rowp, lj.iv), cg_gep(cg, wk, cg_mulc(cg, lj.iv, kstride)),
                       lj.iv);
            tile_loop_end(cg, &lj, acc);
            continue;
        }
        TileLoop lw;
        LLVMValueRef kw = cg_i64(cg, kg->ka);
        bool kloop = kg->kb - kg->ka > 1;
        if (kloop) {
            tile_loop_begin(cg, &lw, cg_i64(cg, kg->ka), cg_i64(cg, kg->kb), 1, acc, nacc, "kw");
            lw.rolled = true;
            kw = lw.iv;
        }
        LLVMValueRef inp_kw = cg_gep(cg, rowp, cg_mulc(cg, kw, g->dw * d->isW));
        LLVMValueRef wp_kw = cg_gep(cg, wk, cg_mulc(cg, kw, g->cpg * kstride));
        TileLoop li;
        tile_loop_begin(cg, &li, d->c_lo ? d->c_lo : cg_i64(cg, 0), d->c_hi ? d->c_hi : cg_i64(cg, g->cpg), 1, acc, nacc,
                        "ic");
        dense_step(cg, d, acc, w, kg->mask, cg_gep(cg, inp_kw, li.iv), cg_gep(cg, wp_kw, cg_mulc(cg, li.iv, kstride)),
                   cg_add(cg, cg_mulc(cg, kw, g->cpg), li.iv));
        tile_loop_end(cg, &li, acc);
        if (kloop) tile_loop_end(cg, &lw, acc);
    }
    tile_loop_end(cg, &lh, acc);

    CgIf c;
    if (d->last) { /* not the last chunk: the bare partial sums */
        dense_partials(cg, d, x0, w, pptr, pmask);
        cg_partials_store_begin(cg, &c, d->last, acc, nacc, pptr, pmask);
    }
    for (int64_t p = 0; p < w; p++) {
        LLVMValueRef ox = cg_addc(cg, x0, p);
        for (int k = 0; k < K; k++)
            cg_conv_store(cg, &d->o, acc[p * K + k], d->n, cg_addc(cg, d->oc0, (int64_t)k * cg->vw), d->oy, ox,
                          dense_mask(cg, d, k));
    }
    if (d->last) cg_if_end(cg, &c);
}

/* One work item: (group, oc block, image, output row, part). */
static void dense_body(Cg *cg, LLVMValueRef item, void *user) {
    Dense *d = user;
    const ConvGeom *g = &d->g;
    LLVMValueRef part = cg_remc(cg, item, d->np), r = cg_divc(cg, item, d->np);
    d->oy = cg_remc(cg, r, g->OH), r = cg_divc(cg, r, g->OH);
    d->n = cg_remc(cg, r, g->N), r = cg_divc(cg, r, g->N);
    LLVMValueRef blk = cg_remc(cg, r, d->nblk), grp = cg_divc(cg, r, d->nblk);
    if (d->pf_step) { /* items run block by block: block b's are [b·N·OH·np, (b+1)·N·OH·np) */
        LLVMValueRef first_next = cg_mulc(cg, cg_addc(cg, r, 1), g->N * g->OH * d->np);
        d->pf_next = LLVMBuildICmp(cg->b, LLVMIntSLT, first_next, cg->task_end, "pf_next");
    }
    d->in_base = cg_view_ptr(cg, &d->in, cg_i64(cg, 0));
    d->o.base = cg_view_ptr(cg, &d->o.view, cg_i64(cg, 0));
    d->ic0 = cg_mulc(cg, grp, g->cpg);
    tap_range(cg, d->oy, g->sh, g->ph, g->dh, g->KH, g->H, &d->kh_lo, &d->kh_hi);
    LLVMValueRef wgrp = cg_gep(cg, d->w, cg_mulc(cg, grp, d->wgroup));
    LLVMValueRef ocg = cg_mulc(cg, grp, g->opg);
    int64_t bw = (int64_t)d->var[0].K * cg->vw; /* channels per full block */
    /* the reduction in chunks of KC input channels, each over the whole row: a chunk's weights
       stay in L2 across the row's tiles (else every tile streams the block's weights) */
    CgLoop lc;
    d->c_lo = cg_i64(cg, 0), d->c_hi = cg_i64(cg, g->cpg), d->first = d->last = NULL;
    if (d->nkc > 1) {
        cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, d->nkc), 1, "chunk");
        d->c_lo = cg_mulc(cg, lc.iv, d->KC);
        d->c_hi = cg_min(cg, cg_addc(cg, d->c_lo, d->KC), cg_i64(cg, g->cpg));
        d->first = LLVMBuildICmp(cg->b, LLVMIntEQ, lc.iv, cg_i64(cg, 0), "first");
        d->last = LLVMBuildICmp(cg->b, LLVMIntEQ, lc.iv, cg_i64(cg, d->nkc - 1), "last");
    }
    if (d->nfull) {
        CgIf c;
        bool tail = d->nblk > d->nfull;
        if (tail) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, blk, cg_i64(cg, d->nfull), ""), "full");
        d->v = &d->var[0];
        d->wblk = cg_gep(cg, wgrp, cg_mulc(cg, blk, d->wblock));
        d->oc0 = cg_add(cg, ocg, cg_mulc(cg, blk, bw));
        emit_row_tiles(cg, g, d->v->P, d->np, part, dense_tile, d);
        if (tail) cg_if_end(cg, &c);
    }
    if (d->nblk > d->nfull) {
        CgIf c;
        if (d->nfull) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntEQ, blk, cg_i64(cg, d->nfull), ""), "tail");
        d->v = &d->var[1];
        d->wblk = cg_gep(cg, wgrp, cg_i64(cg, d->nfull * d->wblock));
        d->oc0 = cg_addc(cg, ocg, d->nfull * bw);
        emit_row_tiles(cg, g, d->v->P, d->np, part, dense_tile, d);
        if (d->nfull) cg_if_end(cg, &c);
    }
    if (d->nkc > 1) cg_loop_end(cg, &lc);
}

/* Pack W[O, cpg, KH, KW] as [group][block][kh][kw][ic][K·vw], zero past the group's channels. */
static float *dense_pack(Cg *cg, const Dense *d, const float *w, int64_t *count) {
    const ConvGeom *g = &d->g;
    int vw = cg->vw;
    int64_t taps = g->KH * g->KW;
    *count = d->wgroup * g->groups;
    float *p = xcalloc((size_t)*count, sizeof *p);
    for (int64_t gr = 0; gr < g->groups; gr++)
        for (int64_t b = 0; b < d->nblk; b++) {
            const Variant *v = &d->var[b < d->nfull ? 0 : 1];
            int64_t kv = (int64_t)v->K * vw, oc_b = b * d->var[0].K * vw;
            float *dst = p + gr * d->wgroup + b * d->wblock;
            for (int64_t t = 0; t < taps; t++)
                for (int64_t ic = 0; ic < g->cpg; ic++)
                    for (int64_t l = 0; l < kv; l++) {
                        int64_t o = oc_b + l;
                        if (o >= g->opg) continue;
                        int64_t oc = gr * g->opg + o;
                        dst[(t * g->cpg + ic) * kv + l] = w[(oc * g->cpg + ic) * taps + t];
                    }
        }
    return p;
}

/* A 1×1, stride-1, unpadded conv over views whose pixels are evenly spaced is a GEMM over all
 * N·H·W pixels: one long "row", so tiles never straddle image rows. */
static void flatten_gemm(Dense *d) {
    ConvGeom *g = &d->g;
    const CgView *o = &d->o.view;
    if (g->KH != 1 || g->KW != 1 || g->sh != 1 || g->sw != 1 || g->ph || g->pw) return;
    bool in_ok = (g->H == 1 || d->isH == g->W * d->isW) && (g->N == 1 || d->isN == g->H * g->W * d->isW);
    bool out_ok = (g->OH == 1 || o->stride[2] == g->OW * o->stride[3]) &&
                  (g->N == 1 || o->stride[0] == g->OH * g->OW * o->stride[3]);
    if (!in_ok || !out_ok) return;
    d->o.flat_oh = g->OH, d->o.flat_ow = g->OW;
    int64_t m = g->N * g->H * g->W;
    g->W = g->OW = m;
    g->N = g->H = g->OH = 1;
}

enum { BLOCK_W_BYTES = 3 << 19, CHUNK_W_BYTES = 256 * 1024 }; /* 1.5 MiB; 256 KiB */

/* Everything of a dense conv but its dispatch: the tile choice, the packed weights. `in` is
 * where it reads (isN, isH, isW its pixel strides); `flatten` lets a 1×1 conv run as one long row.
 * Returns the number of work items. */
static int64_t dense_setup(Cg *cg, const Node *n, const ConvGeom *geo, Dense *dp, const CgView *in, int64_t isN,
                           int64_t isH, int64_t isW, bool flatten) {
    Dense d = {.g = *geo, .in = *in, .isN = isN, .isH = isH, .isW = isW};
    d.o = cg_conv_out(cg, n, geo->O);
    if (flatten) flatten_gemm(&d);
    const ConvGeom *g = &d.g;
    int vw = cg->vw;
    /* choose K: the fewest estimated cycles per row over the group's blocks */
    int64_t best = -1;
    for (int K = 1; K <= 4; K++) {
        if ((int64_t)(K - 1) * vw >= g->opg) break;
        int64_t nfull = g->opg / ((int64_t)K * vw), rem = g->opg - nfull * K * vw;
        int Kt = (int)ceil_div64(rem, vw);
        int64_t cost = nfull * row_cost(cg, K, g->OW) + (Kt ? row_cost(cg, Kt, g->OW) : 0);
        /* ties go to the wider block (fewer broadcasts per FMA) unless its weights, with the
           next block's prefetched beside them, would crowd L2 */
        bool big = g->KH * g->KW * g->cpg * K * vw * 4 > 256 * 1024;
        if (best < 0 || cost < best || (cost == best && !big)) {
            best = cost;
            d.nfull = nfull;
            d.var[0] = (Variant){K, tile_width(cg, K, g->OW), vw};
            d.var[1] = (Variant){Kt, Kt ? tile_width(cg, Kt, g->OW) : 0, rem - (int64_t)(Kt - 1) * vw};
        }
    }
    d.nblk = d.nfull + (d.var[1].K ? 1 : 0);
    int64_t taps = g->KH * g->KW;
    d.wblock = taps * g->cpg * d.var[0].K * vw;
    d.wgroup = d.nfull * d.wblock + taps * g->cpg * d.var[1].K * vw;
    d.merge = g->dw * d.isW == g->cpg;
    /* A block's weights beyond L2 (FCN's 3x3 head, 2048 -> 512: 4.7 MB a block of 64 channels)
       would stream from memory for every tile: the reduction runs in chunks of at most
       CHUNK_W_BYTES of the block's weights, partial sums in the output between them. */
    d.nkc = 1, d.KC = g->cpg;
    if (d.wblock * 4 > BLOCK_W_BYTES) {
        d.nkc = ceil_div64(d.wblock * 4, CHUNK_W_BYTES);
        if (d.nkc > g->cpg) d.nkc = g->cpg;
        d.KC = ceil_div64(g->cpg, d.nkc);
        d.nkc = ceil_div64(g->cpg, d.KC);
    }
    /* Blocks too big to stay in L2 from one inference to the next come from memory: prefetch the
       next block while this one computes (off for the GEMM form, whose rows are not walked). */
    if (d.wblock * 4 >= 128 * 1024 && g->N * g->OH > 1 && d.nkc == 1) {
        int64_t steps = g->N * g->OH * ceil_div64(g->OW, d.var[0].P) * g->KH;
        int64_t jn = g->KW * g->cpg; /* (kw, ic) steps per (tile, kh) step */
        d.pf_chunk = ceil_div64(d.wblock, steps);
        d.pf_step = ceil_div64(d.pf_chunk, jn);
    }
    int64_t rows = g->groups * d.nblk * g->N * g->OH;
    int64_t pmin = d.var[0].P;
    if (d.nblk > d.nfull && (!d.nfull || d.var[1].P < pmin)) pmin = d.var[1].P;
    d.np = row_parts(g, rows, pmin);

    int64_t count;
    float *packed = dense_pack(cg, &d, ir_weight(cg->g, n, "weight")->data, &count);
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight", n->name);
    d.w = cg_weights(cg, packed, count, name);
    free(packed);
    *dp = d;
    return rows * d.np;
}

static bool conv_dense(Cg *cg, const Node *n, const ConvGeom *geo) {
    const CgView *in = &cg->views[n->in[0]];
    Dense d;
    int64_t items = dense_setup(cg, n, geo, &d, in, in->stride[0], in->stride[2], in->stride[3], true);
    cg_parallel(cg, geo->groups > 1 ? "conv2d_grouped" : "conv2d", items, dense_body, &d);
    return true;
}

/* ---- depthwise ------------------------------------------------------------------------------------ */

/* groups == C_in, multiplier m = O / C (small): output channel c·m + j reads input channel c.
 * Vectorised over input channels: a tile of P pixels × m accumulators per channel vector; for
 * m > 1 the m accumulators are interleaved by shuffles into m vectors of adjacent output
 * channels before the store. Weights packed [kh][kw][j][C padded]. */
typedef struct Dw {
    ConvGeom g;
    int64_t isN, isH, isW, m, ncv, cpad, np;
    int P, Pt;
    CgView in;
    ConvOut o;
    LLVMValueRef w;
    LLVMValueRef in_base, n, oy, kh_lo, kh_hi, c0;
    int64_t lanes; /* valid channels of the current channel vector */
} Dw;

static void dw_tile(Cg *cg, void *ctx, LLVMValueRef x0, const KwGroup *grp, int ng, int64_t w) {
    Dw *d = ctx;
    const ConvGeom *g = &d->g;
    int vw = cg->vw;
    int m = (int)d->m, nacc = (int)w * m;
    LLVMValueRef lmask = d->lanes < vw ? cg_mask(cg, d->lanes) : NULL;
    LLVMValueRef acc[TILE_MAX_VALS];
    for (int i = 0; i < nacc; i++) acc[i] = cg_vf(cg, 0.0);
    TileLoop lh;
    tile_loop_begin(cg, &lh, d->kh_lo, d->kh_hi, 1, acc, nacc, "kh");
    lh.rolled = true; /* tap loops stay loops: the tile's registers are the budget */
    LLVMValueRef iy = cg_addc(cg, cg_add(cg, cg_mulc(cg, d->oy, g->sh), cg_mulc(cg, lh.iv, g->dh)), -g->ph);
    LLVMValueRef ix0 = cg_addc(cg, cg_mulc(cg, x0, g->sw), -g->pw);
    LLVMValueRef roff = cg_add(cg, cg_add(cg, cg_mulc(cg, d->n, d->isN), cg_mulc(cg, iy, d->isH)),
                               cg_add(cg, cg_mulc(cg, ix0, d->isW), d->c0));
    LLVMValueRef rowp = cg_gep(cg, d->in_base, roff);
    LLVMValueRef wk = cg_gep(cg, d->w, cg_add(cg, cg_mulc(cg, lh.iv, g->KW * d->m * d->cpad), d->c0));
    for (int gi = 0; gi < ng; gi++) {
        const KwGroup *kg = &grp[gi];
        if (!kg->mask) continue;
        TileLoop lw;
        LLVMValueRef kw = cg_i64(cg, kg->ka);
        bool kloop = kg->kb - kg->ka > 1;
        if (kloop) {
            tile_loop_begin(cg, &lw, cg_i64(cg, kg->ka), cg_i64(cg, kg->kb), 1, acc, nacc, "kw");
            lw.rolled = true;
            kw = lw.iv;
        }
        LLVMValueRef wv[8];
        for (int j = 0; j < m; j++)
            wv[j] = tile_wload(cg, cg_gep(cg, wk, cg_addc(cg, cg_mulc(cg, kw, d->m * d->cpad), j * d->cpad)));
        LLVMValueRef inp = cg_gep(cg, rowp, cg_mulc(cg, kw, g->dw * d->isW));
        for (int64_t p = 0; p < w; p++) {
            if (!(kg->mask >> p & 1)) continue;
            LLVMValueRef xp = cg_gep(cg, inp, cg_i64(cg, p * g->sw * d->isW));
            LLVMValueRef x = lmask ? cg_vload_masked(cg, xp, lmask) : cg_vload(cg, xp);
            for (int j = 0; j < m; j++) acc[p * m + j] = cg_fma(cg, x, wv[j], acc[p * m + j]);
        }
        if (kloop) tile_loop_end(cg, &lw, acc);
    }
    tile_loop_end(cg, &lh, acc);

    int64_t out_lanes = d->lanes * d->m; /* valid output channels from c0·m */
    for (int64_t p = 0; p < w; p++) {
        LLVMValueRef ox = cg_addc(cg, x0, p);
        for (int jv = 0; jv < m; jv++) {
            int64_t valid = out_lanes - (int64_t)jv * vw;
            if (valid <= 0) break;
            LLVMValueRef r = acc[p * m];
            if (m > 1) {
                /* lane l of output vector jv is channel f = jv·vw + l: accumulator f % m, lane f / m */
                r = LLVMGetUndef(cg->t_vf);
                for (int j = 0; j < m; j++) {
                    LLVMValueRef idx[64];
                    for (int l = 0; l < vw; l++) {
                        int f = jv * vw + l;
                        idx[l] = LLVMConstInt(cg->t_i32, (unsigned long long)(f % m == j ? vw + f / m : l), 0);
                    }
                    r = LLVMBuildShuffleVector(cg->b, r, acc[p * m + j], LLVMConstVector(idx, (unsigned)vw), "ilv");
                }
            }
            LLVMValueRef oc = cg_addc(cg, cg_mulc(cg, d->c0, d->m), (int64_t)jv * vw);
            cg_conv_store(cg, &d->o, r, d->n, oc, d->oy, ox, valid < vw ? cg_mask(cg, valid) : NULL);
        }
    }
}

static void dw_body(Cg *cg, LLVMValueRef item, void *user) {
    Dw *d = user;
    const ConvGeom *g = &d->g;
    int vw = cg->vw;
    /* item = ((n·OH + oy)·ncv + cv)·np + part: the channel vectors of a row are consecutive
       items, so a row of input pixels is fetched once for all of them (with the channel vector
       outermost, each pass over the image read one cache line of every pixel's channels) */
    LLVMValueRef part = cg_remc(cg, item, d->np), r = cg_divc(cg, item, d->np);
    LLVMValueRef cv = cg_remc(cg, r, d->ncv);
    r = cg_divc(cg, r, d->ncv);
    d->oy = cg_remc(cg, r, g->OH);
    d->n = cg_divc(cg, r, g->OH);
    d->in_base = cg_view_ptr(cg, &d->in, cg_i64(cg, 0));
    d->o.base = cg_view_ptr(cg, &d->o.view, cg_i64(cg, 0));
    d->c0 = cg_mulc(cg, cv, vw);
    tap_range(cg, d->oy, g->sh, g->ph, g->dh, g->KH, g->H, &d->kh_lo, &d->kh_hi);
    int64_t nfull = g->C / vw, rest = g->C - nfull * vw;
    if (nfull) {
        CgIf c;
        if (rest) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, cv, cg_i64(cg, nfull), ""), "full");
        d->lanes = vw;
        emit_row_tiles(cg, g, d->P, d->np, part, dw_tile, d);
        if (rest) cg_if_end(cg, &c);
    }
    if (rest) {
        CgIf c;
        if (nfull) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntEQ, cv, cg_i64(cg, nfull), ""), "tail");
        d->lanes = rest;
        emit_row_tiles(cg, g, d->P, d->np, part, dw_tile, d);
        if (nfull) cg_if_end(cg, &c);
    }
}

/* Everything of a depthwise conv but its dispatch, writing through `o`; returns the work items. */
static int64_t dw_setup(Cg *cg, const Node *n, const ConvGeom *geo, Dw *dp, ConvOut o) {
    int vw = cg->vw;
    Dw d = {.g = *geo, .in = cg->views[n->in[0]], .m = geo->opg, .o = o};
    d.isN = d.in.stride[0], d.isH = d.in.stride[2], d.isW = d.in.stride[3];
    d.ncv = ceil_div64(geo->C, vw);
    d.cpad = d.ncv * vw;
    int pmax = (vec_regs(cg) == 32 ? 24 : 10) / (int)d.m;
    if (pmax > 16) pmax = 16;
    if (pmax < 1) pmax = 1;
    int64_t T = ceil_div64(geo->OW, pmax);
    d.P = (int)ceil_div64(geo->OW, T);
    int64_t rows = d.ncv * geo->N * geo->OH;
    d.np = row_parts(geo, rows, d.P);

    const float *w = ir_weight(cg->g, n, "weight")->data;
    int64_t taps = geo->KH * geo->KW, count = taps * d.m * d.cpad;
    float *p = xcalloc((size_t)count, sizeof *p);
    for (int64_t t = 0; t < taps; t++)
        for (int64_t j = 0; j < d.m; j++)
            for (int64_t c = 0; c < geo->C; c++) p[(t * d.m + j) * d.cpad + c] = w[(c * d.m + j) * taps + t];
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight", n->name);
    d.w = cg_weights(cg, p, count, name);
    free(p);
    *dp = d;
    return rows * d.np;
}

static bool conv_depthwise(Cg *cg, const Node *n, const ConvGeom *geo) {
    Dw d;
    int64_t items = dw_setup(cg, n, geo, &d, cg_conv_out(cg, n, geo->O));
    cg_parallel(cg, "conv2d_depthwise", items, dw_body, &d);
    return true;
}

/* ---- a depthwise conv row by row inside the 1×1 conv that reads it (fuse-dw) ------------------------- */

/* One work item is one output row (n, oy) of both: the depthwise kernel writes the row, with its
 * epilogue, into a buffer on the stack (OW pixels of cpad channels, the tail lanes unwritten and
 * never read), then the dense kernel runs the 1×1 conv over that row as its input and stores
 * through its own view and epilogue. The same tiles and sums as the two kernels apart. */
typedef struct DwRows {
    Dw dw;
    Dense pw;
    LLVMValueRef row; /* the buffer, allocated once per task */
} DwRows;

static void dw_rows_body(Cg *cg, LLVMValueRef item, void *user) {
    DwRows *f = user;
    Dw *d = &f->dw;
    Dense *e = &f->pw;
    int vw = cg->vw;
    LLVMValueRef zero = cg_i64(cg, 0);
    d->oy = cg_remc(cg, item, d->g.OH);
    d->n = cg_divc(cg, item, d->g.OH);
    d->in_base = cg_view_ptr(cg, &d->in, zero);
    d->o.base = f->row;
    tap_range(cg, d->oy, d->g.sh, d->g.ph, d->g.dh, d->g.KH, d->g.H, &d->kh_lo, &d->kh_hi);
    int64_t nfull = d->g.C / vw, rest = d->g.C - nfull * vw;
    if (nfull) {
        CgLoop l;
        cg_loop_begin(cg, &l, zero, cg_i64(cg, nfull), 1, "cv");
        d->c0 = cg_mulc(cg, l.iv, vw);
        d->lanes = vw;
        emit_row_tiles(cg, &d->g, d->P, 1, zero, dw_tile, d);
        cg_loop_end(cg, &l);
    }
    if (rest) {
        d->c0 = cg_i64(cg, nfull * vw);
        d->lanes = rest;
        emit_row_tiles(cg, &d->g, d->P, 1, zero, dw_tile, d);
    }

    e->oy = d->oy, e->n = d->n;
    e->in_base = f->row;
    e->o.base = cg_view_ptr(cg, &e->o.view, zero);
    e->ic0 = zero;
    e->kh_lo = zero, e->kh_hi = cg_i64(cg, 1);
    int64_t bw = (int64_t)e->var[0].K * vw;
    if (e->nfull) {
        CgLoop l;
        cg_loop_begin(cg, &l, zero, cg_i64(cg, e->nfull), 1, "blk");
        e->v = &e->var[0];
        e->wblk = cg_gep(cg, e->w, cg_mulc(cg, l.iv, e->wblock));
        e->oc0 = cg_mulc(cg, l.iv, bw);
        emit_row_tiles(cg, &e->g, e->v->P, 1, zero, dense_tile, e);
        cg_loop_end(cg, &l);
    }
    if (e->nblk > e->nfull) {
        e->v = &e->var[1];
        e->wblk = cg_gep(cg, e->w, cg_i64(cg, e->nfull * e->wblock));
        e->oc0 = cg_i64(cg, e->nfull * bw);
        emit_row_tiles(cg, &e->g, e->v->P, 1, zero, dense_tile, e);
    }
}

/* An alloca of n floats in the task function's entry block (so once per task, not per item). */
static LLVMValueRef task_buffer(Cg *cg, int64_t n, const char *name) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b), entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(cg->b, first);
    else LLVMPositionBuilderAtEnd(cg->b, entry);
    LLVMValueRef a = LLVMBuildAlloca(cg->b, LLVMArrayType2(cg->t_f32, (uint64_t)n), name);
    LLVMSetAlignment(a, 64);
    LLVMPositionBuilderAtEnd(cg->b, cur);
    return a;
}

typedef struct DwRowsSetup {
    DwRows *f;
    int64_t row_floats;
} DwRowsSetup;

static void dw_rows_task(Cg *cg, LLVMValueRef item, void *user) {
    DwRowsSetup *s = user;
    if (!s->f->row) s->f->row = task_buffer(cg, s->row_floats, "dwrow");
    dw_rows_body(cg, item, s->f);
}

static bool conv_dw_rows(Cg *cg, const Node *p, const Node *dn) {
    ConvGeom gd = conv_geom(cg->g, dn), gp = conv_geom(cg->g, p);
    NETC_ASSERT(gd.groups == gd.C && gd.opg == 1 && gp.KH == 1 && gp.KW == 1 && gp.sh == 1 && gp.sw == 1);
    NETC_ASSERT(cg->views[dn->in[0]].stride[1] == 1 && (cg->views[p->out].stride[1] == 1 || gp.O == 1));
    DwRows f = {0};
    int64_t cpad = ceil_div64(gd.C, cg->vw) * cg->vw;
    /* the row buffer as the depthwise kernel's output: pixel ox at ox·cpad, channels innermost */
    ConvOut o = {.n = dn, .bias = padded_bias(cg, dn, gd.O), .sC = 1, .sW = cpad};
    dw_setup(cg, dn, &gd, &f.dw, o);
    f.dw.np = 1;
    /* ... and as the 1×1 conv's input, one row of OW pixels */
    dense_setup(cg, p, &gp, &f.pw, &cg->views[p->in[0]], 0, 0, cpad, false);
    f.pw.np = 1;
    f.pw.pf_step = 0;
    f.pw.merge = f.pw.g.dw * f.pw.isW == f.pw.g.cpg;
    DwRowsSetup s = {&f, gd.OW * cpad};
    cg_parallel(cg, "conv2d_dw_rows", gd.N * gd.OH, dw_rows_task, &s);
    return true;
}

/* ---- scalar path: any strides ---------------------------------------------------------------------- */

typedef struct Scalar {
    ConvGeom g;
    CgView in;
    ConvOut o;
    LLVMValueRef w;
} Scalar;

/* One work item: (image, output channel, output row); loops over the row's pixels with the
 * kh and kw ranges clamped to the input, so no tap is tested in the loop. */
static void scalar_body(Cg *cg, LLVMValueRef item, void *user) {
    Scalar *s = user;
    const ConvGeom *g = &s->g;
    const CgView *in = &s->in;
    LLVMValueRef oy = cg_remc(cg, item, g->OH), r = cg_divc(cg, item, g->OH);
    LLVMValueRef o = cg_remc(cg, r, g->O), n = cg_divc(cg, r, g->O);
    LLVMValueRef ic0 = cg_mulc(cg, cg_divc(cg, o, g->opg), g->cpg);
    LLVMValueRef in_base = cg_view_ptr(cg, in, cg_i64(cg, 0));
    s->o.base = cg_view_ptr(cg, &s->o.view, cg_i64(cg, 0));
    LLVMValueRef kh_lo, kh_hi;
    tap_range(cg, oy, g->sh, g->ph, g->dh, g->KH, g->H, &kh_lo, &kh_hi);
    LLVMValueRef wo = cg_gep(cg, s->w, cg_mulc(cg, o, g->cpg * g->KH * g->KW));
    CgLoop lx;
    cg_loop_begin(cg, &lx, cg_i64(cg, 0), cg_i64(cg, g->OW), 1, "ox");
    LLVMValueRef kw_lo, kw_hi;
    tap_range(cg, lx.iv, g->sw, g->pw, g->dw, g->KW, g->W, &kw_lo, &kw_hi);
    LLVMValueRef acc = cg_f32(cg, 0.0);
    TileLoop lc, lh, lw;
    tile_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, g->cpg), 1, &acc, 1, "c");
    tile_loop_begin(cg, &lh, kh_lo, kh_hi, 1, &acc, 1, "kh");
    tile_loop_begin(cg, &lw, kw_lo, kw_hi, 1, &acc, 1, "kw");
    LLVMValueRef iy = cg_addc(cg, cg_add(cg, cg_mulc(cg, oy, g->sh), cg_mulc(cg, lh.iv, g->dh)), -g->ph);
    LLVMValueRef ix = cg_addc(cg, cg_add(cg, cg_mulc(cg, lx.iv, g->sw), cg_mulc(cg, lw.iv, g->dw)), -g->pw);
    LLVMValueRef ioff = cg_add(cg, cg_add(cg, cg_mulc(cg, n, in->stride[0]), cg_mulc(cg, cg_add(cg, ic0, lc.iv), in->stride[1])),
                               cg_add(cg, cg_mulc(cg, iy, in->stride[2]), cg_mulc(cg, ix, in->stride[3])));
    LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, in_base, ioff), "x");
    LLVMValueRef woff = cg_add(cg, cg_mulc(cg, cg_add(cg, cg_mulc(cg, lc.iv, g->KH), lh.iv), g->KW), lw.iv);
    LLVMValueRef wv = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, wo, woff), "wv");
    acc = cg_fma(cg, x, wv, acc);
    tile_loop_end(cg, &lw, &acc);
    tile_loop_end(cg, &lh, &acc);
    tile_loop_end(cg, &lc, &acc);
    cg_conv_store(cg, &s->o, acc, n, o, oy, lx.iv, NULL);
    cg_loop_end(cg, &lx);
}

static bool conv_scalar(Cg *cg, const Node *n, const ConvGeom *g) {
    Scalar s = {.g = *g, .in = cg->views[n->in[0]]};
    s.o = cg_conv_out(cg, n, g->O);
    const Tensor *w = ir_weight(cg->g, n, "weight");
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight", n->name);
    s.w = cg_weights(cg, w->data, ir_numel(w), name);
    cg_parallel(cg, "conv2d_scalar", g->N * g->O * g->OH, scalar_body, &s);
    return true;
}

/* ---- the generator ------------------------------------------------------------------------------- */

bool cg_kernel_conv2d(Cg *cg, const Node *n) {
    ConvGeom g = conv_geom(cg->g, n);
    const CgView *in = &cg->views[n->in[0]], *out = &cg->views[n->out];
    bool chans = (in->stride[1] == 1 || g.C == 1) && (out->stride[1] == 1 || g.O == 1);
    if (n->algo == CONV_ALGO_DW_IN_CONSUMER) return true; /* computed by the next node */
    if (n->algo == CONV_ALGO_DW_ROWS) return conv_dw_rows(cg, n, ir_node(cg->g, ir_tensor(cg->g, n->in[0])->producer));
    if (!chans) return conv_scalar(cg, n, &g);
    if (ir_winograd_m(n) && in->stride[1] == 1 && out->stride[1] == 1) return cg_winograd_conv2d(cg, n);
    if (cg_gemm_eligible(cg, n)) return cg_gemm_conv2d(cg, n);
    if (g.groups > 1 && g.cpg == 1 && g.opg <= 4) return conv_depthwise(cg, n, &g);
    return conv_dense(cg, n, &g);
}

/* cg_gemm.c — 1×1 convolutions as a blocked GEMM on channels-innermost views: the output pixels
 * are the M dimension, output channels N, input channels the reduction K.
 *
 * Register tile: MR pixels × KV vectors of output channels, MR·KV accumulators beside KV weight
 * vectors and a broadcast (choose_tile: 24-27 accumulators of 32 registers on AVX-512, 12 of 16
 * on AVX2/SSE). Per input channel it loads KV weight vectors and broadcasts MR input values, for
 * MR·KV FMAs. The pixels run as one sequence of N·OH·OW, tiled evenly (the last tile's spare
 * pixels repeat the last pixel), so tiles never stop at a row's end; the last output block may be narrower
 * (its last vector masked, so a concat slice's neighbour is never written).
 *
 * Blocking: a work item is one block of MB tiles (M) × one block of KV·vw output channels (N).
 * Its reduction runs in chunks of KC input channels (the chunk's weights, packed contiguous at
 * compile time, in 32 KiB): per chunk, every tile of the block, so the chunk's weights stay in L1
 * while the tiles stream their inputs; each k step also prefetches a line of the next chunk into
 * L2, so the first tile of a chunk does not wait on memory. Between chunks the partial sums go to
 * the output itself (its elements belong to this item alone, and a conv's output never shares
 * storage with its input or its residual operands); the last chunk adds the bias and applies the
 * fused epilogue. The items' order (blocking) keeps either a block's inputs or a block's weights
 * in L2 across consecutive items, whichever moves fewer bytes.
 *
 * Pixels: a stride-1 conv over evenly spaced views finds pixel q at q times the pixel stride;
 * otherwise (strided convs, slices along H or W) each tile decodes its pixels' (n, oy, ox) once.
 * The activations are read in place: a tile's MR input pixels are MR sequential streams. */
#include <stdlib.h>
#include <string.h>

#include "cg_tile.h"

typedef struct Gemm {
    ConvGeom g;
    CgView in;
    ConvOut o;
    bool flat;            /* pixel q's input at q·ps, its output at q·osW (else from (n, oy, ox)) */
    int64_t M;            /* output pixels N·OH·OW */
    int64_t isN, isH, ps; /* input strides: image, row, one output pixel step (sw·isW) */
    int MR, wl;           /* pixels per tile; of the last tile */
    int64_t T;            /* tiles */
    int64_t MB, nmb;      /* tiles per M block, M blocks */
    bool jmajor;          /* items output-block-major (a block's weights stay in L2) */
    int KV[2];            /* vectors per output block: full blocks, the tail (0: none) */
    int64_t last_lanes;   /* valid lanes of the tail block's last vector */
    int64_t nfull, nj;    /* full output blocks, all of them */
    int64_t wblock;       /* packed weight floats per full block */
    int64_t KC, nkc;      /* input channels per chunk, chunks */
    LLVMValueRef w;
    LLVMValueRef in_base; /* per work item */
} Gemm;

/* Half-cycles of one reduction step of a w × K tile, scaled by 4: w·K FMAs and w + K loads, two of
 * either per cycle, and at least 8 independent chains (2 ports × 4 cycles of FMA latency); the
 * loads again as the tie-break (fewer loads per FMA). */
static int64_t step_cost(int64_t w, int64_t K) {
    int64_t f = w * K, l = w + K, c = f > l ? f : l;
    return 4 * (c > 8 ? c : 8) + l;
}

/* The register tile for O output channels over M pixels: MR pixels × KV vectors, MR·KV
 * accumulators within the budget of the other register-tiled kernels (28 of 32 registers, 12 of
 * 16) with KV weight vectors and a broadcast beside them; the tile widths evened out over M
 * (49 pixels at MR 9: 6 tiles of 9 and 4, not 8 of 6 and 1 at MR 6). The fewest estimated
 * cycles over all tiles and output blocks win. */
static void choose_tile(const Cg *cg, int64_t O, int64_t M, int *MR, int *KV) {
    int regs = cg->vregs, budget = regs == 32 ? 28 : 12, vw = cg->vw;
    int64_t nvec = ceil_div64(O, vw), best = -1;
    for (int k = 1; k <= 4 && k <= nvec; k++) {
        int p = budget / k, q = (regs - 1 - k) / k;
        if (q < p) p = q;
        if (p > M) p = (int)M;
        if (p < 1) p = 1;
        int64_t T = ceil_div64(M, p), mr = ceil_div64(M, T), wl = M - (T - 1) * mr;
        int64_t nfull = nvec / k, kt = nvec - nfull * k;
        int64_t per = (T - 1) * step_cost(mr, k) + step_cost(wl, k);
        int64_t cost = nfull * per + (kt ? (T - 1) * step_cost(mr, kt) + step_cost(wl, kt) : 0);
        if (best < 0 || cost < best) best = cost, *KV = k, *MR = (int)mr;
    }
}

bool cg_gemm_eligible(const Cg *cg, const Node *n) {
    if (n->op != OP_CONV2D) return false;
    ConvGeom g = conv_geom(cg->g, n);
    const CgView *in = &cg->views[n->in[0]], *out = &cg->views[n->out];
    return g.KH == 1 && g.KW == 1 && g.groups == 1 && !g.ph && !g.pw && (in->stride[1] == 1 || g.C == 1) &&
           (out->stride[1] == 1 || g.O == 1);
}

/* One register tile being emitted: w pixels from pixel q0 × K vectors from channel oc0, of
 * output block variant var. Pixel p is (n[p], oy[p], ox[p]) (flat: (0, 0, q0 + p)) and reads
 * its input at in[p]. */
typedef struct Tile {
    const Gemm *G;
    int var, w, K;
    LLVMValueRef q0, oc0;
    LLVMValueRef n[TILE_MAX_VALS], oy[TILE_MAX_VALS], ox[TILE_MAX_VALS], in[TILE_MAX_VALS];
    LLVMValueRef pf; /* floats from a k step's weights to the line this tile prefetches (NULL: none) */
} Tile;

/* The tile's pixels: flat, at constant steps from pixel q0; else each decoded from its index.
 * Pixels past the last (the last tile's spare ones, when MR does not divide M) are the last. */
static void tile_pixels(Cg *cg, Tile *t) {
    const Gemm *G = t->G;
    const ConvGeom *g = &G->g;
    for (int p = 0; p < t->w; p++) {
        LLVMValueRef q = cg_addc(cg, t->q0, p);
        if (G->wl < G->MR && p >= G->wl) q = cg_min(cg, q, cg_i64(cg, G->M - 1)); /* the last tile's spare pixels */
        if (G->flat) {
            t->n[p] = t->oy[p] = cg_i64(cg, 0);
            t->ox[p] = q;
            t->in[p] = cg_gep(cg, G->in_base, cg_mulc(cg, q, G->ps));
            continue;
        }
        t->ox[p] = cg_remc(cg, q, g->OW);
        LLVMValueRef r = cg_divc(cg, q, g->OW);
        t->oy[p] = cg_remc(cg, r, g->OH);
        t->n[p] = cg_divc(cg, r, g->OH);
        LLVMValueRef off = cg_add(cg, cg_add(cg, cg_mulc(cg, t->n[p], G->isN), cg_mulc(cg, t->oy[p], g->sh * G->isH)),
                                  cg_mulc(cg, t->ox[p], G->ps));
        t->in[p] = cg_gep(cg, G->in_base, off);
    }
}

static LLVMValueRef tile_mask(Cg *cg, const Tile *t, int k) {
    return t->var == 1 && k == t->K - 1 && t->G->last_lanes < cg->vw ? cg_mask(cg, t->G->last_lanes) : NULL;
}

static LLVMValueRef tile_out(Cg *cg, const Tile *t, int p, int k) {
    const ConvOut *o = &t->G->o;
    return cg_gep(cg, o->base, cg_conv_out_off(cg, o, t->n[p], cg_addc(cg, t->oc0, (int64_t)k * cg->vw), t->oy[p], t->ox[p]));
}

/* acc: zeros on the first chunk, else the partial sums stored after the previous one. */
static void tile_init(Cg *cg, const Tile *t, LLVMValueRef first, LLVMValueRef *acc) {
    int nacc = t->w * t->K;
    for (int i = 0; i < nacc; i++) acc[i] = cg_vf(cg, 0.0);
    if (!first) return;
    LLVMBasicBlockRef from = LLVMGetInsertBlock(cg->b);
    LLVMBasicBlockRef ld = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "partial");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "sum");
    LLVMBuildCondBr(cg->b, first, go, ld);
    LLVMPositionBuilderAtEnd(cg->b, ld);
    LLVMValueRef part[TILE_MAX_VALS];
    for (int p = 0; p < t->w; p++)
        for (int k = 0; k < t->K; k++) {
            LLVMValueRef m = tile_mask(cg, t, k), ptr = tile_out(cg, t, p, k);
            part[p * t->K + k] = m ? cg_vload_masked(cg, ptr, m) : cg_vload(cg, ptr);
        }
    LLVMBasicBlockRef ld_end = LLVMGetInsertBlock(cg->b);
    LLVMBuildBr(cg->b, go);
    LLVMPositionBuilderAtEnd(cg->b, go);
    for (int i = 0; i < nacc; i++) {
        LLVMValueRef phi = LLVMBuildPhi(cg->b, cg->t_vf, "acc");
        LLVMAddIncoming(phi, (LLVMValueRef[]){acc[i], part[i]}, (LLVMBasicBlockRef[]){from, ld_end}, 2);
        acc[i] = phi;
    }
}

/* The bias and the epilogue after the last chunk; the bare partial sums after the others. */
static void tile_store(Cg *cg, const Tile *t, LLVMValueRef last, LLVMValueRef *acc) {
    CgIf c;
    if (last) {
        LLVMBasicBlockRef raw = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "raw");
        LLVMBasicBlockRef epi = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "epi");
        c.merge_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "stored");
        LLVMBuildCondBr(cg->b, last, epi, raw);
        LLVMPositionBuilderAtEnd(cg->b, raw);
        for (int p = 0; p < t->w; p++)
            for (int k = 0; k < t->K; k++) {
                LLVMValueRef m = tile_mask(cg, t, k), ptr = tile_out(cg, t, p, k);
                if (m) cg_vstore_masked(cg, acc[p * t->K + k], ptr, m);
                else cg_vstore(cg, acc[p * t->K + k], ptr);
            }
        LLVMBuildBr(cg->b, c.merge_bb);
        LLVMPositionBuilderAtEnd(cg->b, epi);
    }
    for (int p = 0; p < t->w; p++)
        for (int k = 0; k < t->K; k++)
            cg_conv_store(cg, &t->G->o, acc[p * t->K + k], t->n[p], cg_addc(cg, t->oc0, (int64_t)k * cg->vw), t->oy[p],
                          t->ox[p], tile_mask(cg, t, k));
    if (last) cg_if_end(cg, &c);
}

/* One tile over input channels [k0, k1): `first` / `last` say whether this is the first / last
 * chunk (NULL: the only one). */
static void gemm_tile(Cg *cg, Tile *t, LLVMValueRef wblk, LLVMValueRef k0, LLVMValueRef k1, LLVMValueRef first,
                      LLVMValueRef last) {
    int K = t->K, nacc = t->w * K;
    int64_t kvw = (int64_t)K * cg->vw;
    LLVMValueRef acc[TILE_MAX_VALS];
    tile_pixels(cg, t);
    tile_init(cg, t, first, acc);
    TileLoop lk;
    tile_loop_begin(cg, &lk, k0, k1, 1, acc, nacc, "k");
    LLVMValueRef wp = cg_gep(cg, wblk, cg_mulc(cg, lk.iv, kvw));
    LLVMValueRef wv[4];
    for (int k = 0; k < K; k++) wv[k] = tile_wload(cg, cg_gep(cg, wp, cg_i64(cg, (int64_t)k * cg->vw)));
    cg_prefetch(cg, cg_gep(cg, wp, t->pf), 2);
    for (int p = 0; p < t->w; p++) {
        LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, t->in[p], lk.iv), "x");
        LLVMValueRef xs = cg_splat(cg, x);
        for (int k = 0; k < K; k++) acc[p * K + k] = cg_fma(cg, xs, wv[k], acc[p * K + k]);
    }
    tile_loop_end(cg, &lk, acc);
    tile_store(cg, t, last, acc);
}

/* Every tile of [t0, t1) for output block variant `var`, chunk by chunk. */
static void gemm_block(Cg *cg, const Gemm *G, int var, LLVMValueRef t0, LLVMValueRef t1, LLVMValueRef oc0,
                       LLVMValueRef wblk) {
    const ConvGeom *g = &G->g;
    CgLoop lc;
    LLVMValueRef k0 = cg_i64(cg, 0), k1 = cg_i64(cg, g->C), first = NULL, last = NULL;
    if (G->nkc > 1) {
        cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, G->nkc), 1, "chunk");
        k0 = cg_mulc(cg, lc.iv, G->KC);
        k1 = cg_min(cg, cg_addc(cg, k0, G->KC), cg_i64(cg, g->C));
        first = LLVMBuildICmp(cg->b, LLVMIntEQ, lc.iv, cg_i64(cg, 0), "first");
        last = LLVMBuildICmp(cg->b, LLVMIntEQ, lc.iv, cg_i64(cg, G->nkc - 1), "last");
    }
    CgLoop lt;
    cg_loop_begin(cg, &lt, t0, t1, 1, "tile");
    Tile t = {.G = G, .var = var, .K = G->KV[var], .oc0 = oc0, .q0 = cg_mulc(cg, lt.iv, G->MR)};
    /* the next chunk's weights (or the next block's first), a line per k step per tile: the
       block's first KV tiles fetch all of it into L2 while the chunk computes */
    t.pf = cg_addc(cg, cg_mulc(cg, cg_remc(cg, LLVMBuildSub(cg->b, lt.iv, t0, ""), t.K), cg->vw), G->KC * t.K * cg->vw);
    /* one tile body for all: the last tile's pixels past M are pixel M - 1 again (tile_pixels),
       computed from the same partial sum and stored with the same value, instead of a second,
       narrower body (compile time) */
    t.w = G->MR;
    gemm_tile(cg, &t, wblk, k0, k1, first, last);
    cg_loop_end(cg, &lt);
    if (G->nkc > 1) cg_loop_end(cg, &lc);
}

/* One work item: (M block, output block), in the order blocking() chose. */
static void gemm_body(Cg *cg, LLVMValueRef item, void *user) {
    Gemm *G = user;
    LLVMValueRef j = cg_remc(cg, item, G->nj), mb = cg_divc(cg, item, G->nj);
    if (G->jmajor) j = cg_divc(cg, item, G->nmb), mb = cg_remc(cg, item, G->nmb);
    G->in_base = cg_view_ptr(cg, &G->in, cg_i64(cg, 0));
    G->o.base = cg_view_ptr(cg, &G->o.view, cg_i64(cg, 0));
    LLVMValueRef t0 = cg_mulc(cg, mb, G->MB), t1 = cg_min(cg, cg_addc(cg, t0, G->MB), cg_i64(cg, G->T));
    int64_t bw = (int64_t)G->KV[0] * cg->vw;
    bool tail = G->nj > G->nfull;
    if (G->nfull) {
        CgIf c;
        if (tail) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, j, cg_i64(cg, G->nfull), ""), "full");
        gemm_block(cg, G, 0, t0, t1, cg_mulc(cg, j, bw), cg_gep(cg, G->w, cg_mulc(cg, j, G->wblock)));
        if (tail) cg_if_end(cg, &c);
    }
    if (tail) {
        CgIf c;
        if (G->nfull) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntEQ, j, cg_i64(cg, G->nfull), ""), "tail");
        gemm_block(cg, G, 1, t0, t1, cg_i64(cg, G->nfull * bw), cg_gep(cg, G->w, cg_i64(cg, G->nfull * G->wblock)));
        if (G->nfull) cg_if_end(cg, &c);
    }
}

/* Bytes that would come from beyond L2 (L2_BYTES assumed: Zen 3 has 512 KiB a core, Zen 5 1 MiB,
 * Sapphire Rapids 2 MiB) in either order: M-block-major keeps a block's inputs in L2 across the
 * output blocks and streams the weights once per M block; output-block-major keeps a block's
 * weights in L2 across the M blocks and streams the inputs once per output block. The cheaper
 * order wins. M blocks: M-block-major ones hold their inputs in BLOCK_BYTES; either way there are
 * at least MIN_ITEMS items for the threads where the tiles allow. */
enum { L2_BYTES = 512 * 1024, BLOCK_BYTES = 256 * 1024, MIN_ITEMS = 8 };

static void blocking(Gemm *G, int vw) {
    const ConvGeom *g = &G->g;
    double A = 4.0 * G->M * g->C, W = 4.0 * g->C * G->nj * G->KV[0] * vw;
    int64_t mb = BLOCK_BYTES / (4 * (int64_t)G->MR * g->C);
    if (mb < 1) mb = 1;
    if (mb > G->T) mb = G->T;
    int64_t nmb_m = ceil_div64(G->T, mb);
    double cost_m = A + (W > L2_BYTES ? (double)nmb_m : 1.0) * W;
    double cost_j = W + (A > L2_BYTES ? (double)G->nj : 1.0) * A;
    G->jmajor = cost_j < cost_m;
    G->nmb = G->jmajor ? 1 : nmb_m;
    if (G->nmb * G->nj < MIN_ITEMS) {
        int64_t want = ceil_div64(MIN_ITEMS, G->nj), most = G->jmajor ? (G->T / 4 > 1 ? G->T / 4 : 1) : G->T;
        G->nmb = want < most ? want : most;
    }
    G->MB = ceil_div64(G->T, G->nmb);
    G->nmb = ceil_div64(G->T, G->MB);
}

bool cg_gemm_conv2d(Cg *cg, const Node *n) {
    int vw = cg->vw;
    Gemm G = {.g = conv_geom(cg->g, n), .in = cg->views[n->in[0]]};
    const ConvGeom *g = &G.g;
    G.o = cg_conv_out(cg, n, g->O);
    G.isN = G.in.stride[0], G.isH = G.in.stride[2];
    G.ps = g->sw * G.in.stride[3];
    const CgView *ov = &G.o.view;
    bool in_flat = (g->H == 1 || G.isH == g->W * G.in.stride[3]) && (g->N == 1 || G.isN == g->H * g->W * G.in.stride[3]);
    bool out_flat = (g->OH == 1 || ov->stride[2] == g->OW * ov->stride[3]) &&
                    (g->N == 1 || ov->stride[0] == g->OH * g->OW * ov->stride[3]);
    G.flat = g->sh == 1 && g->sw == 1 && in_flat && out_flat;
    if (G.flat) G.o.flat_oh = g->OH, G.o.flat_ow = g->OW;
    G.M = g->N * g->OH * g->OW;
    choose_tile(cg, g->O, G.M, &G.MR, &G.KV[0]);
    G.T = ceil_div64(G.M, G.MR);
    G.wl = (int)(G.M - (G.T - 1) * G.MR);
    /* output blocks: full ones of KV·vw channels, then the rest with its masked last vector */
    G.nfull = g->O / ((int64_t)G.KV[0] * vw);
    int64_t rem = g->O - G.nfull * G.KV[0] * vw;
    G.KV[1] = (int)ceil_div64(rem, vw);
    G.last_lanes = rem - (int64_t)(G.KV[1] - 1) * vw;
    G.nj = G.nfull + (G.KV[1] ? 1 : 0);
    G.wblock = g->C * G.KV[0] * vw;
    /* chunks of the reduction: a chunk's weights in 32 KiB */
    G.KC = 32 * 1024 / (4 * (int64_t)G.KV[0] * vw);
    if (G.KC < 8) G.KC = 8;
    if (G.KC > g->C) G.KC = g->C;
    G.nkc = ceil_div64(g->C, G.KC);
    G.KC = ceil_div64(g->C, G.nkc);
    blocking(&G, vw);

    /* W[O, C] packed [block][c][KV·vw], zero past O */
    int64_t count = G.nfull * G.wblock + g->C * G.KV[1] * vw;
    float *p = xcalloc((size_t)count, sizeof *p);
    const float *w = ir_weight(cg->g, n, "weight")->data;
    for (int64_t o = 0; o < g->O; o++) {
        int64_t b = o / ((int64_t)G.KV[0] * vw), l = o - b * G.KV[0] * vw;
        int64_t kvw = (int64_t)G.KV[b < G.nfull ? 0 : 1] * vw;
        for (int64_t c = 0; c < g->C; c++) p[b * G.wblock + c * kvw + l] = w[o * g->C + c];
    }
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight", n->name);
    G.w = cg_weights(cg, p, count, name);
    free(p);
    cg_parallel(cg, "conv2d_gemm", G.nmb * G.nj, gemm_body, &G);
    return true;
}

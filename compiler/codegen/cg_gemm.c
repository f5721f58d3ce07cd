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
 * Blocking: a work item is one block of MB tiles (M) × one group of G output blocks of KV·vw
 * channels (N). Its reduction runs in chunks of KC input channels (a block's chunk of weights,
 * packed contiguous at compile time, in 32 KiB); per chunk, every block of the group, and per block
 * every tile of the M block: a (block, chunk) of weights stays in L1 while the tiles stream their
 * inputs, and the chunk's inputs of the M block stay in L1/L2 across the group's blocks; each k
 * step also prefetches a line of the weights the item computes next into L2, so the first tile
 * of a block does not wait on memory. Between chunks the partial sums go to the output itself (its
 * elements belong to this item alone, and a conv's output never shares storage with its input or
 * its residual operands), sized to stay in L2; the last chunk adds the bias and applies the fused
 * epilogue. blocking() chooses MB, G and the items' order for the fewest bytes from beyond L2.
 * With one block per group this is the former order, block by block, which read the inputs
 * of every chunk once per output block: FCN's 2048 -> 512 layer at 65² ran at 29 % of peak, now
 * 64 % (G = 4 blocks, 31 tiles of 6 pixels), 73 % with packing; ResNet-50 1-2 % faster, the ASPP
 * head 5 % (1 thread, AVX-512).
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
    int64_t G, ng;        /* output blocks per group, groups: a work item is (M block, group) */
    bool gmajor;          /* items group-major (a group's weights stay in L2), else M-block-major */
    int KV[2];            /* vectors per output block: full blocks, the tail (0: none) */
    int64_t last_lanes;   /* valid lanes of the tail block's last vector */
    int64_t nfull, nj;    /* full output blocks, all of them */
    int64_t wblock;       /* packed weight floats per full block */
    int64_t KC, nkc;      /* input channels per chunk, chunks */
    int64_t Clast;        /* input channels of the last chunk */
    bool pack;            /* each chunk's inputs of the M block copied to abuf first */
    LLVMValueRef w;
    LLVMValueRef in_base, abuf; /* per work item */
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
    LLVMValueRef q0, oc0, t0; /* first pixel, first output channel; the M block's first tile */
    LLVMValueRef n[TILE_MAX_VALS], oy[TILE_MAX_VALS], ox[TILE_MAX_VALS], in[TILE_MAX_VALS];
    LLVMValueRef pf; /* the line this tile prefetches at k step k is pf + k·K·vw */
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

/* The places of the tile's partial sums: the output itself. */
static void tile_partials(Cg *cg, const Tile *t, LLVMValueRef *ptr, LLVMValueRef *mask) {
    for (int p = 0; p < t->w; p++)
        for (int k = 0; k < t->K; k++) ptr[p * t->K + k] = tile_out(cg, t, p, k), mask[p * t->K + k] = tile_mask(cg, t, k);
}

/* acc: zeros on the first chunk, else the partial sums stored after the previous one. */
static void tile_init(Cg *cg, const Tile *t, LLVMValueRef first, LLVMValueRef *acc) {
    int nacc = t->w * t->K;
    for (int i = 0; i < nacc; i++) acc[i] = cg_vf(cg, 0.0);
    if (!first) return;
    LLVMValueRef ptr[TILE_MAX_VALS], mask[TILE_MAX_VALS];
    tile_partials(cg, t, ptr, mask);
    cg_partials_load(cg, first, acc, nacc, ptr, mask);
}

/* The bias and the epilogue after the last chunk; the bare partial sums after the others. */
static void tile_store(Cg *cg, const Tile *t, LLVMValueRef last, LLVMValueRef *acc) {
    CgIf c;
    if (last) {
        LLVMValueRef ptr[TILE_MAX_VALS], mask[TILE_MAX_VALS];
        tile_partials(cg, t, ptr, mask);
        cg_partials_store_begin(cg, &c, last, acc, t->w * t->K, ptr, mask);
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
    if (t->G->pack) /* the pixels' rows of this chunk in the buffer, indexed by k from k0 */
        for (int p = 0; p < t->w; p++) {
            LLVMValueRef row = cg_addc(cg, LLVMBuildSub(cg->b, t->q0, cg_mulc(cg, t->t0, t->G->MR), ""), p);
            t->in[p] = cg_gep(cg, t->G->abuf, LLVMBuildSub(cg->b, cg_mulc(cg, row, t->G->KC), k0, ""));
        }
    tile_init(cg, t, first, acc);
    TileLoop lk;
    tile_loop_begin(cg, &lk, k0, k1, 1, acc, nacc, "k");
    LLVMValueRef wp = cg_gep(cg, wblk, cg_mulc(cg, lk.iv, kvw));
    LLVMValueRef wv[4];
    for (int k = 0; k < K; k++) wv[k] = tile_wload(cg, cg_gep(cg, wp, cg_i64(cg, (int64_t)k * cg->vw)));
    cg_prefetch(cg, cg_gep(cg, t->pf, cg_mulc(cg, lk.iv, kvw)), 2);
    for (int p = 0; p < t->w; p++) {
        LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, t->in[p], lk.iv), "x");
        LLVMValueRef xs = cg_splat(cg, x);
        for (int k = 0; k < K; k++) acc[p * K + k] = cg_fma(cg, xs, wv[k], acc[p * K + k]);
    }
    tile_loop_end(cg, &lk, acc);
    tile_store(cg, t, last, acc);
}

/* Every tile of [t0, t1) over input channels [k0, k1), for output block variant `var`: the block
 * at channel oc0 with weights wblk; `next` is where the weights of the next (block, chunk) the
 * item computes start, less k0 steps, which its first K tiles prefetch into L2, a line per k step
 * per tile, while this one computes. */
static void gemm_block(Cg *cg, const Gemm *G, int var, LLVMValueRef t0, LLVMValueRef t1, LLVMValueRef oc0,
                       LLVMValueRef wblk, LLVMValueRef next, LLVMValueRef k0, LLVMValueRef k1, LLVMValueRef first,
                       LLVMValueRef last) {
    CgLoop lt;
    cg_loop_begin(cg, &lt, t0, t1, 1, "tile");
    Tile t = {.G = G, .var = var, .K = G->KV[var], .oc0 = oc0, .q0 = cg_mulc(cg, lt.iv, G->MR), .t0 = t0};
    t.pf = cg_gep(cg, next, cg_mulc(cg, cg_remc(cg, LLVMBuildSub(cg->b, lt.iv, t0, ""), t.K), cg->vw));
    /* one tile body for all: the last tile's pixels past M are pixel M - 1 again (tile_pixels),
       computed from the same partial sum and stored with the same value, instead of a second,
       narrower body (compile time) */
    t.w = G->MR;
    gemm_tile(cg, &t, wblk, k0, k1, first, last);
    cg_loop_end(cg, &lt);
}

/* Packing pays only on inputs far beyond what the TLB covers (measured at 1 thread, AVX-512:
 * FCN's 2048 -> 512 at 65², 35 MB of input, 1.12× faster; the same at 33², 9 MB, and ResNet-50's
 * layers 0-20 % slower, the copy not paid back by the group's reuse). */
enum { PACK_MIN_BYTES = 16 << 20 };

/* Packing: the `len` input channels from k0 of every pixel of tiles [t0, t1) into abuf, a row of
 * KC floats per pixel in tile order: the kernel's MR streams are then 4·KC bytes apart instead of
 * the pixel stride (2048 channels: 8 KiB, every pixel's row in the same L1 sets and its own page). */
static void pack_chunk(Cg *cg, const Gemm *G, LLVMValueRef t0, LLVMValueRef t1, LLVMValueRef k0, int64_t len) {
    int vw = cg->vw;
    int64_t nv = len / vw, rest = len - nv * vw;
    CgLoop lt;
    cg_loop_begin(cg, &lt, t0, t1, 1, "pack");
    Tile t = {.G = G, .w = G->MR, .q0 = cg_mulc(cg, lt.iv, G->MR)};
    tile_pixels(cg, &t);
    LLVMValueRef row0 = cg_mulc(cg, LLVMBuildSub(cg->b, lt.iv, t0, ""), G->MR);
    for (int p = 0; p < G->MR; p++) {
        LLVMValueRef src = cg_gep(cg, t.in[p], k0), dst = cg_gep(cg, G->abuf, cg_mulc(cg, cg_addc(cg, row0, p), G->KC));
        if (nv) {
            CgLoop lv;
            cg_loop_begin(cg, &lv, cg_i64(cg, 0), cg_i64(cg, nv * vw), vw, "packv");
            cg_vstore(cg, cg_vload(cg, cg_gep(cg, src, lv.iv)), cg_gep(cg, dst, lv.iv));
            cg_loop_end(cg, &lv);
        }
        if (rest) {
            LLVMValueRef m = cg_mask(cg, rest), off = cg_i64(cg, nv * vw);
            cg_vstore_masked(cg, cg_vload_masked(cg, cg_gep(cg, src, off), m), cg_gep(cg, dst, off), m);
        }
    }
    cg_loop_end(cg, &lt);
}

/* One work item: (M block, group of output blocks), in the order blocking() chose. Per chunk of
 * the reduction, every block of the group, and per block every tile of the M block: the chunk's
 * inputs of the M block stay in L1/L2 across the group's blocks, the partial sums in the output
 * (M block × group) stay in L2 across the chunks, and a (block, chunk) of weights stays in L1
 * across the tiles. */
static void gemm_body(Cg *cg, LLVMValueRef item, void *user) {
    Gemm *G = user;
    const ConvGeom *g = &G->g;
    LLVMValueRef gi = cg_remc(cg, item, G->ng), mb = cg_divc(cg, item, G->ng);
    if (G->gmajor) gi = cg_divc(cg, item, G->nmb), mb = cg_remc(cg, item, G->nmb);
    G->in_base = cg_view_ptr(cg, &G->in, cg_i64(cg, 0));
    G->o.base = cg_view_ptr(cg, &G->o.view, cg_i64(cg, 0));
    LLVMValueRef t0 = cg_mulc(cg, mb, G->MB), t1 = cg_min(cg, cg_addc(cg, t0, G->MB), cg_i64(cg, G->T));
    LLVMValueRef j0 = cg_mulc(cg, gi, G->G), j1 = cg_min(cg, cg_addc(cg, j0, G->G), cg_i64(cg, G->nj));
    LLVMValueRef jf1 = cg_min(cg, j1, cg_i64(cg, G->nfull)); /* the group's full blocks end */
    int64_t bw = (int64_t)G->KV[0] * cg->vw, kvw0 = bw, kvw1 = (int64_t)G->KV[1] * cg->vw;
    bool tail = G->nj > G->nfull;
    CgLoop lc;
    LLVMValueRef k0 = cg_i64(cg, 0), k1 = cg_i64(cg, g->C), first = NULL, last = NULL;
    if (G->nkc > 1) {
        cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, G->nkc), 1, "chunk");
        k0 = cg_mulc(cg, lc.iv, G->KC);
        k1 = cg_min(cg, cg_addc(cg, k0, G->KC), cg_i64(cg, g->C));
        first = LLVMBuildICmp(cg->b, LLVMIntEQ, lc.iv, cg_i64(cg, 0), "first");
        last = LLVMBuildICmp(cg->b, LLVMIntEQ, lc.iv, cg_i64(cg, G->nkc - 1), "last");
        if (G->pack) {
            if (!G->abuf) G->abuf = cg_entry_alloca(cg, G->MB * G->MR * G->KC, "gemm_a");
            if (G->Clast == G->KC) {
                pack_chunk(cg, G, t0, t1, k0, G->KC);
            } else {
                CgIf c, d;
                cg_if_begin(cg, &c, last, "pack_last");
                pack_chunk(cg, G, t0, t1, k0, G->Clast);
                cg_if_end(cg, &c);
                cg_if_begin(cg, &d, LLVMBuildNot(cg->b, last, ""), "pack");
                pack_chunk(cg, G, t0, t1, k0, G->KC);
                cg_if_end(cg, &d);
            }
        }
    }
    /* the weights of block j at k step 0, and of the group's first block at the next chunk */
    LLVMValueRef tail_w = cg_gep(cg, G->w, cg_i64(cg, G->nfull * G->wblock));
    LLVMValueRef wrap = G->nfull ? cg_gep(cg, cg_gep(cg, G->w, cg_mulc(cg, j0, G->wblock)), cg_mulc(cg, cg_addc(cg, k0, G->KC), kvw0))
                                 : cg_gep(cg, tail_w, cg_mulc(cg, cg_addc(cg, k0, G->KC), kvw1));
    if (G->nfull) {
        CgLoop lj;
        cg_loop_begin(cg, &lj, j0, jf1, 1, "oblock");
        LLVMValueRef wblk = cg_gep(cg, G->w, cg_mulc(cg, lj.iv, G->wblock));
        LLVMValueRef jn = cg_addc(cg, lj.iv, 1);
        /* the next block's weights at this chunk, or (the group's last) the first one's next */
        LLVMValueRef nfull_next = cg_gep(cg, G->w, cg_add(cg, cg_mulc(cg, jn, G->wblock), cg_mulc(cg, k0, kvw0)));
        LLVMValueRef ntail = cg_gep(cg, tail_w, cg_mulc(cg, k0, kvw1));
        LLVMValueRef in_group = LLVMBuildICmp(cg->b, LLVMIntSLT, jn, j1, "");
        LLVMValueRef is_full = LLVMBuildICmp(cg->b, LLVMIntSLT, jn, cg_i64(cg, G->nfull), "");
        LLVMValueRef nx = LLVMBuildSelect(cg->b, in_group, LLVMBuildSelect(cg->b, is_full, nfull_next, ntail, ""), wrap, "");
        nx = cg_gep(cg, nx, cg_mulc(cg, k0, -kvw0)); /* less k0 steps of this block */
        gemm_block(cg, G, 0, t0, t1, cg_mulc(cg, lj.iv, bw), wblk, nx, k0, k1, first, last);
        cg_loop_end(cg, &lj);
    }
    if (tail) {
        CgIf c;
        cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntEQ, j1, cg_i64(cg, G->nj), ""), "tail");
        LLVMValueRef nx = cg_gep(cg, wrap, cg_mulc(cg, k0, -kvw1));
        gemm_block(cg, G, 1, t0, t1, cg_i64(cg, G->nfull * bw), tail_w, nx, k0, k1, first, last);
        cg_if_end(cg, &c);
    }
    if (G->nkc > 1) cg_loop_end(cg, &lc);
}

/* Work items: M blocks of MB tiles × groups of G output blocks. Bytes that would come from
 * beyond L2 (L2_BYTES assumed: Zen 3 has 512 KiB a core, Zen 5 1 MiB, Sapphire Rapids 2 MiB), in
 * either order of the items: M-block-major keeps an M block's inputs in L2 across the groups (when
 * they fit) and reads each group's weights once per M block (once in all when all weights fit);
 * group-major keeps a group's weights in L2 across the M blocks (when they fit) and reads the
 * inputs once per group (once when they fit). Within an item, a chunk's inputs of the M block are
 * read again by each block of the group (at most CHUNK_IN_BYTES, to stay in L2 beside the rest)
 * and, with several chunks, the partial sums of the M block × group stay in the output between
 * chunks (at most PART_BYTES). The fewest bytes win, then the fewer items; there are at least
 * MIN_ITEMS items for the threads where the tiles and blocks allow. */
enum { L2_BYTES = 512 * 1024, PART_BYTES = 192 * 1024, CHUNK_IN_BYTES = 96 * 1024, MIN_ITEMS = 8 };

static void blocking(Gemm *G, int vw) {
    const ConvGeom *g = &G->g;
    double A = 4.0 * G->M * g->C, W = 4.0 * g->C * G->nj * G->KV[0] * vw;
    int64_t want = G->T * G->nj < MIN_ITEMS ? G->T * G->nj : MIN_ITEMS;
    double best = -1;
    for (int64_t ng = 1; ng <= G->nj; ng++) {
        int64_t gb = ceil_div64(G->nj, ng);
        if (ng > 1 && ceil_div64(G->nj, ng - 1) == gb) continue; /* the same groups as ng - 1 */
        int64_t gch = gb * G->KV[0] * vw;                          /* channels of a group */
        /* the most tiles an M block may have, then every block count down to what fits */
        int64_t mbmax = G->T;
        if (G->nkc > 1) {
            int64_t m1 = PART_BYTES / (4 * G->MR * gch), m2 = CHUNK_IN_BYTES / (4 * G->MR * G->KC);
            mbmax = m1 < m2 ? m1 : m2;
            if (mbmax < 1) mbmax = 1;
            if (mbmax > G->T) mbmax = G->T;
        }
        for (int64_t nmb = ceil_div64(G->T, mbmax); nmb <= G->T; nmb++) {
            int64_t mb = ceil_div64(G->T, nmb);
            if (ceil_div64(G->T, mb) != nmb) continue;
            if (nmb * ng < want && nmb < G->T) continue; /* too few items: smaller M blocks */
            double ablk = 4.0 * mb * G->MR * g->C, wgrp = W / (double)ng;
            double cost_m = A * (ablk <= L2_BYTES ? 1.0 : (double)ng) + W * (W <= L2_BYTES ? 1.0 : (double)nmb);
            double cost_g = W * (wgrp <= L2_BYTES ? 1.0 : (double)nmb) + A * (A <= L2_BYTES ? 1.0 : (double)ng);
            double cost = (cost_m < cost_g ? cost_m : cost_g) * (1.0 + 1e-6 * (double)(nmb * ng));
            if (best < 0 || cost < best) {
                best = cost, G->MB = mb, G->nmb = nmb, G->G = gb, G->ng = ng, G->gmajor = cost_g < cost_m;
            }
            break; /* more M blocks only add bytes once the items suffice */
        }
    }
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
    G.Clast = g->C - (G.nkc - 1) * G.KC;
    blocking(&G, vw);
    G.pack = G.nkc > 1 && G.G > 1 && 4.0 * (double)G.M * (double)g->C >= PACK_MIN_BYTES;

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
    cg_parallel(cg, "conv2d_gemm", G.nmb * G.ng, gemm_body, &G);
    return true;
}

/* cg_winograd.c — conv2d by Winograd F(m,3) for the nodes the winograd pass marked (3×3, stride 1,
 * dilation 1, groups 1) on channels-innermost views: m×m output tiles from T×T input tiles,
 * T = m + 2, P = T² positions, with the transforms of winograd.h; F(4,3) (m = 4: 6×6 tiles, 36
 * positions) and F(2,3) (m = 2: 4×4 tiles, 16 positions) come from this one code path.
 *
 * A work item is one block of nb output tiles (tiles numbered over images, tile rows and tile
 * columns, so blocks are even across rows) and one group of gob blocks of K output-channel
 * vectors (GROUP_CHANNELS channels: one block with AVX-512, three with AVX2); items run
 * group-major (og · nblk + blk), so consecutive items on a thread reuse one group's transformed
 * weights from L2. Per item:
 *   1. the input transform Bᵀ d B of each tile and input-channel vector into V[P][nb][C],
 *      a stack buffer of the item (never a whole transformed tensor); interior tiles load
 *      straight, border tiles replace reads outside the image by zeros (the padding);
 *   then per output block of the group:
 *   2. per position p of the P, per chunk of 64 input channels, per register tile of nt tiles ×
 *      K vectors (as the direct conv's P pixels × K vectors: per input channel K weight vectors
 *      and nt broadcasts for nt·K FMAs), the sum over the chunk, stored to or added to
 *      M[P][nb][K·vw]: the chunk's weights stay in L1 across the register tiles, and each
 *      channel step prefetches a line of the next chunk's (the first register tile would wait on
 *      memory otherwise: inside ResNet-18 the 14² F(2,3) layers took 0.97 ms with it, 1.12 ms
 *      without, the 28² F(4,3) ones 0.68 and 0.77, 1 thread, AVX-512);
 *   3. per tile and vector, the output transform Aᵀ m A, then the bias and the node's epilogue
 *      (fused activations, residual adds) and the store; output pixels past the image (partial
 *      tiles at the right and bottom) are not stored, nor are the tiles a last block repeats.
 * The input transform is redone per group (about a tenth of a 64-channel group's GEMM); items
 * that computed all their blocks from one transform were slower inside ResNet-18, where all
 * blocks' weights no longer stay in L2; with AVX2 a block is 24 channels, and transforms per
 * block took a quarter of the time: groups of three made ResNet-18's F(4,3) layers 1.4× faster
 * inside the model at 1 thread (56²: 1.07 -> 0.76 ms, 28²: 1.32 -> 0.96) and its 14² F(2,3)
 * ones 1.3× (2.0 -> 1.51). Weights: U = G g Gᵀ per (o, c) in double (winograd.h), rounded
 * once, packed [oc block][p][c][K·vw] (zero past O); the bias padded to O + vw. */
#include <stdlib.h>
#include <string.h>

#include "cg_tile.h"
#include "winograd.h"

/* The item's buffers (transformed inputs V, GEMM results M) live on its thread's stack:
 * BUF_BYTES when a register tile fits in it, else one register tile, at most BUF_MAX_BYTES (the
 * tile narrowed to fit). 64 KiB and 1 MiB buffers measured the same on ResNet-18's 56² and 28²
 * layers (consecutive items, output-block-major, find a block's transformed weights in L2 either
 * way); small frames leave the kernel usable on threads with small stacks, and the task function
 * probes its stack (a stack too small faults at its guard page instead of running past it).
 * Except: when all tiles of the layer fit in WHOLE_BYTES and there are at least WHOLE_MIN_ITEMS
 * output-block groups to share among threads, one item takes every tile, so that each transformed
 * weight is read from memory once per inference and serves all tiles from L1: F(2,3) on ResNet's
 * 14²×256 layers (49 tiles, 1 MB of V and M, 4 MB of weights streamed per layer) took 0.95 ms so
 * inside ResNet-18 at 1 thread (AVX-512), 1.22 ms in items of 6 tiles (each block's 1 MB of
 * weights re-read by 9 items), direct 1.15 ms. That frame needs a thread stack of 1 MiB and more
 * (glibc's default is 8 MiB; the task function probes it). */
enum { BUF_BYTES = 64 * 1024, BUF_MAX_BYTES = 256 * 1024, WHOLE_BYTES = 1024 * 1024, WHOLE_MIN_ITEMS = 4 };

/* An item computes GROUP_CHANNELS output channels (the fewest blocks that reach it) from one
 * input transform: one block of 64 with AVX-512, three of 24 with AVX2 (see the header). */
enum { GROUP_CHANNELS = 64 };

typedef struct Wino {
    const Node *n;
    int m, T, P;            /* F(m,3): outputs and inputs per tile side, positions T² */
    ConvGeom g;
    CgView in, out;
    int64_t TH, TW, ntiles; /* tile rows and columns per image (dilation 1); tiles of all images */
    int64_t dh, dw;         /* dilation: a tile is one of the phases' sub-grids (dh·dw of them) */
    int64_t tpi;            /* tiles per image */
    LLVMValueRef tab;       /* dilated: per tile of an image, its first output (row, column) */
    int nt;                 /* tiles per register tile */
    int64_t nb, nsub;       /* tiles per item: nsub register tiles of nt */
    int64_t nblk;           /* tile blocks */
    int K[2];               /* vectors per output block: [0] full blocks, [1] the tail (0: none) */
    int64_t nfull, nob;     /* full output blocks, all of them */
    int64_t gob, nog;       /* output blocks per item (sharing one input transform), items per tile block */
    int64_t last_lanes;     /* valid lanes of the tail block's last vector (1..vw) */
    int64_t ncv, cpad;      /* input channel vectors; channels padded to them */
    int64_t ublock;         /* floats of U per full block */
    LLVMValueRef u, bias;
    /* per work item, at run time */
    LLVMValueRef in_base, out_base, V, M, t0;
} Wino;

/* Loads and stores of the item's buffers: offsets are multiples of vw floats from 64 bytes. */
static LLVMValueRef buf_load(Cg *cg, LLVMValueRef p) { return tile_wload(cg, p); }
static void buf_store(Cg *cg, LLVMValueRef v, LLVMValueRef p) {
    LLVMSetAlignment(LLVMBuildStore(cg->b, v, p), (unsigned)(cg->vw * 4 > 64 ? 64 : cg->vw * 4));
}

static LLVMValueRef vconst(Cg *cg, double c) { return cg_vf(cg, c); }
static LLVMValueRef fadd(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef fsub(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }

/* z = Bᵀ d, as wino_bt */
static void emit_bt(Cg *cg, int m, LLVMValueRef *d, LLVMValueRef *z) {
    if (m == 2) {
        z[0] = fsub(cg, d[0], d[2]);
        z[1] = fadd(cg, d[1], d[2]);
        z[2] = fsub(cg, d[2], d[1]);
        z[3] = fsub(cg, d[1], d[3]);
        return;
    }
    LLVMValueRef a = cg_fma(cg, vconst(cg, -4), d[2], d[4]), b = cg_fma(cg, vconst(cg, -4), d[1], d[3]);
    LLVMValueRef c = fsub(cg, d[4], d[2]), e = LLVMBuildFMul(cg->b, fsub(cg, d[3], d[1]), vconst(cg, 2), "");
    z[0] = cg_fma(cg, vconst(cg, 4), d[0], cg_fma(cg, vconst(cg, -5), d[2], d[4]));
    z[1] = fadd(cg, a, b);
    z[2] = fsub(cg, a, b);
    z[3] = fadd(cg, c, e);
    z[4] = fsub(cg, c, e);
    z[5] = cg_fma(cg, vconst(cg, 4), d[1], cg_fma(cg, vconst(cg, -5), d[3], d[5]));
}

/* y = Aᵀ s, as wino_at */
static void emit_at(Cg *cg, int m, LLVMValueRef *s, LLVMValueRef *y) {
    if (m == 2) {
        y[0] = fadd(cg, s[0], fadd(cg, s[1], s[2]));
        y[1] = fsub(cg, fsub(cg, s[1], s[2]), s[3]);
        return;
    }
    LLVMValueRef a = fadd(cg, s[1], s[2]), b = fsub(cg, s[1], s[2]);
    LLVMValueRef c = fadd(cg, s[3], s[4]), d = fsub(cg, s[3], s[4]);
    y[0] = fadd(cg, fadd(cg, s[0], a), c);
    y[1] = cg_fma(cg, vconst(cg, 2), d, b);
    y[2] = cg_fma(cg, vconst(cg, 4), c, a);
    y[3] = cg_fma(cg, vconst(cg, 8), d, fadd(cg, b, s[5]));
}

/* ---- 1. the input transform ----------------------------------------------------------------- */

/* One tile, one channel vector: x[r·T + c] are the T×T input vectors; V[p][t][c0..] = Bᵀ x B. */
static void transform_vec(Cg *cg, const Wino *w, LLVMValueRef *x, LLVMValueRef t, LLVMValueRef c0) {
    int T = w->T;
    LLVMValueRef z[WINO_PMAX], col[WINO_TMAX], out[WINO_TMAX];
    for (int j = 0; j < T; j++) { /* down the columns */
        for (int i = 0; i < T; i++) col[i] = x[i * T + j];
        emit_bt(cg, w->m, col, out);
        for (int i = 0; i < T; i++) z[i * T + j] = out[i];
    }
    LLVMValueRef vt = cg_gep(cg, w->V, cg_add(cg, cg_mulc(cg, t, w->cpad), c0));
    for (int i = 0; i < T; i++) { /* along the rows */
        emit_bt(cg, w->m, &z[i * T], out);
        for (int j = 0; j < T; j++)
            buf_store(cg, out[j], cg_gep(cg, vt, cg_i64(cg, (int64_t)(i * T + j) * w->nb * w->cpad)));
    }
}

/* The channel loop of one tile: every full channel vector, then the masked last one. `ptr`
 * gives the address of position (r, c) at channel 0, `ok` (NULL: all inside) whether it is
 * inside the image (else the value is 0). */
static void transform_tile(Cg *cg, const Wino *w, LLVMValueRef t, LLVMValueRef *ptr, LLVMValueRef *ok) {
    int vw = cg->vw;
    int64_t C = w->g.C, nfull = C / vw, rest = C - nfull * vw;
    for (int part = 0; part < 2; part++) {
        LLVMValueRef mask = NULL, c0 = NULL;
        CgLoop l;
        if (part == 0) {
            if (!nfull) continue;
            cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, nfull), 1, "cv");
            c0 = cg_mulc(cg, l.iv, vw);
        } else {
            if (!rest) continue;
            mask = cg_mask(cg, rest);
            c0 = cg_i64(cg, nfull * vw);
        }
        LLVMValueRef x[WINO_PMAX];
        for (int k = 0; k < w->P; k++) {
            LLVMValueRef p = cg_gep(cg, ptr[k], c0);
            x[k] = mask ? cg_vload_masked(cg, p, mask) : cg_vload(cg, p);
            if (ok) x[k] = LLVMBuildSelect(cg->b, ok[k], x[k], LLVMConstNull(cg->t_vf), "pad");
        }
        transform_vec(cg, w, x, t, c0);
        if (part == 0) cg_loop_end(cg, &l);
    }
}

/* Tile `tile`'s image and first output pixel (oy0, ox0); its outputs are rows oy0 + i·dh and
 * columns ox0 + j·dw, its inputs rows oy0 - ph + r·dh and columns ox0 - pw + c·dw. With dilation 1
 * the tiles run row by row over the image; a dilated conv is dh·dw independent stride-1 convs on
 * the phases' sub-grids (output rows py, py + dh, ...), each tiled, the tiles listed in w->tab. */
static void tile_coords(Cg *cg, const Wino *w, LLVMValueRef tile, LLVMValueRef *img, LLVMValueRef *oy0,
                        LLVMValueRef *ox0) {
    LLVMValueRef r = cg_remc(cg, tile, w->tpi);
    *img = cg_divc(cg, tile, w->tpi);
    if (!w->tab) {
        *oy0 = cg_mulc(cg, cg_divc(cg, r, w->TW), w->m);
        *ox0 = cg_mulc(cg, cg_remc(cg, r, w->TW), w->m);
        return;
    }
    LLVMValueRef e = cg_gep(cg, w->tab, cg_mulc(cg, r, 2));
    *oy0 = LLVMBuildFPToSI(cg->b, LLVMBuildLoad2(cg->b, cg->t_f32, e, ""), cg->t_i64, "oy0");
    *ox0 = LLVMBuildFPToSI(cg->b, LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, e, cg_i64(cg, 1)), ""), cg->t_i64, "ox0");
}

static void input_transform(Cg *cg, Wino *w) {
    const ConvGeom *g = &w->g;
    const CgView *in = &w->in;
    CgLoop lt;
    cg_loop_begin(cg, &lt, cg_i64(cg, 0), cg_i64(cg, w->nb), 1, "itile");
    /* a block past the last tile repeats it: finite values, never stored */
    LLVMValueRef tile = cg_min(cg, cg_add(cg, w->t0, lt.iv), cg_i64(cg, w->ntiles - 1));
    LLVMValueRef img, oy0, ox0;
    tile_coords(cg, w, tile, &img, &oy0, &ox0);
    int T = w->T;
    int64_t dh = w->dh, dw = w->dw;
    LLVMValueRef iy0 = cg_addc(cg, oy0, -g->ph), ix0 = cg_addc(cg, ox0, -g->pw);
    LLVMValueRef base = cg_gep(cg, w->in_base, cg_mulc(cg, img, in->stride[0]));
    /* interior: rows iy0 .. iy0 + (T - 1)·dh and columns ix0 .. ix0 + (T - 1)·dw inside the image */
    LLVMValueRef inside = LLVMBuildAnd(
        cg->b,
        LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, iy0, cg_i64(cg, 0), ""),
                     LLVMBuildICmp(cg->b, LLVMIntSLE, iy0, cg_i64(cg, g->H - 1 - (T - 1) * dh), ""), ""),
        LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, ix0, cg_i64(cg, 0), ""),
                     LLVMBuildICmp(cg->b, LLVMIntSLE, ix0, cg_i64(cg, g->W - 1 - (T - 1) * dw), ""), ""),
        "inside");
    LLVMBasicBlockRef bb_in = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "interior");
    LLVMBasicBlockRef bb_border = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "border");
    LLVMBasicBlockRef bb_done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "itile_done");
    LLVMBuildCondBr(cg->b, inside, bb_in, bb_border);

    LLVMValueRef ptr[WINO_PMAX], ok[WINO_PMAX];
    LLVMPositionBuilderAtEnd(cg->b, bb_in);
    LLVMValueRef tp = cg_gep(cg, base, cg_add(cg, cg_mulc(cg, iy0, in->stride[2]), cg_mulc(cg, ix0, in->stride[3])));
    for (int r = 0; r < T; r++)
        for (int c = 0; c < T; c++)
            ptr[r * T + c] = cg_gep(cg, tp, cg_i64(cg, r * dh * in->stride[2] + c * dw * in->stride[3]));
    transform_tile(cg, w, lt.iv, ptr, NULL);
    LLVMBuildBr(cg->b, bb_done);

    /* border: a read outside the image loads from a clamped address inside it, and becomes 0 */
    LLVMPositionBuilderAtEnd(cg->b, bb_border);
    LLVMValueRef roff[WINO_TMAX], rok[WINO_TMAX], coff[WINO_TMAX], cok[WINO_TMAX];
    for (int r = 0; r < T; r++) {
        LLVMValueRef iy = cg_addc(cg, iy0, r * dh);
        rok[r] = LLVMBuildICmp(cg->b, LLVMIntULT, iy, cg_i64(cg, g->H), "");
        roff[r] = cg_mulc(cg, LLVMBuildSelect(cg->b, rok[r], iy, cg_i64(cg, 0), ""), in->stride[2]);
        LLVMValueRef ix = cg_addc(cg, ix0, r * dw);
        cok[r] = LLVMBuildICmp(cg->b, LLVMIntULT, ix, cg_i64(cg, g->W), "");
        coff[r] = cg_mulc(cg, LLVMBuildSelect(cg->b, cok[r], ix, cg_i64(cg, 0), ""), in->stride[3]);
    }
    for (int r = 0; r < T; r++)
        for (int c = 0; c < T; c++) {
            ptr[r * T + c] = cg_gep(cg, base, cg_add(cg, roff[r], coff[c]));
            ok[r * T + c] = LLVMBuildAnd(cg->b, rok[r], cok[c], "");
        }
    transform_tile(cg, w, lt.iv, ptr, ok);
    LLVMBuildBr(cg->b, bb_done);
    LLVMPositionBuilderAtEnd(cg->b, bb_done);
    cg_loop_end(cg, &lt);
}

/* ---- 2. the GEMM per position, 3. the output transform and the store ------------------------- */

/* The bias, the node's epilogue and the store of output channels [oc, oc + vw) at one pixel. */
static void store_pixel(Cg *cg, const Wino *w, LLVMValueRef v, LLVMValueRef bias, LLVMValueRef img, LLVMValueRef oc,
                        LLVMValueRef oy, LLVMValueRef ox, LLVMValueRef mask) {
    const CgView *o = &w->out;
    if (bias) v = fadd(cg, v, bias);
    LLVMValueRef idx[4] = {img, oc, oy, ox};
    v = cg_epilogue(cg, w->n, v, idx, mask);
    LLVMValueRef off = cg_add(cg, cg_add(cg, cg_mulc(cg, img, o->stride[0]), oc),
                              cg_add(cg, cg_mulc(cg, oy, o->stride[2]), cg_mulc(cg, ox, o->stride[3])));
    LLVMValueRef p = cg_gep(cg, w->out_base, off);
    if (mask) cg_vstore_masked(cg, v, p, mask);
    else cg_vstore(cg, v, p);
}

/* One register tile's sums over input channels [lo, hi) at one position: nt tiles (from vp in V,
 * consecutive tiles cpad floats apart) × K vectors of weights (from up, kvw floats per channel),
 * written to M at mp (the first chunk) or added to it: summing in chunks of WINO_CHUNK
 * channels halves F(4,3)'s error at 256 channels and more (winograd.h). Each channel step
 * prefetches the line `pf` floats past its weights, in the next chunk (as cg_gemm.c's tiles). */
static void gemm_chunk(Cg *cg, const Wino *w, int K, LLVMValueRef up, LLVMValueRef vp, LLVMValueRef mp, LLVMValueRef lo,
                       LLVMValueRef hi, bool first, LLVMValueRef pf) {
    int vw = cg->vw, nt = w->nt, nacc = nt * K;
    int64_t kvw = (int64_t)K * vw;
    LLVMValueRef acc[TILE_MAX_VALS];
    for (int i = 0; i < nacc; i++) acc[i] = cg_vf(cg, 0.0);
    TileLoop lc;
    tile_loop_begin(cg, &lc, lo, hi, 1, acc, nacc, "ic");
    lc.rolled = true;
    LLVMValueRef wv[4];
    LLVMValueRef uc = cg_gep(cg, up, cg_mulc(cg, lc.iv, kvw));
    for (int k = 0; k < K; k++) wv[k] = tile_wload(cg, cg_gep(cg, uc, cg_i64(cg, (int64_t)k * vw)));
    cg_prefetch(cg, cg_gep(cg, uc, pf), 2);
    for (int t = 0; t < nt; t++) {
        LLVMValueRef x = LLVMBuildLoad2(cg->b, cg->t_f32, cg_gep(cg, vp, cg_addc(cg, lc.iv, t * w->cpad)), "v");
        LLVMValueRef xs = cg_splat(cg, x);
        for (int k = 0; k < K; k++) acc[t * K + k] = cg_fma(cg, xs, wv[k], acc[t * K + k]);
    }
    tile_loop_end(cg, &lc, acc);
    for (int t = 0; t < nt; t++)
        for (int k = 0; k < K; k++) {
            LLVMValueRef p = cg_gep(cg, mp, cg_i64(cg, t * kvw + (int64_t)k * vw));
            buf_store(cg, first ? acc[t * K + k] : fadd(cg, buf_load(cg, p), acc[t * K + k]), p);
        }
}

/* Output block `ob` with K vectors (variant v: 0 full, 1 the tail). */
static void out_block(Cg *cg, Wino *w, int v, LLVMValueRef ob) {
    const ConvGeom *g = &w->g;
    int vw = cg->vw, K = w->K[v], nt = w->nt, m = w->m, T = w->T, P = w->P;
    int64_t nb = w->nb;
    int64_t kvw = (int64_t)K * vw, C = g->C;
    LLVMValueRef ublk = cg_gep(cg, w->u, v == 0 ? cg_mulc(cg, ob, w->ublock) : cg_i64(cg, w->nfull * w->ublock));
    LLVMValueRef oc0 = cg_mulc(cg, ob, (int64_t)w->K[0] * vw);

    /* per position, per chunk of input channels, every register tile of the block: the chunk's
       weights (64 channels × K vectors, 16 KiB at K·vw = 64) stay in L1 across the tiles */
    CgLoop lp;
    cg_loop_begin(cg, &lp, cg_i64(cg, 0), cg_i64(cg, P), 1, "pos");
    LLVMValueRef up = cg_gep(cg, ublk, cg_mulc(cg, lp.iv, C * kvw));
    int64_t cb = C < WINO_CHUNK ? C : WINO_CHUNK, nq = ceil_div64(C, WINO_CHUNK);
    for (int first = 1; first >= 0; first--) {
        if (!first && nq == 1) break;
        CgLoop lq, ls;
        LLVMValueRef lo = cg_i64(cg, 0), hi = cg_i64(cg, cb);
        if (!first) {
            cg_loop_begin(cg, &lq, cg_i64(cg, 1), cg_i64(cg, nq), 1, "chunk");
            lo = cg_mulc(cg, lq.iv, WINO_CHUNK);
            hi = cg_min(cg, cg_addc(cg, lo, WINO_CHUNK), cg_i64(cg, C));
        }
        cg_loop_begin(cg, &ls, cg_i64(cg, 0), cg_i64(cg, w->nsub), 1, "sub");
        LLVMValueRef pt = cg_add(cg, cg_mulc(cg, lp.iv, nb), cg_mulc(cg, ls.iv, nt)); /* p·nb + first tile */
        /* register tile s prefetches line s mod K of each step's weights in the next chunk */
        LLVMValueRef pf = cg_addc(cg, cg_mulc(cg, cg_remc(cg, ls.iv, K), vw), cb * kvw);
        gemm_chunk(cg, w, K, up, cg_gep(cg, w->V, cg_mulc(cg, pt, w->cpad)), cg_gep(cg, w->M, cg_mulc(cg, pt, kvw)), lo,
                   hi, first, pf);
        cg_loop_end(cg, &ls);
        if (!first) cg_loop_end(cg, &lq);
    }
    cg_loop_end(cg, &lp);

    /* the output transform, tile by tile */
    int64_t rem_h = g->OH - (w->TH - 1) * m, rem_w = g->OW - (w->TW - 1) * m; /* 1..m */
    CgLoop lt;
    cg_loop_begin(cg, &lt, cg_i64(cg, 0), cg_i64(cg, nb), 1, "otile");
    LLVMValueRef tile = cg_add(cg, w->t0, lt.iv);
    CgIf real;
    bool partial_blk = w->ntiles % nb != 0;
    if (partial_blk) cg_if_begin(cg, &real, LLVMBuildICmp(cg->b, LLVMIntSLT, tile, cg_i64(cg, w->ntiles), ""), "tile");
    LLVMValueRef img, oy0, ox0;
    tile_coords(cg, w, tile, &img, &oy0, &ox0);
    for (int k = 0; k < K; k++) {
        LLVMValueRef s[WINO_PMAX], y[16], z[4 * WINO_TMAX], col[WINO_TMAX], out[4];
        LLVMValueRef mt = cg_gep(cg, w->M, cg_add(cg, cg_mulc(cg, lt.iv, kvw), cg_i64(cg, (int64_t)k * vw)));
        for (int p = 0; p < P; p++) s[p] = buf_load(cg, cg_gep(cg, mt, cg_i64(cg, p * nb * kvw)));
        for (int j = 0; j < T; j++) { /* down the columns */
            for (int i = 0; i < T; i++) col[i] = s[i * T + j];
            emit_at(cg, m, col, out);
            for (int i = 0; i < m; i++) z[i * T + j] = out[i];
        }
        for (int i = 0; i < m; i++) emit_at(cg, m, &z[i * T], &y[i * m]); /* along the rows */
        LLVMValueRef oc = cg_addc(cg, oc0, (int64_t)k * vw);
        LLVMValueRef mask = v == 1 && k == K - 1 && w->last_lanes < vw ? cg_mask(cg, w->last_lanes) : NULL;
        LLVMValueRef bias = NULL;
        if (w->bias) bias = cg_vload(cg, cg_gep(cg, w->bias, oc));
        for (int i = 0; i < m; i++) {
            LLVMValueRef oy = cg_addc(cg, oy0, i * w->dh);
            CgIf ri, ci;
            bool gi = w->tab || i >= rem_h; /* this row may fall past the image (its sub-grid) */
            if (gi) cg_if_begin(cg, &ri, LLVMBuildICmp(cg->b, LLVMIntSLT, oy, cg_i64(cg, g->OH), ""), "orow");
            for (int j = 0; j < m; j++) {
                LLVMValueRef ox = cg_addc(cg, ox0, j * w->dw);
                bool gj = w->tab || j >= rem_w;
                if (gj) cg_if_begin(cg, &ci, LLVMBuildICmp(cg->b, LLVMIntSLT, ox, cg_i64(cg, g->OW), ""), "ocol");
                store_pixel(cg, w, y[i * m + j], bias, img, oc, oy, ox, mask);
                if (gj) cg_if_end(cg, &ci);
            }
            if (gi) cg_if_end(cg, &ri);
        }
    }
    if (partial_blk) cg_if_end(cg, &real);
    cg_loop_end(cg, &lt);
}

/* One work item: (group of gob output blocks, tile block), group-major: one input transform for
 * the group's blocks. */
static void wino_body(Cg *cg, LLVMValueRef item, void *user) {
    Wino *w = user;
    LLVMValueRef blk = cg_remc(cg, item, w->nblk), og = cg_divc(cg, item, w->nblk);
    w->in_base = cg_view_ptr(cg, &w->in, cg_i64(cg, 0));
    w->out_base = cg_view_ptr(cg, &w->out, cg_i64(cg, 0));
    w->t0 = cg_mulc(cg, blk, w->nb);
    if (!w->V) {
        w->V = cg_entry_alloca(cg, w->P * w->nb * w->cpad, "wino_v");
        w->M = cg_entry_alloca(cg, w->P * w->nb * w->K[0] * cg->vw, "wino_m");
    }
    input_transform(cg, w);
    bool tail = w->K[1] > 0;
    CgLoop lo;
    LLVMValueRef ob0 = cg_mulc(cg, og, w->gob);
    if (w->gob > 1) cg_loop_begin(cg, &lo, ob0, cg_min(cg, cg_addc(cg, ob0, w->gob), cg_i64(cg, w->nob)), 1, "oblk");
    LLVMValueRef ob = w->gob > 1 ? lo.iv : ob0;
    if (w->nfull) {
        CgIf c;
        if (tail) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, ob, cg_i64(cg, w->nfull), ""), "full");
        out_block(cg, w, 0, ob);
        if (tail) cg_if_end(cg, &c);
    }
    if (tail) {
        CgIf c;
        if (w->nfull) cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntEQ, ob, cg_i64(cg, w->nfull), ""), "tail");
        out_block(cg, w, 1, ob);
        if (w->nfull) cg_if_end(cg, &c);
    }
    if (w->gob > 1) cg_loop_end(cg, &lo);
}

/* ---- shapes and weights ---------------------------------------------------------------------- */

/* The register tile: nt tiles × K vectors, within the accumulator budget of the direct conv's
 * tiles (28 of 32 registers, 12 of 16), keeping K weight vectors and a broadcast live; the K
 * with the most FMAs per load wins. */
static void choose_tile(Cg *cg, int64_t ncvo, int *K, int *nt) {
    int regs = cg->vregs, budget = regs == 32 ? 28 : 12;
    double best = -1;
    for (int k = 1; k <= 4 && k <= ncvo; k++) {
        int p = budget / k, q = (regs - 1 - k) / k;
        if (q < p) p = q;
        if (p < 1) p = 1;
        double score = (double)p * k / (p + k);
        if (score > best) best = score, *K = k, *nt = p;
    }
}

/* Half-cycles of one input-channel step of an nt × K tile: FMAs, or loads (nt broadcasts and K
 * weight vectors), two of either per cycle, and at least 12 independent chains to cover the
 * FMA latency. */
static int64_t step_cost(int64_t nt, int64_t K) {
    int64_t c = nt * K, l = nt + K;
    if (c < 12) c = 12;
    return c > l ? c : l;
}

/* The tile blocks: as many tiles per item as the item's buffers allow (all of them when they fit
 * in WHOLE_BYTES and the output-block groups alone make enough items), evened out over the
 * blocks, then the register tile width that wastes the least on a block (16 tiles: 4 × 4, not
 * 6 + 6 + 6). */
static void choose_blocks(Wino *w, int vw, int ntmax) {
    int64_t per_tile = (int64_t)w->P * 4 * (w->cpad + (int64_t)w->K[0] * vw); /* V and M bytes */
    int64_t nbmax = BUF_BYTES / per_tile, hard = BUF_MAX_BYTES / per_tile;
    if (nbmax < ntmax) nbmax = hard < ntmax ? hard : ntmax;
    if (nbmax < 1) nbmax = 1;
    if (w->ntiles * per_tile <= WHOLE_BYTES && w->nog >= WHOLE_MIN_ITEMS) nbmax = w->ntiles;
    if (ntmax > nbmax) ntmax = (int)nbmax;
    w->nblk = ceil_div64(w->ntiles, nbmax);
    int64_t want = ceil_div64(w->ntiles, w->nblk), best = -1;
    for (int nt = ntmax; nt >= 1; nt--) {
        int64_t cost = ceil_div64(want, nt) * step_cost(nt, w->K[0]);
        if (best < 0 || cost < best) best = cost, w->nt = nt;
    }
    w->nsub = ceil_div64(want, w->nt);
    w->nb = w->nsub * w->nt;
    w->nblk = ceil_div64(w->ntiles, w->nb);
}

bool cg_winograd_conv2d(Cg *cg, const Node *n) {
    int vw = cg->vw;
    int m = ir_winograd_m(n);
    Wino w = {.n = n, .m = m, .T = wino_t(m), .P = wino_p(m), .g = conv_geom(cg->g, n), .in = cg->views[n->in[0]],
              .out = cg->views[n->out]};
    const ConvGeom *g = &w.g;
    NETC_ASSERT(m && ir_winograd_eligible(cg->g, n) && w.in.stride[1] == 1 && w.out.stride[1] == 1);
    w.TH = ceil_div64(g->OH, m), w.TW = ceil_div64(g->OW, m);
    w.dh = g->dh, w.dw = g->dw;
    w.tpi = w.TH * w.TW;
    float *tab = NULL;
    if (w.dh > 1 || w.dw > 1) { /* the tiles of every phase's sub-grid, phase by phase */
        int64_t py_n = w.dh < g->OH ? w.dh : g->OH, px_n = w.dw < g->OW ? w.dw : g->OW;
        w.tpi = 0;
        for (int64_t py = 0; py < py_n; py++)
            for (int64_t px = 0; px < px_n; px++)
                w.tpi += ceil_div64(ceil_div64(g->OH - py, w.dh), m) * ceil_div64(ceil_div64(g->OW - px, w.dw), m);
        tab = xmalloc((size_t)(2 * w.tpi) * sizeof *tab);
        int64_t t = 0;
        for (int64_t py = 0; py < py_n; py++)
            for (int64_t px = 0; px < px_n; px++) {
                int64_t th = ceil_div64(ceil_div64(g->OH - py, w.dh), m);
                int64_t tw = ceil_div64(ceil_div64(g->OW - px, w.dw), m);
                for (int64_t ty = 0; ty < th; ty++)
                    for (int64_t tx = 0; tx < tw; tx++, t++) {
                        tab[2 * t] = (float)(py + w.dh * ty * m);
                        tab[2 * t + 1] = (float)(px + w.dw * tx * m);
                    }
            }
    }
    w.ntiles = g->N * w.tpi;
    w.ncv = ceil_div64(g->C, vw), w.cpad = w.ncv * vw;
    int64_t ncvo = ceil_div64(g->O, vw);
    int ntmax = 1;
    choose_tile(cg, ncvo, &w.K[0], &ntmax);
    /* full blocks have every lane a channel; the rest, with its masked last vector, is the tail */
    w.nfull = g->O / ((int64_t)w.K[0] * vw);
    int64_t rem = g->O - w.nfull * w.K[0] * vw;
    w.K[1] = (int)ceil_div64(rem, vw);
    w.nob = w.nfull + (w.K[1] ? 1 : 0);
    w.gob = ceil_div64(GROUP_CHANNELS, (int64_t)w.K[0] * vw);
    if (w.gob > w.nob) w.gob = w.nob;
    w.nog = ceil_div64(w.nob, w.gob);
    w.last_lanes = rem - (int64_t)(w.K[1] - 1) * vw;
    choose_blocks(&w, vw, ntmax);
    w.ublock = w.P * g->C * w.K[0] * vw;

    /* U[block][p][c][K·vw] */
    int64_t count = w.nfull * w.ublock + w.P * g->C * w.K[1] * vw;
    float *u = xcalloc((size_t)count, sizeof *u), t[WINO_PMAX];
    const float *wt = ir_weight(cg->g, n, "weight")->data;
    for (int64_t o = 0; o < g->O; o++) {
        int64_t b = o / ((int64_t)w.K[0] * vw), l = o - b * w.K[0] * vw;
        int64_t kvw = (int64_t)(b < w.nfull ? w.K[0] : w.K[1]) * vw;
        float *dst = u + b * w.ublock;
        for (int64_t c = 0; c < g->C; c++) {
            wino_kernel(m, wt + (o * g->C + c) * 9, t);
            for (int p = 0; p < w.P; p++) dst[(p * g->C + c) * kvw + l] = t[p];
        }
    }
    char name[300];
    snprintf(name, sizeof name, "w.%s.weight.winograd", n->name);
    w.u = cg_weights(cg, u, count, name);
    free(u);
    const Tensor *bt = ir_weight(cg->g, n, "bias");
    if (bt) {
        float *p = xcalloc((size_t)(g->O + vw), sizeof *p);
        memcpy(p, bt->data, (size_t)g->O * sizeof *p);
        snprintf(name, sizeof name, "w.%s.bias", n->name);
        w.bias = cg_weights(cg, p, g->O + vw, name);
        free(p);
    }
    if (tab) {
        snprintf(name, sizeof name, "w.%s.winograd_tiles", n->name);
        w.tab = cg_weights(cg, tab, 2 * w.tpi, name);
        free(tab);
    }
    cg_parallel(cg, "conv2d_winograd", w.nog * w.nblk, wino_body, &w);
    return true;
}

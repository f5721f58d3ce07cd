/* cg_chan.h — helpers shared by the pooling and data-movement kernels (cg_pool.c, cg_data.c):
 * constant index tables, loop-carried values, offsets into rank-4 views, the per-pixel channel
 * loop (groups of vectors with a masked tail, or scalars for strided channels), and the split
 * of a rows × columns × channels iteration space into parallel work items. */
#ifndef NETC_CG_CHAN_H
#define NETC_CG_CHAN_H

#include "cg.h"

/* Parallel kernels aim at this many work items, so two threads (or more) balance. */
#define CGC_MIN_ITEMS 16
/* Vectors processed together per pixel: independent accumulators hide latency. */
#define CGC_MAXG 4


/* A private constant int64 table (per-row/column source indices computed at compile time). */
LLVMValueRef cgc_table_i64(Cg *cg, const int64_t *v, int64_t n, const char *name);
/* table[idx] as i64 / as float (a cg_weights table). */
LLVMValueRef cgc_load_i64(Cg *cg, LLVMValueRef table, LLVMValueRef idx);
LLVMValueRef cgc_load_f32(Cg *cg, LLVMValueRef table, LLVMValueRef idx);

/* A value carried around loop l: a phi in its header starting at init. Call cgc_carry_next
 * with the next value just before cg_loop_end; after the loop the phi holds the final value. */
LLVMValueRef cgc_carry(Cg *cg, CgLoop *l, LLVMValueRef init);
void cgc_carry_next(Cg *cg, LLVMValueRef phi, LLVMValueRef next);

/* Element offset of logical index idx[] (NULL entries are 0) in view v; dimensions of size 1
 * contribute nothing, whatever their stride. */
LLVMValueRef cgc_off(Cg *cg, const CgView *v, LLVMValueRef *idx);
static inline LLVMValueRef cgc_off4(Cg *cg, const CgView *v, LLVMValueRef n, LLVMValueRef c, LLVMValueRef y,
                                    LLVMValueRef x) {
    return cgc_off(cg, v, (LLVMValueRef[]){n, c, y, x});
}
/* Are the view's channels contiguous (or is there only one)? The vector paths need it. */
static inline bool cgc_unit_c(const CgView *v) { return v->shape[1] == 1 || v->stride[1] == 1; }

/* The channels of one pixel: full groups of G vectors (vector path, channels contiguous in
 * every view) or single channels (scalar path), then one trailing partial group whose last
 * vector is masked. The full groups can be split into chunks, one per work item. */
typedef struct CgcChan {
    bool vec;
    int64_t C;
    int G;             /* vectors per group (1 on the scalar path) */
    int64_t width;     /* channels per full group */
    int64_t nfull;     /* full groups */
    int64_t rem;       /* channels of the trailing partial group (0: none) */
    int64_t nchunks;   /* parallel chunks of the full groups (the partial group is in the last) */
    int64_t per_chunk; /* full groups per chunk */
} CgcChan;

/* One group being emitted: channels c0.. in nv vectors (mask[v] NULL: all lanes), or one
 * scalar channel c0. */
typedef struct CgcGrp {
    bool vec;
    int nv;
    LLVMValueRef c0;
    LLVMValueRef mask[CGC_MAXG];
} CgcGrp;

void cgc_chan_init(Cg *cg, CgcChan *ch, int64_t C, bool vec, int G);
typedef void (*CgcGrpFn)(Cg *cg, const CgcGrp *grp, void *user);
/* Emit fn for every group of chunk `chunk` (any value when ch->nchunks is 1). */
void cgc_chan_emit(Cg *cg, const CgcChan *ch, LLVMValueRef chunk, CgcGrpFn fn, void *user);

/* Vector v of the group (or the scalar) of view `view` at element offset `pix` (channel 0 of a
 * pixel): loads give 0 in masked-off lanes. */
LLVMValueRef cgc_load(Cg *cg, const CgcGrp *g, int v, const CgView *view, LLVMValueRef pix);
void cgc_store(Cg *cg, const CgcGrp *g, int v, const CgView *view, LLVMValueRef pix, LLVMValueRef val);
/* The group's value type (float vector or float) and a constant of it. */
LLVMTypeRef cgc_type(Cg *cg, const CgcGrp *g);
LLVMValueRef cgc_const(Cg *cg, const CgcGrp *g, double v);

/* Work items over rows × columns × channel chunks: columns are split into blocks and the
 * channels into chunks only when there are too few rows to keep the threads busy. */
typedef struct CgcSplit {
    int64_t rows, cols;
    int64_t xblocks, xper; /* column blocks and columns per block */
    int64_t items;
} CgcSplit;
void cgc_split(CgcSplit *s, CgcChan *ch, int64_t rows, int64_t cols);
/* Decode an item: row index, column range [x0, x1), channel chunk. */
void cgc_split_decode(Cg *cg, const CgcSplit *s, const CgcChan *ch, LLVMValueRef item, LLVMValueRef *row,
                      LLVMValueRef *x0, LLVMValueRef *x1, LLVMValueRef *chunk);

#endif

/* cg_tile.h — helpers shared by the register-tiled kernel generators (conv2d, conv_transpose2d,
 * linear): loops that carry accumulators as SSA values, and the convolution geometry. */
#ifndef NETC_CG_TILE_H
#define NETC_CG_TILE_H

#include "cg.h"

/* The largest number of values a tile loop carries (accumulators of a register tile). */
#define TILE_MAX_VALS 64

/* A counted loop whose body updates `nv` loop-carried values (accumulators). Unlike an alloca
 * that mem2reg would promote, the values are phis from the start, so the tile is in registers at
 * every optimisation level and the IR says so. */
typedef struct TileLoop {
    LLVMValueRef iv;
    LLVMValueRef phis[TILE_MAX_VALS];
    int nv;
    LLVMValueRef step;
    LLVMBasicBlockRef header, exit;
    bool rolled; /* keep the loop rolled (llvm.loop.unroll.disable): set between begin and end */
} TileLoop;

/* for (iv = start; iv < end; iv += step): vals[] become the header phis (read them in the body,
 * overwrite them with the updated values before tile_loop_end). */
static inline void tile_loop_begin(Cg *cg, TileLoop *l, LLVMValueRef start, LLVMValueRef end, int64_t step,
                                   LLVMValueRef *vals, int nv, const char *name) {
    NETC_ASSERT(nv <= TILE_MAX_VALS);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
    l->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tbody");
    l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "texit");
    l->step = cg_i64(cg, step);
    l->nv = nv;
    l->rolled = false;
    LLVMBuildBr(cg->b, l->header);
    LLVMPositionBuilderAtEnd(cg->b, l->header);
    l->iv = LLVMBuildPhi(cg->b, cg->t_i64, name);
    LLVMAddIncoming(l->iv, &start, &pre, 1);
    for (int i = 0; i < nv; i++) {
        l->phis[i] = LLVMBuildPhi(cg->b, LLVMTypeOf(vals[i]), "acc");
        LLVMAddIncoming(l->phis[i], &vals[i], &pre, 1);
        vals[i] = l->phis[i];
    }
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, l->iv, end, ""), body, l->exit);
    LLVMPositionBuilderAtEnd(cg->b, body);
}

/* Close the loop: vals[] hold the values at the end of the body; afterwards they are the values
 * after the loop (the header phis, which the exit edge leaves from). */
static inline void tile_loop_end(Cg *cg, TileLoop *l, LLVMValueRef *vals) {
    LLVMValueRef next = LLVMBuildNSWAdd(cg->b, l->iv, l->step, "next");
    LLVMBasicBlockRef from = LLVMGetInsertBlock(cg->b);
    LLVMValueRef latch = LLVMBuildBr(cg->b, l->header);
    if (l->rolled) cg_loop_no_unroll(cg, latch);
    LLVMAddIncoming(l->iv, &next, &from, 1);
    for (int i = 0; i < l->nv; i++) {
        LLVMAddIncoming(l->phis[i], &vals[i], &from, 1);
        vals[i] = l->phis[i];
    }
    LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

/* Attributes of a convolution (conv2d or conv_transpose2d) and its input/output shapes. */
typedef struct ConvGeom {
    int64_t N, C, H, W;    /* input */
    int64_t O, OH, OW;     /* output */
    int64_t KH, KW, sh, sw, ph, pw, dh, dw, oph, opw;
    int64_t groups, cpg, opg; /* input and output channels per group */
} ConvGeom;

static inline ConvGeom conv_geom(const Graph *g, const Node *n) {
    const Tensor *ti = ir_tensor(g, n->in[0]), *to = ir_tensor(g, n->out);
    int64_t k[2], s[2], p[2], d[2], op[2] = {0, 0};
    ir_attr_pair(n, "kernel", k);
    ir_attr_pair(n, "stride", s);
    ir_attr_pair(n, "pad", p);
    ir_attr_pair(n, "dilation", d);
    if (n->op == OP_CONV_TRANSPOSE2D) ir_attr_pair(n, "output_pad", op);
    ConvGeom c = {.N = ti->shape[0], .C = ti->shape[1], .H = ti->shape[2], .W = ti->shape[3],
                  .O = to->shape[1], .OH = to->shape[2], .OW = to->shape[3],
                  .KH = k[0], .KW = k[1], .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1],
                  .dh = d[0], .dw = d[1], .oph = op[0], .opw = op[1], .groups = ir_attr_int(n, "groups")};
    c.cpg = c.C / c.groups;
    c.opg = c.O / c.groups;
    return c;
}

/* The taps k in [lo, hi) of a kernel of K taps whose input coordinate o*s - p + k*d falls inside
 * [0, In), for a runtime output coordinate o: the clamp that keeps bounds checks out of the
 * inner loops. lo = ceil(max(p - o*s, 0) / d); hi = min(K, floor((In - 1 + p - o*s) / d) + 1),
 * or 0 when that numerator is negative. */
static inline void tap_range(Cg *cg, LLVMValueRef o, int64_t s, int64_t p, int64_t d, int64_t K, int64_t In,
                             LLVMValueRef *lo, LLVMValueRef *hi) {
    LLVMValueRef os = cg_mulc(cg, o, s);
    LLVMValueRef a = LLVMBuildSub(cg->b, cg_i64(cg, p), os, "");
    *lo = cg_divc(cg, cg_addc(cg, cg_max(cg, a, cg_i64(cg, 0)), d - 1), d);
    LLVMValueRef b = LLVMBuildSub(cg->b, cg_i64(cg, In - 1 + p), os, "");
    LLVMValueRef q = cg_addc(cg, cg_divc(cg, cg_max(cg, b, cg_i64(cg, 0)), d), 1);
    LLVMValueRef neg = LLVMBuildICmp(cg->b, LLVMIntSLT, b, cg_i64(cg, 0), "");
    *hi = LLVMBuildSelect(cg->b, neg, cg_i64(cg, 0), cg_min(cg, q, cg_i64(cg, K)), "");
}

/* A vector load from a constant weight blob at an offset known to be a multiple of vw floats
 * from a 64-byte-aligned global: the aligned form. */
static inline LLVMValueRef tile_wload(Cg *cg, LLVMValueRef ptr) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, ptr, "w");
    LLVMSetAlignment(v, (unsigned)(cg->vw * 4 > 64 ? 64 : cg->vw * 4));
    return v;
}

/* Where a conv kernel writes, and what its epilogue needs (cg_conv.c). */
typedef struct ConvOut {
    const Node *n;
    CgView view;
    LLVMValueRef base;  /* the view's element 0, loaded once per work item */
    LLVMValueRef bias;  /* float[O + vw] zero-padded, or NULL */
    int64_t sN, sC, sH, sW;
    /* a 1×1 conv run as a GEMM indexes pixels flat (n = oy = 0, ox over N·OH·OW): the
       epilogue's residual operands need the real (n, oy, ox) back */
    int64_t flat_oh, flat_ow; /* 0 when not flattened */
} ConvOut;

/* The output view of conv node n with O channels, and its bias padded to O + vw (or NULL). */
ConvOut cg_conv_out(Cg *cg, const Node *n, int64_t O);
/* The element offset of output (n, oc, oy, ox) from o->base. */
LLVMValueRef cg_conv_out_off(Cg *cg, const ConvOut *o, LLVMValueRef n, LLVMValueRef oc, LLVMValueRef oy, LLVMValueRef ox);
/* The one store step of every conv2d kernel: the epilogue (the bias, then the node's fused
 * activations and residual adds) applied to accumulated output channels [oc, oc + lanes) at
 * pixel (n, oy, ox), then the store. `acc` is a vector (channels contiguous: sC == 1; `mask`
 * selects the valid lanes, NULL for all) or a scalar. */
void cg_conv_store(Cg *cg, const ConvOut *o, LLVMValueRef acc, LLVMValueRef n, LLVMValueRef oc, LLVMValueRef oy,
                   LLVMValueRef ox, LLVMValueRef mask);
/* A reduction in chunks keeps its partial sums in the output between chunks. Load: acc[i] (n of
 * them) stays as it is where `first` holds, else becomes the vector at ptr[i] (lanes mask[i],
 * NULL: all). Store: where `last` does not hold, the bare acc[i] go to ptr[i]; the builder is
 * left in the `last` branch for the caller's epilogue store, closed by cg_if_end(cg, c). */
void cg_partials_load(Cg *cg, LLVMValueRef first, LLVMValueRef *acc, int n, LLVMValueRef const *ptr,
                      LLVMValueRef const *mask);
void cg_partials_store_begin(Cg *cg, CgIf *c, LLVMValueRef last, LLVMValueRef const *acc, int n, LLVMValueRef const *ptr,
                             LLVMValueRef const *mask);

static inline int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

#endif

/* cg_util.c — the IR-emission helpers every kernel generator uses: views, integer arithmetic,
 * loops, vectors, intrinsics, vector math, activations, weights, and the parallel dispatch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "cg.h"

/* ---- views ----------------------------------------------------------------------------- */

void cg_rowmajor_strides(int rank, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i];
    }
}

static LLVMValueRef view_base(Cg *cg, const CgView *v) {
    LLVMValueRef arr = v->buf == CG_BUF_WS ? NULL : v->buf == CG_BUF_IN ? cg->ins : cg->outs;
    LLVMValueRef base = cg->ws;
    if (arr) {
        LLVMValueRef slot = LLVMBuildGEP2(cg->b, cg->t_ptr, arr, (LLVMValueRef[]){cg_i64(cg, v->index)}, 1, "");
        base = LLVMBuildLoad2(cg->b, cg->t_ptr, slot, "buf");
        LLVMSetMetadata(base, LLVMGetMDKindIDInContext(cg->ctx, "invariant.load", 14),
                        LLVMMetadataAsValue(cg->ctx, LLVMMDNodeInContext2(cg->ctx, NULL, 0)));
    }
    return base;
}

LLVMValueRef cg_gep(Cg *cg, LLVMValueRef base, LLVMValueRef off) {
    return LLVMBuildGEP2(cg->b, cg->t_f32, base, &off, 1, "");
}

LLVMValueRef cg_view_ptr(Cg *cg, const CgView *v, LLVMValueRef elem_offset) {
    LLVMValueRef off = v->offset ? cg_addc(cg, elem_offset, v->offset) : elem_offset;
    return cg_gep(cg, view_base(cg, v), off);
}

LLVMValueRef cg_view_at(Cg *cg, const CgView *v, LLVMValueRef *idx) {
    LLVMValueRef off = cg_i64(cg, 0);
    for (int i = 0; i < v->rank; i++)
        if (v->shape[i] > 1) off = cg_add(cg, off, cg_mulc(cg, idx[i], v->stride[i]));
    return cg_view_ptr(cg, v, off);
}

/* ---- scalars ---------------------------------------------------------------------------- */

LLVMValueRef cg_i64(Cg *cg, int64_t v) { return LLVMConstInt(cg->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(Cg *cg, double v) { return LLVMConstReal(cg->t_f32, v); }
LLVMValueRef cg_splat(Cg *cg, LLVMValueRef s) {
    if (LLVMIsConstant(s)) {
        LLVMValueRef e[64];
        for (int i = 0; i < cg->vw; i++) e[i] = s;
        return LLVMConstVector(e, (unsigned)cg->vw);
    }
    LLVMValueRef undef = LLVMGetUndef(cg->t_vf);
    LLVMValueRef v = LLVMBuildInsertElement(cg->b, undef, s, LLVMConstInt(cg->t_i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)cg->vw));
    return LLVMBuildShuffleVector(cg->b, v, undef, zeros, "splat");
}
LLVMValueRef cg_vf(Cg *cg, double v) { return cg_splat(cg, cg_f32(cg, v)); }

LLVMValueRef cg_add(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }
LLVMValueRef cg_mul(Cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->b, a, b, ""); }
LLVMValueRef cg_addc(Cg *cg, LLVMValueRef a, int64_t c) { return c ? cg_add(cg, a, cg_i64(cg, c)) : a; }
LLVMValueRef cg_mulc(Cg *cg, LLVMValueRef a, int64_t c) { return c == 1 ? a : cg_mul(cg, a, cg_i64(cg, c)); }
LLVMValueRef cg_divc(Cg *cg, LLVMValueRef a, int64_t c) { return c == 1 ? a : LLVMBuildUDiv(cg->b, a, cg_i64(cg, c), ""); }
LLVMValueRef cg_remc(Cg *cg, LLVMValueRef a, int64_t c) {
    return c == 1 ? cg_i64(cg, 0) : LLVMBuildURem(cg->b, a, cg_i64(cg, c), "");
}
LLVMValueRef cg_min(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "");
}
LLVMValueRef cg_max(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, a, b, ""), a, b, "");
}

/* ---- control flow ------------------------------------------------------------------------ */

void cg_loop_begin(Cg *cg, CgLoop *l, LLVMValueRef start, LLVMValueRef end, int64_t step, const char *name) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
    l->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
    l->body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "exit");
    l->step = cg_i64(cg, step);
    LLVMBuildBr(cg->b, l->header);
    LLVMPositionBuilderAtEnd(cg->b, l->header);
    l->phi = LLVMBuildPhi(cg->b, cg->t_i64, name);
    LLVMAddIncoming(l->phi, &start, &pre, 1);
    l->iv = l->phi;
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, l->phi, end, ""), l->body, l->exit);
    LLVMPositionBuilderAtEnd(cg->b, l->body);
}

void cg_loop_end(Cg *cg, CgLoop *l) {
    LLVMValueRef next = LLVMBuildNSWAdd(cg->b, l->phi, l->step, "next");
    LLVMBasicBlockRef from = LLVMGetInsertBlock(cg->b);
    LLVMBuildBr(cg->b, l->header);
    LLVMAddIncoming(l->phi, &next, &from, 1);
    LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

void cg_if_begin(Cg *cg, CgIf *c, LLVMValueRef cond, const char *name) {
    c->then_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
    c->merge_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "endif");
    LLVMBuildCondBr(cg->b, cond, c->then_bb, c->merge_bb);
    LLVMPositionBuilderAtEnd(cg->b, c->then_bb);
}

void cg_if_end(Cg *cg, CgIf *c) {
    LLVMBuildBr(cg->b, c->merge_bb);
    LLVMPositionBuilderAtEnd(cg->b, c->merge_bb);
}

/* ---- vectors ----------------------------------------------------------------------------- */

LLVMValueRef cg_vload(Cg *cg, LLVMValueRef ptr) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, ptr, "");
    LLVMSetAlignment(v, 4);
    return v;
}

void cg_vstore(Cg *cg, LLVMValueRef v, LLVMValueRef ptr) { LLVMSetAlignment(LLVMBuildStore(cg->b, v, ptr), 4); }

LLVMValueRef cg_mask(Cg *cg, int64_t nvalid) {
    LLVMValueRef e[64];
    for (int i = 0; i < cg->vw; i++) e[i] = LLVMConstInt(cg->t_i1, i < nvalid, 0);
    return LLVMConstVector(e, (unsigned)cg->vw);
}

LLVMValueRef cg_mask_rt(Cg *cg, LLVMValueRef nvalid) {
    LLVMValueRef lanes[64];
    for (int i = 0; i < cg->vw; i++) lanes[i] = LLVMConstInt(cg->t_i64, (unsigned long long)i, 0);
    LLVMValueRef iota = LLVMConstVector(lanes, (unsigned)cg->vw);
    LLVMTypeRef vi64 = LLVMVectorType(cg->t_i64, (unsigned)cg->vw);
    LLVMValueRef n = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vi64), nvalid, LLVMConstInt(cg->t_i32, 0, 0), "");
    n = LLVMBuildShuffleVector(cg->b, n, LLVMGetUndef(vi64), LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)cg->vw)), "");
    return LLVMBuildICmp(cg->b, LLVMIntSLT, iota, n, "mask");
}

LLVMValueRef cg_intrinsic(Cg *cg, const char *name, LLVMTypeRef overload, LLVMValueRef *args, int nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    NETC_ASSERT(id != 0);
    LLVMTypeRef ov[1] = {overload};
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, ov, overload ? 1 : 0);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, ov, overload ? 1 : 0);
    return LLVMBuildCall2(cg->b, ft, f, args, (unsigned)nargs, "");
}

LLVMValueRef cg_vload_masked(Cg *cg, LLVMValueRef ptr, LLVMValueRef mask) {
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
    LLVMTypeRef ov[2] = {cg->t_vf, cg->t_ptr};
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, ov, 2);
    LLVMValueRef args[4] = {ptr, LLVMConstInt(cg->t_i32, 4, 0), mask, LLVMConstNull(cg->t_vf)};
    return LLVMBuildCall2(cg->b, ft, f, args, 4, "");
}

void cg_vstore_masked(Cg *cg, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask) {
    unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
    LLVMTypeRef ov[2] = {cg->t_vf, cg->t_ptr};
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 2);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, ov, 2);
    LLVMValueRef args[4] = {v, ptr, LLVMConstInt(cg->t_i32, 4, 0), mask};
    LLVMBuildCall2(cg->b, ft, f, args, 4, "");
}

LLVMValueRef cg_fma(Cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    /* without FMA hardware llvm.fma becomes a libm call per lane: fmuladd is a mul and an add */
    return cg_intrinsic(cg, cg->fma ? "llvm.fma" : "llvm.fmuladd", LLVMTypeOf(a), (LLVMValueRef[]){a, b, c}, 3);
}
/* a < b ? b : a, not llvm.maxnum: maxnum(NaN, 0) is 0, so relu(NaN) would be 0 where PyTorch
 * and the interpreter give NaN. Written as a select on an ordered compare, x86 selects one
 * maxps/minps (whose operand order is exactly "keep the first when unordered"), no blend. */
LLVMValueRef cg_fmax(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOLT, a, b, ""), b, a, "max");
}
LLVMValueRef cg_fmin(Cg *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, ""), b, a, "min");
}

LLVMValueRef cg_hsum(Cg *cg, LLVMValueRef v) {
    LLVMValueRef r = cg_intrinsic(cg, "llvm.vector.reduce.fadd", LLVMTypeOf(v), (LLVMValueRef[]){cg_f32(cg, -0.0), v}, 2);
    LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc);
    return r;
}
/* By halving, the upper lanes onto the lower ones: log2(vw) shuffles and maxps, where
 * llvm.vector.reduce.fmax (maxnum) is a scalar max/compare/blend per lane. For NaN-free vectors
 * (softmax's running max skips NaNs): which NaN lane would come out is not specified. */
LLVMValueRef cg_hmax(Cg *cg, LLVMValueRef v) {
    unsigned n = LLVMGetVectorSize(LLVMTypeOf(v));
    for (unsigned half = n / 2; half >= 1; half /= 2) {
        LLVMValueRef idx[64];
        for (unsigned i = 0; i < n; i++) idx[i] = LLVMConstInt(cg->t_i32, i < half ? i + half : i, 0);
        LLVMValueRef hi = LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(idx, n), "");
        v = cg_fmax(cg, v, hi);
    }
    return LLVMBuildExtractElement(cg->b, v, LLVMConstInt(cg->t_i32, 0, 0), "");
}

/* Vector math: glibc's libmvec on x86 (zmm/ymm variants, by the vector-function ABI names),
 * else libm per lane. Scalars always go to libm. */
LLVMValueRef cg_math(Cg *cg, const char *fn, LLVMValueRef x) {
    LLVMTypeRef t = LLVMTypeOf(x);
    bool vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
    char name[64];
    LLVMTypeRef ft = LLVMFunctionType(t, &t, 1, 0);
    if (vec && cg->x86 && ((cg->vw == 16 && cg->avx512) || (cg->vw == 8 && cg->avx2))) {
        snprintf(name, sizeof name, "_ZGV%cN%dv_%sf", cg->vw == 16 ? 'e' : 'd', cg->vw, fn);
    } else if (!vec) {
        snprintf(name, sizeof name, "%sf", fn);
    } else {
        LLVMValueRef r = LLVMGetUndef(t);
        for (int i = 0; i < cg->vw; i++) {
            LLVMValueRef lane = LLVMConstInt(cg->t_i32, (unsigned long long)i, 0);
            LLVMValueRef s = cg_math(cg, fn, LLVMBuildExtractElement(cg->b, x, lane, ""));
            r = LLVMBuildInsertElement(cg->b, r, s, lane, "");
        }
        return r;
    }
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) f = LLVMAddFunction(cg->mod, name, ft);
    return LLVMBuildCall2(cg->b, ft, f, &x, 1, "");
}

LLVMValueRef cg_entry_alloca(Cg *cg, int64_t floats, const char *name) {
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(b, first);
    else LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef a = LLVMBuildAlloca(b, LLVMArrayType2(cg->t_f32, (uint64_t)floats), name);
    LLVMSetAlignment(a, 64);
    LLVMDisposeBuilder(b);
    LLVMAddTargetDependentFunctionAttr(cg->fn, "probe-stack", "inline-asm");
    return a;
}

void cg_prefetch(Cg *cg, LLVMValueRef p, int locality) {
    LLVMTypeRef ov = cg->t_ptr;
    unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &ov, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &ov, 1);
    LLVMValueRef args[4] = {p, LLVMConstInt(cg->t_i32, 0, 0), LLVMConstInt(cg->t_i32, (unsigned long long)locality, 0),
                            LLVMConstInt(cg->t_i32, 1, 0)};
    LLVMBuildCall2(cg->b, ft, f, args, 4, "");
}

void cg_loop_no_unroll(Cg *cg, LLVMValueRef latch_br) {
    static const char dis[] = "llvm.loop.unroll.disable";
    LLVMMetadataRef opt = LLVMMDStringInContext2(cg->ctx, dis, sizeof dis - 1);
    LLVMMetadataRef opt_node = LLVMMDNodeInContext2(cg->ctx, &opt, 1);
    LLVMMetadataRef self = LLVMTemporaryMDNode(cg->ctx, NULL, 0);
    LLVMMetadataRef ops[2] = {self, opt_node};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(cg->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, loop); /* the loop ID refers to itself */
    LLVMSetMetadata(latch_br, LLVMGetMDKindIDInContext(cg->ctx, "llvm.loop", 9), LLVMMetadataAsValue(cg->ctx, loop));
}

/* ---- activations --------------------------------------------------------------------------- */

static LLVMValueRef konst(Cg *cg, LLVMTypeRef t, double v) {
    LLVMValueRef s = cg_f32(cg, v);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? cg_splat(cg, s) : s;
}

static LLVMValueRef sel_ge0(Cg *cg, LLVMValueRef x, LLVMValueRef pos, LLVMValueRef neg) {
    LLVMValueRef c = LLVMBuildFCmp(cg->b, LLVMRealOGE, x, konst(cg, LLVMTypeOf(x), 0), "");
    return LLVMBuildSelect(cg->b, c, pos, neg, "");
}

LLVMValueRef cg_activation(Cg *cg, const Node *n, LLVMValueRef x, LLVMValueRef slope) {
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef t = LLVMTypeOf(x);
#define K(v) konst(cg, t, v)
    switch (n->op) {
    case OP_RELU: return cg_fmax(cg, x, K(0));
    case OP_RELU6: return cg_fmin(cg, cg_fmax(cg, x, K(0)), K(6));
    case OP_LEAKY_RELU: return sel_ge0(cg, x, x, LLVMBuildFMul(b, x, K(ir_attr_float(n, "slope")), ""));
    case OP_PRELU: return sel_ge0(cg, x, x, LLVMBuildFMul(b, x, slope, ""));
    case OP_CLAMP: {
        LLVMValueRef r = x;
        if (ir_attr_set(n, "min")) r = cg_fmax(cg, r, K(ir_attr_float(n, "min")));
        if (ir_attr_set(n, "max")) r = cg_fmin(cg, r, K(ir_attr_float(n, "max")));
        return r;
    }
    case OP_SIGMOID: {
        LLVMValueRef e = cg_math(cg, "exp", LLVMBuildFNeg(b, x, ""));
        return LLVMBuildFDiv(b, K(1), LLVMBuildFAdd(b, K(1), e, ""), "");
    }
    case OP_TANH: return cg_math(cg, "tanh", x);
    case OP_SILU: {
        LLVMValueRef e = cg_math(cg, "exp", LLVMBuildFNeg(b, x, ""));
        return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, K(1), e, ""), "");
    }
    case OP_HARDSWISH:
    case OP_HARDSIGMOID: {
        /* PyTorch's order: x * r / 6 for hardswish (so hardswish(3e38) overflows to inf there) */
        LLVMValueRef r = cg_fmin(cg, cg_fmax(cg, LLVMBuildFAdd(b, x, K(3), ""), K(0)), K(6));
        if (n->op == OP_HARDSWISH) r = LLVMBuildFMul(b, x, r, "");
        return LLVMBuildFDiv(b, r, K(6), "");
    }
    case OP_GELU: {
        LLVMValueRef half_x = LLVMBuildFMul(b, x, K(0.5), "");
        LLVMValueRef inner;
        if (!strcmp(ir_attr_str(n, "approximate"), "tanh")) {
            LLVMValueRef x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x, x, ""), x, "");
            LLVMValueRef u = LLVMBuildFMul(b, K(0.7978845608028654), cg_fma(cg, x3, K(0.044715), x), "");
            inner = cg_math(cg, "tanh", u);
        } else {
            inner = cg_math(cg, "erf", LLVMBuildFMul(b, x, K(0.7071067811865476), ""));
        }
        return LLVMBuildFMul(b, half_x, LLVMBuildFAdd(b, K(1), inner, ""), "");
    }
    case OP_ELU: {
        LLVMValueRef neg = LLVMBuildFMul(b, K(ir_attr_float(n, "alpha")), cg_math(cg, "expm1", x), "");
        LLVMValueRef c = LLVMBuildFCmp(b, LLVMRealOGT, x, K(0), "");
        return LLVMBuildSelect(b, c, x, neg, "");
    }
    case OP_DROPOUT: return x;
    default: NETC_ASSERT(!"cg_activation: not an activation");
    }
#undef K
}

/* ---- fused epilogues ------------------------------------------------------------------------ */

bool cg_epilogue_needs_index(const Node *n) {
    for (int k = 0; k < n->nepi; k++)
        if (n->epi[k].residual >= 0) return true;
    return false;
}

bool cg_epilogue_needs_channel(const Cg *cg, const Node *n) {
    for (int k = 0; k < n->nepi; k++) {
        if (n->epi[k].residual >= 0) return true;
        const Node *a = n->epi[k].act;
        if (a->op == OP_PRELU && ir_numel(ir_weight(cg->g, a, "weight")) > 1) return true;
    }
    return false;
}

static LLVMValueRef prelu_slopes(Cg *cg, const Node *a) {
    for (int i = 0; i < cg->epi_keys.len; i++)
        if (cg->epi_keys.items[i] == a) return cg->epi_globals.items[i];
    const Tensor *w = ir_weight(cg->g, a, "weight");
    char name[256];
    snprintf(name, sizeof name, "w.%s", w->name);
    LLVMValueRef gv = cg_weights(cg, w->data, ir_numel(w), name);
    ptrvec_push(&cg->epi_keys, (void *)a);
    ptrvec_push(&cg->epi_globals, gv);
    return gv;
}

LLVMValueRef cg_epilogue(Cg *cg, const Node *n, LLVMValueRef v, LLVMValueRef *idx, LLVMValueRef mask) {
    bool vec = LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind;
    for (int k = 0; k < n->nepi; k++) {
        const EpiOp *e = &n->epi[k];
        if (e->residual >= 0) {
            const CgView *rv = &cg->views[e->residual];
            LLVMValueRef ptr = cg_view_at(cg, rv, idx);
            LLVMValueRef r;
            if (!vec) {
                r = LLVMBuildLoad2(cg->b, cg->t_f32, ptr, "res");
            } else if (rv->stride[1] == 1 || rv->shape[1] == 1) {
                r = mask ? cg_vload_masked(cg, ptr, mask) : cg_vload(cg, ptr);
            } else { /* channels not contiguous: lane by lane */
                r = LLVMConstNull(cg->t_vf);
                for (int l = 0; l < cg->vw; l++) {
                    LLVMValueRef lane = LLVMConstInt(cg->t_i32, (unsigned long long)l, 0);
                    LLVMValueRef p = cg_gep(cg, ptr, cg_i64(cg, l * rv->stride[1]));
                    LLVMValueRef ok = mask ? LLVMBuildExtractElement(cg->b, mask, lane, "") : LLVMConstInt(cg->t_i1, 1, 0);
                    LLVMValueRef x = LLVMBuildSelect(cg->b, ok, LLVMBuildLoad2(cg->b, cg->t_f32, p, ""), cg_f32(cg, 0), "");
                    r = LLVMBuildInsertElement(cg->b, r, x, lane, "");
                }
            }
            v = LLVMBuildFAdd(cg->b, v, r, "");
            continue;
        }
        const Node *a = e->act;
        LLVMValueRef slope = NULL;
        if (a->op == OP_PRELU) {
            LLVMValueRef w = prelu_slopes(cg, a);
            bool one = ir_numel(ir_weight(cg->g, a, "weight")) == 1;
            LLVMValueRef ptr = one ? w : cg_gep(cg, w, idx[1]);
            if (!vec || one) {
                slope = LLVMBuildLoad2(cg->b, cg->t_f32, ptr, "slope");
                if (vec) slope = cg_splat(cg, slope);
            } else {
                slope = mask ? cg_vload_masked(cg, ptr, mask) : cg_vload(cg, ptr);
            }
        }
        v = cg_activation(cg, a, v, slope);
    }
    return v;
}

/* ---- weights and tables ----------------------------------------------------------------------- */

LLVMValueRef cg_const_global(Cg *cg, LLVMValueRef init, const char *name) {
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    LLVMSetAlignment(gv, 64);
    return gv;
}

LLVMValueRef cg_table_i32(Cg *cg, const int32_t *v, int64_t n, const char *name) {
    LLVMValueRef *e = xcalloc((size_t)(n ? n : 1), sizeof *e);
    for (int64_t i = 0; i < n; i++) e[i] = LLVMConstInt(cg->t_i32, (unsigned long long)(int64_t)v[i], 1);
    LLVMValueRef init = LLVMConstArray2(cg->t_i32, e, (uint64_t)n);
    free(e);
    return cg_const_global(cg, init, name);
}

/* ---- kernels ------------------------------------------------------------------------------- */

static void set_fn_attrs(Cg *cg, LLVMValueRef fn) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d", cg->vw * 32);
    LLVMAttributeRef a = LLVMCreateStringAttribute(cg->ctx, "prefer-vector-width", 19, buf, (unsigned)strlen(buf));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
    LLVMAttributeRef m = LLVMCreateStringAttribute(cg->ctx, "min-legal-vector-width", 22, buf, (unsigned)strlen(buf));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, m);
    /* a task function inlined into the serial path would have constant bounds, get fully
       unrolled at -O2 and take instruction selection tens of seconds on big copies */
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, nounwind, 0));
    cg_set_target_attrs(cg, fn); /* a fat artifact's variants differ in these only */
}

void cg_parallel(Cg *cg, const char *name, int64_t n, CgBodyFn body, void *user) {
    char fname[128];
    snprintf(fname, sizeof fname, "k%d_%s", cg->kernel_count++, name);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, fname, cg->t_task);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    set_fn_attrs(cg, fn);
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(cg->b);
    cg->fn = fn;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef ctxp = LLVMGetParam(fn, 0);
    cg->ctx_ptr = ctxp;
    cg->ws = LLVMBuildLoad2(cg->b, cg->t_ptr, LLVMBuildStructGEP2(cg->b, cg->t_ctx, ctxp, 0, ""), "ws");
    cg->ins = LLVMBuildLoad2(cg->b, cg->t_ptr, LLVMBuildStructGEP2(cg->b, cg->t_ctx, ctxp, 1, ""), "ins");
    cg->outs = LLVMBuildLoad2(cg->b, cg->t_ptr, LLVMBuildStructGEP2(cg->b, cg->t_ctx, ctxp, 2, ""), "outs");
    cg->task_end = LLVMGetParam(fn, 2);
    CgLoop l;
    cg_loop_begin(cg, &l, LLVMGetParam(fn, 1), cg->task_end, 1, "item");
    body(cg, l.iv, user);
    cg_loop_end(cg, &l);
    LLVMBuildRetVoid(cg->b);

    /* the dispatch, in the entry function */
    cg->fn = cg->entry_fn;
    LLVMPositionBuilderAtEnd(cg->b, saved);
    LLVMValueRef args3[3] = {cg->entry_ctx, cg_i64(cg, 0), cg_i64(cg, n)};
    if (n <= 1) {
        LLVMBuildCall2(cg->b, cg->t_task, fn, args3, 3, "");
        return;
    }
    LLVMValueRef has_pool = LLVMBuildIsNotNull(cg->b, cg->entry_pool, "");
    LLVMBasicBlockRef par = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "par");
    LLVMBasicBlockRef ser = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "ser");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "done");
    LLVMBuildCondBr(cg->b, has_pool, par, ser);
    LLVMPositionBuilderAtEnd(cg->b, par);
    LLVMTypeRef pf_args[4] = {cg->t_ptr, cg->t_i64, cg->t_ptr, cg->t_ptr};
    LLVMTypeRef pf_t = LLVMFunctionType(cg->t_void, pf_args, 4, 0);
    LLVMValueRef pf = LLVMBuildLoad2(cg->b, cg->t_ptr, cg->entry_pool, "parallel_for");
    LLVMBuildCall2(cg->b, pf_t, pf, (LLVMValueRef[]){cg->entry_pool, cg_i64(cg, n), fn, cg->entry_ctx}, 4, "");
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, ser);
    LLVMBuildCall2(cg->b, cg->t_task, fn, args3, 3, "");
    LLVMBuildBr(cg->b, done);
    LLVMPositionBuilderAtEnd(cg->b, done);
}

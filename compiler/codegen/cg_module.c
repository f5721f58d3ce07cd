/* cg_module.c — what goes into a module: the views of the memory plan, the segments (runs of
 * nodes, each a function seg(inputs, outputs, workspace, pool) dispatching its kernels in
 * schedule order), and the main part: each variant's entry run_v calling its segments, the
 * typed entry point with the CPU check, and the descriptor. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "codegen.h"
#include "netrt.h"
#include "timing.h"

typedef bool (*KernelFn)(Cg *, const Node *);
static const KernelFn kernels[OP_COUNT] = {
#define OP(E, id, in, at, w, shape, fl) [OP_##E] = cg_kernel_##id,
#include "../ops.def"
#undef OP
};

/* ---- views from the memory plan ----------------------------------------------------------- */

static void nhwc_strides(const int64_t *s, int64_t *st) {
    st[1] = 1;            /* C */
    st[3] = s[1];         /* W */
    st[2] = s[3] * s[1];  /* H */
    st[0] = s[2] * st[2]; /* N */
}

static CgView view_of(const PlanSlot *s, const Tensor *t) {
    CgView v = {.rank = t->rank};
    memcpy(v.shape, t->shape, sizeof v.shape);
    if (s->layout == LAYOUT_NHWC) nhwc_strides(t->shape, v.stride);
    else cg_rowmajor_strides(t->rank, t->shape, v.stride);
    switch (s->kind) {
    case PLAN_IN: v.buf = CG_BUF_IN, v.index = s->index; break;
    case PLAN_OUT: v.buf = CG_BUF_OUT, v.index = s->index; break;
    default: v.buf = CG_BUF_WS, v.offset = s->offset / 4; break;
    }
    return v;
}

/* A tensor's view: its storage root's, with its own shape, moved to its slice of a concat
 * (following the chain of aliases; in-place links add no offset). */
static CgView member_view(const Cg *cg, int t) {
    const Graph *g = cg->g;
    const PlanSlot *s = &cg->plan.slots[t];
    if (s->root < 0 || s->root == t || s->kind == PLAN_WEIGHT) return view_of(s, ir_tensor(g, t));
    CgView v = view_of(&cg->plan.slots[s->root], ir_tensor(g, s->root));
    const Tensor *me = ir_tensor(g, t);
    memcpy(v.shape, me->shape, sizeof v.shape);
    for (int x = t; x != s->root;) {
        const Tensor *xt = ir_tensor(g, x);
        if (xt->alias >= 0) {
            v.offset += xt->alias_offset * v.stride[xt->alias_axis];
            x = xt->alias;
        } else {
            const Node *p = ir_node(g, xt->producer);
            NETC_ASSERT(p->inplace);
            x = p->in[0];
        }
    }
    return v;
}

static CgView caller_view(const Tensor *t, CgBufKind buf, int index) {
    CgView v = {.buf = buf, .index = index, .rank = t->rank};
    memcpy(v.shape, t->shape, sizeof v.shape);
    cg_rowmajor_strides(t->rank, t->shape, v.stride);
    return v;
}

static bool views_equal(const CgView *a, const CgView *b) {
    if (a->buf != b->buf || a->index != b->index || a->offset != b->offset || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->stride[i] != b->stride[i] && a->shape[i] > 1) return false;
    return true;
}

/* ---- the module ----------------------------------------------------------------------------- */

void cg_init_types(Cg *cg) {
    LLVMContextRef c = cg->ctx;
    cg->t_void = LLVMVoidTypeInContext(c);
    cg->t_f32 = LLVMFloatTypeInContext(c);
    cg->t_i1 = LLVMInt1TypeInContext(c);
    cg->t_i32 = LLVMInt32TypeInContext(c);
    cg->t_i64 = LLVMInt64TypeInContext(c);
    cg->t_ptr = LLVMPointerTypeInContext(c, 0);
    cg->t_vf = LLVMVectorType(cg->t_f32, (unsigned)cg->vw);
    cg->t_vi1 = LLVMVectorType(cg->t_i1, (unsigned)cg->vw);
    LLVMTypeRef targs[3] = {cg->t_ptr, cg->t_i64, cg->t_i64};
    cg->t_task = LLVMFunctionType(cg->t_void, targs, 3, 0);
    LLVMTypeRef fields[3] = {cg->t_ptr, cg->t_ptr, cg->t_ptr};
    cg->t_ctx = LLVMStructTypeInContext(c, fields, 3, 0);
}

static LLVMValueRef const_str(Cg *cg, const char *s, const char *name) {
    LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, s, strlen(s), 0);
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
    return gv;
}

static LLVMValueRef tensor_infos(Cg *cg, const int *ids, const char *const *names, int n, const char *gname) {
    LLVMTypeRef shape_t = LLVMArrayType2(cg->t_i64, 8);
    LLVMTypeRef f[3] = {cg->t_ptr, cg->t_i32, shape_t};
    LLVMTypeRef info_t = LLVMStructTypeInContext(cg->ctx, f, 3, 0);
    LLVMValueRef *items = xcalloc((size_t)(n ? n : 1), sizeof *items);
    for (int i = 0; i < n; i++) {
        const Tensor *t = ir_tensor(cg->g, ids[i]);
        LLVMValueRef dims[8];
        for (int k = 0; k < 8; k++) dims[k] = cg_i64(cg, k < t->rank ? t->shape[k] : 0);
        LLVMValueRef v[3] = {const_str(cg, names ? names[i] : t->name, "tname"),
                             LLVMConstInt(cg->t_i32, (unsigned long long)t->rank, 0), LLVMConstArray2(cg->t_i64, dims, 8)};
        items[i] = LLVMConstNamedStruct(info_t, v, 3);
    }
    LLVMValueRef arr = LLVMConstArray2(info_t, items, (uint64_t)n);
    free(items);
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), gname);
    LLVMSetInitializer(gv, arr);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    return gv;
}

/* ---- segments: the unit of parallel code generation ----------------------------------------- */

/* A segment is a run of consecutive nodes of one variant, compiled in its own LLVM module as
 * one hidden function seg(inputs, outputs, workspace, pool); a variant's entry run_v calls its
 * segments in order. Segments depend only on the graph, never on the thread count, so the
 * artifact is the same whatever --jobs is. */
static bool heavy_op(OpKind op) { return op == OP_CONV2D || op == OP_CONV_TRANSPOSE2D || op == OP_LINEAR; }

/* Each segment holds a run of convolution or linear layers and the light nodes after them: the
 * same number of layers in each, so that a variant has at most CG_MAX_SEGMENTS segments. A
 * module costs about 2.5 ms of LLVM set-up (MobileNetV2 in 54 modules: 983 ms of CPU, in 15:
 * 886 ms), and 16 keep 2 to 8 cores busy to the end. */
#define CG_MAX_SEGMENTS 16
Segment *cg_make_segments(const Cg *cg, int *nsegs) {
    const Graph *g = cg->g;
    int nheavy = 0;
    for (int i = 0; i < g->nodes.len; i++)
        nheavy += !ir_node(g, i)->dead && heavy_op(ir_node(g, i)->op);
    Segment *segs = xcalloc((size_t)cg->nvar * (size_t)(g->nodes.len + 1), sizeof *segs);
    int n = 0;
    for (int k = 0; k < cg->nvar; k++) {
        int start = n;
        int has_heavy = 0, per = (nheavy + CG_MAX_SEGMENTS - 1) / CG_MAX_SEGMENTS;
        segs[n++] = (Segment){.var = k, .index = 0, .first = 0, .end = 0, .with_inputs = true};
        for (int i = 0; i < g->nodes.len; i++) {
            const Node *nd = ir_node(g, i);
            if (!nd->dead && heavy_op(nd->op)) {
                if (has_heavy >= per) {
                    segs[n - 1].end = i;
                    segs[n] = (Segment){.var = k, .index = n - start, .first = i};
                    n++;
                    has_heavy = 0;
                }
                has_heavy++;
            }
        }
        segs[n - 1].end = g->nodes.len;
        segs[n - 1].with_outputs = true;
    }
    *nsegs = n;
    return segs;
}

static void segment_name(const Cg *cg, const Segment *s, char *buf, size_t len) {
    snprintf(buf, len, "%s.v%d.s%d", cg->g->name, s->var, s->index);
}

static LLVMTypeRef run_type(Cg *cg) {
    LLVMTypeRef rargs[4] = {cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr};
    return LLVMFunctionType(cg->t_i32, rargs, 4, 0);
}

static LLVMTypeRef segment_type(Cg *cg) {
    LLVMTypeRef rargs[4] = {cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr};
    return LLVMFunctionType(cg->t_void, rargs, 4, 0);
}

/* The segment's function: the context {workspace, inputs, outputs}, then each node's kernel
 * dispatch in schedule order (the input copies first, the output copies last, in the variant's
 * first and last segment). */
bool cg_build_segment(Cg *cg, const Segment *s) {
    const Graph *g = cg->g;
    cg_use_variant(cg, s->var);
    char name[300];
    segment_name(cg, s, name, sizeof name);
    LLVMValueRef run = LLVMAddFunction(cg->mod, name, segment_type(cg));
    LLVMSetVisibility(run, LLVMHiddenVisibility);
    cg_set_target_attrs(cg, run);
    cg->entry_fn = cg->fn = run;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, run, "entry"));
    cg->entry_ctx = LLVMBuildAlloca(cg->b, cg->t_ctx, "ctx");
    LLVMBuildStore(cg->b, LLVMGetParam(run, 2), LLVMBuildStructGEP2(cg->b, cg->t_ctx, cg->entry_ctx, 0, ""));
    LLVMBuildStore(cg->b, LLVMGetParam(run, 0), LLVMBuildStructGEP2(cg->b, cg->t_ctx, cg->entry_ctx, 1, ""));
    LLVMBuildStore(cg->b, LLVMGetParam(run, 1), LLVMBuildStructGEP2(cg->b, cg->t_ctx, cg->entry_ctx, 2, ""));
    cg->entry_pool = LLVMGetParam(run, 3);

    /* rank-4 inputs: NCHW caller buffer -> NHWC copy in the workspace */
    for (int i = 0; s->with_inputs && i < g->ninputs; i++) {
        if (cg->plan.in_copies[i].kind != PLAN_WS) continue;
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        CgView src = caller_view(t, CG_BUF_IN, i);
        cg_copy(cg, "input_to_nhwc", &cg->views[t->id], &src);
    }
    for (int k = s->first; k < s->end; k++) {
        const Node *n = ir_node(g, k);
        if (n->dead) continue;
        cg->node = n;
        double t0 = times_now();
        bool ok = kernels[n->op](cg, n);
        times_add(cg->times, "irgen", op_info(n->op)->name, times_now() - t0);
        if (!ok) return false;
    }
    cg->node = NULL;
    /* outputs: to the caller's NCHW buffers (a tensor listed twice is copied twice) */
    for (int i = 0; s->with_outputs && i < g->noutputs; i++) {
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        CgView dst = caller_view(t, CG_BUF_OUT, i);
        if (!views_equal(&dst, &cg->views[t->id])) cg_copy(cg, "output_to_nchw", &dst, &cg->views[t->id]);
    }
    LLVMBuildRetVoid(cg->b);
    return true;
}

/* One variant's entry function, run_v(inputs, outputs, workspace, pool) (the array form the
 * descriptor points at): its segments, in order. */
static LLVMValueRef build_variant(Cg *cg, EmitKind emit, const Segment *segs, int nsegs, int var) {
    char name[300];
    if (cg->fat) snprintf(name, sizeof name, "%s_run_v%d", cg->g->name, var);
    else snprintf(name, sizeof name, "%s_run_v", cg->g->name);
    LLVMValueRef run = LLVMAddFunction(cg->mod, name, run_type(cg));
    LLVMSetLinkage(run, emit == EMIT_OBJ ? LLVMExternalLinkage : LLVMInternalLinkage);
    cg_set_target_attrs(cg, run);
    cg->fn = run;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, run, "entry"));
    LLVMValueRef args[4] = {LLVMGetParam(run, 0), LLVMGetParam(run, 1), LLVMGetParam(run, 2), LLVMGetParam(run, 3)};
    for (int i = 0; i < nsegs; i++) {
        if (segs[i].var != var) continue;
        segment_name(cg, &segs[i], name, sizeof name);
        LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
        if (!f) {
            f = LLVMAddFunction(cg->mod, name, segment_type(cg));
            LLVMSetVisibility(f, LLVMHiddenVisibility);
        }
        LLVMBuildCall2(cg->b, segment_type(cg), f, args, 4, "");
    }
    LLVMBuildRet(cg->b, LLVMConstInt(cg->t_i32, 0, 0));
    return run;
}

/* The entry points and the descriptor (the segments are built elsewhere, maybe in other
 * modules). */
bool cg_build_main(Cg *cg, int emit, const Segment *segs, int nsegs) {
    const Graph *g = cg->g;
    char name[300];
    LLVMTypeRef run_t = run_type(cg);
    LLVMValueRef runs[CG_MAX_VARIANTS];
    for (int k = 0; k < cg->nvar; k++) {
        cg_use_variant(cg, k);
        runs[k] = build_variant(cg, emit, segs, nsegs, k);
    }
    cg_use_variant(cg, cg->nvar - 1);

    /* typed entry point: <model>_run(const float *in..., float *out..., void *ws, netrt_pool *pool) */
    int na = g->ninputs + g->noutputs + 2;
    LLVMTypeRef *targs = xcalloc((size_t)na, sizeof *targs);
    for (int i = 0; i < na; i++) targs[i] = cg->t_ptr;
    LLVMTypeRef typed_t = LLVMFunctionType(cg->t_i32, targs, (unsigned)na, 0);
    free(targs);
    snprintf(name, sizeof name, "%s_run", g->name);
    LLVMValueRef typed = LLVMAddFunction(cg->mod, name, typed_t);
    cg->fn = typed;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, typed, "entry"));
    LLVMValueRef ins = LLVMBuildAlloca(cg->b, LLVMArrayType2(cg->t_ptr, (uint64_t)(g->ninputs + 1)), "ins");
    LLVMValueRef outs = LLVMBuildAlloca(cg->b, LLVMArrayType2(cg->t_ptr, (uint64_t)(g->noutputs + 1)), "outs");
    for (int i = 0; i < g->ninputs; i++)
        LLVMBuildStore(cg->b, LLVMGetParam(typed, (unsigned)i),
                       LLVMBuildGEP2(cg->b, cg->t_ptr, ins, (LLVMValueRef[]){cg_i64(cg, i)}, 1, ""));
    for (int i = 0; i < g->noutputs; i++)
        LLVMBuildStore(cg->b, LLVMGetParam(typed, (unsigned)(g->ninputs + i)),
                       LLVMBuildGEP2(cg->b, cg->t_ptr, outs, (LLVMValueRef[]){cg_i64(cg, i)}, 1, ""));
    LLVMValueRef args[4] = {ins, outs, LLVMGetParam(typed, (unsigned)(na - 2)), LLVMGetParam(typed, (unsigned)(na - 1))};
    /* the variant this CPU runs, chosen on the first call (cpuid, no runtime library needed):
       a CPU without what the code needs gets NETRT_ERR_CPU, never SIGILL */
    LLVMValueRef which = cg_cpu_variant(cg, cg->var, cg->nvar);
    LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(cg->ctx, typed, "no_variant");
    LLVMValueRef sw = LLVMBuildSwitch(cg->b, which, none, (unsigned)cg->nvar);
    for (int k = 0; k < cg->nvar; k++) {
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(cg->ctx, typed, "variant");
        LLVMAddCase(sw, LLVMConstInt(cg->t_i32, (unsigned long long)k, 0), bb);
        LLVMPositionBuilderAtEnd(cg->b, bb);
        LLVMBuildRet(cg->b, LLVMBuildCall2(cg->b, run_t, runs[k], args, 4, ""));
    }
    LLVMPositionBuilderAtEnd(cg->b, none);
    LLVMBuildRet(cg->b, LLVMConstInt(cg->t_i32, NETRT_ERR_CPU, 0));

    /* the descriptor (netrt.h's netrt_model_desc and netrt_variant, checked field by field below) */
    LLVMTypeRef vf[4] = {cg->t_ptr, cg->t_ptr, cg->t_i64, cg->t_ptr};
    LLVMTypeRef var_t = LLVMStructTypeInContext(cg->ctx, vf, 4, 0);
    LLVMValueRef vitems[CG_MAX_VARIANTS];
    for (int k = 0; k < cg->nvar; k++) {
        LLVMValueRef vv[4] = {const_str(cg, cg->var[k].cpu, "variant_cpu"),
                              const_str(cg, cg->var[k].features_str, "variant_features"),
                              cg_i64(cg, (int64_t)cg->var[k].features), runs[k]};
        vitems[k] = LLVMConstNamedStruct(var_t, vv, 4);
    }
    LLVMValueRef vars = LLVMAddGlobal(cg->mod, LLVMArrayType2(var_t, (uint64_t)cg->nvar), "variants");
    LLVMSetInitializer(vars, LLVMConstArray2(var_t, vitems, (uint64_t)cg->nvar));
    LLVMSetGlobalConstant(vars, 1);
    LLVMSetLinkage(vars, LLVMPrivateLinkage);
    LLVMTypeRef df[12] = {cg->t_i32, cg->t_i32, cg->t_ptr, cg->t_i32, cg->t_i32, cg->t_ptr,
                          cg->t_ptr, cg->t_i64, cg->t_i64, cg->t_ptr, cg->t_i32, cg->t_ptr};
    LLVMTypeRef desc_t = LLVMStructTypeInContext(cg->ctx, df, 12, 0);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    unsigned long long desc_size = LLVMABISizeOfType(td, desc_t);
    if (!cg->cross) { /* the host's layout is netrt.h's: the two must agree field by field */
        static const size_t want[12] = {offsetof(netrt_model_desc, abi_version), offsetof(netrt_model_desc, desc_size),
                                        offsetof(netrt_model_desc, name), offsetof(netrt_model_desc, ninputs),
                                        offsetof(netrt_model_desc, noutputs), offsetof(netrt_model_desc, inputs),
                                        offsetof(netrt_model_desc, outputs), offsetof(netrt_model_desc, workspace_size),
                                        offsetof(netrt_model_desc, workspace_align), offsetof(netrt_model_desc, arch),
                                        offsetof(netrt_model_desc, nvariants), offsetof(netrt_model_desc, variants)};
        for (unsigned i = 0; i < 12; i++) NETC_ASSERT(LLVMOffsetOfElement(td, desc_t, i) == want[i]);
        NETC_ASSERT(desc_size == sizeof(netrt_model_desc));
        NETC_ASSERT(LLVMOffsetOfElement(td, var_t, 2) == offsetof(netrt_variant, required) &&
                    LLVMOffsetOfElement(td, var_t, 3) == offsetof(netrt_variant, run) &&
                    LLVMABISizeOfType(td, var_t) == sizeof(netrt_variant));
    }
    LLVMDisposeTargetData(td);
    LLVMValueRef dv[12] = {
        LLVMConstInt(cg->t_i32, NETRT_ABI_VERSION, 0),
        LLVMConstInt(cg->t_i32, desc_size, 0),
        const_str(cg, g->name, "model_name"),
        LLVMConstInt(cg->t_i32, (unsigned long long)g->ninputs, 0),
        LLVMConstInt(cg->t_i32, (unsigned long long)g->noutputs, 0),
        tensor_infos(cg, g->inputs, NULL, g->ninputs, "input_infos"),
        tensor_infos(cg, g->outputs, g->output_names, g->noutputs, "output_infos"),
        cg_i64(cg, cg->plan.workspace_bytes),
        cg_i64(cg, 64),
        const_str(cg, cg_arch(cg), "model_arch"),
        LLVMConstInt(cg->t_i32, (unsigned long long)cg->nvar, 0),
        vars,
    };
    if (emit == EMIT_OBJ) snprintf(name, sizeof name, "%s_descriptor", g->name);
    else snprintf(name, sizeof name, "netrt_model_descriptor");
    LLVMValueRef desc = LLVMAddGlobal(cg->mod, desc_t, name);
    LLVMSetInitializer(desc, LLVMConstNamedStruct(desc_t, dv, 12));
    LLVMSetGlobalConstant(desc, 1);
    return true;
}

/* Every tensor's view (its storage root's, moved to its slice), and the inputs' NHWC copies. */
void cg_init_views(Cg *cg) {
    const Graph *g = cg->g;
    cg->views = xcalloc((size_t)g->tensors.len, sizeof *cg->views);
    for (int t = 0; t < g->tensors.len; t++) cg->views[t] = member_view(cg, t);
    for (int i = 0; i < g->ninputs; i++)
        if (cg->plan.in_copies[i].kind == PLAN_WS)
            cg->views[g->inputs[i]] = view_of(&cg->plan.in_copies[i], ir_tensor(g, g->inputs[i]));
}

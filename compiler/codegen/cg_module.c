/* cg_module.c — code generation driver: the target machine, the module, the entry function
 * with its kernels in schedule order, the descriptor, optimisation, and writing the artifacts
 * (object, shared object through the system linker, header, textual IR and assembly). */
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cg.h"
#include "codegen.h"
#include "netrt.h"
#include "timing.h"

extern char **environ;

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

static void init_types(Cg *cg) {
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
typedef struct Segment {
    int var, index;
    int first, end; /* nodes [first, end) */
    bool with_inputs, with_outputs;
} Segment;

static bool heavy_op(OpKind op) { return op == OP_CONV2D || op == OP_CONV_TRANSPOSE2D || op == OP_LINEAR; }

/* Each segment holds a run of convolution or linear layers and the light nodes after them: the
 * same number of layers in each, so that a variant has at most CG_MAX_SEGMENTS segments. A
 * module costs about 2.5 ms of LLVM set-up (MobileNetV2 in 54 modules: 983 ms of CPU, in 15:
 * 886 ms), and 16 keep 2 to 8 cores busy to the end. */
#define CG_MAX_SEGMENTS 16
static Segment *make_segments(const Cg *cg, int *nsegs) {
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
static bool build_segment(Cg *cg, const Segment *s) {
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
static bool build_main(Cg *cg, EmitKind emit, const Segment *segs, int nsegs) {
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

/* ---- writing files ---------------------------------------------------------------------- */

static char *tmp_path_for(const char *final) {
    size_t n = strlen(final) + 32;
    char *p = xmalloc(n);
    snprintf(p, n, "%s.tmp%ld", final, (long)getpid());
    return p;
}

static bool commit_file(const char *tmp, const char *final, Diags *d) {
    if (rename(tmp, final) != 0) {
        diag_error(d, (SrcLoc){.file = final}, "cannot write: %s", strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

static const char *c_keywords[] = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
    "_Bool", "_Complex", "_Imaginary", "_Alignas", "_Alignof", "_Atomic", "_Generic", "_Noreturn",
    "_Static_assert", "_Thread_local", "bool", "true", "false", "NULL", "workspace", "pool"};

const char *codegen_c_name(const char *name, char *buf, size_t len) {
    size_t o = 0;
    if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_'))
        buf[o++] = '_';
    for (const char *p = name; *p && o + 2 < len; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        buf[o++] = ok ? c : '_';
    }
    buf[o] = 0;
    for (size_t i = 0; i < sizeof c_keywords / sizeof *c_keywords; i++)
        if (!strcmp(buf, c_keywords[i]) && o + 2 < len) {
            buf[o++] = '_';
            buf[o] = 0;
        }
    return buf;
}

static void upper(char *s) {
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z') *s = (char)(*s - 'a' + 'A');
}

/* Parameter names of the typed entry point: valid C, distinct from each other. */
static char **param_names(const Graph *g) {
    int n = g->ninputs + g->noutputs;
    char **names = xcalloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        char buf[256], cand[300];
        const char *raw = i < g->ninputs ? ir_tensor(g, g->inputs[i])->name : g->output_names[i - g->ninputs];
        codegen_c_name(raw, buf, sizeof buf);
        snprintf(cand, sizeof cand, "%s", buf);
        for (int k = 2;; k++) {
            bool clash = false;
            for (int j = 0; j < i; j++) clash |= !strcmp(names[j], cand);
            if (!clash) break;
            snprintf(cand, sizeof cand, "%s_%d", buf, k);
        }
        names[i] = xstrdup(cand);
    }
    return names;
}

static bool write_header(const Graph *g, int64_t ws_bytes, const char *path, Diags *d) {
    char *tmp = tmp_path_for(path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        diag_error(d, (SrcLoc){.file = path}, "cannot write: %s", strerror(errno));
        free(tmp);
        return false;
    }
    char up[300], dims[160];
    snprintf(up, sizeof up, "%s", g->name);
    upper(up);
    char **pn = param_names(g);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int stem_len = (int)strlen(base) - 2; /* without ".h" */
    fprintf(f, "/* %s — generated by netc for model '%s'. Link %.*s.o with -lmvec -lm (x86 glibc) or -lm.\n", base,
            g->name, stem_len, base);
    fprintf(f, " * Inputs and outputs are float32 in NCHW order; the workspace is %s_WORKSPACE_BYTES bytes,\n", up);
    fprintf(f, " * 64-byte aligned, one per concurrent call; pool may be NULL (run on the calling thread). */\n");
    fprintf(f, "#ifndef %s_NETC_H\n#define %s_NETC_H\n\n#include <stdint.h>\n\n", up, up);
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(f, "typedef struct netrt_pool netrt_pool;\nstruct netrt_model_desc;\n\n");
    fprintf(f, "#define %s_WORKSPACE_BYTES %lldu\n#define %s_WORKSPACE_ALIGN 64u\n", up, (long long)ws_bytes, up);
    fprintf(f, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n", up, g->ninputs, up, g->noutputs);
    for (int i = 0; i < g->ninputs + g->noutputs; i++) {
        const Tensor *t = ir_tensor(g, i < g->ninputs ? g->inputs[i] : g->outputs[i - g->ninputs]);
        char pu[300];
        snprintf(pu, sizeof pu, "%s", pn[i]);
        upper(pu);
        ir_shape_str(t, dims, sizeof dims);
        dims[0] = '{';
        dims[strlen(dims) - 1] = '}';
        fprintf(f, "#define %s_%s_SIZE %lld /* floats, shape %s */\n", up, pu, (long long)ir_numel(t),
                ir_shape_str(t, (char[160]){0}, 160));
        fprintf(f, "#define %s_%s_SHAPE %s\n", up, pu, dims);
    }
    fprintf(f, "\n/* Returns 0, or 7 (NETRT_ERR_CPU) without running when this CPU lacks the features the code\n"
               " * was compiled for (checked with cpuid on the first call; a --cpu=fat model runs its best\n"
               " * variant for this CPU). */\nint %s_run(", g->name);
    for (int i = 0; i < g->ninputs; i++) fprintf(f, "const float *%s, ", pn[i]);
    for (int i = 0; i < g->noutputs; i++) fprintf(f, "float *%s, ", pn[g->ninputs + i]);
    fprintf(f, "void *workspace, netrt_pool *pool);\n");
    fprintf(f, "/* The same model as a descriptor (netrt.h: netrt_open_desc). */\n");
    fprintf(f, "extern const struct netrt_model_desc %s_descriptor;\n", g->name);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    for (int i = 0; i < g->ninputs + g->noutputs; i++) free(pn[i]);
    free(pn);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok) {
        diag_error(d, (SrcLoc){.file = path}, "cannot write: %s", strerror(errno));
        unlink(tmp);
        free(tmp);
        return false;
    }
    ok = commit_file(tmp, path, d);
    free(tmp);
    return ok;
}

/* OUT for --emit=obj/header: strip a trailing .o or .h. */
static char *stem_of(const char *out) {
    size_t n = strlen(out);
    char *s = xstrdup(out);
    if (n > 2 && (!strcmp(out + n - 2, ".o") || !strcmp(out + n - 2, ".h"))) s[n - 2] = 0;
    return s;
}

/* ---- parts: modules compiled concurrently ------------------------------------------------------- */

/* A part is one LLVM module (its own context, target machine and thread): the entry points and
 * descriptor ("main"), or segments. --emit=ll/asm has one part holding everything, so the text
 * is one module; a .so or .o has the main part plus one per segment. */
typedef struct Part {
    bool main;
    int seg_first, seg_end;
    /* results */
    LLVMMemoryBufferRef obj;
    CgBlobs blobs;
    Diags d;
    Times t;
    bool ok;
} Part;

typedef struct PartJob {
    const Cg *tpl;
    const CodegenOptions *o;
    const Segment *segs;
    int nsegs;
    Part *parts;
    int nparts;
    const char *text_path; /* --emit=ll/asm: the one part writes here */
    pthread_mutex_t lock;
    int next;
} PartJob;

/* What LLVM runs at each level (measured in DESIGN.md, "Compile speed"). The kernels arrive
 * vectorised, tiled and unrolled where it pays, so LLVM's job is clean-up: promote the few
 * allocas, fold the index arithmetic, hoist what is loop-invariant, and unroll the short loops
 * left (depthwise taps), then instruction selection. -O2 runs exactly that: as fast as LLVM's
 * O3 on every benchmark model and 2-4x cheaper; -O1 skips the unrolling (3 % slower on
 * MobileNetV2); -O3 is LLVM's full O3, for whoever wants LLVM to try everything. */
const char *cg_llvm_pipeline(int opt_level) {
    switch (opt_level) {
    case 0: return "default<O0>";
    case 1:
        return "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,loop-mssa(licm),gvn,dse,"
               "instcombine<no-verify-fixpoint>,simplifycfg)";
    case 2:
        return "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,loop(loop-rotate),"
               "loop-mssa(licm),loop-unroll<O2>,gvn,instcombine<no-verify-fixpoint>,simplifycfg)";
    default: return "default<O3>";
    }
}

static bool run_pipeline(Cg *cg) {
    double t_phase = times_now();
    char *verr = NULL;
    if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &verr)) {
        diag_error(cg->d, (SrcLoc){0}, "internal error (a bug in netc): generated IR does not verify: %.2000s", verr);
        LLVMDisposeMessage(verr);
        return false;
    }
    LLVMDisposeMessage(verr);
    times_add(cg->times, "llvm", "verify module", times_now() - t_phase);
    t_phase = times_now();
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    LLVMErrorRef perr = LLVMRunPasses(cg->mod, cg->llvm_passes ? cg->llvm_passes : cg_llvm_pipeline(cg->opt_level), cg->tm, po);
    LLVMDisposePassBuilderOptions(po);
    times_add(cg->times, "llvm", "optimisation pipeline", times_now() - t_phase);
    if (perr) {
        char *m = LLVMGetErrorMessage(perr);
        if (cg->llvm_passes) diag_error(cg->d, (SrcLoc){0}, "--llvm-passes=%s: %s", cg->llvm_passes, m);
        else diag_error(cg->d, (SrcLoc){0}, "internal error (a bug in netc): LLVM passes failed: %s", m);
        LLVMDisposeErrorMessage(m);
        return false;
    }
    return true;
}

/* Build, optimise and emit one part, in its own context (any thread). */
static void run_part(PartJob *job, int index, LLVMTargetMachineRef *tms) {
    Part *p = &job->parts[index];
    Cg cg = *job->tpl;
    cg.part = index;
    cg.blobs = &p->blobs;
    cg.d = &p->d;
    cg.times = &p->t;
    cg.epi_keys = cg.epi_globals = (PtrVec){0};
    cg.kernel_count = 0;
    int var = p->seg_end > p->seg_first && !p->main ? job->segs[p->seg_first].var : cg.nvar - 1;
    if (!tms[var]) tms[var] = cg_target_machine(&cg, var); /* one per thread and variant */
    cg.tm = tms[var];
    if (!cg.tm) {
        diag_error(cg.d, (SrcLoc){0}, "LLVM cannot create a target machine for %s, cpu %s", cg.triple,
                   cg.var[var].llvm_cpu);
        return;
    }
    cg.t_f32 = NULL;
    cg_use_variant(&cg, var);
    cg.ctx = LLVMContextCreate();
    char mname[300];
    snprintf(mname, sizeof mname, "%s.p%d", cg.g->name, index);
    cg.mod = LLVMModuleCreateWithNameInContext(mname, cg.ctx);
    cg.b = LLVMCreateBuilderInContext(cg.ctx);
    LLVMSetTarget(cg.mod, cg.triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg.tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(cg.mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    init_types(&cg);

    bool ok = true;
    for (int i = p->seg_first; ok && i < p->seg_end; i++) ok = build_segment(&cg, &job->segs[i]);
    if (ok && p->main) ok = build_main(&cg, job->o->emit, job->segs, job->nsegs);
    ok = ok && run_pipeline(&cg);
    if (ok) {
        double t_phase = times_now();
        char *err = NULL;
        switch (job->o->emit) {
        case EMIT_LL:
            if (LLVMPrintModuleToFile(cg.mod, job->text_path, &err)) {
                diag_error(cg.d, (SrcLoc){.file = job->o->out}, "cannot write: %s", err);
                ok = false;
            }
            break;
        case EMIT_ASM:
            if (LLVMTargetMachineEmitToFile(cg.tm, cg.mod, job->text_path, LLVMAssemblyFile, &err)) {
                diag_error(cg.d, (SrcLoc){.file = job->o->out}, "cannot write: %s", err);
                ok = false;
            }
            break;
        default:
            if (LLVMTargetMachineEmitToMemoryBuffer(cg.tm, cg.mod, LLVMObjectFile, &err, &p->obj)) {
                diag_error(cg.d, (SrcLoc){0}, "internal error (a bug in netc): LLVM could not emit code: %s", err);
                ok = false;
            }
            break;
        }
        if (err) LLVMDisposeMessage(err);
        times_add(cg.times, "llvm", "object emission", times_now() - t_phase);
    }
    p->ok = ok;
    ptrvec_free(&cg.epi_keys);
    ptrvec_free(&cg.epi_globals);
    LLVMDisposeBuilder(cg.b);
    LLVMDisposeModule(cg.mod);
    LLVMContextDispose(cg.ctx);
}

static void *part_worker(void *arg) {
    PartJob *job = arg;
    LLVMTargetMachineRef tms[CG_MAX_VARIANTS] = {0};
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int i = job->next++;
        pthread_mutex_unlock(&job->lock);
        if (i >= job->nparts) break;
        run_part(job, i, tms);
    }
    for (int k = 0; k < CG_MAX_VARIANTS; k++)
        if (tms[k]) LLVMDisposeTargetMachine(tms[k]);
    return NULL;
}

/* Run every part on `threads` threads (the calling one included); false when one failed. */
static bool run_parts(PartJob *job, int threads) {
    pthread_mutex_init(&job->lock, NULL);
    job->next = 0;
    if (threads > job->nparts) threads = job->nparts;
    pthread_t tid[64];
    int started = 0;
    for (int i = 1; i < threads && i < 64; i++)
        if (pthread_create(&tid[started], NULL, part_worker, job) == 0) started++;
    part_worker(job);
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&job->lock);
    bool ok = true;
    for (int i = 0; i < job->nparts; i++) ok &= job->parts[i].ok;
    return ok;
}

/* The threads code generation may use: --jobs, else the CPUs this process may run on. */
static int jobs_of(const CodegenOptions *o) {
    if (o->jobs > 0) return o->jobs;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void diags_append(Diags *to, const Diags *from) {
    for (int i = 0; i < from->len; i++) {
        const Diag *x = &from->items[i];
        if (x->level == DIAG_ERROR) diag_error(to, x->loc, "%s", x->msg);
        else if (x->level == DIAG_WARNING) diag_warning(to, x->loc, "%s", x->msg);
        else diag_note(to, x->loc, "%s", x->msg);
    }
}

/* ---- linking ---------------------------------------------------------------------------------- */

/* `ld.lld` when the PATH has it (several times faster than GNU ld on 100 MB of weights), else
 * the C compiler's default; NETC_LD=bfd|gold|lld|default chooses. Cross compilers get their
 * default unless NETC_LD says otherwise. */
static const char *fuse_ld(bool cross) {
    static char buf[32];
    const char *e = getenv("NETC_LD");
    if (e && *e) {
        if (!strcmp(e, "default")) return NULL;
        snprintf(buf, sizeof buf, "-fuse-ld=%.20s", e);
        return buf;
    }
    if (cross) return NULL;
    const char *path = getenv("PATH");
    if (!path) return NULL;
    char dir[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/ld.lld", (int)n, p);
        if (n && access(dir, X_OK) == 0) return "-fuse-ld=lld";
        p += n;
        if (*p == ':') p++;
    }
    return NULL;
}

/* cc [-shared | -r -nostdlib] -o out objs... */
static bool run_linker(const char *cc, bool cross, bool relocatable, char **objs, int nobjs, const char *out,
                       const char *final, bool mvec, Diags *d) {
    const char **argv = xcalloc((size_t)nobjs + 16, sizeof *argv);
    int a = 0;
    argv[a++] = cc;
    const char *ld = fuse_ld(cross);
    if (ld) argv[a++] = ld;
    if (relocatable) {
        argv[a++] = "-r";
        argv[a++] = "-nostdlib";
    } else {
        argv[a++] = "-shared";
    }
    argv[a++] = "-o";
    argv[a++] = out;
    for (int i = 0; i < nobjs; i++) argv[a++] = objs[i];
    if (!relocatable) {
        argv[a++] = "-Wl,-z,noexecstack";
        if (mvec) argv[a++] = "-lmvec";
        argv[a++] = "-lm";
    }
    argv[a] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, cc, NULL, NULL, (char *const *)argv, environ);
    free(argv);
    if (rc != 0) {
        diag_error(d, (SrcLoc){0}, "cannot run the linker '%s': %s (set NETC_CC to a C compiler)", cc, strerror(rc));
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return false;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        diag_error(d, (SrcLoc){0}, "the linker '%s' failed while writing %s", cc, final);
        return false;
    }
    return true;
}

static bool write_buffer(LLVMMemoryBufferRef buf, const char *path, Diags *d) {
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL;
    size_t n = LLVMGetBufferSize(buf);
    ok = ok && fwrite(LLVMGetBufferStart(buf), 1, n, f) == n;
    if (f) ok = (fclose(f) == 0) && ok;
    if (!ok) diag_error(d, (SrcLoc){.file = path}, "cannot write: %s", strerror(errno));
    return ok;
}

/* --stats: the variants, the weight bytes each one's kernels read, and the artifact's size. */
static void print_stats(const Cg *cg, const CodegenOptions *o, const Segment *segs, const Part *parts, int nparts,
                        int64_t stored, int64_t total, int threads, FILE *f) {
    double mib = 1048576.0;
    fprintf(f, "codegen: %s, %d variant%s:", cg->triple, cg->nvar, cg->nvar == 1 ? "" : "s");
    for (int k = 0; k < cg->nvar; k++) {
        double bytes = 0;
        for (int i = 0; i < nparts; i++)
            if (!parts[i].main && segs[parts[i].seg_first].var == k)
                for (int j = 0; j < parts[i].blobs.len; j++) bytes += (double)parts[i].blobs.items[j].bytes;
        fprintf(f, "%s --cpu=%s (%d-float vectors, weights %.2f MiB)", k ? "," : "", cg->var[k].cpu, cg->var[k].vw,
                bytes / mib);
    }
    fputc('\n', f);
    fprintf(f, "codegen: %d modules compiled on %d thread%s\n", nparts, threads, threads == 1 ? "" : "s");
    struct stat st;
    const char *path = o->out;
    char obj[4096];
    if (o->emit == EMIT_OBJ) {
        char *stem = stem_of(o->out);
        snprintf(obj, sizeof obj, "%s.o", stem);
        free(stem);
        path = obj;
    }
    if (stat(path, &st) == 0)
        fprintf(f, "codegen: %s %.2f MiB, of which weights %.2f MiB (%.2f MiB before identical blobs were merged)\n", path,
                (double)st.st_size / mib, (double)stored / mib, (double)total / mib);
}

/* Remove the temporary directory and what is in it. */
static void remove_tmpdir(const char *dir, char **files, int nfiles) {
    for (int i = 0; i < nfiles; i++)
        if (files[i]) unlink(files[i]);
    rmdir(dir);
}

bool codegen_emit(const Graph *g, const CodegenOptions *o, Diags *d) {
    Cg cg = {.g = g, .d = d, .opt_level = o->opt_level, .llvm_passes = o->llvm_passes};
    double t_phase = times_now();
    cg.times = o->times;
    plan_graph(g, &cg.plan);
    times_add(o->times, "plan", "memory plan", times_now() - t_phase);
    bool ok = false;
    char *stem = stem_of(o->out);
    if (o->emit == EMIT_HEADER) {
        size_t n = strlen(stem) + 3;
        char *h = xmalloc(n);
        snprintf(h, n, "%s.h", stem);
        ok = write_header(g, cg.plan.workspace_bytes, h, d);
        free(h);
        goto out_plan;
    }
    t_phase = times_now();
    if (!cg_target_init(&cg, o, d)) goto out_plan;
    times_add(o->times, "llvm", "target set-up", times_now() - t_phase);
    (void)op_info(OP_CONV2D); /* the op table is filled before any thread reads it */
    cg.views = xcalloc((size_t)g->tensors.len, sizeof *cg.views);
    for (int t = 0; t < g->tensors.len; t++) cg.views[t] = member_view(&cg, t);
    for (int i = 0; i < g->ninputs; i++)
        if (cg.plan.in_copies[i].kind == PLAN_WS)
            cg.views[g->inputs[i]] = view_of(&cg.plan.in_copies[i], ir_tensor(g, g->inputs[i]));

    if (o->llvm_passes) { /* a pipeline LLVM cannot parse is one error, not one per module */
        LLVMContextRef c = LLVMContextCreate();
        LLVMModuleRef m = LLVMModuleCreateWithNameInContext("check", c);
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMErrorRef perr = LLVMRunPasses(m, o->llvm_passes, cg.tm, po);
        LLVMDisposePassBuilderOptions(po);
        LLVMDisposeModule(m);
        LLVMContextDispose(c);
        if (perr) {
            char *msg = LLVMGetErrorMessage(perr);
            diag_error(d, (SrcLoc){0}, "--llvm-passes=%s: %s", o->llvm_passes, msg);
            LLVMDisposeErrorMessage(msg);
            free(cg.views);
            goto out_plan;
        }
    }
    int nsegs;
    Segment *segs = make_segments(&cg, &nsegs);
    bool text = o->emit == EMIT_LL || o->emit == EMIT_ASM;
    int nparts = text ? 1 : nsegs + 1;
    Part *parts = xcalloc((size_t)nparts, sizeof *parts);
    if (text) {
        parts[0] = (Part){.main = true, .seg_first = 0, .seg_end = nsegs};
    } else {
        parts[0] = (Part){.main = true};
        for (int i = 0; i < nsegs; i++) parts[i + 1] = (Part){.seg_first = i, .seg_end = i + 1};
    }
    for (int i = 0; i < nparts; i++) diags_init(&parts[i].d);
    char *text_tmp = text ? tmp_path_for(o->out) : NULL;
    PartJob job = {.tpl = &cg, .o = o, .segs = segs, .nsegs = nsegs, .parts = parts, .nparts = nparts,
                   .text_path = text_tmp};
    int threads = text ? 1 : jobs_of(o);
    if (threads > nparts) threads = nparts;
    t_phase = times_now();
    ok = run_parts(&job, threads);
    char label[64];
    snprintf(label, sizeof label, "%d module%s on %d thread%s", nparts, nparts == 1 ? "" : "s", threads,
             threads == 1 ? "" : "s");
    times_add(o->times, "codegen", times_intern(o->times, label), times_now() - t_phase);
    for (int i = 0; i < nparts; i++) {
        diags_append(d, &parts[i].d);
        for (int k = 0; k < parts[i].t.n; k++) times_add_cpu(o->times, parts[i].t.group[k], parts[i].t.name[k], parts[i].t.ms[k]);
    }

    int64_t stored = 0, total = 0;
    CgBlobs **lists = xcalloc((size_t)nparts, sizeof *lists);
    for (int i = 0; i < nparts; i++) lists[i] = &parts[i].blobs;
    if (text) {
        ok = ok && commit_file(text_tmp, o->out, d);
        if (!ok) unlink(text_tmp);
    } else if (ok) {
        /* a private directory beside the output: the objects, the weights, the linked file */
        size_t n = strlen(o->out) + 32;
        char *dir = xmalloc(n);
        snprintf(dir, n, "%s.netc-XXXXXX", o->out);
        if (!mkdtemp(dir)) {
            diag_error(d, (SrcLoc){.file = o->out}, "cannot write: %s", strerror(errno));
            ok = false;
        }
        int nfiles = nparts + 2;
        char **files = xcalloc((size_t)nfiles, sizeof *files);
        for (int i = 0; ok && i < nparts + 1; i++) {
            size_t m = strlen(dir) + 32;
            files[i] = xmalloc(m);
            if (i < nparts) snprintf(files[i], m, "%s/p%d.o", dir, i);
            else snprintf(files[i], m, "%s/weights.o", dir);
        }
        if (ok) {
            size_t m = strlen(dir) + 32;
            files[nparts + 1] = xmalloc(m);
            snprintf(files[nparts + 1], m, "%s/out", dir);
            t_phase = times_now();
            ok = cg_blobs_write_elf(lists, nparts, cg.triple, files[nparts], &stored, &total, d);
            times_add(o->times, "weights", "object, written directly", times_now() - t_phase);
        }
        t_phase = times_now();
        for (int i = 0; ok && i < nparts; i++) ok = write_buffer(parts[i].obj, files[i], d);
        const char *cc = getenv("NETC_CC");
        if (!cc || !*cc) cc = cg.cross && !strncmp(cg.triple, "aarch64", 7) ? "aarch64-linux-gnu-gcc" : "cc";
        ok = ok && run_linker(cc, cg.cross, o->emit == EMIT_OBJ, files, nparts + 1, files[nparts + 1], o->out, cg.x86, d);
        times_add(o->times, "link", o->emit == EMIT_OBJ ? "cc -r (one .o)" : "cc -shared", times_now() - t_phase);
        if (ok && o->emit == EMIT_OBJ) {
            size_t m = strlen(stem) + 3;
            char *obj = xmalloc(m), *hdr = xmalloc(m);
            snprintf(obj, m, "%s.o", stem);
            snprintf(hdr, m, "%s.h", stem);
            ok = write_header(g, cg.plan.workspace_bytes, hdr, d) && commit_file(files[nparts + 1], obj, d);
            free(obj), free(hdr);
        } else if (ok) {
            ok = commit_file(files[nparts + 1], o->out, d);
        }
        if (dir[0]) remove_tmpdir(dir, files, nfiles);
        for (int i = 0; i < nfiles; i++) free(files[i]);
        free(files);
        free(dir);
    }
    if (ok && o->stats) print_stats(&cg, o, segs, parts, nparts, stored, total, threads, o->stats);
    for (int i = 0; i < nparts; i++) {
        if (parts[i].obj) LLVMDisposeMemoryBuffer(parts[i].obj);
        cg_blobs_free(&parts[i].blobs);
        diags_free(&parts[i].d);
    }
    free(lists);
    free(parts);
    free(segs);
    free(text_tmp);
    free(cg.views);
out_plan:
    cg_target_free(&cg);
    plan_free(&cg.plan);
    free(stem);
    return ok;
}

/* cg_module.c — what goes into a module: the views of the memory plan, the segments (runs of
 * nodes, each a function seg(inputs, outputs, workspace, pool) dispatching its kernels in
 * schedule order, each between profile hooks), and the main part: each variant's entry run_v
 * calling its segments, the typed entry point with the CPU check, and the descriptor with its
 * profile table. */
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

/* ---- the profile table and the hooks -------------------------------------------------------- */

/* The kernel family a node runs as, from the graph alone, so that every variant of a fat
 * artifact has the same table. Winograd where the pass chose it; a depthwise conv has one
 * input channel per group (and at most 4 outputs per group, as cg_conv.c's depthwise kernel);
 * a 1x1 stride-1 unpadded dense conv and linear are GEMMs; other convs (grouped included) are
 * direct. What an epilogue fuses is not part of the kind: cg_node_fused says it. */
const char *cg_node_kind(const Graph *g, const Node *n) {
    switch (n->op) {
    case OP_CONV2D: {
        if (ir_winograd_m(n)) return "winograd";
        if (n->algo == CONV_ALGO_DW_ROWS || n->algo == CONV_ALGO_DW_IN_CONSUMER) return "fused"; /* fuse-dw */
        int64_t k[2], st[2], pad[2], groups = ir_attr_int(n, "groups");
        int64_t C = ir_tensor(g, n->in[0])->shape[1], O = ir_tensor(g, n->out)->shape[1];
        if (groups > 1 && groups == C && O / groups <= 4) return "depthwise";
        ir_attr_pair(n, "kernel", k);
        ir_attr_pair(n, "stride", st);
        ir_attr_pair(n, "pad", pad);
        (void)st;
        if (groups == 1 && k[0] == 1 && k[1] == 1 && pad[0] == 0 && pad[1] == 0) return "gemm"; /* cg_gemm_eligible */
        return "direct";
    }
    case OP_CONV_TRANSPOSE2D: return "transposed";
    case OP_LINEAR: return "gemm";
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
    case OP_GLOBAL_AVGPOOL:
    case OP_ADAPTIVE_AVGPOOL: return "pool";
    case OP_CONCAT:
    case OP_SLICE:
    case OP_CHANNEL_SHUFFLE:
    case OP_PAD:
    case OP_UPSAMPLE:
    case OP_FLATTEN: return "copy";
    case OP_SOFTMAX: return "softmax";
    case OP_LAYERNORM: return "layernorm";
    default: return "elementwise"; /* activations, batchnorm, scale, add/sub/mul/div, dropout */
    }
}

/* The node's fused epilogue, in order, as "add+relu" ("add" for a residual add); "" for none. */
void cg_node_fused(const Node *n, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < n->nepi && used < len; k++) {
        const char *what = n->epi[k].residual >= 0 ? "add" : op_info(n->epi[k].act->op)->name;
        used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? "+" : "", what);
    }
}

static bool input_copied(const Cg *cg, int i) { return cg->plan.in_copies[i].kind == PLAN_WS; }

static bool output_copied(const Cg *cg, int i) {
    const Tensor *t = ir_tensor(cg->g, cg->g->outputs[i]);
    CgView dst = caller_view(t, CG_BUF_OUT, i);
    return !views_equal(&dst, &cg->views[t->id]);
}

/* Profile ids: node k of the schedule is entry k; then the input copies, then the output
 * copies, each in order, only those that exist. */
static int input_copy_id(const Cg *cg, int i) {
    int id = cg->g->nodes.len;
    for (int j = 0; j < i; j++) id += input_copied(cg, j);
    return id;
}

static int output_copy_id(const Cg *cg, int i) {
    int id = input_copy_id(cg, cg->g->ninputs);
    for (int j = 0; j < i; j++) id += output_copied(cg, j);
    return id;
}

/* At the segment function's entry: pool ? pool->profile : NULL, loaded once (the hook is set
 * before a run, never during one), so a hook that is off costs a test and a branch. */
static LLVMValueRef load_profile_hook(Cg *cg) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef pool = cg->entry_pool;
    LLVMBasicBlockRef from = LLVMGetInsertBlock(b);
    LLVMBasicBlockRef load = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "prof_load");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "prof_loaded");
    LLVMBuildCondBr(b, LLVMBuildIsNotNull(b, pool, ""), load, cont);
    LLVMPositionBuilderAtEnd(b, load);
    LLVMTypeRef fields[2] = {cg->t_ptr, cg->t_ptr}; /* struct netrt_pool */
    LLVMTypeRef pool_t = LLVMStructTypeInContext(cg->ctx, fields, 2, 0);
    LLVMValueRef f = LLVMBuildLoad2(b, cg->t_ptr, LLVMBuildStructGEP2(b, pool_t, pool, 1, ""), "profile");
    LLVMBuildBr(b, cont);
    LLVMPositionBuilderAtEnd(b, cont);
    LLVMValueRef phi = LLVMBuildPhi(b, cg->t_ptr, "profile");
    LLVMValueRef vals[2] = {f, LLVMConstNull(cg->t_ptr)};
    LLVMBasicBlockRef bbs[2] = {load, from};
    LLVMAddIncoming(phi, vals, bbs, 2);
    return phi;
}

/* if (profile) profile(pool, id, phase), at the builder in the segment function; the builder
 * ends after it. */
static void profile_hook(Cg *cg, LLVMValueRef profile, int id, int phase) {
    LLVMBuilderRef b = cg->b;
    LLVMBasicBlockRef call = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "prof_call");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "prof_cont");
    LLVMBuildCondBr(b, LLVMBuildIsNotNull(b, profile, ""), call, cont);
    LLVMPositionBuilderAtEnd(b, call);
    LLVMTypeRef args[3] = {cg->t_ptr, cg->t_i32, cg->t_i32};
    LLVMTypeRef ft = LLVMFunctionType(cg->t_void, args, 3, 0);
    LLVMValueRef av[3] = {cg->entry_pool, LLVMConstInt(cg->t_i32, (unsigned long long)id, 0),
                          LLVMConstInt(cg->t_i32, (unsigned long long)phase, 0)};
    LLVMBuildCall2(b, ft, profile, av, 3, "");
    LLVMBuildBr(b, cont);
    LLVMPositionBuilderAtEnd(b, cont);
}

/* A span of the entry function that gets the hooks around it once it is known to dispatch a
 * kernel (an eliminated concat, say, emits none and gets none): emitted into a block of its
 * own, then the begin hook is placed in front of it. */
typedef struct HookSpan {
    LLVMValueRef profile; /* load_profile_hook's */
    LLVMBasicBlockRef pre, body;
    int kernels;
} HookSpan;

static void span_begin(Cg *cg, HookSpan *s) {
    s->pre = LLVMGetInsertBlock(cg->b);
    s->body = LLVMAppendBasicBlockInContext(cg->ctx, cg->entry_fn, "node");
    s->kernels = cg->kernel_count;
    LLVMPositionBuilderAtEnd(cg->b, s->body);
}

static void span_end(Cg *cg, const HookSpan *s, int id) {
    LLVMBasicBlockRef last = LLVMGetInsertBlock(cg->b);
    bool any = cg->kernel_count != s->kernels;
    LLVMPositionBuilderAtEnd(cg->b, s->pre);
    if (any) profile_hook(cg, s->profile, id, 0);
    LLVMBuildBr(cg->b, s->body);
    LLVMPositionBuilderAtEnd(cg->b, last);
    if (any) profile_hook(cg, s->profile, id, 1);
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
    HookSpan span = {.profile = load_profile_hook(cg)};
    for (int i = 0; s->with_inputs && i < g->ninputs; i++) {
        if (!input_copied(cg, i)) continue;
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        CgView src = caller_view(t, CG_BUF_IN, i);
        span_begin(cg, &span);
        cg_copy(cg, "input_to_nhwc", &cg->views[t->id], &src);
        span_end(cg, &span, input_copy_id(cg, i));
    }
    for (int k = s->first; k < s->end; k++) {
        const Node *n = ir_node(g, k);
        if (n->dead) continue;
        cg->node = n;
        double t0 = times_now();
        span_begin(cg, &span);
        bool ok = kernels[n->op](cg, n);
        if (ok) span_end(cg, &span, k);
        times_add(cg->times, "irgen", op_info(n->op)->name, times_now() - t0);
        if (!ok) return false;
    }
    cg->node = NULL;
    /* outputs: to the caller's NCHW buffers (a tensor listed twice is copied twice) */
    for (int i = 0; s->with_outputs && i < g->noutputs; i++) {
        if (!output_copied(cg, i)) continue;
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        CgView dst = caller_view(t, CG_BUF_OUT, i);
        span_begin(cg, &span);
        cg_copy(cg, "output_to_nchw", &dst, &cg->views[t->id]);
        span_end(cg, &span, output_copy_id(cg, i));
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

static LLVMTypeRef node_info_type(Cg *cg) {
    LLVMTypeRef f[7] = {cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_i64, cg->t_i32, LLVMArrayType2(cg->t_i64, 8)};
    return LLVMStructTypeInContext(cg->ctx, f, 7, 0);
}

static LLVMValueRef node_info(Cg *cg, const char *name, const char *op, const char *kind, const char *fused,
                              uint64_t flops, const Tensor *t) {
    LLVMValueRef dims[8];
    for (int k = 0; k < 8; k++) dims[k] = cg_i64(cg, k < t->rank ? t->shape[k] : 0);
    LLVMValueRef v[7] = {const_str(cg, name, "pname"), const_str(cg, op, "pop"), const_str(cg, kind, "pkind"),
                         const_str(cg, fused, "pfused"), LLVMConstInt(cg->t_i64, flops, 0),
                         LLVMConstInt(cg->t_i32, (unsigned long long)t->rank, 0), LLVMConstArray2(cg->t_i64, dims, 8)};
    return LLVMConstNamedStruct(node_info_type(cg), v, 7);
}

/* The descriptor's profile table (netrt_node_info), in profile id order; *n its length. */
static LLVMValueRef profile_table(Cg *cg, int *n) {
    const Graph *g = cg->g;
    int total = output_copy_id(cg, g->noutputs);
    LLVMValueRef *items = xcalloc((size_t)(total ? total : 1), sizeof *items);
    char fused[256];
    for (int k = 0; k < g->nodes.len; k++) {
        const Node *nd = ir_node(g, k);
        int64_t macs = ir_node_macs(g, nd);
        uint64_t flops = macs > INT64_MAX / 2 ? UINT64_MAX : (uint64_t)macs * 2;
        cg_node_fused(nd, fused, sizeof fused);
        items[k] = node_info(cg, nd->name, op_info(nd->op)->name, nd->dead ? "none" : cg_node_kind(g, nd), fused,
                             flops, ir_tensor(g, nd->out));
    }
    for (int i = 0; i < g->ninputs; i++)
        if (input_copied(cg, i))
            items[input_copy_id(cg, i)] = node_info(cg, ir_tensor(g, g->inputs[i])->name, "input", "layout", "", 0,
                                                    ir_tensor(g, g->inputs[i]));
    for (int i = 0; i < g->noutputs; i++)
        if (output_copied(cg, i))
            items[output_copy_id(cg, i)] = node_info(cg, g->output_names[i], "output", "layout", "", 0,
                                                     ir_tensor(g, g->outputs[i]));
    LLVMValueRef arr = LLVMConstArray2(node_info_type(cg), items, (uint64_t)total);
    free(items);
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), "profile_table");
    LLVMSetInitializer(gv, arr);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    *n = total;
    return gv;
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
    LLVMTypeRef df[14] = {cg->t_i32, cg->t_i32, cg->t_ptr, cg->t_i32, cg->t_i32, cg->t_ptr, cg->t_ptr,
                          cg->t_i64, cg->t_i64, cg->t_ptr, cg->t_i32, cg->t_ptr, cg->t_i32, cg->t_ptr};
    LLVMTypeRef desc_t = LLVMStructTypeInContext(cg->ctx, df, 14, 0);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    unsigned long long desc_size = LLVMABISizeOfType(td, desc_t);
    if (!cg->cross) { /* the host's layout is netrt.h's: the two must agree field by field */
        static const size_t want[14] = {offsetof(netrt_model_desc, abi_version), offsetof(netrt_model_desc, desc_size),
                                        offsetof(netrt_model_desc, name), offsetof(netrt_model_desc, ninputs),
                                        offsetof(netrt_model_desc, noutputs), offsetof(netrt_model_desc, inputs),
                                        offsetof(netrt_model_desc, outputs), offsetof(netrt_model_desc, workspace_size),
                                        offsetof(netrt_model_desc, workspace_align), offsetof(netrt_model_desc, arch),
                                        offsetof(netrt_model_desc, nvariants), offsetof(netrt_model_desc, variants),
                                        offsetof(netrt_model_desc, nprofile), offsetof(netrt_model_desc, profile)};
        for (unsigned i = 0; i < 14; i++) NETC_ASSERT(LLVMOffsetOfElement(td, desc_t, i) == want[i]);
        static const size_t want_info[7] = {offsetof(netrt_node_info, name),  offsetof(netrt_node_info, op),
                                            offsetof(netrt_node_info, kind),  offsetof(netrt_node_info, fused),
                                            offsetof(netrt_node_info, flops), offsetof(netrt_node_info, rank),
                                            offsetof(netrt_node_info, shape)};
        for (unsigned i = 0; i < 7; i++) NETC_ASSERT(LLVMOffsetOfElement(td, node_info_type(cg), i) == want_info[i]);
        NETC_ASSERT(LLVMABISizeOfType(td, node_info_type(cg)) == sizeof(netrt_node_info));
        NETC_ASSERT(desc_size == sizeof(netrt_model_desc));
        NETC_ASSERT(LLVMOffsetOfElement(td, var_t, 2) == offsetof(netrt_variant, required) &&
                    LLVMOffsetOfElement(td, var_t, 3) == offsetof(netrt_variant, run) &&
                    LLVMABISizeOfType(td, var_t) == sizeof(netrt_variant));
    }
    LLVMDisposeTargetData(td);
    int nprofile;
    LLVMValueRef ptable = profile_table(cg, &nprofile);
    LLVMValueRef dv[14] = {
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
        LLVMConstInt(cg->t_i32, (unsigned long long)nprofile, 0),
        ptable,
    };
    if (emit == EMIT_OBJ) snprintf(name, sizeof name, "%s_descriptor", g->name);
    else snprintf(name, sizeof name, "netrt_model_descriptor");
    LLVMValueRef desc = LLVMAddGlobal(cg->mod, desc_t, name);
    LLVMSetInitializer(desc, LLVMConstNamedStruct(desc_t, dv, 14));
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

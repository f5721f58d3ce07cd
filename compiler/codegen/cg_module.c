/* cg_module.c — code generation driver: the target machine, the module, the entry function
 * with its kernels in schedule order, the descriptor, optimisation, and writing the artifacts
 * (object, shared object through the system linker, header, textual IR and assembly). */
#include <errno.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
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

/* One variant's entry function, run_v(inputs, outputs, workspace, pool) (the array form the
 * descriptor points at), and its kernels, generated for the current variant's CPU. */
static LLVMValueRef build_variant(Cg *cg, EmitKind emit, LLVMTypeRef run_t) {
    const Graph *g = cg->g;
    char name[300];
    if (cg->fat) snprintf(name, sizeof name, "%s_run_v%d", g->name, cg->cur);
    else snprintf(name, sizeof name, "%s_run_v", g->name);
    LLVMValueRef run = LLVMAddFunction(cg->mod, name, run_t);
    LLVMSetLinkage(run, emit == EMIT_OBJ ? LLVMExternalLinkage : LLVMInternalLinkage);
    cg_set_target_attrs(cg, run);
    cg->entry_fn = cg->fn = run;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, run, "entry"));
    cg->entry_ctx = LLVMBuildAlloca(cg->b, cg->t_ctx, "ctx");
    LLVMBuildStore(cg->b, LLVMGetParam(run, 2), LLVMBuildStructGEP2(cg->b, cg->t_ctx, cg->entry_ctx, 0, ""));
    LLVMBuildStore(cg->b, LLVMGetParam(run, 0), LLVMBuildStructGEP2(cg->b, cg->t_ctx, cg->entry_ctx, 1, ""));
    LLVMBuildStore(cg->b, LLVMGetParam(run, 1), LLVMBuildStructGEP2(cg->b, cg->t_ctx, cg->entry_ctx, 2, ""));
    cg->entry_pool = LLVMGetParam(run, 3);

    /* rank-4 inputs: NCHW caller buffer -> NHWC copy in the workspace */
    for (int i = 0; i < g->ninputs; i++) {
        if (cg->plan.in_copies[i].kind != PLAN_WS) continue;
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        CgView src = caller_view(t, CG_BUF_IN, i);
        cg_copy(cg, "input_to_nhwc", &cg->views[t->id], &src);
    }
    for (int k = 0; k < g->nodes.len; k++) {
        const Node *n = ir_node(g, k);
        if (n->dead) continue;
        cg->node = n;
        double t0 = times_now();
        bool ok = kernels[n->op](cg, n);
        times_add(cg->times, "irgen", op_info(n->op)->name, times_now() - t0);
        if (!ok) return NULL;
    }
    cg->node = NULL;
    /* outputs: to the caller's NCHW buffers (a tensor listed twice is copied twice) */
    for (int i = 0; i < g->noutputs; i++) {
        const Tensor *t = ir_tensor(g, g->outputs[i]);
        CgView dst = caller_view(t, CG_BUF_OUT, i);
        if (!views_equal(&dst, &cg->views[t->id])) cg_copy(cg, "output_to_nchw", &dst, &cg->views[t->id]);
    }
    LLVMBuildRet(cg->b, LLVMConstInt(cg->t_i32, 0, 0));
    return run;
}

/* Emit the whole model into cg->mod. */
static bool build_module(Cg *cg, EmitKind emit) {
    const Graph *g = cg->g;
    char name[300];
    LLVMTypeRef rargs[4] = {cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr};
    LLVMTypeRef run_t = LLVMFunctionType(cg->t_i32, rargs, 4, 0);
    LLVMValueRef runs[CG_MAX_VARIANTS];
    for (int k = 0; k < cg->nvar; k++) {
        cg_use_variant(cg, k);
        cg->var_weights_from[k] = cg->weight_globals.len;
        if (!(runs[k] = build_variant(cg, emit, run_t))) return false;
    }
    cg->var_weights_from[cg->nvar] = cg->weight_globals.len;
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

static bool run_linker(const char *cc, const char *obj, const char *out, bool mvec, Diags *d) {
    const char *argv[12];
    int a = 0;
    argv[a++] = cc;
    argv[a++] = "-shared";
    argv[a++] = "-o";
    argv[a++] = out;
    argv[a++] = obj;
    argv[a++] = "-Wl,-z,noexecstack";
    if (mvec) argv[a++] = "-lmvec";
    argv[a++] = "-lm";
    argv[a] = NULL;
    pid_t pid;
    int rc = posix_spawnp(&pid, cc, NULL, NULL, (char *const *)argv, environ);
    if (rc != 0) {
        diag_error(d, (SrcLoc){0}, "cannot run the linker '%s': %s (set NETC_CC to a C compiler)", cc, strerror(rc));
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return false;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        diag_error(d, (SrcLoc){0}, "the linker '%s' failed while writing %s", cc, out);
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

/* Write the module to `path` (a temporary file); errors name `final`, the file asked for. */
static bool emit_machine(Cg *cg, LLVMCodeGenFileType kind, const char *path, const char *final, Diags *d) {
    char *err = NULL;
    if (LLVMTargetMachineEmitToFile(cg->tm, cg->mod, path, kind, &err)) {
        diag_error(d, (SrcLoc){.file = final}, "cannot write: %s", err);
        LLVMDisposeMessage(err);
        unlink(path);
        return false;
    }
    return true;
}

/* OUT for --emit=obj/header: strip a trailing .o or .h. */
static char *stem_of(const char *out) {
    size_t n = strlen(out);
    char *s = xstrdup(out);
    if (n > 2 && (!strcmp(out + n - 2, ".o") || !strcmp(out + n - 2, ".h"))) s[n - 2] = 0;
    return s;
}

/* --stats: the variants, the weight bytes each one's kernels read, and the artifact's size. */
static void print_stats(const Cg *cg, const CodegenOptions *o, FILE *f) {
    double mib = 1048576.0, total = 0, stored = 0;
    fprintf(f, "codegen: %s, %d variant%s:", cg->triple, cg->nvar, cg->nvar == 1 ? "" : "s");
    for (int k = 0; k < cg->nvar; k++) {
        double bytes = 0;
        for (int i = cg->var_weights_from[k]; i < cg->var_weights_from[k + 1]; i++) bytes += (double)cg->weight_bytes[i];
        total += bytes;
        fprintf(f, "%s --cpu=%s (%d-float vectors, weights %.2f MiB)", k ? "," : "", cg->var[k].cpu, cg->var[k].vw,
                bytes / mib);
    }
    fputc('\n', f);
    /* what survived: identical blobs (biases, and packings two variants share) are stored once */
    for (int i = 0; i < cg->weight_globals.len; i++)
        if (LLVMGetNamedGlobal(cg->mod, cg->weight_names[i])) stored += (double)cg->weight_bytes[i];
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
                (double)st.st_size / mib, stored / mib, total / mib);
}

bool codegen_emit(const Graph *g, const CodegenOptions *o, Diags *d) {
    Cg cg = {.g = g, .d = d, .opt_level = o->opt_level};
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
    cg.ctx = LLVMContextCreate();
    cg.mod = LLVMModuleCreateWithNameInContext(g->name, cg.ctx);
    cg.b = LLVMCreateBuilderInContext(cg.ctx);
    LLVMSetTarget(cg.mod, cg.triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg.tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(cg.mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    init_types(&cg);
    cg.views = xcalloc((size_t)g->tensors.len, sizeof *cg.views);
    for (int t = 0; t < g->tensors.len; t++) cg.views[t] = member_view(&cg, t);
    for (int i = 0; i < g->ninputs; i++)
        if (cg.plan.in_copies[i].kind == PLAN_WS)
            cg.views[g->inputs[i]] = view_of(&cg.plan.in_copies[i], ir_tensor(g, g->inputs[i]));

    if (!build_module(&cg, o->emit)) goto out_llvm;
    /* the weight blobs by name and size, before the optimiser merges identical ones */
    {
        LLVMTargetDataRef wtd = LLVMCreateTargetDataLayout(cg.tm);
        cg.weight_names = xcalloc((size_t)cg.weight_globals.len + 1, sizeof *cg.weight_names);
        cg.weight_bytes = xcalloc((size_t)cg.weight_globals.len + 1, sizeof *cg.weight_bytes);
        for (int i = 0; i < cg.weight_globals.len; i++) {
            size_t len;
            cg.weight_names[i] = xstrdup(LLVMGetValueName2(cg.weight_globals.items[i], &len));
            cg.weight_bytes[i] = (int64_t)LLVMABISizeOfType(wtd, LLVMGlobalGetValueType(cg.weight_globals.items[i]));
        }
        LLVMDisposeTargetData(wtd);
    }
    t_phase = times_now();
    char *verr = NULL;
    if (LLVMVerifyModule(cg.mod, LLVMReturnStatusAction, &verr)) {
        diag_error(d, (SrcLoc){0}, "internal error (a bug in netc): generated IR does not verify: %.2000s", verr);
        LLVMDisposeMessage(verr);
        goto out_llvm;
    }
    LLVMDisposeMessage(verr);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    times_add(o->times, "llvm", "verify module", times_now() - t_phase);
    t_phase = times_now();
    LLVMErrorRef perr = LLVMRunPasses(cg.mod, o->opt_level == 0 ? "default<O0>" : "default<O3>", cg.tm, po);
    times_add(o->times, "llvm", "optimisation pipeline", times_now() - t_phase);
    LLVMDisposePassBuilderOptions(po);
    if (perr) {
        char *m = LLVMGetErrorMessage(perr);
        diag_error(d, (SrcLoc){0}, "internal error (a bug in netc): LLVM passes failed: %s", m);
        LLVMDisposeErrorMessage(m);
        goto out_llvm;
    }

    switch (o->emit) {
    case EMIT_LL: {
        /* for reading: weight blobs (after optimisation saw their values) print as zeros */
        /* by name: the optimiser may have merged identical blobs, deleting all but one */
        for (int i = 0; i < cg.weight_globals.len; i++) {
            LLVMValueRef gv = LLVMGetNamedGlobal(cg.mod, cg.weight_names[i]);
            if (gv && LLVMGetInitializer(gv)) LLVMSetInitializer(gv, LLVMConstNull(LLVMGlobalGetValueType(gv)));
        }
        char *tmp = tmp_path_for(o->out), *err = NULL;
        if (LLVMPrintModuleToFile(cg.mod, tmp, &err)) {
            diag_error(d, (SrcLoc){.file = o->out}, "cannot write: %s", err);
            LLVMDisposeMessage(err);
            unlink(tmp);
        } else {
            ok = commit_file(tmp, o->out, d);
        }
        free(tmp);
        break;
    }
    case EMIT_ASM: {
        char *tmp = tmp_path_for(o->out);
        ok = emit_machine(&cg, LLVMAssemblyFile, tmp, o->out, d) && commit_file(tmp, o->out, d);
        free(tmp);
        break;
    }
    case EMIT_OBJ: {
        size_t n = strlen(stem) + 3;
        char *obj = xmalloc(n), *hdr = xmalloc(n);
        snprintf(obj, n, "%s.o", stem);
        snprintf(hdr, n, "%s.h", stem);
        char *tmp = tmp_path_for(obj);
        t_phase = times_now();
        ok = emit_machine(&cg, LLVMObjectFile, tmp, obj, d);
        times_add(o->times, "llvm", "object emission", times_now() - t_phase);
        ok = ok && write_header(g, cg.plan.workspace_bytes, hdr, d) &&
             commit_file(tmp, obj, d);
        if (!ok) unlink(tmp);
        free(tmp), free(obj), free(hdr);
        break;
    }
    case EMIT_SO: {
        char *tmp_obj = tmp_path_for(o->out);
        size_t n = strlen(tmp_obj) + 8;
        char *obj = xmalloc(n), *so = xmalloc(n);
        snprintf(obj, n, "%s.o", tmp_obj);
        snprintf(so, n, "%s.so", tmp_obj);
        const char *cc = getenv("NETC_CC");
        if (!cc || !*cc) cc = cg.cross && !strncmp(cg.triple, "aarch64", 7) ? "aarch64-linux-gnu-gcc" : "cc";
        t_phase = times_now();
        ok = emit_machine(&cg, LLVMObjectFile, obj, o->out, d);
        times_add(o->times, "llvm", "object emission", times_now() - t_phase);
        t_phase = times_now();
        ok = ok && run_linker(cc, obj, so, cg.x86, d);
        times_add(o->times, "link", "cc -shared", times_now() - t_phase);
        ok = ok && commit_file(so, o->out, d);
        unlink(obj);
        unlink(so);
        free(tmp_obj), free(obj), free(so);
        break;
    }
    case EMIT_HEADER: break;
    }
    if (ok && o->stats) print_stats(&cg, o, o->stats);
out_llvm:
    for (int i = 0; cg.weight_names && i < cg.weight_globals.len; i++) free(cg.weight_names[i]);
    free(cg.weight_names);
    free(cg.weight_bytes);
    ptrvec_free(&cg.weight_globals);
    ptrvec_free(&cg.epi_keys);
    ptrvec_free(&cg.epi_globals);
    free(cg.views);
    LLVMDisposeBuilder(cg.b);
    LLVMDisposeModule(cg.mod);
    LLVMContextDispose(cg.ctx);
out_plan:
    cg_target_free(&cg);
    plan_free(&cg.plan);
    free(stem);
    return ok;
}

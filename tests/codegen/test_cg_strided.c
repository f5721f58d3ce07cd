/* test_cg_strided.c — the pooling and data-movement kernels on views the memory plan does not
 * produce today: NCHW (channels strided: the scalar paths), NHWC with padded pixels and a
 * channel offset (what a concat slice looks like), channels outermost, transposed rank 2.
 * A small harness builds the module by hand (one kernel per node, every tensor a caller
 * buffer laid out as the case says), links it, runs it with and without a thread pool, and
 * compares with the interpreter; the buffer elements outside the output view must stay
 * untouched. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "codegen/codegen.h"
#include "interp/interp.h"
#include "netrt.h"
#include "testutil.h"

typedef bool (*KernelFn)(Cg *, const Node *);
static const KernelFn kernels[OP_COUNT] = {
#define OP(E, id, in, at, w, shape, fl) [OP_##E] = cg_kernel_##id,
#include "ops.def"
#undef OP
};

/* A layout: dimensions from outermost to innermost (order), extra elements per dimension
 * (pad: the dimension's extent is shape + pad), and the view's offset in the buffer. */
typedef struct Layout {
    int order[4];
    int64_t pad[4];
    int64_t offset;
} Layout;

static const Layout NCHW = {{0, 1, 2, 3}, {0}, 0};
static const Layout NHWC_SLICE = {{0, 2, 3, 1}, {0, 5, 1, 2}, 3}; /* pixels of C+5, channels from 3 */
static const Layout NWHC = {{0, 3, 2, 1}, {1, 0, 0, 3}, 1};
static const Layout CNHW = {{1, 0, 2, 3}, {0, 2, 0, 1}, 2}; /* channels outermost: strided */
static const Layout ROWS = {{0, 1}, {0}, 0};
static const Layout ROWS_PADDED = {{0, 1}, {0, 3}, 2};
static const Layout COLS = {{1, 0}, {2, 0}, 1}; /* transposed */

/* A buffer holding one tensor through a view. */
typedef struct Buf {
    CgView v;
    int64_t size; /* floats */
    float *data;
} Buf;

static Buf make_buf(const Tensor *t, const Layout *l, CgBufKind kind, int index) {
    Buf b = {.v = {.buf = kind, .index = index, .offset = l->offset, .rank = t->rank}};
    memcpy(b.v.shape, t->shape, sizeof b.v.shape);
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        int d = l->order[k];
        b.v.stride[d] = s;
        s *= t->shape[d] + l->pad[d];
    }
    b.size = l->offset + s;
    b.data = malloc((size_t)b.size * sizeof(float));
    for (int64_t i = 0; i < b.size; i++) b.data[i] = NAN;
    return b;
}

/* Offset of the logical (row-major) element i in the view. */
static int64_t view_off(const CgView *v, int64_t i) {
    int64_t off = v->offset;
    for (int k = v->rank - 1; k >= 0; k--) {
        off += (i % v->shape[k]) * v->stride[k];
        i /= v->shape[k];
    }
    return off;
}

static void init_cg(Cg *cg, const Graph *g, Diags *d) {
    cg->g = g;
    cg->d = d;
    /* the compiler's own target set-up (host CPU, one variant), so every field it reads is set */
    CodegenOptions co = {.emit = EMIT_SO, .cpu = tu_cpu(), .opt_level = 2};
    cr_assert(cg_target_init(cg, &co, d), "target set-up failed");
    cg->ctx = LLVMContextCreate();
    cg->mod = LLVMModuleCreateWithNameInContext("strided", cg->ctx);
    cg->b = LLVMCreateBuilderInContext(cg->ctx);
    LLVMSetTarget(cg->mod, cg->triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(cg->mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
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

static void free_cg(Cg *cg) {
    cg_blobs_free(cg->blobs);
    ptrvec_free(&cg->epi_keys);
    ptrvec_free(&cg->epi_globals);
    LLVMDisposeBuilder(cg->b);
    LLVMDisposeModule(cg->mod);
    LLVMContextDispose(cg->ctx);
    cg_target_free(cg);
}

typedef void (*EntryFn)(float **ins, float **outs, void *ws, netrt_pool *pool);

/* entry(ins, outs, ws, pool): the graph's nodes in order, every tensor a caller buffer. Returns
 * the loaded shared object (dlclose it) and the entry point. */
static void *build(const Graph *g, CgView *views, int opt, EntryFn *entry) {
    Diags d;
    diags_init(&d);
    Cg cg = {0};
    CgBlobs blobs = {0};
    cg.blobs = &blobs; /* the weights, linked in as their own object */
    init_cg(&cg, g, &d);
    cg.views = views;
    LLVMTypeRef args[4] = {cg.t_ptr, cg.t_ptr, cg.t_ptr, cg.t_ptr};
    LLVMValueRef fn = LLVMAddFunction(cg.mod, "entry", LLVMFunctionType(cg.t_void, args, 4, 0));
    cg.entry_fn = cg.fn = fn;
    LLVMPositionBuilderAtEnd(cg.b, LLVMAppendBasicBlockInContext(cg.ctx, fn, "entry"));
    cg.entry_ctx = LLVMBuildAlloca(cg.b, cg.t_ctx, "ctx");
    LLVMBuildStore(cg.b, LLVMGetParam(fn, 2), LLVMBuildStructGEP2(cg.b, cg.t_ctx, cg.entry_ctx, 0, ""));
    LLVMBuildStore(cg.b, LLVMGetParam(fn, 0), LLVMBuildStructGEP2(cg.b, cg.t_ctx, cg.entry_ctx, 1, ""));
    LLVMBuildStore(cg.b, LLVMGetParam(fn, 1), LLVMBuildStructGEP2(cg.b, cg.t_ctx, cg.entry_ctx, 2, ""));
    cg.entry_pool = LLVMGetParam(fn, 3);
    for (int k = 0; k < g->nodes.len; k++) {
        const Node *n = ir_node(g, k);
        cg.node = n;
        cr_assert(kernels[n->op](&cg, n), "kernel %s failed", op_info(n->op)->name);
    }
    LLVMBuildRetVoid(cg.b);
    char *err = NULL;
    cr_assert(!LLVMVerifyModule(cg.mod, LLVMReturnStatusAction, &err), "IR does not verify: %s", err);
    LLVMDisposeMessage(err);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef perr = LLVMRunPasses(cg.mod, opt ? "default<O2>" : "default<O0>", cg.tm, po);
    LLVMDisposePassBuilderOptions(po);
    cr_assert(!perr, "LLVM passes failed");
    char dir[64] = "/tmp/netc_strided_", obj[128], wobj[128], so[128], cmd[512];
    size_t len = strlen(dir);
    memset(dir + len, 'X', 6); /* mkdtemp's template */
    dir[len + 6] = 0;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(obj, sizeof obj, "%s/k.o", dir);
    snprintf(wobj, sizeof wobj, "%s/w.o", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    cr_assert(!LLVMTargetMachineEmitToFile(cg.tm, cg.mod, obj, LLVMObjectFile, &err), "%s", err);
    CgBlobs *lists[1] = {&blobs};
    cr_assert(cg_blobs_write_elf(lists, 1, cg.triple, wobj, NULL, NULL, &d), "writing the weights failed");
    snprintf(cmd, sizeof cmd, "cc -shared -o %s %s %s %s -lm", so, obj, wobj, cg.x86 ? "-lmvec" : "");
    cr_assert_eq(system(cmd), 0, "link failed: %s", cmd);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    *(void **)entry = dlsym(h, "entry");
    unlink(obj), unlink(wobj), unlink(so), rmdir(dir);
    free_cg(&cg);
    diags_free(&d);
    return h;
}

/* src: one node reading the inputs; `lay` gives each input's layout then the output's. */
static void check(const char *src, const Layout *const *lay, const char *what) {
    Graph *g = tu_load_text(src, 9);
    cr_assert_not_null(g, "%s: does not load", what);
    cr_assert_eq(g->noutputs, 1);
    CgView *views = calloc((size_t)g->tensors.len, sizeof *views);
    Buf *in = calloc((size_t)g->ninputs, sizeof *in);
    float **logical = calloc((size_t)g->ninputs, sizeof *logical),
          **in_ptrs = calloc((size_t)g->ninputs, sizeof *in_ptrs);
    for (int i = 0; i < g->ninputs; i++) {
        const Tensor *t = ir_tensor(g, g->inputs[i]);
        in[i] = make_buf(t, lay[i], CG_BUF_IN, i);
        views[t->id] = in[i].v;
        int64_t n = ir_numel(t);
        logical[i] = malloc((size_t)n * sizeof(float));
        tu_fill_random(logical[i], (size_t)n, 100 + (uint64_t)i);
        for (int64_t k = 0; k < n; k++) in[i].data[view_off(&in[i].v, k)] = logical[i][k];
        in_ptrs[i] = in[i].data;
    }
    const Tensor *to = ir_tensor(g, g->outputs[0]);
    int64_t n_out = ir_numel(to);
    float *ref = malloc((size_t)n_out * sizeof(float)), *got = malloc((size_t)n_out * sizeof(float));
    Diags d;
    diags_init(&d);
    cr_assert(interp_run(g, (const float *const *)logical, &ref, &d), "%s: interpreter failed", what);
    diags_free(&d);
    for (int opt = tu_min_opt(0); opt <= 2; opt += 2) {
        Buf out = make_buf(to, lay[g->ninputs], CG_BUF_OUT, 0);
        views[to->id] = out.v;
        EntryFn entry;
        void *h = build(g, views, opt, &entry);
        netrt_pool *pool = opt ? netrt_pool_create(2) : NULL;
        float ws[16];
        entry(in_ptrs, &out.data, ws, pool);
        if (pool) netrt_pool_destroy(pool);
        dlclose(h);
        bool *mine = calloc((size_t)out.size, sizeof *mine);
        for (int64_t k = 0; k < n_out; k++) {
            int64_t o = view_off(&out.v, k);
            got[k] = out.data[o];
            mine[o] = true;
        }
        int64_t stray = 0;
        for (int64_t o = 0; o < out.size; o++) stray += !mine[o] && !isnan(out.data[o]);
        double e = tu_rel_err(got, ref, (size_t)n_out);
        cr_expect(e <= 1e-5, "%s at -O%d: rel.err %g", what, opt, e);
        cr_expect_eq(stray, 0, "%s at -O%d: %lld writes outside the output view", what, opt, (long long)stray);
        free(mine);
        free(out.data);
    }
    for (int i = 0; i < g->ninputs; i++) free(in[i].data), free(logical[i]);
    free(in), free(logical), free(in_ptrs), free(views), free(ref), free(got);
    ir_graph_free(g);
}

/* Each rank-4 op under every pairing of layouts worth having: scalar in and out, vector with
 * padded pixels in and out, mixed, and two unusual orders. */
static void check_rank4(const char *shape, const char *call) {
    static const Layout *const pairs[][2] = {
        {&NCHW, &NCHW}, {&NHWC_SLICE, &NHWC_SLICE}, {&NCHW, &NHWC_SLICE}, {&NHWC_SLICE, &NCHW}, {&NWHC, &CNHW},
        {&CNHW, &NWHC},
    };
    static const char *names[] = {"NCHW->NCHW",  "slice->slice", "NCHW->slice",
                                  "slice->NCHW", "NWHC->CNHW",   "CNHW->NWHC"};
    char src[512], what[512];
    snprintf(src, sizeof src, "input x: %s\ny = %s\noutput y\n", shape, call);
    for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        snprintf(what, sizeof what, "%s on %s, %s", call, shape, names[p]);
        check(src, pairs[p], what);
    }
}

Test(cg_strided, pools) {
    const char *shapes[] = {"[2, 17, 5, 7]", "[1, 70, 4, 3]"};
    const char *calls[] = {
        "maxpool2d(x, kernel=3, stride=2, pad=1, ceil_mode=true)",
        "maxpool2d(x, kernel=2, dilation=[1, 2])",
        "avgpool2d(x, kernel=3, stride=2, pad=1, count_include_pad=false)",
        "avgpool2d(x, kernel=[2, 3], pad=[1, 1])",
        "global_avgpool(x)",
        "adaptive_avgpool(x, size=[3, 2])",
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) check_rank4(shapes[s], calls[c]);
}

Test(cg_strided, resampling) {
    const char *calls[] = {
        "channel_shuffle(x, groups=3)",
        "pad(x, pad=[1, -1, 2, 0], value=0.5)",
        "pad(x, pad=[2, 1, 1, 2], mode=\"reflect\")",
        "upsample(x, size=[7, 9])",
        "upsample(x, scale=0.5)",
        "upsample(x, size=[8, 5], mode=\"bilinear\")",
        "upsample(x, scale=1.5, mode=\"bilinear\", align_corners=true)",
    };
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) check_rank4("[2, 18, 5, 6]", calls[c]);
    check_rank4("[1, 66, 3, 2]", "channel_shuffle(x, groups=2)");
}

Test(cg_strided, softmax_slice_rank4) {
    const char *calls[] = {
        "softmax(x)",
        "softmax(x, axis=2)",
        "softmax(x, axis=0)",
        "softmax(x, axis=-1)",
        "slice(x, axis=1, start=2, end=13)",
        "slice(x, axis=3, start=-4)",
        "slice(x, axis=0, start=1)",
    };
    for (size_t c = 0; c < sizeof calls / sizeof *calls; c++) check_rank4("[2, 17, 5, 7]", calls[c]);
}

Test(cg_strided, concat_and_flatten) {
    static const Layout *const cat[][4] = {
        {&NCHW, &NHWC_SLICE, &CNHW, &NHWC_SLICE},
        {&NHWC_SLICE, &NHWC_SLICE, &NHWC_SLICE, &NCHW},
        {&NWHC, &NCHW, &NHWC_SLICE, &CNHW},
    };
    /* inputs a, b, c of each axis: b differs from a along it */
    static const char *srcs[] = {
        "input a: [2, 17, 5, 7]\ninput b: [1, 17, 5, 7]\ninput c: [3, 17, 5, 7]\ny = concat(a, b, c, axis=0)\noutput "
        "y\n",
        "input a: [2, 17, 5, 7]\ninput b: [2, 3, 5, 7]\ninput c: [2, 17, 5, 7]\ny = concat(a, b, c, axis=1)\noutput "
        "y\n",
        "input a: [2, 17, 5, 7]\ninput b: [2, 17, 2, 7]\ninput c: [2, 17, 5, 7]\ny = concat(a, b, c, axis=2)\noutput "
        "y\n",
        "input a: [2, 17, 5, 7]\ninput b: [2, 17, 5, 1]\ninput c: [2, 17, 5, 7]\ny = concat(a, b, c, axis=-1)\noutput "
        "y\n",
    };
    char what[64];
    for (size_t a = 0; a < 4; a++)
        for (size_t p = 0; p < sizeof cat / sizeof *cat; p++) {
            snprintf(what, sizeof what, "concat axis %zu, layouts %zu", a, p);
            check(srcs[a], cat[p], what);
        }
    static const Layout *const flat[][2] = {
        {&NCHW, &ROWS_PADDED}, {&NHWC_SLICE, &COLS}, {&CNHW, &ROWS}, {&NWHC, &ROWS_PADDED}};
    for (size_t p = 0; p < sizeof flat / sizeof *flat; p++) {
        check("input x: [2, 17, 5, 7]\ny = flatten(x)\noutput y\n", flat[p], "flatten");
        check("input x: [2, 33, 1, 1]\ny = flatten(x)\noutput y\n", flat[p], "flatten of [N, C, 1, 1]");
    }
}

Test(cg_strided, rank2) {
    static const Layout *const pairs[][3] = {
        {&ROWS, &ROWS_PADDED, &COLS}, {&COLS, &COLS, &ROWS_PADDED}, {&ROWS_PADDED, &COLS, &ROWS}};
    for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        check("input x: [3, 37]\ny = softmax(x)\noutput y\n", pairs[p], "softmax rank 2 axis 1");
        check("input x: [3, 37]\ny = softmax(x, axis=0)\noutput y\n", pairs[p], "softmax rank 2 axis 0");
        check("input x: [3, 37]\ny = slice(x, start=-30, end=-2)\noutput y\n", pairs[p], "slice rank 2");
        check("input x: [3, 37]\ninput z: [3, 5]\ny = concat(x, z)\noutput y\n", pairs[p], "concat rank 2");
        check("input x: [3, 37]\ninput z: [2, 37]\ny = concat(x, z, axis=0)\noutput y\n", pairs[p],
              "concat rank 2 axis 0");
    }
}

/* cg.h — code generation through the LLVM C API: the state shared by the kernel generators,
 * tensor views, and the helpers they emit IR with (loops, vectors, intrinsics, weights).
 *
 * Model: the entry function `run(inputs, outputs, workspace, pool)` builds one context
 * {workspace, inputs, outputs} and calls, node by node, a kernel: a task function
 * `void task(ctx, begin, end)` run over [0, n) through pool->parallel_for (or directly when the
 * pool is NULL or n is 1). A kernel generator describes one item of work; cg_parallel() wraps
 * it in the task function and the dispatch. Every kernel reads and writes tensors through
 * views: a buffer, an offset and a stride per logical (NCHW-order) dimension, so layouts
 * (NHWC inside, NCHW at the boundary), concat slices and aliases are just different views. */
#ifndef NETC_CG_H
#define NETC_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"
#include "plan/plan.h"

typedef enum { CG_BUF_WS, CG_BUF_IN, CG_BUF_OUT } CgBufKind;

typedef struct CgView {
    CgBufKind buf;
    int index;      /* CG_BUF_IN/OUT: which caller buffer */
    int64_t offset; /* in floats from the buffer's start */
    int rank;
    int64_t shape[IR_MAX_RANK];  /* logical, NCHW order */
    int64_t stride[IR_MAX_RANK]; /* in floats, per logical dimension */
} CgView;

typedef struct CgOptions {
    const char *triple;  /* NULL: host */
    const char *cpu;     /* NULL or "native": host CPU; "generic"; an LLVM CPU name */
    int opt_level;       /* 0..3 */
} CgOptions;

/* One compilation of the kernels for one CPU; a fat artifact has several. */
#define CG_MAX_VARIANTS 8
typedef struct CgVariant {
    char cpu[64];        /* as asked ("x86-64-v3"), or the host's name for native */
    char llvm_cpu[64];   /* the CPU name LLVM gets */
    char *llvm_features; /* the feature string LLVM gets ("+avx2,..." for native or --mattr) */
    uint64_t features;   /* what the code may use (netrt_cpu_feature_name bits), probed from LLVM */
    char features_str[512];
    int vw, vregs;
    bool fma, avx512, avx2;
} CgVariant;

/* A weight blob: the bytes a kernel reads through an external hidden symbol (cg_blob.c). */
typedef struct CgBlob {
    char *sym;     /* the symbol, unique in the artifact */
    unsigned char *data;
    int64_t bytes;
    uint64_t hash;
} CgBlob;
typedef struct CgBlobs {
    CgBlob *items;
    int len, cap;
} CgBlobs;

typedef struct Cg {
    /* LLVM */
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetMachineRef tm;
    char *triple;
    /* the graph and its plan */
    const Graph *g;
    Diags *d;
    Plan plan;
    CgView *views; /* by tensor id: where kernels read/write it */
    /* target facts */
    int vw;               /* floats per vector register: 16 (AVX-512), 8 (AVX), 4 */
    int vregs;            /* vector registers: 32 (AVX-512, aarch64), 16 (other x86) */
    bool fma;             /* fused multiply-add in hardware (else llvm.fmuladd: mul + add) */
    bool x86;             /* libmvec exists (glibc x86_64) */
    bool avx512, avx2;    /* AVX-512F; AVX2 with FMA (libmvec's _ZGVeN16v_ / _ZGVdN8v_ forms) */
    uint64_t features;    /* what the code may use (netrt_cpu_feature_name bits), probed from LLVM */
    char features_str[512];
    char cpu_name[64];    /* the --cpu asked for ("x86-64-v3"), or the host's name for native */
    bool cross;           /* not the host's triple */
    CgVariant var[CG_MAX_VARIANTS]; /* best first; the facts above are those of var[cur] */
    int nvar, cur;
    bool fat;             /* --cpu=fat: every function carries its variant's target attributes */
    int opt_level;
    const char *llvm_passes; /* --llvm-passes, or NULL */
    int part;             /* the module being built (code generation is split into parts) */
    CgBlobs *blobs;       /* the weights its kernels read, written later as their own object */
    PtrVec epi_keys, epi_globals; /* prelu slopes of fused activations, one global per node */
    /* types */
    LLVMTypeRef t_void, t_f32, t_i1, t_i32, t_i64, t_ptr, t_vf, t_vi1, t_task, t_ctx;
    /* the function being emitted */
    LLVMValueRef fn;
    LLVMValueRef ctx_ptr;       /* in a task function: the {ws, ins, outs} context */
    LLVMValueRef ws, ins, outs; /* loaded from ctx_ptr at the task's entry */
    LLVMValueRef task_end;      /* in a task function: the end of its chunk [begin, end) of items */
    /* the entry function under construction */
    LLVMValueRef entry_fn, entry_ctx, entry_pool;
    LLVMBasicBlockRef entry_bb;
    int kernel_count;
    struct Times *times; /* --time-passes, or NULL */
    const Node *node; /* the node being generated, for error locations */
} Cg;

/* ---- the target (cg_target.c) ---------------------------------------------------------------- */
struct CodegenOptions;
/* The target machine for --target/--cpu/--mattr, and the facts above from what LLVM says it may
 * use; false after an error naming the flag. */
bool cg_target_init(Cg *cg, const struct CodegenOptions *o, Diags *d);
/* Make variant k the current one: its facts become cg->vw, cg->fma, ... */
void cg_use_variant(Cg *cg, int k);
/* The target machine, the triple and the variants' strings. */
void cg_target_free(Cg *cg);
/* A new target machine for variant k (each thread of code generation has its own). */
LLVMTargetMachineRef cg_target_machine(const Cg *cg, int k);
/* Give a function the current variant's "target-cpu" and "target-features". */
void cg_set_target_attrs(Cg *cg, LLVMValueRef fn);
/* At the builder: the index of the first of the variants this CPU can run (nvar: none), checked
 * with cpuid once per process. */
LLVMValueRef cg_cpu_variant(Cg *cg, const CgVariant *vars, int nvar);
/* "x86_64", "aarch64" (netrt_arch's names) */
const char *cg_arch(const Cg *cg);

/* ---- views ----------------------------------------------------------------------------- */
/* Row-major (NCHW) strides for a shape. */
void cg_rowmajor_strides(int rank, const int64_t *shape, int64_t *stride);
/* Is dimension `dim` contiguous (stride 1)? Vector paths require it for channels. */
static inline bool cg_view_unit(const CgView *v, int dim) { return v->stride[dim] == 1; }
/* Pointer to the view's element at a (runtime) element offset from the view's origin. */
LLVMValueRef cg_view_ptr(Cg *cg, const CgView *v, LLVMValueRef elem_offset);
/* Pointer at a logical index (runtime values, one per dimension). */
LLVMValueRef cg_view_at(Cg *cg, const CgView *v, LLVMValueRef *idx);

/* ---- constants and scalars --------------------------------------------------------------- */
LLVMValueRef cg_i64(Cg *cg, int64_t v);
LLVMValueRef cg_f32(Cg *cg, double v);
LLVMValueRef cg_vf(Cg *cg, double v); /* splat constant <vw x float> */
LLVMValueRef cg_splat(Cg *cg, LLVMValueRef scalar);
LLVMValueRef cg_gep(Cg *cg, LLVMValueRef base, LLVMValueRef elem_offset); /* float* + off */
LLVMValueRef cg_add(Cg *cg, LLVMValueRef a, LLVMValueRef b);                /* i64 */
LLVMValueRef cg_mul(Cg *cg, LLVMValueRef a, LLVMValueRef b);                /* i64 */
LLVMValueRef cg_addc(Cg *cg, LLVMValueRef a, int64_t c);
LLVMValueRef cg_mulc(Cg *cg, LLVMValueRef a, int64_t c);
/* floor/ceil helpers on i64 */
LLVMValueRef cg_divc(Cg *cg, LLVMValueRef a, int64_t c); /* a / c, a >= 0 */
LLVMValueRef cg_remc(Cg *cg, LLVMValueRef a, int64_t c); /* a % c, a >= 0 */
LLVMValueRef cg_min(Cg *cg, LLVMValueRef a, LLVMValueRef b); /* i64 signed */
LLVMValueRef cg_max(Cg *cg, LLVMValueRef a, LLVMValueRef b);

/* ---- loops ------------------------------------------------------------------------------- */
typedef struct CgLoop {
    LLVMValueRef iv;  /* the induction variable (i64) */
    LLVMValueRef phi;
    LLVMBasicBlockRef header, body, latch, exit;
    LLVMValueRef step;
} CgLoop;
/* for (iv = start; iv < end; iv += step) { ...emitted between begin and end... } */
void cg_loop_begin(Cg *cg, CgLoop *l, LLVMValueRef start, LLVMValueRef end, int64_t step, const char *name);
void cg_loop_end(Cg *cg, CgLoop *l);
/* Mark the loop whose latch branch this is with llvm.loop.unroll.disable: a short tap loop fully
 * unrolled by LLVM multiplies the live weight and input registers and spills (the 7x7 stem). */
void cg_loop_no_unroll(Cg *cg, LLVMValueRef latch_br);
/* if (cond) { ... } */
typedef struct CgIf {
    LLVMBasicBlockRef then_bb, merge_bb;
} CgIf;
void cg_if_begin(Cg *cg, CgIf *c, LLVMValueRef cond, const char *name);
void cg_if_end(Cg *cg, CgIf *c);

/* ---- vectors ----------------------------------------------------------------------------- */
LLVMValueRef cg_vload(Cg *cg, LLVMValueRef ptr);                      /* unaligned <vw x f32> */
void cg_vstore(Cg *cg, LLVMValueRef v, LLVMValueRef ptr);
LLVMValueRef cg_mask(Cg *cg, int64_t nvalid);                         /* first nvalid lanes */
LLVMValueRef cg_mask_rt(Cg *cg, LLVMValueRef nvalid);                 /* runtime count */
LLVMValueRef cg_vload_masked(Cg *cg, LLVMValueRef ptr, LLVMValueRef mask); /* 0 in masked-off lanes */
void cg_vstore_masked(Cg *cg, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask);
/* Prefetch the line at p for reading: no fault, no effect on values, for any address. locality
 * 3: into L1 (prefetcht0), 2: into L2 (prefetcht1). */
void cg_prefetch(Cg *cg, LLVMValueRef p, int locality);
/* A 64-byte aligned buffer of `floats` floats in the current function's entry block (allocated
 * once per call, not per loop iteration); the function probes its stack, so a stack too small
 * faults at its guard page instead of running past it. */
LLVMValueRef cg_entry_alloca(Cg *cg, int64_t floats, const char *name);
LLVMValueRef cg_fma(Cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c); /* a*b+c, any float type */
/* max / min keeping a NaN of `a` and dropping one of `b` (PyTorch's clamp(a, b) semantics with
 * the bound in b; one maxps/minps on x86): relu(NaN) = NaN, a max reduction skips NaNs. */
LLVMValueRef cg_fmax(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmin(Cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_hsum(Cg *cg, LLVMValueRef v);                 /* horizontal add of a vector */
LLVMValueRef cg_hmax(Cg *cg, LLVMValueRef v);                 /* horizontal max of a NaN-free vector */
/* Call an llvm intrinsic overloaded on the type of its first argument. */
LLVMValueRef cg_intrinsic(Cg *cg, const char *name, LLVMTypeRef overload, LLVMValueRef *args, int nargs);
/* Elementwise math on a float vector or scalar: exp, expm1, tanh, erf through libmvec on x86
 * (AVX-512/AVX2 variants), libm per lane otherwise. */
LLVMValueRef cg_math(Cg *cg, const char *fn, LLVMValueRef x);

/* ---- activations, applied to values in registers (kernels and fused epilogues) ------------- */
/* Apply the activation (or batchnorm-free elementwise op) `op` with the node's attributes to a
 * float vector or scalar. prelu: `param` is the slope (vector or scalar) for these lanes. */
LLVMValueRef cg_activation(Cg *cg, const Node *n, LLVMValueRef x, LLVMValueRef prelu_slope);

/* ---- fused epilogues ---------------------------------------------------------------------- */
/* Apply node n's fused epilogue (n->epi: activations and residual adds, in order) to v: a
 * vector whose lanes are consecutive channels starting at idx[1] of the output's logical
 * index idx (rank of the output), or a scalar at idx. Residual operands are read through their
 * own views at idx (masked by `mask` when not NULL). idx entries other than the channel may be
 * NULL when n has no residual step. */
LLVMValueRef cg_epilogue(Cg *cg, const Node *n, LLVMValueRef v, LLVMValueRef *idx, LLVMValueRef mask);
/* Does the epilogue need logical indices beyond the channel (a residual step)? Or the channel
 * (a residual or a per-channel prelu)? Kernels use these to pick loop shapes. */
bool cg_epilogue_needs_index(const Node *n);
bool cg_epilogue_needs_channel(const Cg *cg, const Node *n);

/* ---- weights ------------------------------------------------------------------------------- */
/* `count` floats (already packed by the kernel), copied into cg->blobs; returns the address of
 * the external hidden, 64-byte aligned constant symbol they will be stored under. */
LLVMValueRef cg_weights(Cg *cg, const float *data, int64_t count, const char *name);
void cg_blobs_free(CgBlobs *bl);
/* Write the blobs of the lists, in order, as one relocatable ELF object for `triple`: each
 * distinct blob once (64-byte aligned in one read-only section), one hidden symbol per blob.
 * *stored: the bytes kept; *total: before identical blobs were merged. */
bool cg_blobs_write_elf(CgBlobs *const *lists, int nlists, const char *triple, const char *path, int64_t *stored,
                        int64_t *total, Diags *d);
/* A private, 64-byte aligned constant global with this initializer (tables, strings). */
LLVMValueRef cg_const_global(Cg *cg, LLVMValueRef init, const char *name);
/* A constant int32 table (indices computed at compile time). */
LLVMValueRef cg_table_i32(Cg *cg, const int32_t *v, int64_t n, const char *name);

/* ---- kernels ------------------------------------------------------------------------------- */
/* Emit a kernel: n items of work; body() emits one item given its index (i64), with the
 * builder inside the task function (cg->ws/ins/outs valid). */
typedef void (*CgBodyFn)(Cg *cg, LLVMValueRef item, void *user);
void cg_parallel(Cg *cg, const char *name, int64_t n, CgBodyFn body, void *user);

/* One kernel generator per op, generated from ops.def: cg_kernel_<id>(cg, node). Each reads
 * cg->views[n->in[k]] and writes cg->views[n->out]. Returns false after reporting an error. */
#define OP(E, id, in, at, w, shape, fl) bool cg_kernel_##id(Cg *cg, const Node *n);
#include "../ops.def"
#undef OP

/* conv2d by Winograd F(4,3) or F(2,3) (cg_winograd.c): a node the winograd pass marked, on views whose
 * channels are contiguous (cg_kernel_conv2d dispatches; other views run the direct paths). */
bool cg_winograd_conv2d(Cg *cg, const Node *n);

/* conv2d as a blocked GEMM (cg_gemm.c): 1×1, ungrouped, unpadded (any stride), on views whose
 * channels are contiguous. cg_gemm_eligible says whether node n takes this path (cg_kernel_conv2d
 * dispatches). */
bool cg_gemm_eligible(const Cg *cg, const Node *n);
bool cg_gemm_conv2d(Cg *cg, const Node *n);

/* ---- modules (cg_module.c) ------------------------------------------------------------------- */
/* A segment is a run of consecutive nodes of one variant, compiled in one LLVM module as one
 * hidden function seg(inputs, outputs, workspace, pool); a variant's entry run_v calls its
 * segments in order. Segments depend only on the graph, never on the thread count. */
typedef struct Segment {
    int var, index;
    int first, end; /* nodes [first, end) */
    bool with_inputs, with_outputs;
} Segment;
Segment *cg_make_segments(const Cg *cg, int *nsegs);
/* The module's types (cg->ctx set); the views of every tensor (cg->plan set). */
void cg_init_types(Cg *cg);
void cg_init_views(Cg *cg);
bool cg_build_segment(Cg *cg, const Segment *s);
/* The entry points and the descriptor, calling segments that may live in other modules. */
bool cg_build_main(Cg *cg, int emit, const Segment *segs, int nsegs);
/* What the profile table says of a node (netrt_node_info): its kernel family ("direct",
 * "winograd", "gemm", "depthwise", "transposed", "pool", "copy", "softmax", "elementwise"),
 * from the graph alone so every variant agrees; and its fused epilogue as "add+relu". */
const char *cg_node_kind(const Graph *g, const Node *n);
void cg_node_fused(const Node *n, char *buf, size_t len);

/* ---- artifacts (cg_artifact.c) ---------------------------------------------------------------- */
char *cg_tmp_path_for(const char *final);                      /* FINAL.tmpPID */
bool cg_commit_file(const char *tmp, const char *final, Diags *d); /* rename into place */
char *cg_stem_of(const char *out);                             /* OUT minus a trailing .o/.h */
bool cg_write_header(const Graph *g, int64_t ws_bytes, const char *path, Diags *d);
bool cg_write_buffer(LLVMMemoryBufferRef buf, const char *path, Diags *d);
/* cc [-fuse-ld=lld] (-shared | -r -nostdlib) -o out objs...; errors name `final` */
bool cg_run_linker(const char *cc, bool cross, bool relocatable, char **objs, int nobjs, const char *out,
                   const char *final, bool mvec, Diags *d);
void cg_remove_tmpdir(const char *dir, char **files, int nfiles);

/* Generic strided copy between two views of the same logical shape (layout conversions,
 * concat, slice, flatten...). */
void cg_copy(Cg *cg, const char *name, const CgView *dst, const CgView *src);

#endif

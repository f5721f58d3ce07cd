/* cg_target.c — the target machine and what it can do. The triple, the CPU (native, generic, an
 * x86-64 level, any LLVM CPU name) and --mattr become an LLVM target machine; the facts code
 * generation specialises on (vector width, vector registers, FMA) and the CPU features the
 * artifact records for the loader come from that target machine itself, never from a table of
 * CPU names: LLVM compiles a few probe functions, one per feature, and the instructions it picks
 * say what it may use (a <16 x float> add in zmm registers means AVX-512F, and so on). */
#include <errno.h>
#include <llvm-c/IRReader.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cg.h"
#include "codegen.h"
#include "netrt.h"

/* LLVM only warns about a CPU name it does not know, then may abort while compiling; the C API
 * cannot ask. So a child process compiles an empty function for the CPU, with stderr captured,
 * and the name is accepted only when LLVM said nothing and did not die. The same holds for an
 * unknown --mattr feature. */
static bool target_known(LLVMTargetRef target, const char *triple, const char *cpu, const char *features) {
    int fds[2];
    if (pipe(fds) != 0) return true;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return true;
    }
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelNone,
                                                          LLVMRelocPIC, LLVMCodeModelDefault);
        LLVMContextRef c = LLVMContextCreate();
        LLVMModuleRef m = LLVMModuleCreateWithNameInContext("probe", c);
        LLVMSetTarget(m, triple);
        LLVMValueRef f = LLVMAddFunction(m, "probe", LLVMFunctionType(LLVMVoidTypeInContext(c), NULL, 0, 0));
        LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(c, f, "entry"));
        LLVMBuildRetVoid(b);
        LLVMMemoryBufferRef out = NULL;
        char *err = NULL;
        _exit(tm && !LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &err, &out) ? 0 : 1);
    }
    close(fds[1]);
    char buf[256];
    ssize_t got, total = 0;
    while ((got = read(fds[0], buf, sizeof buf)) > 0) total += got;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return total == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- the feature probe ---------------------------------------------------------------------- */

/* One probe: a function of one operation on `type` whose instruction reveals the feature. */
typedef struct Probe {
    const char *feature; /* netrt's (LLVM's) name */
    const char *ir;      /* the body, in LLVM IR, of `define T @p(T %a, T %b)` (T below) */
    const char *type;
    const char *evidence[2]; /* any of these in the function's assembly means the feature is there */
} Probe;

static const Probe probes[] = {
    {"avx512f", "%r = fadd <16 x float> %a, %b\n ret <16 x float> %r", "<16 x float>", {"%zmm"}},
    {"avx512bw", "%r = add <32 x i16> %a, %b\n ret <32 x i16> %r", "<32 x i16>", {"vpaddw\t%zmm"}},
    {"avx512dq", "%r = mul <8 x i64> %a, %b\n ret <8 x i64> %r", "<8 x i64>", {"vpmullq"}},
    {"avx512cd", "%r = call <16 x i32> @llvm.ctlz.v16i32(<16 x i32> %a, i1 false)\n ret <16 x i32> %r", "<16 x i32>",
     {"vplzcntd"}},
    {"avx512vl", "%r = call <4 x i64> @llvm.abs.v4i64(<4 x i64> %a, i1 false)\n ret <4 x i64> %r", "<4 x i64>",
     {"vpabsq\t%ymm"}},
    {"avx2", "%r = add <8 x i32> %a, %b\n ret <8 x i32> %r", "<8 x i32>", {"vpaddd\t%ymm"}},
    {"avx", "%r = fadd <8 x float> %a, %b\n ret <8 x float> %r", "<8 x float>", {"vaddps\t%ymm"}},
    {"fma", "%r = call <4 x float> @llvm.fma.v4f32(<4 x float> %a, <4 x float> %b, <4 x float> %a)\n ret <4 x float> %r",
     "<4 x float>", {"vfmadd"}},
    {"f16c", "%h = fptrunc <4 x float> %a to <4 x half>\n %r = fpext <4 x half> %h to <4 x float>\n ret <4 x float> %r",
     "<4 x float>", {"cvtps2ph"}},
    {"sse4.2", "%c = icmp sgt <2 x i64> %a, %b\n %r = sext <2 x i1> %c to <2 x i64>\n ret <2 x i64> %r", "<2 x i64>",
     {"pcmpgtq"}},
    {"sse4.1", "%r = call <4 x float> @llvm.floor.v4f32(<4 x float> %a)\n ret <4 x float> %r", "<4 x float>",
     {"roundps", "rndscaleps"}},
    {"ssse3", "%r = call <4 x i32> @llvm.abs.v4i32(<4 x i32> %a, i1 false)\n ret <4 x i32> %r", "<4 x i32>", {"pabsd"}},
    {"popcnt", "%r = call i64 @llvm.ctpop.i64(i64 %a)\n ret i64 %r", "i64", {"popcnt"}},
    {"lzcnt", "%r = call i64 @llvm.ctlz.i64(i64 %a, i1 false)\n ret i64 %r", "i64", {"lzcnt"}},
    {"bmi", "%n = xor i64 %a, -1\n %r = and i64 %n, %b\n ret i64 %r", "i64", {"andn"}},
    {"bmi2", "%r = shl i64 %a, %b\n ret i64 %r", "i64", {"shlx"}},
    {"movbe", "%p = inttoptr i64 %a to ptr\n %v = load i64, ptr %p\n %r = call i64 @llvm.bswap.i64(i64 %v)\n ret i64 %r",
     "i64", {"movbe"}},
};
enum { NPROBES = sizeof probes / sizeof *probes };

static const char *probe_decls =
    "declare <16 x i32> @llvm.ctlz.v16i32(<16 x i32>, i1)\n"
    "declare <4 x i64> @llvm.abs.v4i64(<4 x i64>, i1)\n"
    "declare <4 x i32> @llvm.abs.v4i32(<4 x i32>, i1)\n"
    "declare <4 x float> @llvm.fma.v4f32(<4 x float>, <4 x float>, <4 x float>)\n"
    "declare <4 x float> @llvm.floor.v4f32(<4 x float>)\n"
    "declare i64 @llvm.ctpop.i64(i64)\n"
    "declare i64 @llvm.ctlz.i64(i64, i1)\n"
    "declare i64 @llvm.bswap.i64(i64)\n"
    "attributes #0 = { nounwind \"min-legal-vector-width\"=\"512\" \"prefer-vector-width\"=\"512\" }\n";

/* The features the target machine may use, of those netrt knows (x86; 0 elsewhere). */
static uint64_t probe_features(LLVMTargetMachineRef tm, const char *triple) {
    size_t cap = 16384, len = 0;
    char *src = xmalloc(cap);
    len += (size_t)snprintf(src + len, cap - len, "target triple = \"%s\"\n%s", triple, probe_decls);
    for (int i = 0; i < NPROBES; i++)
        len += (size_t)snprintf(src + len, cap - len, "define %s @netc_probe_%d(%s %%a, %s %%b) #0 {\n %s\n}\n",
                                probes[i].type, i, probes[i].type, probes[i].type, probes[i].ir);
    NETC_ASSERT(len < cap);
    LLVMContextRef c = LLVMContextCreate();
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(src, len, "probe.ll");
    free(src);
    LLVMModuleRef m = NULL;
    char *err = NULL;
    uint64_t have = 0;
    if (LLVMParseIRInContext(c, buf, &m, &err)) { /* takes the buffer */
        NETC_ASSERT(!"the feature probe does not parse");
    }
    LLVMMemoryBufferRef out = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &err, &out)) {
        const char *asm_text = LLVMGetBufferStart(out);
        for (int i = 0; i < NPROBES; i++) {
            char label[64], next[64];
            snprintf(label, sizeof label, "netc_probe_%d:", i);
            snprintf(next, sizeof next, ".Lfunc_end%d:", i);
            const char *s = strstr(asm_text, label), *e = s ? strstr(s, next) : NULL;
            if (!s || !e) continue;
            for (int k = 0; k < 2 && probes[i].evidence[k]; k++) {
                const char *hit = strstr(s, probes[i].evidence[k]);
                if (hit && hit < e) have |= 1ull << netrt_cpu_feature_bit(probes[i].feature);
            }
        }
        LLVMDisposeMemoryBuffer(out);
    } else {
        LLVMDisposeMessage(err);
    }
    LLVMDisposeModule(m);
    LLVMContextDispose(c);
    /* implied by what was found: x86-64 always has SSE2; SSSE3 needs SSE3 */
    have |= 1ull << netrt_cpu_feature_bit("sse2");
    if (have >> netrt_cpu_feature_bit("ssse3") & 1) have |= 1ull << netrt_cpu_feature_bit("sse3");
    return have;
}

/* ---- the target machine --------------------------------------------------------------------- */

/* The facts of one variant, from what its target machine may use. */
static void variant_facts(CgVariant *v, LLVMTargetMachineRef tm, const char *triple) {
    bool is_x86 = !strncmp(triple, "x86_64", 6);
    v->features = is_x86 ? probe_features(tm, triple) : 0;
    netrt_cpu_features_str(v->features, v->features_str, sizeof v->features_str);
#define HAS(name) (v->features >> netrt_cpu_feature_bit(name) & 1)
    if (is_x86) {
        v->avx512 = HAS("avx512f");
        v->avx2 = HAS("avx2") && HAS("fma");
        v->vw = v->avx512 ? 16 : HAS("avx") ? 8 : 4;
        v->vregs = v->avx512 ? 32 : 16;
        v->fma = HAS("fma");
    } else {
        v->avx512 = v->avx2 = false;
        v->vw = 4;
        v->vregs = 32; /* aarch64: 32 NEON registers */
        v->fma = true; /* NEON's fmla */
    }
#undef HAS
}

void cg_use_variant(Cg *cg, int k) {
    const CgVariant *v = &cg->var[k];
    cg->cur = k;
    cg->vw = v->vw, cg->vregs = v->vregs, cg->fma = v->fma, cg->avx512 = v->avx512, cg->avx2 = v->avx2;
    cg->features = v->features;
    snprintf(cg->features_str, sizeof cg->features_str, "%s", v->features_str);
    snprintf(cg->cpu_name, sizeof cg->cpu_name, "%s", v->cpu);
    if (cg->t_f32) { /* the module's types exist: the vector types follow the width */
        cg->t_vf = LLVMVectorType(cg->t_f32, (unsigned)cg->vw);
        cg->t_vi1 = LLVMVectorType(cg->t_i1, (unsigned)cg->vw);
    }
}

/* --cpu=fat[:LIST]: the CPUs of a fat artifact ("v3" is short for x86-64-v3); NULL when the
 * option is not a fat one. */
static int fat_cpus(const char *cpu, char names[][64], int max) {
    if (strncmp(cpu, "fat", 3) || (cpu[3] && cpu[3] != ':')) return -1;
    const char *list = cpu[3] ? cpu + 4 : "v2,v3,v4";
    int n = 0;
    for (const char *p = list; *p && n < max;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            bool level = len == 2 && p[0] == 'v' && p[1] >= '2' && p[1] <= '4';
            snprintf(names[n++], 64, "%s%.*s", level ? "x86-64-" : "", (int)len, p);
        }
        p += len + (e ? 1 : 0);
    }
    return n;
}

/* One variant: its target machine (kept in *tm), its LLVM CPU and feature string, its facts. */
static bool init_variant(Cg *cg, LLVMTargetRef target, bool native_triple, const char *asked, const char *mattr,
                         LLVMCodeGenOptLevel lvl, CgVariant *v, LLVMTargetMachineRef *tm, Diags *d) {
    const char *cpu = asked;
    char *host_cpu = NULL, *host_features = NULL;
    char features[4096] = "";
    if (!strcmp(cpu, "native")) {
        if (native_triple) {
            host_cpu = LLVMGetHostCPUName();
            host_features = LLVMGetHostCPUFeatures();
            cpu = host_cpu;
            snprintf(features, sizeof features, "%s", host_features);
        } else {
            cpu = "generic";
        }
    }
    if (mattr && *mattr) {
        /* "+avx2,-fma" or "avx2,fma" (a name without a sign adds it) */
        for (const char *p = mattr; *p;) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p), used = strlen(features);
            if (n)
                snprintf(features + used, sizeof features - used, "%s%s%.*s", used ? "," : "",
                         *p == '+' || *p == '-' ? "" : "+", (int)n, p);
            p += n + (e ? 1 : 0);
        }
    }
    bool ok = true;
    if ((!host_cpu || (mattr && *mattr)) && !target_known(target, cg->triple, cpu, features)) {
        if (mattr && *mattr && target_known(target, cg->triple, cpu, ""))
            diag_error(d, (SrcLoc){0}, "--mattr=%s: a feature LLVM does not know for %s (llc-19 -mtriple=%s -mattr=help "
                       "lists them)", mattr, cg->triple, cg->triple);
        else
            diag_error(d, (SrcLoc){0}, "--cpu=%s: not a CPU LLVM knows for %s (llc-19 -mtriple=%s -mcpu=help lists them)",
                       cpu, cg->triple, cg->triple);
        ok = false;
    }
    if (ok) {
        *tm = LLVMCreateTargetMachine(target, cg->triple, cpu, features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
        if (!*tm) {
            diag_error(d, (SrcLoc){0}, "LLVM cannot create a target machine for %s, cpu %s", cg->triple, cpu);
            ok = false;
        }
    }
    if (ok) {
        snprintf(v->cpu, sizeof v->cpu, "%.63s", strcmp(asked, "native") ? asked : cpu);
        snprintf(v->llvm_cpu, sizeof v->llvm_cpu, "%.63s", cpu);
        v->llvm_features = xstrdup(features);
        variant_facts(v, *tm, cg->triple);
    }
    if (host_cpu) LLVMDisposeMessage(host_cpu);
    if (host_features) LLVMDisposeMessage(host_features);
    return ok;
}

static int by_features_desc(const void *a, const void *b) {
    const CgVariant *x = a, *y = b;
    int nx = __builtin_popcountll(x->features), ny = __builtin_popcountll(y->features);
    return nx != ny ? ny - nx : strcmp(x->cpu, y->cpu);
}

bool cg_target_init(Cg *cg, const CodegenOptions *o, Diags *d) {
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers();
    static bool llvm_args_done;
    const char *la = getenv("NETC_LLVM_ARGS"); /* for experiments: LLVM's own options ("-time-passes") */
    if (la && *la && !llvm_args_done) {
        static char buf[1024];
        static const char *argv[32] = {"netc"};
        int argc = 1;
        snprintf(buf, sizeof buf, "%s", la);
        for (char *tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " ")) argv[argc++] = tok;
        LLVMParseCommandLineOptions(argc, argv, "netc");
        llvm_args_done = true;
    }
    char *host = LLVMGetDefaultTargetTriple();
    bool native_triple = !o->triple || !strcmp(o->triple, host);
    cg->triple = native_triple ? host : LLVMNormalizeTargetTriple(o->triple);
    if (!native_triple) LLVMDisposeMessage(host);
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(cg->triple, &target, &err)) {
        diag_error(d, (SrcLoc){0}, "--target=%s: %s", o->triple ? o->triple : cg->triple, err);
        LLVMDisposeMessage(err);
        return false;
    }
    bool is_x86 = !strncmp(cg->triple, "x86_64", 6);
    cg->cross = !native_triple;
    cg->x86 = is_x86 && strstr(cg->triple, "linux") != NULL;
    LLVMCodeGenOptLevel lvl = o->opt_level == 0 ? LLVMCodeGenLevelNone : LLVMCodeGenLevelAggressive;
    const char *cpu = o->cpu ? o->cpu : "native";
    char names[CG_MAX_VARIANTS][64];
    int n = fat_cpus(cpu, names, CG_MAX_VARIANTS);
    cg->fat = n >= 0;
    if (cg->fat && !is_x86) {
        diag_error(d, (SrcLoc){0}, "--cpu=%s: fat artifacts hold x86-64 variants; %s has one CPU (--cpu=NAME)", cpu,
                   cg->triple);
        return false;
    }
    if (cg->fat && n == 0) {
        diag_error(d, (SrcLoc){0}, "--cpu=%s: no CPU in the list (--cpu=fat:v3,v4)", cpu);
        return false;
    }
    if (!cg->fat) snprintf(names[0], sizeof names[0], "%s", cpu), n = 1;
    cg->nvar = 0;
    for (int k = 0; k < n; k++) {
        for (int j = 0; j < k; j++)
            if (!strcmp(names[j], names[k])) {
                diag_error(d, (SrcLoc){0}, "--cpu=%s: '%s' is listed twice", cpu, names[k]);
                return false;
            }
        LLVMTargetMachineRef tm = NULL;
        if (!init_variant(cg, target, native_triple, names[k], o->mattr, lvl, &cg->var[k], &tm, d)) return false;
        cg->nvar++;
        LLVMDisposeTargetMachine(tm);
    }
    /* best first: the loader runs the first variant the CPU has every feature of */
    qsort(cg->var, (size_t)cg->nvar, sizeof *cg->var, by_features_desc);
    for (int k = 1; k < cg->nvar; k++)
        if (cg->var[k].features == cg->var[k - 1].features) {
            diag_error(d, (SrcLoc){0}, "--cpu=%s: '%s' and '%s' need the same features (%s): one of them is enough", cpu,
                       cg->var[k - 1].cpu, cg->var[k].cpu, cg->var[k].features_str);
            return false;
        }
    /* the module's target machine is the least demanding variant's; every function carries its
       own variant's CPU and features, which LLVM honours per function */
    const CgVariant *base = &cg->var[cg->nvar - 1];
    cg->tm = LLVMCreateTargetMachine(target, cg->triple, base->llvm_cpu, base->llvm_features, lvl, LLVMRelocPIC,
                                     LLVMCodeModelDefault);
    if (!cg->tm) {
        diag_error(d, (SrcLoc){0}, "LLVM cannot create a target machine for %s, cpu %s", cg->triple, base->llvm_cpu);
        return false;
    }
    cg_use_variant(cg, cg->nvar - 1);
    return true;
}

LLVMTargetMachineRef cg_target_machine(const Cg *cg, int k) {
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(cg->triple, &target, &err)) { /* it worked in cg_target_init */
        LLVMDisposeMessage(err);
        return NULL;
    }
    LLVMCodeGenOptLevel lvl = cg->opt_level == 0 ? LLVMCodeGenLevelNone : LLVMCodeGenLevelAggressive;
    return LLVMCreateTargetMachine(target, cg->triple, cg->var[k].llvm_cpu, cg->var[k].llvm_features, lvl, LLVMRelocPIC,
                                   LLVMCodeModelDefault);
}

void cg_target_free(Cg *cg) {
    for (int k = 0; k < cg->nvar; k++) free(cg->var[k].llvm_features);
    cg->nvar = 0;
    if (cg->tm) LLVMDisposeTargetMachine(cg->tm);
    cg->tm = NULL;
    if (cg->triple) LLVMDisposeMessage(cg->triple);
    cg->triple = NULL;
}

const char *cg_arch(const Cg *cg) { return !strncmp(cg->triple, "x86_64", 6) ? "x86_64" : !strncmp(cg->triple, "aarch64", 7) ? "aarch64" : "unknown"; }

bool codegen_target_summary(const CodegenOptions *o, char *buf, size_t len, Diags *d) {
    Cg cg;
    memset(&cg, 0, sizeof cg);
    bool ok = cg_target_init(&cg, o, d);
    size_t used = 0;
    if (len) buf[0] = 0;
    for (int k = 0; ok && k < cg.nvar && used < len; k++) {
        const CgVariant *v = &cg.var[k];
        used += (size_t)snprintf(buf + used, len - used, "%starget %s --cpu=%s: %d-float vectors, %d vector registers, %s; needs %s",
                                 k ? "\n" : "", cg.triple, v->cpu, v->vw, v->vregs, v->fma ? "FMA" : "no FMA (multiply, then add)",
                                 v->features_str[0] ? v->features_str : "nothing beyond the architecture");
    }
    cg_target_free(&cg);
    return ok;
}

/* ---- per-function targets and the CPU check -------------------------------------------------- */

void cg_set_target_attrs(Cg *cg, LLVMValueRef fn) {
    const CgVariant *v = &cg->var[cg->cur];
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(cg->ctx, "target-cpu", 10, v->llvm_cpu, (unsigned)strlen(v->llvm_cpu)));
    if (v->llvm_features[0])
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(cg->ctx, "target-features", 15, v->llvm_features,
                                                          (unsigned)strlen(v->llvm_features)));
}

/* {eax, ebx, ecx, edx} of cpuid(leaf, sub) */
static LLVMValueRef cpuid(Cg *cg, LLVMValueRef leaf, LLVMValueRef sub) {
    LLVMTypeRef i32 = cg->t_i32, r4[4] = {i32, i32, i32, i32};
    LLVMTypeRef ft = LLVMFunctionType(LLVMStructTypeInContext(cg->ctx, r4, 4, 0), (LLVMTypeRef[]){i32, i32}, 2, 0);
    static const char cons[] = "={ax},={bx},={cx},={dx},{ax},{cx}";
    LLVMValueRef a = LLVMGetInlineAsm(ft, "cpuid", 5, cons, sizeof cons - 1, 1, 0, LLVMInlineAsmDialectATT, 0);
    return LLVMBuildCall2(cg->b, ft, a, (LLVMValueRef[]){leaf, sub}, 2, "cpuid");
}

/* The index of the first variant whose features this CPU has (and whose registers the OS
 * saves), or nvar when there is none, decided by cpuid and xgetbv on the first call and cached.
 * The bits come from netrt's one feature table (netrt_cpu_feature_cpuid). */
static LLVMValueRef select_fn(Cg *cg, const CgVariant *vars, int nvar) {
    LLVMTypeRef i32 = cg->t_i32;
    LLVMTypeRef ft = LLVMFunctionType(i32, NULL, 0, 0);
    LLVMValueRef fn = LLVMAddFunction(cg->mod, "netc_select_variant", ft);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMValueRef cache = LLVMAddGlobal(cg->mod, i32, "netc_variant");
    LLVMSetInitializer(cache, LLVMConstInt(i32, (unsigned long long)-1, 1));
    LLVMSetLinkage(cache, LLVMInternalLinkage);
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(cg->b);
    LLVMBuilderRef b = cg->b;
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef c = LLVMBuildLoad2(b, i32, cache, "cached");
    LLVMSetOrdering(c, LLVMAtomicOrderingMonotonic);
    LLVMSetAlignment(c, 4);
    LLVMBasicBlockRef hit = LLVMAppendBasicBlockInContext(cg->ctx, fn, "hit");
    LLVMBasicBlockRef miss = LLVMAppendBasicBlockInContext(cg->ctx, fn, "miss");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGE, c, LLVMConstInt(i32, 0, 0), ""), hit, miss);
    LLVMPositionBuilderAtEnd(b, hit);
    LLVMBuildRet(b, c);
    LLVMPositionBuilderAtEnd(b, miss);
    LLVMValueRef choice = LLVMConstInt(i32, (unsigned long long)nvar, 0);
    if (!strncmp(cg->triple, "x86_64", 6)) {
        LLVMValueRef zero = LLVMConstInt(i32, 0, 0);
        LLVMValueRef max = LLVMBuildExtractValue(b, cpuid(cg, zero, zero), 0, "max");
        LLVMValueRef maxext = LLVMBuildExtractValue(b, cpuid(cg, LLVMConstInt(i32, 0x80000000u, 0), zero), 0, "maxext");
        LLVMValueRef l1 = cpuid(cg, LLVMConstInt(i32, 1, 0), zero);
        /* xgetbv only when the OS says it has XSAVE enabled (OSXSAVE, leaf 1 ecx bit 27) */
        LLVMValueRef osx = LLVMBuildAnd(b, LLVMBuildExtractValue(b, l1, 2, ""), LLVMConstInt(i32, 1u << 27, 0), "");
        LLVMBasicBlockRef xg = LLVMAppendBasicBlockInContext(cg->ctx, fn, "xgetbv");
        LLVMBasicBlockRef decide = LLVMAppendBasicBlockInContext(cg->ctx, fn, "decide");
        LLVMBasicBlockRef from = LLVMGetInsertBlock(b);
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, osx, zero, ""), xg, decide);
        LLVMPositionBuilderAtEnd(b, xg);
        LLVMTypeRef r2[2] = {i32, i32};
        LLVMTypeRef xt = LLVMFunctionType(LLVMStructTypeInContext(cg->ctx, r2, 2, 0), (LLVMTypeRef[]){i32}, 1, 0);
        static const char xc[] = "={ax},={dx},{cx}";
        LLVMValueRef xa = LLVMGetInlineAsm(xt, "xgetbv", 6, xc, sizeof xc - 1, 1, 0, LLVMInlineAsmDialectATT, 0);
        LLVMValueRef xcr0v = LLVMBuildExtractValue(b, LLVMBuildCall2(b, xt, xa, (LLVMValueRef[]){zero}, 1, ""), 0, "xcr0");
        LLVMBuildBr(b, decide);
        LLVMPositionBuilderAtEnd(b, decide);
        LLVMValueRef xcr0 = LLVMBuildPhi(b, i32, "xcr0");
        LLVMAddIncoming(xcr0, (LLVMValueRef[]){zero, xcr0v}, (LLVMBasicBlockRef[]){from, xg}, 2);
        /* one cpuid per distinct (leaf, sub) the variants ask about */
        unsigned leaves[16][2];
        LLVMValueRef regs[16];
        int nleaves = 0;
        for (int k = nvar - 1; k >= 0; k--) { /* worst first: the best supported one wins */
            LLVMValueRef ok = LLVMConstInt(cg->t_i1, 1, 0);
            for (int bit = 0; bit < 64; bit++) {
                unsigned leaf, sub, need_xcr0;
                int reg, rb;
                if (!(vars[k].features >> bit & 1) || !netrt_cpu_feature_cpuid(bit, &leaf, &sub, &reg, &rb, &need_xcr0))
                    continue;
                int li = 0;
                while (li < nleaves && (leaves[li][0] != leaf || leaves[li][1] != sub)) li++;
                if (li == nleaves) {
                    NETC_ASSERT(nleaves < 16);
                    leaves[li][0] = leaf, leaves[li][1] = sub;
                    /* a leaf past the CPU's maximum reads as zeros */
                    LLVMValueRef lim = leaf >= 0x80000000u ? maxext : max;
                    LLVMValueRef have = LLVMBuildICmp(b, LLVMIntUGE, lim, LLVMConstInt(i32, leaf, 0), "");
                    LLVMValueRef r = cpuid(cg, LLVMConstInt(i32, leaf, 0), LLVMConstInt(i32, sub, 0));
                    regs[nleaves++] = LLVMBuildSelect(b, have, r, LLVMConstNull(LLVMTypeOf(r)), "leaf");
                }
                LLVMValueRef v = LLVMBuildExtractValue(b, regs[li], (unsigned)reg, "");
                LLVMValueRef set = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, v, LLVMConstInt(i32, 1u << rb, 0), ""), zero, "");
                ok = LLVMBuildAnd(b, ok, set, "");
                if (need_xcr0) {
                    LLVMValueRef m = LLVMConstInt(i32, need_xcr0, 0);
                    ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, xcr0, m, ""), m, ""), "");
                }
            }
            choice = LLVMBuildSelect(b, ok, LLVMConstInt(i32, (unsigned long long)k, 0), choice, "choice");
        }
    } else {
        choice = LLVMConstInt(i32, 0, 0); /* one variant, nothing to check beyond the architecture */
    }
    LLVMValueRef st = LLVMBuildStore(b, choice, cache);
    LLVMSetOrdering(st, LLVMAtomicOrderingMonotonic);
    LLVMSetAlignment(st, 4);
    LLVMBuildRet(b, choice);
    LLVMPositionBuilderAtEnd(b, saved);
    return fn;
}

LLVMValueRef cg_cpu_variant(Cg *cg, const CgVariant *vars, int nvar) {
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, "netc_select_variant");
    if (!fn) fn = select_fn(cg, vars, nvar);
    return LLVMBuildCall2(cg->b, LLVMFunctionType(cg->t_i32, NULL, 0, 0), fn, NULL, 0, "variant");
}

/* cg_target.c — the target machine and what it can do. The triple, the CPU (native, generic, an
 * x86-64 level, any LLVM CPU name) and --mattr become an LLVM target machine; the facts code
 * generation specialises on (vector width, vector registers, FMA) and the CPU features the
 * artifact records for the loader come from that target machine itself, never from a table of
 * CPU names: LLVM compiles a few probe functions, one per feature, and the instructions it picks
 * say what it may use (a <16 x float> add in zmm registers means AVX-512F, and so on). */
#include <errno.h>
#include <llvm-c/IRReader.h>
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

bool cg_target_init(Cg *cg, const CodegenOptions *o, Diags *d) {
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInitializeAllAsmParsers();
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
    const char *cpu = o->cpu ? o->cpu : "native";
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
    if (o->mattr && *o->mattr) {
        /* "+avx2,-fma" or "avx2,fma" (a name without a sign adds it) */
        for (const char *p = o->mattr; *p;) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p), used = strlen(features);
            if (n)
                snprintf(features + used, sizeof features - used, "%s%s%.*s", used ? "," : "",
                         *p == '+' || *p == '-' ? "" : "+", (int)n, p);
            p += n + (e ? 1 : 0);
        }
    }
    if ((!host_cpu || (o->mattr && *o->mattr)) && !target_known(target, cg->triple, cpu, features)) {
        if (o->mattr && *o->mattr && target_known(target, cg->triple, cpu, ""))
            diag_error(d, (SrcLoc){0}, "--mattr=%s: a feature LLVM does not know for %s (llc-19 -mtriple=%s -mattr=help "
                       "lists them)", o->mattr, cg->triple, cg->triple);
        else
            diag_error(d, (SrcLoc){0}, "--cpu=%s: not a CPU LLVM knows for %s (llc-19 -mtriple=%s -mcpu=help lists them)",
                       cpu, cg->triple, cg->triple);
        if (host_cpu) LLVMDisposeMessage(host_cpu);
        if (host_features) LLVMDisposeMessage(host_features);
        return false;
    }
    bool is_x86 = !strncmp(cg->triple, "x86_64", 6);
    cg->cross = !native_triple;
    cg->x86 = is_x86 && strstr(cg->triple, "linux") != NULL;
    LLVMCodeGenOptLevel lvl = o->opt_level == 0 ? LLVMCodeGenLevelNone : LLVMCodeGenLevelAggressive;
    cg->tm = LLVMCreateTargetMachine(target, cg->triple, cpu, features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
    snprintf(cg->cpu_name, sizeof cg->cpu_name, "%s", o->cpu && strcmp(o->cpu, "native") ? o->cpu : cpu);
    if (host_cpu) LLVMDisposeMessage(host_cpu);
    if (host_features) LLVMDisposeMessage(host_features);
    if (!cg->tm) {
        diag_error(d, (SrcLoc){0}, "LLVM cannot create a target machine for %s, cpu %s", cg->triple, cpu);
        return false;
    }
    cg->features = is_x86 ? probe_features(cg->tm, cg->triple) : 0;
    netrt_cpu_features_str(cg->features, cg->features_str, sizeof cg->features_str);
#define HAS(name) (cg->features >> netrt_cpu_feature_bit(name) & 1)
    if (is_x86) {
        cg->avx512 = HAS("avx512f");
        cg->avx2 = HAS("avx2") && HAS("fma");
        cg->vw = cg->avx512 ? 16 : HAS("avx") ? 8 : 4;
        cg->vregs = cg->avx512 ? 32 : 16;
        cg->fma = HAS("fma");
    } else {
        cg->avx512 = cg->avx2 = false;
        cg->vw = 4;
        cg->vregs = 32; /* aarch64: 32 NEON registers */
        cg->fma = true; /* NEON's fmla */
    }
#undef HAS
    return true;
}

const char *cg_arch(const Cg *cg) { return !strncmp(cg->triple, "x86_64", 6) ? "x86_64" : !strncmp(cg->triple, "aarch64", 7) ? "aarch64" : "unknown"; }

bool codegen_target_summary(const CodegenOptions *o, char *buf, size_t len, Diags *d) {
    Cg cg;
    memset(&cg, 0, sizeof cg);
    if (!cg_target_init(&cg, o, d)) return false;
    snprintf(buf, len, "target %s --cpu=%s: %d-float vectors, %d vector registers, %s; needs %s", cg.triple,
             cg.cpu_name, cg.vw, cg.vregs, cg.fma ? "FMA" : "no FMA (multiply, then add)",
             cg.features_str[0] ? cg.features_str : "nothing beyond the architecture");
    LLVMDisposeTargetMachine(cg.tm);
    LLVMDisposeMessage(cg.triple);
    return true;
}

/* cg_emit.c — the driver of code generation: plan, target, segments, then the parts (LLVM
 * modules) built, optimised and emitted concurrently, each in its own context and thread, then
 * the weights object and one link. Also the LLVM pipeline of each -O level and --stats. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cg.h"
#include "codegen.h"
#include "timing.h"

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
    cg_init_types(&cg);

    bool ok = true;
    for (int i = p->seg_first; ok && i < p->seg_end; i++) ok = cg_build_segment(&cg, &job->segs[i]);
    if (ok && p->main) ok = cg_build_main(&cg, job->o->emit, job->segs, job->nsegs);
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
        char *stem = cg_stem_of(o->out);
        snprintf(obj, sizeof obj, "%s.o", stem);
        free(stem);
        path = obj;
    }
    if (stat(path, &st) == 0)
        fprintf(f, "codegen: %s %.2f MiB, of which weights %.2f MiB (%.2f MiB before identical blobs were merged)\n", path,
                (double)st.st_size / mib, (double)stored / mib, (double)total / mib);
}

bool codegen_emit(const Graph *g, const CodegenOptions *o, Diags *d) {
    Cg cg = {.g = g, .d = d, .opt_level = o->opt_level, .llvm_passes = o->llvm_passes};
    double t_phase = times_now();
    cg.times = o->times;
    plan_graph(g, &cg.plan);
    times_add(o->times, "plan", "memory plan", times_now() - t_phase);
    bool ok = false;
    char *stem = cg_stem_of(o->out);
    if (o->emit == EMIT_HEADER) {
        size_t n = strlen(stem) + 3;
        char *h = xmalloc(n);
        snprintf(h, n, "%s.h", stem);
        ok = cg_write_header(g, cg.plan.workspace_bytes, h, d);
        free(h);
        goto out_plan;
    }
    t_phase = times_now();
    if (!cg_target_init(&cg, o, d)) goto out_plan;
    times_add(o->times, "llvm", "target set-up", times_now() - t_phase);
    (void)op_info(OP_CONV2D); /* the op table is filled before any thread reads it */
    cg_init_views(&cg);

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
    Segment *segs = cg_make_segments(&cg, &nsegs);
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
    char *text_tmp = text ? cg_tmp_path_for(o->out) : NULL;
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
        ok = ok && cg_commit_file(text_tmp, o->out, d);
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
        for (int i = 0; ok && i < nparts; i++) ok = cg_write_buffer(parts[i].obj, files[i], d);
        const char *cc = getenv("NETC_CC");
        if (!cc || !*cc) cc = cg.cross && !strncmp(cg.triple, "aarch64", 7) ? "aarch64-linux-gnu-gcc" : "cc";
        ok = ok && cg_run_linker(cc, cg.cross, o->emit == EMIT_OBJ, files, nparts + 1, files[nparts + 1], o->out, cg.x86, d);
        times_add(o->times, "link", o->emit == EMIT_OBJ ? "cc -r (one .o)" : "cc -shared", times_now() - t_phase);
        if (ok && o->emit == EMIT_OBJ) {
            size_t m = strlen(stem) + 3;
            char *obj = xmalloc(m), *hdr = xmalloc(m);
            snprintf(obj, m, "%s.o", stem);
            snprintf(hdr, m, "%s.h", stem);
            ok = cg_write_header(g, cg.plan.workspace_bytes, hdr, d) && cg_commit_file(files[nparts + 1], obj, d);
            free(obj), free(hdr);
        } else if (ok) {
            ok = cg_commit_file(files[nparts + 1], o->out, d);
        }
        if (dir[0]) cg_remove_tmpdir(dir, files, nfiles);
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

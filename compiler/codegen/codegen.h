/* codegen.h — the public entry of code generation: a verified, weight-bound graph in, an
 * artifact out (.so, .o + .h, .h, .ll, .s), written atomically (temporary file + rename). */
#ifndef NETC_CODEGEN_H
#define NETC_CODEGEN_H

#include <stdbool.h>
#include <stdio.h>

#include "diag.h"
#include "ir/ir.h"

typedef enum { EMIT_SO, EMIT_OBJ, EMIT_HEADER, EMIT_LL, EMIT_ASM } EmitKind;

typedef struct CodegenOptions {
    EmitKind emit;
    const char *out;    /* the output path (for obj/header: OUT.o and OUT.h from OUT minus .o/.h) */
    const char *triple; /* NULL: the host */
    const char *cpu;    /* NULL/"native": the host CPU; "generic"; an x86-64 level; any LLVM CPU name */
    const char *mattr;  /* NULL, or LLVM features to add or remove: "+avx2,+fma", "-avx512f" */
    int opt_level;      /* 0..3 */
    int jobs;           /* threads for code generation; 0: the CPUs this process may use */
    const char *llvm_passes; /* NULL: the level's LLVM pipeline; else a new-pass-manager pipeline */
    FILE *stats;        /* --stats: what the artifact holds (variants, weights, size); NULL: none */
    struct Times *times; /* --time-passes: planning, IR generation per op, LLVM, linking */
} CodegenOptions;

bool codegen_emit(const Graph *g, const CodegenOptions *o, Diags *d);

/* The LLVM pass pipeline each -O level runs (new pass manager syntax; --llvm-passes replaces it). */
const char *cg_llvm_pipeline(int opt_level);

/* One line on the target o asks for: triple, CPU, vector width and registers, FMA, and the CPU
 * features the code would need (what `netc check` prints). False after an error naming the flag. */
bool codegen_target_summary(const CodegenOptions *o, char *buf, size_t len, Diags *d);

/* The C identifier used for a tensor name in the generated header (keywords and clashes get a
 * suffix), for tests and the deploy example. */
const char *codegen_c_name(const char *name, char *buf, size_t len);

#endif

/* testutil.h — helpers shared by the Criterion suites: paths, compiling a .net string to a
 * graph, comparing buffers with a relative tolerance. */
#ifndef NETC_TESTUTIL_H
#define NETC_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* NETC_SOURCE_DIR "/" rel, in a static rotating buffer */
const char *tu_src(const char *rel);

/* max |a-b| / max(max |b|, 1e-4) over n floats */
double tu_rel_err(const float *a, const float *b, size_t n);

/* mkdtemp under /tmp with the given prefix; the path is written into buf (NULL on failure). */
char *tu_mkdtemp(char *buf, size_t len, const char *prefix);

/* fill with deterministic pseudo-random values in [-1, 1) */
void tu_fill_random(float *x, size_t n, uint64_t seed);

#endif

/* Compile g (weights bound) to a shared object at opt_level, load it with the runtime, run it
 * on seeded random inputs with `threads` threads (0: NULL pool; TU_SERIAL_AND_POOL: once without
 * a pool and once with a 2-thread pool, the one compilation run twice), run the reference
 * interpreter on the same inputs, and return the worst relative error over the outputs and runs
 * (max|d|/max|ref|). Returns -1 (after logging the diagnostics) when compilation, loading or a
 * run fails. */
#define TU_SERIAL_AND_POOL (-1)
double tu_compiled_vs_interp(const Graph *g, int opt_level, int threads, uint64_t seed);

/* The same, but the reference values come from the interpreter on `ref` (e.g. the graph before
 * the passes) while `g` (after them) is compiled. */
double tu_compiled_vs_interp_ref(const Graph *g, const Graph *ref, int opt_level, int threads, uint64_t seed);
/* The interpreter on a and on b, same random inputs: worst relative error of b against a. */
double tu_interp_vs_interp(const Graph *a, const Graph *b, uint64_t seed);

/* Parse and lower .net source with seeded random weights (NULL + logged diagnostics on error). */
Graph *tu_load_text(const char *src, uint64_t seed);
/* The same for a file of the source tree (path relative to it). */
Graph *tu_load_file(const char *rel, uint64_t seed);

/* The live node named `name` (a test failure when there is none). */
const Node *tu_node(const Graph *g, const char *name);

/* ---- running on given inputs, comparing special values (NaN, ±inf, signed zeros) ---------- */

/* Compile g at opt_level for `cpu` (NULL: the host; any LLVM CPU name, e.g. "x86-64-v3"), load
 * it, run it on `in` with `threads` threads (0: NULL pool), the workspace poisoned with NaN and
 * every output pre-filled with a finite sentinel (so an unwritten element shows even where NaN
 * is expected); out[i] holds the numel of output i. False (after logging why) on failure. */
/* The --cpu the codegen tests compile for: NETC_TEST_CPU (ctest runs the codegen suites again at
 * x86-64-v2, -v3 and -v4 through it), or NULL for the host. */
const char *tu_cpu(void);
/* The lowest -O level a codegen suite compiles at: `lo`, except in the copies at other x86-64
 * levels (NETC_TEST_CPU set), which compile at -O2 only. Our kernel generators emit the same IR
 * at every level; the native run covers -O0's instruction selection, the copies the ISA. */
int tu_min_opt(int lo);
bool tu_run_compiled(const Graph *g, int opt_level, const char *cpu, int threads, const float *const *in,
                     float *const *out);
/* The reference interpreter on g; false (after logging the diagnostics) on failure. */
bool tu_run_interp(const Graph *g, const float *const *in, float *const *out);
/* Elementwise: got must be NaN exactly where want is NaN and equal to every infinity of want;
 * other values must be bitwise equal (tol == 0: +0 and -0 differ) or within
 * tol * max(|want|, 1). Logs the first few mismatches with `what`, and the input value at that
 * index when `in` (of the same size as the output) is given. Returns the number of mismatches. */
size_t tu_cmp_special(const float *got, const float *want, const float *in, size_t n, double tol, const char *what);

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
 * on seeded random inputs with `threads` threads (0: NULL pool), run the reference interpreter
 * on the same inputs, and return the worst relative error over the outputs (max|d|/max|ref|).
 * Returns -1 (after logging the diagnostics) when compilation or loading fails. */
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

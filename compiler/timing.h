/* timing.h — --time-passes: wall time per phase (parse, lower, each pass, planning, IR generation
 * per kernel family, LLVM's pipeline, object emission, linking), printed as one table. */
#ifndef NETC_TIMING_H
#define NETC_TIMING_H

#include <stdio.h>

#define TIMES_MAX 96
typedef struct Times {
    int n;
    const char *name[TIMES_MAX]; /* static strings or op names: never freed */
    const char *group[TIMES_MAX];
    double ms[TIMES_MAX];
    unsigned char cpu[TIMES_MAX]; /* summed over the threads of a parallel phase, not wall time */
    char own[4][64];              /* strings times_intern copied */
    int nown;
} Times;

/* Milliseconds of a monotonic clock. */
double times_now(void);
/* Add ms to the phase (group, name); times may be NULL (not timing). Same phases accumulate. */
void times_add(Times *t, const char *group, const char *name, double ms);
/* The same for time spent inside a parallel phase, summed over its threads: printed indented
 * under it, as a share of all threads' time, and not counted in the wall-time total. */
void times_add_cpu(Times *t, const char *group, const char *name, double ms);
/* A copy of s that lives as long as t (for names built at run time); s itself when t is NULL. */
const char *times_intern(Times *t, const char *s);
/* The table: each phase, its share of `wall_ms`, and what the phases do not cover. */
void times_print(const Times *t, double wall_ms, FILE *out);

#endif

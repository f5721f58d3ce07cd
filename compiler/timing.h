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
} Times;

/* Milliseconds of a monotonic clock. */
double times_now(void);
/* Add ms to the phase (group, name); times may be NULL (not timing). Same phases accumulate. */
void times_add(Times *t, const char *group, const char *name, double ms);
/* The table: each phase, its share of `wall_ms`, and what the phases do not cover. */
void times_print(const Times *t, double wall_ms, FILE *out);

#endif

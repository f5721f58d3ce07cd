/* timing.c — the phase table of --time-passes. */
#include "timing.h"

#include <string.h>
#include <time.h>

double times_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void times_add(Times *t, const char *group, const char *name, double ms) {
    if (!t) return;
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->group[i], group) && !strcmp(t->name[i], name)) {
            t->ms[i] += ms;
            return;
        }
    if (t->n == TIMES_MAX) return;
    t->group[t->n] = group, t->name[t->n] = name, t->ms[t->n++] = ms;
}

void times_print(const Times *t, double wall_ms, FILE *out) {
    double sum = 0;
    fprintf(out, "time: %-10s %-24s %10s %7s\n", "phase", "", "ms", "share");
    for (int i = 0; i < t->n; i++) {
        sum += t->ms[i];
        fprintf(out, "time: %-10s %-24s %10.2f %6.1f%%\n", t->group[i], t->name[i], t->ms[i],
                wall_ms > 0 ? 100.0 * t->ms[i] / wall_ms : 0.0);
    }
    double rest = wall_ms - sum;
    fprintf(out, "time: %-10s %-24s %10.2f %6.1f%%\n", "other", "(start-up, writing, freeing)", rest > 0 ? rest : 0,
            wall_ms > 0 && rest > 0 ? 100.0 * rest / wall_ms : 0.0);
    fprintf(out, "time: %-10s %-24s %10.2f %6.1f%%\n", "total", "(wall)", wall_ms, 100.0);
}

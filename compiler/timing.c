/* timing.c — the phase table of --time-passes. */
#include "timing.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

double times_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void add(Times *t, const char *group, const char *name, double ms, bool cpu) {
    if (!t) return;
    for (int i = 0; i < t->n; i++)
        if (t->cpu[i] == cpu && !strcmp(t->group[i], group) && !strcmp(t->name[i], name)) {
            t->ms[i] += ms;
            return;
        }
    if (t->n == TIMES_MAX) return;
    t->group[t->n] = group, t->name[t->n] = name, t->cpu[t->n] = cpu, t->ms[t->n++] = ms;
}

void times_add(Times *t, const char *group, const char *name, double ms) { add(t, group, name, ms, false); }

void times_add_cpu(Times *t, const char *group, const char *name, double ms) { add(t, group, name, ms, true); }

const char *times_intern(Times *t, const char *s) {
    if (!t) return s;
    for (int i = 0; i < t->nown; i++)
        if (!strcmp(t->own[i], s)) return t->own[i];
    if (t->nown == 4) return "(parallel)";
    snprintf(t->own[t->nown], sizeof t->own[0], "%s", s);
    return t->own[t->nown++];
}

void times_print(const Times *t, double wall_ms, FILE *out) {
    double sum = 0;
    fprintf(out, "time: %-10s %-24s %10s %7s\n", "phase", "", "ms", "share");
    for (int i = 0; i < t->n; i++) {
        if (t->cpu[i]) { /* a run of rows inside the parallel phase before it */
            double all = 0;
            int j = i;
            for (; j < t->n && t->cpu[j]; j++) all += t->ms[j];
            for (int k = i; k < j; k++)
                fprintf(out, "time:   %-8s %-24s %10.2f %6.1f%% of %.0f ms on all threads\n", t->group[k], t->name[k],
                        t->ms[k], all > 0 ? 100.0 * t->ms[k] / all : 0.0, all);
            i = j - 1;
            continue;
        }
        sum += t->ms[i];
        fprintf(out, "time: %-10s %-24s %10.2f %6.1f%%\n", t->group[i], t->name[i], t->ms[i],
                wall_ms > 0 ? 100.0 * t->ms[i] / wall_ms : 0.0);
    }
    double rest = wall_ms - sum;
    fprintf(out, "time: %-10s %-24s %10.2f %6.1f%%\n", "other", "(start-up, writing, freeing)", rest > 0 ? rest : 0,
            wall_ms > 0 && rest > 0 ? 100.0 * rest / wall_ms : 0.0);
    fprintf(out, "time: %-10s %-24s %10.2f %6.1f%%\n", "total", "(wall)", wall_ms, 100.0);
}

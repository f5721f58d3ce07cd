/* peak.c — the machine's measured FP32 peak: independent FMA chains on the widest vectors the
 * compiler targets (-march=native), one chain set per thread. Used by scripts/bench for the
 * "% of peak" column. Usage: peak THREADS -> prints GFLOP/s. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64)));
enum { CHAINS = 16, ITERS = 20000000 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *work(void *arg) {
    v16 acc[CHAINS], a, b;
    for (int i = 0; i < 16; i++) a[i] = 1.0f + 1e-7f * (float)i, b[i] = 1e-8f;
    for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
    for (long it = 0; it < ITERS; it++)
        for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b; /* contracted to one FMA */
    float s = 0;
    for (int c = 0; c < CHAINS; c++) s += acc[c][0];
    *(float *)arg = s;
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > 64) n = 1;
    pthread_t th[64];
    float sink[64];
    double t0 = now();
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, work, &sink[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    double s = now() - t0;
    printf("%.1f\n", 2.0 * 16 * CHAINS * (double)ITERS * n / s / 1e9 + 0 * sink[0]);
    return 0;
}

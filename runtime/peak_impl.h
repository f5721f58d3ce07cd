/* peak_impl.h — the FP32 peak measurement shared by the runtime (runtime/peak.c, which picks a
 * kernel from the running CPU's features) and tools/peak.c (which picks it from the compiler's
 * target macros): one kernel generator and one driver, so both report the same thing.
 *
 * The kernel runs CHAINS independent multiply-add chains acc = acc * a + b on vectors of LANES
 * floats. It needs at least (FMA latency × FMA ports) chains to keep every port busy (4 cycles ×
 * 2 ports on Skylake-SP, Sapphire Rapids and Zen 3/4/5: 8, so 10-12 to be safe) and no more than
 * the registers hold with a and b beside them, or it spills and measures the stores instead:
 * 12 on the 16 registers of SSE/AVX2, 24 on AVX-512's 32. Not installed; include it from one .c
 * file only (every function is static). */
#ifndef NETRT_PEAK_IMPL_H
#define NETRT_PEAK_IMPL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define PEAK_REG(v) "+x"(v)
#else
#define PEAK_REG(v) "+w"(v)
#endif

/* PEAK_KERNEL(name, attrs, V, CHAINS, SPLAT, MADD): a function `float name(long iters)` running
 * `iters` rounds of CHAINS multiply-adds on vectors of type V; `attrs` are its function
 * attributes (a target("...") for runtime dispatch, or nothing). The chains are unrolled by
 * pragma so that each accumulator is one register at -O2 as at -O3; the sum of lane 0 of each
 * keeps the work observable. a < 1 and b > 0 keep every value near b / (1 - a): no overflow,
 * no denormals. */
#define PEAK_KERNEL(name, attrs, V, CHAINS, SPLAT, MADD)                                            \
    attrs static float name(long iters) {                                                           \
        V acc[CHAINS];                                                                              \
        V a = SPLAT(0.9999999f), b = SPLAT(1e-7f);                                                  \
        _Pragma("GCC unroll 32") for (int c = 0; c < CHAINS; c++) acc[c] = SPLAT(1.0f + 0.001f * (float)c); \
        for (long it = 0; it < iters; it++) {                                                       \
            __asm__("" : PEAK_REG(a)); /* a stays in a register, not a memory operand per FMA */ \
            _Pragma("GCC unroll 32") for (int c = 0; c < CHAINS; c++) acc[c] = MADD(acc[c], a, b);  \
        }                                                                                           \
        float s = 0;                                                                                \
        _Pragma("GCC unroll 32") for (int c = 0; c < CHAINS; c++) s += acc[c][0];                  \
        return s;                                                                                   \
    }

typedef float (*peak_kernel_fn)(long iters);

typedef struct PeakKernel {
    peak_kernel_fn fn;
    int lanes, chains;
    int fma;          /* 1: one instruction per multiply-add; 0: a multiply and an add */
    const char *isa;  /* "avx512f", "avx2+fma", "sse2" */
} PeakKernel;

static double peak_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct PeakRun {
    const PeakKernel *k;
    long iters;
    int rounds;
    atomic_int *gate;         /* 0 until the barrier below exists */
    pthread_barrier_t *start; /* every thread starts each round together */
    double *secs;             /* [round]: this thread's time */
    volatile float sink;
} PeakRun;

static void *peak_thread(void *arg) {
    PeakRun *r = arg;
    float s = 0;
    while (!atomic_load(r->gate)) sched_yield();
    for (int i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(r->start);
        double t0 = peak_now();
        s += r->k->fn(r->iters);
        r->secs[i] = peak_now() - t0;
    }
    r->sink = s;
    return NULL;
}

/* GFLOP/s of kernel k on `threads` threads (1..64): a warm-up of about `warm` seconds on the
 * calling thread that also calibrates the round length, then `rounds` rounds of about `round`
 * seconds, the threads started together; a round's rate is its flops over the slowest
 * thread's time, and the result is the best round's (other load only ever lowers it). When
 * the system refuses some threads, the figure is for those that started. */
static double peak_measure(const PeakKernel *k, int threads, double warm, int rounds, double round) {
    enum { MAX_THREADS = 64, MAX_ROUNDS = 16 };
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (rounds < 1) rounds = 1;
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    /* warm-up: double the length until one call takes a quarter of the budget (the clock and the
     * vector units are up to speed by then), then run to the end of the budget */
    long iters = 1000;
    double t = 0, spent = 0;
    volatile float sink = 0;
    for (;;) {
        double t0 = peak_now();
        sink += k->fn(iters);
        t = peak_now() - t0;
        spent += t;
        if (t >= warm / 4 || iters > (1L << 40)) break;
        iters *= 2;
    }
    while (spent < warm) {
        double t0 = peak_now();
        sink += k->fn(iters);
        t = peak_now() - t0;
        spent += t;
    }
    (void)sink;
    long per = (long)((double)iters * round / (t > 0 ? t : 1e-9));
    if (per < 1) per = 1;

    /* the threads are started first and wait at a gate, so the barrier counts those that did */
    atomic_int gate = 0;
    pthread_barrier_t start;
    PeakRun run[MAX_THREADS];
    double secs[MAX_THREADS][MAX_ROUNDS];
    pthread_t tid[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        run[i] = (PeakRun){.k = k, .iters = per, .rounds = rounds, .gate = &gate, .start = &start, .secs = secs[i]};
    int started = 1;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, peak_thread, &run[started])) break;
    pthread_barrier_init(&start, NULL, (unsigned)started);
    atomic_store(&gate, 1);
    peak_thread(&run[0]);
    for (int i = 1; i < started; i++) pthread_join(tid[i], NULL);
    double flops = 2.0 * k->lanes * k->chains * (double)per * started, best = 0;
    for (int r = 0; r < rounds; r++) {
        double slowest = 0;
        for (int i = 0; i < started; i++) slowest = secs[i][r] > slowest ? secs[i][r] : slowest;
        if (slowest > 0 && flops / slowest / 1e9 > best) best = flops / slowest / 1e9;
    }
    pthread_barrier_destroy(&start);
    return best;
}

#endif

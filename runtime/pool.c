/* pool.c — the thread pool behind netrt_pool: fixed pthread workers, one contiguous chunk of a
 * parallel loop per thread, spin-then-sleep hand-off so thousands of loops per inference stay cheap. */
#include "netrt.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* More threads than this is a typo, not a machine. */
#define POOL_MAX_THREADS 1024
/* How long a waiting thread spins before it sleeps on a condition variable. Generated code calls
 * parallel_for back to back (one call per kernel), so a worker that finished a chunk usually gets
 * the next one within microseconds; a futex wake-up costs tens of microseconds. Past this bound
 * the thread sleeps, so an idle pool burns no CPU. */
#define POOL_SPIN_NS 50000
/* The least stack a worker gets (netrt.h: what a model's kernels need of the calling thread). */
#define WORKER_STACK ((size_t)4 << 20)

typedef struct Pool {
    netrt_pool base; /* must stay first: generated code calls base.parallel_for */
    int nthreads;    /* including the calling thread */
    pthread_t *threads;      /* [1, nthreads): slot 0 is the calling thread */
    struct WorkerArg *args;
    /* Set while a parallel_for runs: a nested call (from inside a task) or a concurrent call
     * from another thread runs serially instead of waiting for workers that are busy. */
    atomic_flag busy;

    /* the current loop: written by the caller before it bumps gen, read by workers after */
    netrt_task_fn fn;
    void *ctx;
    int64_t n;
    /* Each participant owns an equal share of [0, n) and takes it in chunks through its own
     * cursor; one that runs out takes chunks from the others' cursors (a border row with fewer
     * taps, or a vCPU the hypervisor paused, no longer holds the loop up). Owning the share
     * keeps a thread on the same rows from one kernel to the next. */
    struct Share *share;
    bool dynamic; /* NETRT_SCHEDULE=static: equal shares, no stealing (for comparison) */

    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    /* gen and remaining are hot: each on its own cache line. */
    alignas(64) atomic_uint_fast64_t gen; /* bumped once per loop, and once to stop */
    alignas(64) atomic_int remaining;     /* workers that have not finished the current loop */
    alignas(64) atomic_int sleepers;      /* workers blocked in work_cv */
    atomic_int caller_sleeping;           /* the caller is blocked in done_cv */
    atomic_bool stop;
} Pool;

typedef struct Share {
    alignas(64) atomic_int_fast64_t next; /* the next unclaimed item of this share */
    int64_t end, step;                  /* the share's end; items per claim */
} Share;

typedef struct WorkerArg {
    Pool *pool;
    int index; /* which chunk this worker takes */
} WorkerArg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Chunk k of T over [0, n): the first n % T chunks get one extra iteration. No n*k products,
 * so no overflow for any int64 n. */
static void chunk(int64_t n, int T, int k, int64_t *begin, int64_t *end) {
    int64_t base = n / T, rem = n % T;
    *begin = (int64_t)k * base + (k < rem ? k : rem);
    *end = *begin + base + (k < rem ? 1 : 0);
}

/* Spin up to POOL_SPIN_NS waiting for gen to move past seen; returns the value seen last. */
static uint64_t spin_for_gen(Pool *p, uint64_t seen) {
    uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
    if (g != seen) return g;
    int64_t deadline = now_ns() + POOL_SPIN_NS;
    for (unsigned i = 1;; i++) {
        cpu_relax();
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        if ((i & 63) == 0) {
            if (now_ns() > deadline) return g;
            sched_yield();
        }
    }
}

/* Claim chunks from share k; returns whether any item was run. */
static bool run_from(Pool *p, int k) {
    Share *sh = &p->share[k];
    bool any = false;
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&sh->next, sh->step, memory_order_relaxed);
        if (b >= sh->end) return any;
        int64_t e = b + sh->step < sh->end ? b + sh->step : sh->end;
        p->fn(p->ctx, b, e);
        any = true;
    }
}

/* Participant `self`'s part of the current loop: its own share, then what is left of the others'. */
static void run_share(Pool *p, int self) {
    if (!p->dynamic) {
        int64_t b, e;
        chunk(p->n, p->nthreads, self, &b, &e);
        if (b < e) p->fn(p->ctx, b, e);
        return;
    }
    run_from(p, self);
    for (int j = 1; j < p->nthreads; j++) run_from(p, (self + j) % p->nthreads);
}

static void *worker_main(void *arg) {
    Pool *p = ((WorkerArg *)arg)->pool;
    int self = ((WorkerArg *)arg)->index;
    uint64_t seen = 0; /* no loop can start before netrt_pool_create returns */

    for (;;) {
        uint64_t g = spin_for_gen(p, seen);
        if (g == seen) {
            /* Sleep. sleepers is raised before gen is re-read (both seq_cst): a caller that bumps
             * gen afterwards sees sleepers > 0 and broadcasts under mu, which it can only take
             * once this thread is inside pthread_cond_wait. */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen) pthread_cond_wait(&p->work_cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;

        run_share(p, self);
        /* The last worker out wakes the caller if it went to sleep (same Dekker pairing as above,
         * with caller_sleeping raised before the caller re-reads remaining). */
        if (atomic_fetch_sub(&p->remaining, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void pool_parallel_for(netrt_pool *base, int64_t n, netrt_task_fn fn, void *ctx) {
    Pool *p = (Pool *)base;
    if (n <= 0) return;
    if (p->nthreads == 1 || n == 1 || atomic_flag_test_and_set_explicit(&p->busy, memory_order_acquire)) {
        fn(ctx, 0, n);
        return;
    }
    p->fn = fn, p->ctx = ctx, p->n = n;
    if (p->dynamic)
        for (int k = 0; k < p->nthreads; k++) {
            int64_t b, e;
            chunk(n, p->nthreads, k, &b, &e);
            int64_t step = (e - b + 3) / 4; /* at most four claims per share: stealing has something to take */
            atomic_store_explicit(&p->share[k].next, b, memory_order_relaxed);
            p->share[k].end = e;
            p->share[k].step = step > 0 ? step : 1;
        }
    atomic_store_explicit(&p->remaining, p->nthreads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/ctx/n, pairs with sleepers */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }

    run_share(p, 0);

    if (atomic_load_explicit(&p->remaining, memory_order_acquire) != 0) {
        int64_t deadline = now_ns() + POOL_SPIN_NS;
        for (unsigned i = 1; atomic_load_explicit(&p->remaining, memory_order_acquire) != 0; i++) {
            cpu_relax();
            if ((i & 63) != 0) continue;
            if (now_ns() <= deadline) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_sleeping, 1);
            while (atomic_load(&p->remaining) != 0) pthread_cond_wait(&p->done_cv, &p->mu);
            atomic_store(&p->caller_sleeping, 0);
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    atomic_flag_clear_explicit(&p->busy, memory_order_release);
}

/* NETRT_NUM_THREADS when it is a positive decimal integer, else 0. */
static int env_threads(void) {
    const char *s = getenv("NETRT_NUM_THREADS");
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > INT_MAX) return 0;
    return (int)v;
}

netrt_pool *netrt_pool_create(int nthreads) {
    if (nthreads <= 0) nthreads = env_threads();
    if (nthreads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = c > 0 ? (int)(c < POOL_MAX_THREADS ? c : POOL_MAX_THREADS) : 1;
    }
    if (nthreads > POOL_MAX_THREADS) nthreads = POOL_MAX_THREADS;

    Pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->base.parallel_for = pool_parallel_for;
    p->nthreads = nthreads;
    atomic_flag_clear(&p->busy);
    atomic_init(&p->gen, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->stop, false);
    if (nthreads == 1) return &p->base;

    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    p->args = calloc((size_t)nthreads, sizeof *p->args);
    p->share = aligned_alloc(64, (size_t)nthreads * sizeof *p->share);
    if (!p->threads || !p->args || !p->share) {
        free(p->threads), free(p->args), free(p->share), free(p);
        return NULL;
    }
    for (int k = 0; k < nthreads; k++) atomic_init(&p->share[k].next, 0), p->share[k].end = 0, p->share[k].step = 1;
    const char *sched = getenv("NETRT_SCHEDULE");
    p->dynamic = !(sched && !strcmp(sched, "static"));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);

    /* Workers block every signal, so the process's handlers (Ctrl-C in netrun) run on the
     * application's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    /* Kernels keep per-task buffers of up to 1 MiB on the stack (Winograd's): workers get at
     * least WORKER_STACK, whatever the process's default for new threads. */
    pthread_attr_t attr;
    size_t ss = 0;
    bool attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok && pthread_attr_getstacksize(&attr, &ss) == 0 && ss < WORKER_STACK)
        pthread_attr_setstacksize(&attr, WORKER_STACK);
    int started = 1;
    for (; started < nthreads; started++) {
        p->args[started] = (WorkerArg){p, started};
        if (pthread_create(&p->threads[started], attr_ok ? &attr : NULL, worker_main, &p->args[started]) != 0) break;
    }
    if (attr_ok) pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* If the system refused some threads, run with those that started: any pool size is
     * correct, and workers read nthreads only after the first loop is published. */
    p->nthreads = started;
    return &p->base;
}

int netrt_pool_threads(const netrt_pool *pool) {
    return pool ? ((const Pool *)pool)->nthreads : 1;
}

void netrt_pool_destroy(netrt_pool *pool) {
    if (!pool) return;
    Pool *p = (Pool *)pool;
    if (p->threads) {
        atomic_store_explicit(&p->stop, true, memory_order_release);
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add(&p->gen, 1);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
        for (int k = 1; k < p->nthreads; k++) pthread_join(p->threads[k], NULL);
        pthread_cond_destroy(&p->work_cv);
        pthread_cond_destroy(&p->done_cv);
        pthread_mutex_destroy(&p->mu);
    }
    free(p->threads), free(p->args), free(p->share);
    free(p);
}

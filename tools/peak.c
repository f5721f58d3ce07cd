/* peak.c — the machine's measured FP32 peak for the vectors the compiler targets: build with
 * `cc -O3 -march=native peak.c -o peak` (or -march=x86-64-v3 for the AVX2 peak of any
 * AVX2 machine). Used by scripts/bench (tools/bench.py) for the "% of peak" column.
 * Usage: peak [THREADS] -> prints GFLOP/s on stdout, and what it measured on stderr.
 *
 * The width comes from the target macros (__AVX512F__: 16 floats and 24 chains in 32
 * registers; __FMA__ with __AVX__: 8 and 12 in 16; else SSE's 4, multiply then add); the
 * kernel and the driver (warm-up, best of several rounds) are runtime/peak_impl.h's, the code
 * netrun --profile measures with. */
#include <stdio.h>
#include <stdlib.h>

#include "../runtime/peak_impl.h"

#if defined(__AVX512F__)
#include <immintrin.h>
PEAK_KERNEL(kernel, , __m512, 24, _mm512_set1_ps, _mm512_fmadd_ps)
static const PeakKernel k = {kernel, 16, 24, 1, "avx512f"};
#elif defined(__AVX__) && defined(__FMA__)
#include <immintrin.h>
PEAK_KERNEL(kernel, , __m256, 12, _mm256_set1_ps, _mm256_fmadd_ps)
static const PeakKernel k = {kernel, 8, 12, 1, "avx2+fma"};
#elif defined(__AVX__)
#include <immintrin.h>
#define MADD(acc, a, b) _mm256_add_ps(_mm256_mul_ps(acc, a), b)
PEAK_KERNEL(kernel, , __m256, 12, _mm256_set1_ps, MADD)
static const PeakKernel k = {kernel, 8, 12, 0, "avx"};
#elif defined(__SSE2__)
#include <immintrin.h>
#define MADD(acc, a, b) _mm_add_ps(_mm_mul_ps(acc, a), b)
PEAK_KERNEL(kernel, , __m128, 12, _mm_set1_ps, MADD)
static const PeakKernel k = {kernel, 4, 12, 0, "sse2"};
#elif defined(__ARM_NEON)
#include <arm_neon.h>
PEAK_KERNEL(kernel, , float32x4_t, 24, vdupq_n_f32, vfmaq_f32)
static const PeakKernel k = {kernel, 4, 24, 1, "neon"};
#else
#error "peak.c: no vector ISA among the target macros (x86 SSE2 or later, or aarch64 NEON)"
#endif

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > 64) n = 1;
    /* 0.2 s of warm-up, then the best of 5 rounds of 0.2 s */
    double g = peak_measure(&k, n, 0.2, 5, 0.2);
    fprintf(stderr, "peak: %s, %d-float vectors, %d chains, %d thread%s\n", k.isa, k.lanes, k.chains, n,
            n == 1 ? "" : "s");
    printf("%.1f\n", g);
    return 0;
}

/* peak.c — netrt_peak_gflops: the FP32 peak of the running CPU, measured with peak_impl.h's
 * kernel on the widest vectors netrt_cpu_features() reports (so NETRT_CPU_FEATURES=x86-64-v3
 * measures the AVX2 peak of an AVX-512 machine). Each kernel is compiled for its ISA through a
 * target attribute, whatever the runtime itself is compiled for. */
#include "netrt.h"

#include <stddef.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include "peak_impl.h"

#define SPLAT512(x) _mm512_set1_ps(x)
#define SPLAT256(x) _mm256_set1_ps(x)
#define SPLAT128(x) _mm_set1_ps(x)
#define MADD_SSE(acc, a, b) _mm_add_ps(_mm_mul_ps(acc, a), b)
PEAK_KERNEL(peak_avx512, __attribute__((target("avx512f"))), __m512, 24, SPLAT512, _mm512_fmadd_ps)
PEAK_KERNEL(peak_avx2, __attribute__((target("avx2,fma"))), __m256, 12, SPLAT256, _mm256_fmadd_ps)
PEAK_KERNEL(peak_sse, , __m128, 12, SPLAT128, MADD_SSE)

static const PeakKernel kernels[] = {
    {peak_avx512, 16, 24, 1, "avx512f"},
    {peak_avx2, 8, 12, 1, "avx2+fma"},
    {peak_sse, 4, 12, 0, "sse2"},
};

double netrt_peak_gflops(int threads, double seconds, const char **isa) {
    uint64_t have = netrt_cpu_features();
    uint64_t avx512 = 1ull << netrt_cpu_feature_bit("avx512f");
    uint64_t avx2 = 1ull << netrt_cpu_feature_bit("avx2") | 1ull << netrt_cpu_feature_bit("fma");
    const PeakKernel *k = (have & avx512) == avx512 ? &kernels[0] : (have & avx2) == avx2 ? &kernels[1] : &kernels[2];
    if (isa) *isa = k->isa;
    if (!(seconds > 0)) seconds = 0.25;
    /* a fifth of the time warms up, the rest is four rounds */
    return peak_measure(k, threads, seconds / 5, 4, seconds / 5);
}
#else
double netrt_peak_gflops(int threads, double seconds, const char **isa) {
    (void)threads, (void)seconds;
    if (isa) *isa = NULL;
    return 0;
}
#endif

/* random.c — the seeded inputs netrun and `netc run` use when no --input is given, so both
 * tools see the same values for the same --seed. */
#include "netrt.h"

void netrt_random_input(float *x, size_t n, uint64_t seed, int index) {
    /* splitmix64 from seed*1000003 + index + 1; the top 24 bits of each draw give [0, 1),
       mapped to [-1, 1) */
    uint64_t s = seed * 1000003u + (uint64_t)index + 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = (float)((double)(z >> 40) / (double)(1 << 24) * 2.0 - 1.0);
    }
}

/* cpu.c — what the running CPU can execute: one table of the x86 features a compiled model may
 * need (LLVM's names, cpuid bits), detection through cpuid and xgetbv (the OS must save the AVX
 * and AVX-512 registers too), and the x86-64 levels as feature sets. The compiler maps the
 * features it compiled for onto the same bits, so the loader can refuse a model instead of
 * letting it die of SIGILL. */
#include "netrt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NETRT_X86 1
#endif

/* cpuid leaf, sub-leaf, register (0 eax, 1 ebx, 2 ecx, 3 edx), bit */
typedef struct Feature {
    const char *name;
    unsigned leaf, sub;
    int reg, bit;
} Feature;

/* Bit i of a feature mask is entry i: append, never reorder (masks are stored in models). */
static const Feature features[] = {
    {"sse2", 1, 0, 3, 26},        {"sse3", 1, 0, 2, 0},         {"ssse3", 1, 0, 2, 9},
    {"sse4.1", 1, 0, 2, 19},      {"sse4.2", 1, 0, 2, 20},      {"popcnt", 1, 0, 2, 23},
    {"cx16", 1, 0, 2, 13},        {"sahf", 0x80000001, 0, 2, 0}, {"avx", 1, 0, 2, 28},
    {"avx2", 7, 0, 1, 5},         {"fma", 1, 0, 2, 12},         {"f16c", 1, 0, 2, 29},
    {"bmi", 7, 0, 1, 3},          {"bmi2", 7, 0, 1, 8},         {"lzcnt", 0x80000001, 0, 2, 5},
    {"movbe", 1, 0, 2, 22},       {"xsave", 1, 0, 2, 26},       {"avx512f", 7, 0, 1, 16},
    {"avx512bw", 7, 0, 1, 30},    {"avx512cd", 7, 0, 1, 28},    {"avx512dq", 7, 0, 1, 17},
    {"avx512vl", 7, 0, 1, 31},    {"avx512vnni", 7, 0, 2, 11},  {"avx512bf16", 7, 1, 0, 5},
    {"avx512fp16", 7, 0, 3, 23},  {"avx512vbmi", 7, 0, 2, 1},   {"avx512vbmi2", 7, 0, 2, 6},
    {"avx512ifma", 7, 0, 1, 21},  {"avx512bitalg", 7, 0, 2, 12}, {"avx512vpopcntdq", 7, 0, 2, 14},
    {"avxvnni", 7, 1, 0, 4},      {"gfni", 7, 0, 2, 8},         {"vaes", 7, 0, 2, 9},
    {"vpclmulqdq", 7, 0, 2, 10},  {"pclmul", 1, 0, 2, 1},       {"aes", 1, 0, 2, 25},
    {"adx", 7, 0, 1, 19},         {"sha", 7, 0, 1, 29},         {"prfchw", 0x80000001, 0, 2, 8},
};
enum { NFEATURES = sizeof features / sizeof *features };
_Static_assert(NFEATURES <= 64, "a feature mask has 64 bits");

const char *netrt_cpu_feature_name(int bit) { return bit >= 0 && bit < NFEATURES ? features[bit].name : NULL; }

int netrt_cpu_feature_bit(const char *name) {
    for (int i = 0; i < NFEATURES; i++)
        if (!strcmp(features[i].name, name)) return i;
    return -1;
}

static uint64_t bits_of(const char *const *names) {
    uint64_t m = 0;
    for (; *names; names++) m |= 1ull << netrt_cpu_feature_bit(*names);
    return m;
}

/* The x86-64 psABI levels (what `--cpu=x86-64-vN` compiles for). */
uint64_t netrt_cpu_level_features(int level) {
    static const char *const v1[] = {"sse2", NULL};
    static const char *const v2[] = {"sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "sahf", NULL};
    static const char *const v3[] = {"avx", "avx2", "fma", "f16c", "bmi", "bmi2", "lzcnt", "movbe", "xsave", NULL};
    static const char *const v4[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", NULL};
    if (level < 1 || level > 4) return 0;
    uint64_t m = bits_of(v1);
    if (level >= 2) m |= bits_of(v2);
    if (level >= 3) m |= bits_of(v3);
    if (level >= 4) m |= bits_of(v4);
    return m;
}

int netrt_cpu_level(uint64_t have) {
    int best = 0;
    for (int l = 1; l <= 4; l++)
        if ((netrt_cpu_level_features(l) & ~have) == 0) best = l;
    return best;
}

size_t netrt_cpu_features_str(uint64_t mask, char *buf, size_t len) {
    size_t n = 0;
    if (len) buf[0] = 0;
    for (int i = 0; i < NFEATURES; i++) {
        if (!(mask >> i & 1)) continue;
        int w = snprintf(buf + (n < len ? n : len), n < len ? len - n : 0, "%s%s", n ? "," : "", features[i].name);
        n += (size_t)(w > 0 ? w : 0);
    }
    return n;
}

uint64_t netrt_cpu_parse_features(const char *s, const char **bad) {
    uint64_t m = 0;
    if (bad) *bad = NULL;
    char name[64];
    for (const char *p = s; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = 0;
            int lvl = !strcmp(name, "x86-64") ? 1 : !strncmp(name, "x86-64-v", 8) && name[8] >= '2' && name[8] <= '4' && !name[9] ? name[8] - '0' : 0;
            int b = netrt_cpu_feature_bit(name);
            if (lvl) m |= netrt_cpu_level_features(lvl);
            else if (b >= 0) m |= 1ull << b;
            else if (bad && !*bad) *bad = p;
        }
        p += n + (e ? 1 : 0);
    }
    return m;
}

/* Features whose registers the OS must save: AVX state (XMM|YMM), AVX-512 state too. */
static const char *const ymm_features[] = {"avx", "avx2", "fma", "f16c", "vaes", "vpclmulqdq", "avxvnni", NULL};
static const char *const zmm_features[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512vnni",
                                           "avx512bf16", "avx512fp16", "avx512vbmi", "avx512vbmi2", "avx512ifma",
                                           "avx512bitalg", "avx512vpopcntdq", NULL};

static unsigned xcr0_needed(int bit) {
    if (bits_of(zmm_features) >> bit & 1) return 0xE6;
    if (bits_of(ymm_features) >> bit & 1) return 0x6;
    return 0;
}

int netrt_cpu_feature_cpuid(int bit, unsigned *leaf, unsigned *sub, int *reg, int *regbit, unsigned *xcr0) {
    if (bit < 0 || bit >= NFEATURES) return 0;
    *leaf = features[bit].leaf, *sub = features[bit].sub, *reg = features[bit].reg, *regbit = features[bit].bit;
    *xcr0 = xcr0_needed(bit);
    return 1;
}

#ifdef NETRT_X86
static uint64_t detect(void) {
    unsigned max = __get_cpuid_max(0, NULL), maxext = __get_cpuid_max(0x80000000, NULL);
    unsigned a, b, c, d;
    uint64_t have = 0;
    for (int i = 0; i < NFEATURES; i++) {
        const Feature *f = &features[i];
        if ((f->leaf < 0x80000000 && f->leaf > max) || (f->leaf >= 0x80000000 && f->leaf > maxext)) continue;
        __cpuid_count(f->leaf, f->sub, a, b, c, d);
        unsigned v = f->reg == 0 ? a : f->reg == 1 ? b : f->reg == 2 ? c : d;
        if (v >> f->bit & 1) have |= 1ull << i;
    }
    /* AVX state (XMM|YMM) and AVX-512 state (opmask|ZMM_Hi256|Hi16_ZMM) enabled by the OS */
    uint64_t xcr0 = 0;
    __cpuid(1, a, b, c, d);
    if (c >> 27 & 1) { /* OSXSAVE */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((uint64_t)hi << 32) | lo;
    }
    for (int i = 0; i < NFEATURES; i++)
        if ((xcr0 & xcr0_needed(i)) != xcr0_needed(i)) have &= ~(1ull << i);
    return have;
}
#else
static uint64_t detect(void) { return 0; }
#endif

/* Detected once; NETRT_CPU_FEATURES (a list of names or x86-64 levels) hides what is not in it,
 * to try a model as a smaller CPU would see it. It never adds a feature. */
uint64_t netrt_cpu_features(void) {
    static _Atomic uint64_t cached = 0;
    static _Atomic int done = 0;
    if (atomic_load(&done)) return atomic_load(&cached);
    uint64_t have = detect();
    const char *env = getenv("NETRT_CPU_FEATURES");
    if (env && *env) have &= netrt_cpu_parse_features(env, NULL);
    atomic_store(&cached, have);
    atomic_store(&done, 1);
    return have;
}

const char *netrt_arch(void) {
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "unknown";
#endif
}

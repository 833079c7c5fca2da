/*
 * simd_l1.c: what the widest SIMD level buys over scalar code for
 * c = a + b in L1, in C with the same intrinsics vecpar uses: the reference
 * for vecpar's own ratio (`--simd WIDEST` ÷ `--simd scalar`, one worker).
 *
 * Both loops run on 3 arrays of 1024 doubles (24 KB, inside a 32 KB L1):
 * the scalar one as the compiler writes it with vectorisation turned off
 * (one element per instruction, as vecpar's scalar kernel), the vector one
 * 4 × unrolled with the widest vectors the build enables (AVX-512, else
 * AVX, else SSE2), as vecpar's kernels are. Each pass is timed with the
 * monotonic clock, as vecpar times a worker's compute, and the median over
 * many passes is kept (vecpar reports the median compute time too).
 *
 *   gcc -O3 -march=native scripts/simd_l1.c -o target/simd-l1
 *   target/simd-l1 [ELEMENTS] [PASSES]     (defaults 1024 and 20000)
 *
 * Prints one JSON object: the level, the median ns per pass of each, the ratio.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
#define LEVEL "avx512"
#define W 8
#define V __m512d
#define LD _mm512_loadu_pd
#define ST _mm512_storeu_pd
#define ADD _mm512_add_pd
#elif defined(__AVX__)
#define LEVEL "avx2"
#define W 4
#define V __m256d
#define LD _mm256_loadu_pd
#define ST _mm256_storeu_pd
#define ADD _mm256_add_pd
#else
#define LEVEL "sse2"
#define W 2
#define V __m128d
#define LD _mm_loadu_pd
#define ST _mm_storeu_pd
#define ADD _mm_add_pd
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((noinline, optimize("no-tree-vectorize"))) static void scalar(const double *a, const double *b, double *c,
                                                                             long n) {
    for (long i = 0; i < n; i++) c[i] = a[i] + b[i];
}

__attribute__((noinline)) static void vector(const double *a, const double *b, double *c, long n) {
    long i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        V x0 = ADD(LD(a + i), LD(b + i)), x1 = ADD(LD(a + i + W), LD(b + i + W));
        V x2 = ADD(LD(a + i + 2 * W), LD(b + i + 2 * W)), x3 = ADD(LD(a + i + 3 * W), LD(b + i + 3 * W));
        ST(c + i, x0);
        ST(c + i + W, x1);
        ST(c + i + 2 * W, x2);
        ST(c + i + 3 * W, x3);
    }
    for (; i + W <= n; i += W) ST(c + i, ADD(LD(a + i), LD(b + i)));
    for (; i < n; i++) c[i] = a[i] + b[i];
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(void (*f)(const double *, const double *, double *, long), const double *a, const double *b,
                     double *c, long n, int passes) {
    double *t = malloc(sizeof(double) * passes);
    for (int p = 0; p < passes; p++) {
        double t0 = now();
        f(a, b, c, n);
        t[p] = now() - t0;
    }
    qsort(t, passes, sizeof(double), by_value);
    double m = t[passes / 2];
    free(t);
    return m;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1024;
    int passes = argc > 2 ? atoi(argv[2]) : 20000;
    double *a = aligned_alloc(64, 64 * ((n * 8 + 63) / 64)), *b = aligned_alloc(64, 64 * ((n * 8 + 63) / 64)),
           *c = aligned_alloc(64, 64 * ((n * 8 + 63) / 64));
    for (long i = 0; i < n; i++) a[i] = i * 0.5, b[i] = 1.0 / (i + 1), c[i] = 0;
    double s = median(scalar, a, b, c, n, passes), v = median(vector, a, b, c, n, passes);
    for (long i = 0; i < n; i++)
        if (c[i] != a[i] + b[i]) return fprintf(stderr, "simd-l1: wrong result at %ld\n", i), 1;
    printf("{\"level\": \"%s\", \"len\": %ld, \"scalar_ns\": %.1f, \"simd_ns\": %.1f, \"ratio\": %.3f}\n", LEVEL, n,
           s * 1e9, v * 1e9, s / v);
    return 0;
}

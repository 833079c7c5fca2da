/*
 * stream.c: a STREAM-style reference for vecpar's benchmark.
 *
 * John McCalpin's STREAM, reduced to what the comparison needs and with its
 * sizes chosen at run time: Copy, Scale, Add and Triad on double arrays,
 * plus BabelStream's Dot (an OpenMP reduction) and Nstream (a += b + s*c),
 * OpenMP threads (OMP_NUM_THREADS = vecpar's workers), arrays initialised
 * in parallel with the same static schedule the kernels use (first touch
 * where the data will be used), each kernel timed around its parallel loop
 * (fork and join included, as STREAM does), bandwidth counted as STREAM
 * counts it (2 or 3 arrays per element, 10^9 bytes per GB).
 *
 * Two variants from one source:
 *   gcc -O3 -march=native -fopenmp stream.c -o stream-regular
 *   gcc -O3 -march=native -fopenmp -DNONTEMPORAL stream.c -o stream-nt
 * The NONTEMPORAL build writes each kernel's destination (STREAM's kernels
 * write c, b, c and a in turn) with streaming stores (AVX-512, AVX or SSE2,
 * whichever -march enables), then a store fence.
 *
 * Usage: stream [-n ELEMENTS] [-t TIMES] [-k copy|scale|add|triad|dot|nstream|all]
 * (all: STREAM's four; dot and nstream run alone, as BabelStream counts
 * them: 2 and 4 arrays per element)
 * Prints one JSON object: per kernel, every iteration's time in seconds
 * (the first one is a warm-up and is not used by STREAM's statistics).
 */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NONTEMPORAL
#define VARIANT "nontemporal"
#else
#define VARIANT "regular"
#endif

static double *a, *b, *c;
static long n = 1000000;
static const double scalar = 3.0;

/* Streaming store of one vector, the widest the build allows. */
#if defined(__AVX512F__)
#define VLEN 8
#define VTYPE __m512d
#define VLOAD(p) _mm512_load_pd(p)
#define VSTREAM(p, v) _mm512_stream_pd(p, v)
#define VADD(x, y) _mm512_add_pd(x, y)
#define VMUL(x, y) _mm512_mul_pd(x, y)
#define VSET1(x) _mm512_set1_pd(x)
#elif defined(__AVX__)
#define VLEN 4
#define VTYPE __m256d
#define VLOAD(p) _mm256_load_pd(p)
#define VSTREAM(p, v) _mm256_stream_pd(p, v)
#define VADD(x, y) _mm256_add_pd(x, y)
#define VMUL(x, y) _mm256_mul_pd(x, y)
#define VSET1(x) _mm256_set1_pd(x)
#else
#define VLEN 2
#define VTYPE __m128d
#define VLOAD(p) _mm_load_pd(p)
#define VSTREAM(p, v) _mm_stream_pd(p, v)
#define VADD(x, y) _mm_add_pd(x, y)
#define VMUL(x, y) _mm_mul_pd(x, y)
#define VSET1(x) _mm_set1_pd(x)
#endif

enum { COPY, SCALE, ADD, TRIAD, DOT, NSTREAM, KERNELS };
static const char *names[KERNELS] = {"copy", "scale", "add", "triad", "dot", "nstream"};
static const int arrays_moved[KERNELS] = {2, 2, 3, 3, 2, 4};
static double dot_sum;

/* This thread's part of [0, n): OpenMP's static schedule, computed by hand
 * so that the non-temporal variant can align the head of its chunk. */
static void my_range(long *lo, long *hi) {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    long base = n / nt, extra = n % nt;
    *lo = t * base + (t < extra ? t : extra);
    *hi = *lo + base + (t < extra ? 1 : 0);
}

static void kernel(int k) {
    if (k == DOT) {
        /* No store to choose: the same loop in both variants. */
        double sum = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
        for (long i = 0; i < n; i++) sum += a[i] * b[i];
        dot_sum = sum;
        return;
    }
#pragma omp parallel
    {
        long lo, hi;
        my_range(&lo, &hi);
#ifdef NONTEMPORAL
        double *dst = k == COPY ? c : k == SCALE ? b : k == ADD ? c : a;
        long i = lo;
        for (; i < hi && ((uintptr_t)(dst + i) % (VLEN * 8)) != 0; i++) {
            switch (k) {
            case COPY: c[i] = a[i]; break;
            case SCALE: b[i] = scalar * c[i]; break;
            case ADD: c[i] = a[i] + b[i]; break;
            case NSTREAM: a[i] += b[i] + scalar * c[i]; break;
            default: a[i] = b[i] + scalar * c[i]; break;
            }
        }
        VTYPE s = VSET1(scalar);
        /* The sources are aligned like the destination (same offsets). */
        for (; i + VLEN <= hi; i += VLEN) {
            switch (k) {
            case COPY: VSTREAM(c + i, VLOAD(a + i)); break;
            case SCALE: VSTREAM(b + i, VMUL(s, VLOAD(c + i))); break;
            case ADD: VSTREAM(c + i, VADD(VLOAD(a + i), VLOAD(b + i))); break;
            case NSTREAM: VSTREAM(a + i, VADD(VLOAD(a + i), VADD(VLOAD(b + i), VMUL(s, VLOAD(c + i))))); break;
            default: VSTREAM(a + i, VADD(VLOAD(b + i), VMUL(s, VLOAD(c + i)))); break;
            }
        }
        for (; i < hi; i++) {
            switch (k) {
            case COPY: c[i] = a[i]; break;
            case SCALE: b[i] = scalar * c[i]; break;
            case ADD: c[i] = a[i] + b[i]; break;
            case NSTREAM: a[i] += b[i] + scalar * c[i]; break;
            default: a[i] = b[i] + scalar * c[i]; break;
            }
        }
        _mm_sfence();
#else
        /* Plain loops, vectorised by the compiler, as in stream.c. */
        switch (k) {
        case COPY: for (long i = lo; i < hi; i++) c[i] = a[i]; break;
        case SCALE: for (long i = lo; i < hi; i++) b[i] = scalar * c[i]; break;
        case ADD: for (long i = lo; i < hi; i++) c[i] = a[i] + b[i]; break;
        case NSTREAM: for (long i = lo; i < hi; i++) a[i] += b[i] + scalar * c[i]; break;
        default: for (long i = lo; i < hi; i++) a[i] = b[i] + scalar * c[i]; break;
        }
#endif
    }
}

int main(int argc, char **argv) {
    int times = 10, only = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) n = (long)strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "-t")) times = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-k")) {
            for (int k = 0; k < KERNELS; k++)
                if (!strcmp(argv[i + 1], names[k])) only = k;
        } else {
            fprintf(stderr, "usage: %s [-n ELEMENTS] [-t TIMES] [-k copy|scale|add|triad|dot|nstream|all]\n", argv[0]);
            return 2;
        }
    }
    if (n < 1 || times < 2) {
        fprintf(stderr, "stream: need -n >= 1 and -t >= 2\n");
        return 2;
    }
    size_t bytes = (size_t)n * sizeof(double);
    if (posix_memalign((void **)&a, 2 << 20, bytes) || posix_memalign((void **)&b, 2 << 20, bytes) ||
        posix_memalign((void **)&c, 2 << 20, bytes)) {
        fprintf(stderr, "stream: cannot allocate 3 x %zu bytes\n", bytes);
        return 1;
    }
    /* First touch by the thread that will use the data. */
#pragma omp parallel
    {
        long lo, hi;
        my_range(&lo, &hi);
        for (long i = lo; i < hi; i++) {
            a[i] = 1.0;
            b[i] = 2.0;
            c[i] = 0.0;
        }
    }
    double *t = malloc(sizeof(double) * KERNELS * times);
    for (int it = 0; it < times; it++) {
        for (int k = 0; k < KERNELS; k++) {
            if (only >= 0 ? k != only : k > TRIAD) continue;
            double t0 = omp_get_wtime();
            kernel(k);
            t[k * times + it] = omp_get_wtime() - t0;
        }
    }
    /* STREAM's check, reduced: replay the kernels on scalars. */
    double aj = 1.0, bj = 2.0, cj = 0.0;
    for (int it = 0; it < times; it++) {
        if (only < 0 || only == COPY) cj = aj;
        if (only < 0 || only == SCALE) bj = scalar * cj;
        if (only < 0 || only == ADD) cj = aj + bj;
        if (only < 0 || only == TRIAD) aj = bj + scalar * cj;
        if (only == NSTREAM) aj += bj + scalar * cj;
    }
    double err = fabs(a[n / 2] - aj) + fabs(b[n / 2] - bj) + fabs(c[n / 2] - cj);
    if (only == DOT) err += fabs(dot_sum - (double)n * aj * bj) / (double)n;
    printf("{\"variant\": \"%s\", \"threads\": %d, \"len\": %ld, \"validates\": %s, \"kernels\": {", VARIANT,
           omp_get_max_threads(), n, err <= 1e-8 * (fabs(aj) + fabs(bj) + fabs(cj)) ? "true" : "false");
    int first = 1;
    for (int k = 0; k < KERNELS; k++) {
        if (only >= 0 ? k != only : k > TRIAD) continue;
        printf("%s\"%s\": {\"bytes\": %.0f, \"seconds\": [", first ? "" : ", ", names[k], (double)arrays_moved[k] * bytes);
        for (int it = 0; it < times; it++) printf("%s%.9f", it ? ", " : "", t[k * times + it]);
        printf("]}");
        first = 0;
    }
    printf("}}\n");
    return 0;
}

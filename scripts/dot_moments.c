/* dot_moments: the same moments for three dot loops.
 *
 * On a VM whose memory bandwidth changes from minute to minute, two
 * programs run one after the other may meet different machines. This one
 * runs three loops over the same two arrays in one process, alternating
 * round by round (each round about 50 ms at 1e8), so that each loop meets
 * the same moments:
 *   scalar   the plain loop, as the C reference's dot compiles it (gcc does
 *            not vectorise an in-order floating-point sum without -ffast-math)
 *   avx2     vecpar's loop: AVX2 FMAs into four accumulators
 *   avx2pf   the same with software prefetch PF bytes ahead (default 2048)
 * The order of the three rotates from round to round, so that no loop always
 * runs first. It prints each loop's best and median GB/s and every round's
 * (bytes counted the STREAM way: 2 arrays), and the median over rounds of
 * avx2 ÷ scalar and avx2pf ÷ avx2 within each round. 2 OpenMP threads, each a
 * contiguous half, first-touched by its thread; the first round warms up.
 *
 *   gcc -O3 -march=native -fopenmp scripts/dot_moments.c -o target/dot-moments
 *   OMP_NUM_THREADS=2 OMP_PROC_BIND=spread OMP_PLACES=cores target/dot-moments [N [ROUNDS [PF]]]
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double dot_scalar(const double *a, const double *b, long lo, long hi) {
    double s = 0;
    for (long i = lo; i < hi; i++) s += a[i] * b[i];
    return s;
}

static long PF = 2048;

static double dot_avx2(const double *a, const double *b, long lo, long hi, int prefetch) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    long i = lo, d = PF / 8;
    for (; i + 16 <= hi; i += 16) {
        if (prefetch) {
            _mm_prefetch((const char *)(a + i + d), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + i + d), _MM_HINT_T0);
            _mm_prefetch((const char *)(a + i + d + 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + i + d + 8), _MM_HINT_T0);
        }
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i), s0);
        s1 = _mm256_fmadd_pd(_mm256_loadu_pd(a + i + 4), _mm256_loadu_pd(b + i + 4), s1);
        s2 = _mm256_fmadd_pd(_mm256_loadu_pd(a + i + 8), _mm256_loadu_pd(b + i + 8), s2);
        s3 = _mm256_fmadd_pd(_mm256_loadu_pd(a + i + 12), _mm256_loadu_pd(b + i + 12), s3);
    }
    double r[4];
    _mm256_storeu_pd(r, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    double s = r[0] + r[1] + r[2] + r[3];
    for (; i < hi; i++) s += a[i] * b[i];
    return s;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static double median(double *v, int n) {
    qsort(v, n, sizeof(double), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 25;
    if (argc > 3) PF = atol(argv[3]);
    if (n < 16 || rounds < 2 || rounds > 1000) {
        fprintf(stderr, "usage: %s [N >= 16 [ROUNDS 2..1000 [PF bytes]]]\n", argv[0]);
        return 2;
    }
    double *a, *b;
    if (posix_memalign((void **)&a, 2 << 20, n * 8) || posix_memalign((void **)&b, 2 << 20, n * 8)) {
        fprintf(stderr, "dot_moments: cannot allocate 2 x %ld bytes\n", n * 8);
        return 1;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        for (long i = n * t / T; i < n * (t + 1) / T; i++) {
            a[i] = 1.0 + i % 7;
            b[i] = 2.0;
        }
    }
    const char *names[3] = {"scalar", "avx2", "avx2pf"};
    double *gbps = malloc(sizeof(double) * 3 * rounds), best[3] = {0, 0, 0}, check = 0;
    double *tmp = malloc(sizeof(double) * rounds);
    if (!gbps || !tmp) {
        fprintf(stderr, "dot_moments: out of memory\n");
        return 1;
    }
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 3; k++) {
            int v = (k + r) % 3;
            double sum = 0, t0 = now();
#pragma omp parallel reduction(+ : sum)
            {
                int t = omp_get_thread_num(), T = omp_get_num_threads();
                long lo = n * t / T, hi = n * (t + 1) / T;
                sum += v == 0 ? dot_scalar(a, b, lo, hi) : dot_avx2(a, b, lo, hi, v == 2);
            }
            double g = 2.0 * n * 8 / (now() - t0) / 1e9;
            gbps[v * rounds + r] = g;
            if (r > 0 && g > best[v]) best[v] = g; /* the first round warms up */
            check += sum;
        }
    }
    for (int v = 0; v < 3; v++) {
        for (int r = 1; r < rounds; r++) tmp[r - 1] = gbps[v * rounds + r];
        printf("%-7s best %5.1f  median %5.1f GB/s  rounds:", names[v], best[v], median(tmp, rounds - 1));
        for (int r = 1; r < rounds; r++) printf(" %.1f", gbps[v * rounds + r]);
        printf("\n");
    }
    for (int pair = 0; pair < 2; pair++) {
        int x = pair + 1, y = pair; /* avx2 / scalar, avx2pf / avx2 */
        for (int r = 1; r < rounds; r++) tmp[r - 1] = gbps[x * rounds + r] / gbps[y * rounds + r];
        printf("%s / %s within a round: median %.3f\n", names[x], names[y], median(tmp, rounds - 1));
    }
    return check == 0; /* keeps the sums alive */
}

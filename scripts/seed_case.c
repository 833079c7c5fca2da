/*
 * seed_case.c: the seed chapter's job done by hand in C, as the floor for
 * vecpar's end-to-end time: c = a + b over fresh shared memory with 2
 * processes, from exec to exit.
 *
 * The same work vecpar does for `vecpar-coord --procs 2 --len 1e6 --runs 1`:
 * one memfd holding a, b and c; each of 2 processes (fork, no exec: cheaper
 * than vecpar's spawn of a separate worker binary) reserves its chunk of the
 * three arrays (fallocate), fills a and b, runs the add twice (vecpar's
 * warm-up round and its timed round), checks its chunk of all three arrays
 * against the formula, and exits; the parent reaps both and frees the
 * memory. No threads, no timing inside: time the whole process from outside.
 *
 *   gcc -O3 -march=native scripts/seed_case.c -o target/seed-case
 *   target/seed-case [ELEMENTS] [PROCESSES]      (defaults 1e6 and 2)
 *
 * Exits 0 when every element checked is right.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static double value(uint64_t seed, uint64_t i) {
    /* SplitMix64 to [-1, 1), as vecpar's generator does. */
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(int64_t)z / 9223372036854775808.0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? (long)strtod(argv[1], NULL) : 1000000;
    int procs = argc > 2 ? atoi(argv[2]) : 2;
    long page = sysconf(_SC_PAGESIZE), per_page = page / (long)sizeof(double);
    size_t array = ((size_t)n * sizeof(double) + page - 1) / page * page;
    int fd = memfd_create("seed-case", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 3 * array) != 0) return perror("memfd"), 1;
    long pages = (n + per_page - 1) / per_page;
    for (int p = 0; p < procs; p++) {
        if (fork() == 0) {
            long lo = pages * p / procs * per_page, hi = pages * (p + 1) / procs * per_page;
            if (hi > n) hi = n;
            if (lo >= hi) _exit(0);
            size_t off = lo * sizeof(double), len = (hi - lo) * sizeof(double);
            for (int k = 0; k < 3; k++)
                if (fallocate(fd, 0, k * array + off, len) != 0) _exit(2);
            double *m = mmap(NULL, 3 * array, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) _exit(3);
            double *a = m, *b = m + array / sizeof(double), *c = m + 2 * array / sizeof(double);
            for (long i = lo; i < hi; i++) {
                a[i] = value(1, 2 * i);
                b[i] = value(1, 2 * i + 1);
            }
            for (int round = 0; round < 2; round++)
                for (long i = lo; i < hi; i++) c[i] = a[i] + b[i];
            for (long i = lo; i < hi; i++)
                if (a[i] != value(1, 2 * i) || b[i] != value(1, 2 * i + 1) || c[i] != a[i] + b[i]) _exit(4);
            _exit(0);
        }
    }
    int ok = 1, status;
    while (wait(&status) > 0) ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    close(fd);
    return ok ? 0 : 1;
}

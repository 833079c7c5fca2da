/*
 * spawn_floor.c: the cost of starting processes on this machine, as a floor
 * for vecpar's start-up phase. Starts N copies of a program with
 * posix_spawn from T threads, waits for all, and prints the median wall time
 * of R repetitions in milliseconds (JSON).
 *
 *   gcc -O2 -pthread spawn_floor.c -o spawn-floor
 *   spawn-floor N T R PROGRAM [ARGS...]
 */
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;
static int per_thread;
static char **argv_prog;
static posix_spawn_file_actions_t quiet; /* children's stdout to /dev/null */

static void *spawner(void *unused) {
    (void)unused;
    pid_t pids[4096];
    for (int i = 0; i < per_thread; i++)
        if (posix_spawn(&pids[i], argv_prog[0], &quiet, NULL, argv_prog, environ) != 0) {
            perror("spawn-floor: posix_spawn");
            exit(1);
        }
    for (int i = 0; i < per_thread; i++) waitpid(pids[i], NULL, 0);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: spawn-floor N THREADS REPS PROGRAM [ARGS...]\n");
        return 2;
    }
    int n = atoi(argv[1]), threads = atoi(argv[2]), reps = atoi(argv[3]);
    if (n < 1 || threads < 1 || reps < 1 || n % threads || n / threads > 4096) {
        fprintf(stderr, "spawn-floor: N must be a multiple of THREADS (at most 4096 per thread)\n");
        return 2;
    }
    per_thread = n / threads;
    argv_prog = argv + 4;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    double *ms = malloc(sizeof(double) * reps);
    for (int r = 0; r < reps; r++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pthread_t t[256];
        for (int i = 0; i < threads && i < 256; i++) pthread_create(&t[i], NULL, spawner, NULL);
        for (int i = 0; i < threads && i < 256; i++) pthread_join(t[i], NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms[r] = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    }
    qsort(ms, reps, sizeof(double), cmp);
    printf("{\"processes\": %d, \"threads\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f}\n", n, threads, ms[reps / 2], ms[0]);
    return 0;
}

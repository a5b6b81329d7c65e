/* Review regression: two threads copy disjoint ranges of a source with a trailing hole in its first half into one destination; no data may be lost. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A 262144 /* thread A's range: 128 KiB of data, then a 128 KiB hole */
#define B 262144 /* thread B's range: data */

static int in, out;
static pthread_barrier_t bar;
static ssize_t ra, rb;

static void *ta(void *x) {
    (void)x;
    off64_t i = 0, o = 0;
    pthread_barrier_wait(&bar);
    ra = copy_file_range(in, &i, out, &o, A, 0);
    return 0;
}

static void *tb(void *x) {
    (void)x;
    off64_t i = A, o = A;
    pthread_barrier_wait(&bar);
    rb = copy_file_range(in, &i, out, &o, B, 0);
    return 0;
}

/* usage: concurrent_sparse_tail SRC DST ITERATIONS; prints "bad=N/ITERATIONS" */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int iters = atoi(argv[3]);
    static char buf[A + B], got[A + B];
    for (int i = 0; i < A + B; i++) buf[i] = (i >= A / 2 && i < A) ? 0 : (char)(1 + i % 251);
    in = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (in < 0) { perror("open src"); return 1; }
    if (pwrite(in, buf, A / 2, 0) != A / 2 || pwrite(in, buf + A, B, A) != B) { perror("pwrite"); return 1; }
    int bad = 0;
    for (int it = 0; it < iters; it++) {
        out = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (out < 0) { perror("open dst"); return 1; }
        pthread_barrier_init(&bar, 0, 2);
        pthread_t x, y;
        pthread_create(&x, 0, ta, 0);
        pthread_create(&y, 0, tb, 0);
        pthread_join(x, 0);
        pthread_join(y, 0);
        pthread_barrier_destroy(&bar);
        ssize_t n = pread(out, got, A + B, 0);
        if (ra != A || rb != B || n != A + B || memcmp(got, buf, A + B)) {
            if (++bad < 4) {
                long first = -1;
                for (long k = 0; k < n; k++)
                    if (got[k] != buf[k]) { first = k; break; }
                printf("iter %d: ra=%zd rb=%zd size=%zd first diff at %ld\n", it, ra, rb, n, first);
            }
        }
        close(out);
    }
    printf("bad=%d/%d\n", bad, iters);
    return 0;
}

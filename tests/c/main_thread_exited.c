/* Review regression: the main thread pthread_exit()s, then a worker copies with non-NULL offset pointers (the shim must not address the dead main thread: ESRCH). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *S, *D;

static void *worker(void *a) {
    (void)a;
    usleep(200000); /* let the main thread exit first */
    int in = open(S, O_RDONLY), out = open(D, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) { perror("open"); return 0; }
    off64_t oi = 0, oo = 0;
    ssize_t n = copy_file_range(in, &oi, out, &oo, 1 << 20, 0);
    printf("offsets: ret=%zd errno=%d off_in=%lld off_out=%lld\n", n, n < 0 ? errno : 0, (long long)oi,
           (long long)oo);
    n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
    printf("null: ret=%zd errno=%d pos_in=%lld pos_out=%lld\n", n, n < 0 ? errno : 0,
           (long long)lseek(in, 0, SEEK_CUR), (long long)lseek(out, 0, SEEK_CUR));
    fflush(stdout);
    return 0;
}

/* usage: main_thread_exited SRC DST; prints an "offsets:" and a "null:" line */
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    S = argv[1];
    D = argv[2];
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    pthread_exit(0);
}

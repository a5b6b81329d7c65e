/* Review regression: the program holds a lease (r or w) on the source and copies it; the copy must neither stall nor break the program's own lease. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t broken;
static void h(int s) { (void)s; broken = 1; }

/* usage: own_write_lease SRC DST r|w; prints "ret=R ms=M broken=B lease=L" (L: F_RDLCK 0, F_WRLCK 1) */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int wr = argv[3][0] == 'w';
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGIO, &sa, 0);
    int in = open(argv[1], wr ? O_RDWR : O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) { perror("open"); return 1; }
    if (fcntl(in, F_SETLEASE, wr ? F_WRLCK : F_RDLCK)) { perror("F_SETLEASE"); return 3; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    off64_t a = 0, b = 0;
    ssize_t n = copy_file_range(in, &a, out, &b, 1 << 20, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("ret=%zd ms=%ld broken=%d lease=%d\n", n, ms, (int)broken, fcntl(in, F_GETLEASE));
    return 0;
}

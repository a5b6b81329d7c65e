/* Review regression: a process with fds 0-2 closed and a SIGALRM handler writing to fd 2 every 200 us copies in a loop; the shim's own fds must not take the stdio numbers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t stray; /* writes to fd 2 that reached something */

static void h(int s) {
    (void)s;
    int e = errno;
    if (write(2, "XX", 2) > 0) stray++; /* harmless while fd 2 stays closed: EBADF */
    errno = e;
}

/* usage: closed_stdio_copy SRC DST CHUNK; prints "ret=R total=T stray=S stdio_open=O" to the
   original stdout (fds 0-2 must still be closed after the copy: O = 0) */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    size_t chunk = strtoul(argv[3], 0, 0);
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) { perror("open"); return 1; }
    int saved = fcntl(1, F_DUPFD_CLOEXEC, 10);
    close(0); close(1); close(2); /* a daemon that closed its standard streams */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, 0);
    long total = 0;
    ssize_t n;
    while ((n = copy_file_range(in, NULL, out, NULL, chunk, 0)) > 0) total += n;
    int err = n < 0 ? errno : 0;
    struct itimerval z = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &z, 0);
    int stdio_open = 0;
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) != -1) stdio_open++;
    dprintf(saved, "ret=%zd errno=%d total=%ld stray=%d stdio_open=%d\n", n, err, total, (int)stray,
            stdio_open);
    return 0;
}

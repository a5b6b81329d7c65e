/* Review regression helper: copies SRC to DST with copy_file_range(NULL offsets) until it returns 0 (used for the CFRFIX_LOG FIFO and hard-link cases). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* usage: copy_all SRC DST; prints "ret=R errno=E total=T" */
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) { perror("open"); return 1; }
    long total = 0;
    ssize_t n;
    while ((n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0)) > 0) total += n;
    printf("ret=%zd errno=%d total=%ld\n", n, n < 0 ? errno : 0, total);
    return 0;
}

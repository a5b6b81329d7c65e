/* early_main SRC DST: links libearly.so (DT_NEEDED), prints what its constructor saw, then
 * copies SRC to DST itself, after every constructor (cfrfix's included) has run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

void early_report(void);

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    early_report();
    int in = open(argv[1], O_RDONLY | O_CLOEXEC);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) return 1;
    errno = 0;
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
    printf("main ret=%zd errno=%d\n", n, n < 0 ? errno : 0);
    return 0;
}

/* tests/abi: copies SRC to DST the way a real program does, through glibc's copy_file_range
 * ("libc") or syscall(SYS_copy_file_range, ...) ("syscall"), with NULL offsets, in calls of at
 * most CHUNK bytes, until it returns 0 or fails. Built for each ABI (gcc -m32 with and without
 * -D_FILE_OFFSET_BITS=64, aarch64-linux-gnu-gcc), it is the unmodified program the preloaded
 * library must serve. Prints "ret=R errno=E total=T calls=C". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: abi_copy libc|syscall SRC DST CHUNK\n");
        return 2;
    }
    int via_syscall = strcmp(argv[1], "syscall") == 0;
    int in = open(argv[2], O_RDONLY);
    int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        perror("open");
        return 1;
    }
    size_t chunk = strtoul(argv[4], NULL, 0);
    long long total = 0;
    long calls = 0;
    ssize_t n;
    for (;;) {
        calls++;
        if (via_syscall)
            /* Ints stay ints, as libuv passes them. */
            n = syscall(SYS_copy_file_range, in, NULL, out, NULL, chunk, 0u);
        else
            n = copy_file_range(in, NULL, out, NULL, chunk, 0);
        if (n <= 0)
            break;
        total += n;
    }
    printf("ret=%ld errno=%d total=%lld calls=%ld\n", (long)n, n < 0 ? errno : 0, total, calls);
    return 0;
}

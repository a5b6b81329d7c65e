/* tests/abi/chain.rs: one link of a process chain across ABIs (64-bit -> 32-bit -> 64-bit).
 * Usage: abi_chain SRC DST [NEXT_PROGRAM NEXT_SRC NEXT_DST ...]
 * Copies SRC to DST through glibc's copy_file_range (NULL offsets, 64 KiB per call, until it
 * returns 0 or fails), prints one line
 *   "link bits=B pid=P ret=R errno=E total=T cfrfix=MAPPED"
 * (MAPPED: the libcfrfix.so mapped into this process, or "none"), then, if more arguments
 * follow, execs NEXT_PROGRAM NEXT_SRC NEXT_DST ... with the same environment: the next link
 * inherits LD_PRELOAD and any seccomp filter, as a real program's children do. Built with gcc
 * and gcc -m32. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void mapped_cfrfix(char *out, size_t size) {
    snprintf(out, size, "none");
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps)
        return;
    char line[4096];
    while (fgets(line, sizeof line, maps)) {
        char *path = strchr(line, '/');
        if (path && strstr(path, "libcfrfix")) {
            path[strcspn(path, "\n")] = '\0';
            snprintf(out, size, "%s", path);
            break;
        }
    }
    fclose(maps);
}

int main(int argc, char **argv) {
    if (argc < 3 || (argc - 3) % 3 != 0) {
        fprintf(stderr, "usage: abi_chain SRC DST [NEXT_PROGRAM NEXT_SRC NEXT_DST ...]\n");
        return 2;
    }
    int in = open(argv[1], O_RDONLY);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        perror("open");
        return 1;
    }
    long long total = 0;
    ssize_t n;
    while ((n = copy_file_range(in, NULL, out, NULL, 65536, 0)) > 0)
        total += n;
    int saved = n < 0 ? errno : 0;
    close(in);
    close(out);
    char mapped[4096];
    mapped_cfrfix(mapped, sizeof mapped);
    printf("link bits=%d pid=%d ret=%ld errno=%d total=%lld cfrfix=%s\n", (int)(8 * sizeof(void *)),
           (int)getpid(), (long)n, saved, total, mapped);
    fflush(stdout);
    if (argc > 3) {
        execv(argv[3], argv + 3);
        perror("execv");
        return 1;
    }
    return 0;
}

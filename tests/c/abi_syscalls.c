/* tests/abi: other system calls through syscall(), which the preloaded library exports and
 * forwards: few and many arguments, a 64-bit position split into two arguments on i386, a
 * sixth argument (ebp on i386), and an error. Each line is the same with and without the
 * library; each ends in "ok" when the call did what it should. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *verdict(int good) { return good ? "ok" : "WRONG"; }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: abi_syscalls FILE\n");
        return 2;
    }
    /* Which object's syscall() this program calls (the preloaded library's, or glibc's). */
    Dl_info info;
    void *symbol = dlsym(RTLD_DEFAULT, "syscall");
    const char *from = symbol && dladdr(symbol, &info) && info.dli_fname ? info.dli_fname : "?";
    const char *slash = strrchr(from, '/');
    printf("syscall() from %s\n", slash ? slash + 1 : from);

    long pid = syscall(SYS_getpid);
    printf("getpid: %s\n", verdict(pid == getpid()));

    errno = 0;
    long r = syscall(SYS_close, -1);
    printf("close(-1): ret=%ld errno=%d %s\n", r, errno, verdict(r == -1 && errno == EBADF));

    /* A page of known bytes 5 GiB into a sparse file. */
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_LARGEFILE, 0644);
    const long long far = 5LL << 30;
    char page[4096];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (char)(i * 7 + 1);
    if (fd < 0 || pwrite64(fd, page, sizeof page, far) != (ssize_t)sizeof page) {
        perror("fixture");
        return 1;
    }
    char back[16] = {0};
#if defined(__i386__)
    /* i386: the position travels as two longs, low word first. */
    r = syscall(SYS_pread64, fd, back, sizeof back, (unsigned long)(far + 5), (unsigned long)((far + 5) >> 32));
#else
    r = syscall(SYS_pread64, fd, back, sizeof back, far + 5);
#endif
    printf("pread64 at 5 GiB: ret=%ld %s\n", r, verdict(r == (long)sizeof back && memcmp(back, page + 5, sizeof back) == 0));

    /* Six arguments: map that page of the file. */
#if defined(__i386__)
    void *map = (void *)syscall(SYS_mmap2, 0, 4096, PROT_READ, MAP_SHARED, fd, (unsigned long)(far / 4096));
#else
    void *map = (void *)syscall(SYS_mmap, 0, 4096, PROT_READ, MAP_SHARED, fd, far);
#endif
    int mapped = map != MAP_FAILED && memcmp(map, page, sizeof page) == 0;
    printf("mmap of the page at 5 GiB (6 arguments): %s\n", verdict(mapped));
    if (map != MAP_FAILED)
        munmap(map, 4096);
    close(fd);
    unlink(argv[1]);
    return 0;
}

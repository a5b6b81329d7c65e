/* setuid_copy SRC DST: a stand-in for a setuid-root program (passwd, sudo) that copies a file.
 *
 * Installed setuid root and run by an unprivileged user, it runs in secure-execution mode
 * (AT_SECURE), with /etc/ld.so.preload loading cfrfix into it. It makes the kernel refuse
 * copy_file_range itself (a seccomp filter answering EOPNOTSUPP), since cfrfix-inject cannot
 * be used: the no_new_privs it needs would disable the setuid bit. Prints what it saw:
 *   secure=S ruid=R euid=E
 *   copied N | errno E
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "x86_64 or aarch64 only"
#endif

static int refuse_copy_file_range(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_copy_file_range, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EOPNOTSUPP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    /* Set after exec: it keeps the privileges already gained, and lets the filter in. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: setuid_copy SRC DST\n");
        return 2;
    }
    printf("secure=%lu ruid=%d euid=%d\n", getauxval(AT_SECURE), (int)getuid(), (int)geteuid());
    if (refuse_copy_file_range() != 0) {
        perror("seccomp");
        return 1;
    }
    int in = open(argv[1], O_RDONLY | O_CLOEXEC);
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) {
        perror("open");
        return 1;
    }
    long long total = 0;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
        if (n < 0) {
            printf("errno %d\n", errno);
            return 0;
        }
        if (n == 0) break;
        total += n;
    }
    printf("copied %lld\n", total);
    return 0;
}

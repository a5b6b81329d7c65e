/* libearly.so: a library whose constructor copies a file before cfrfix's constructor has run.
 *
 * A program's own DT_NEEDED libraries are initialised before LD_PRELOAD objects, so this
 * constructor reaches cfrfix's exports while cfrfix still has its built-in defaults. It copies
 * $EARLY_SRC to $EARLY_DST twice: through glibc's copy_file_range with explicit offsets into the
 * first half, and through syscall(SYS_copy_file_range) into a second file $EARLY_DST.sys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long early_ret[2] = {-2, -2};
static int early_errno[2];

__attribute__((constructor)) static void early_copy(void) {
    const char *src = getenv("EARLY_SRC"), *dst = getenv("EARLY_DST");
    if (!src || !dst) return;
    char dst_sys[4096];
    snprintf(dst_sys, sizeof dst_sys, "%s.sys", dst);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int out_sys = open(dst_sys, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || out < 0 || out_sys < 0) return;
    loff_t off_in = 0, off_out = 0;
    errno = 0;
    early_ret[0] = copy_file_range(in, &off_in, out, &off_out, 1 << 20, 0);
    early_errno[0] = errno;
    off_in = 0;
    off_out = 0;
    errno = 0;
    early_ret[1] = syscall(SYS_copy_file_range, in, &off_in, out_sys, &off_out, 1 << 20, 0);
    early_errno[1] = errno;
    close(in);
    close(out);
    close(out_sys);
}

void early_report(void) {
    printf("early libc ret=%ld errno=%d\n", early_ret[0], early_ret[0] < 0 ? early_errno[0] : 0);
    printf("early syscall ret=%ld errno=%d\n", early_ret[1], early_ret[1] < 0 ? early_errno[1] : 0);
}

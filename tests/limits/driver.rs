//! The driver: a C program that makes a sequence of copy_file_range calls in one process and
//! prints one line per call, then whether the destination is the source's prefix.

use super::run_within;
use crate::common::{describe, have_command, skip};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const DRIVER_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t xfsz;
static void on_xfsz(int s) { (void)s; xfsz++; }

static void die(const char *what) {
    fprintf(stderr, "driver: %s: %s\n", what, strerror(errno));
    exit(2);
}

static long long size_of(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    return (long long)st.st_size;
}

static int pread_full(int fd, unsigned char *buf, size_t n, off_t at) {
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, buf + done, n - done, at + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        done += (size_t)r;
    }
    return 0;
}

/* Whether out[at_out, +n) holds in[at_in, +n). */
static int same_bytes(int in, off_t at_in, int out, off_t at_out, long long n) {
    static unsigned char a[1 << 16], b[1 << 16];
    while (n > 0) {
        size_t k = n < (long long)sizeof a ? (size_t)n : sizeof a;
        if (pread_full(in, a, k, at_in) || pread_full(out, b, k, at_out) || memcmp(a, b, k))
            return 0;
        at_in += (off_t)k;
        at_out += (off_t)k;
        n -= (long long)k;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: driver SRC DST libc|syscall offsets|positions OFF_IN OFF_OUT "
                        "LEN MAXCALLS\n");
        return 2;
    }
    int use_syscall = strcmp(argv[3], "syscall") == 0;
    int explicit = strcmp(argv[4], "offsets") == 0;
    long long oi = atoll(argv[5]), oo = atoll(argv[6]);
    size_t len = (size_t)strtoull(argv[7], NULL, 10);
    int max_calls = atoi(argv[8]);
    signal(SIGXFSZ, on_xfsz);
    int in = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (in < 0) die("open SRC");
    int out = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) die("open DST");
    if (!explicit && (lseek(in, oi, SEEK_SET) != oi || lseek(out, oo, SEEK_SET) != oo))
        die("lseek");
    const long long start_in = oi, start_out = oo;
    for (int call = 0; call < max_calls; call++) {
        long long bi = explicit ? oi : (long long)lseek(in, 0, SEEK_CUR);
        long long bo = explicit ? oo : (long long)lseek(out, 0, SEEK_CUR);
        loff_t li = oi, lo = oo;
        errno = 0;
        ssize_t r;
        if (use_syscall)
            r = syscall(SYS_copy_file_range, in, explicit ? &li : NULL, out,
                        explicit ? &lo : NULL, len, 0);
        else
            r = copy_file_range(in, explicit ? &li : NULL, out, explicit ? &lo : NULL, len, 0);
        int e = r < 0 ? errno : 0;
        if (explicit) {
            oi = li;
            oo = lo;
        }
        long long pi = lseek(in, 0, SEEK_CUR), po = lseek(out, 0, SEEK_CUR);
        long long n = r > 0 ? r : 0;
        int ok = n == 0 || same_bytes(in, (off_t)bi, out, (off_t)bo, n);
        printf("call=%d len=%zu ret=%zd errno=%d off_in=%lld off_out=%lld pos_in=%lld "
               "pos_out=%lld size=%lld xfsz=%d bytes=%s\n",
               call, len, r, e, explicit ? oi : -1, explicit ? oo : -1, pi, po, size_of(out),
               (int)xfsz, ok ? "ok" : "BAD");
        if (r <= 0) break;
    }
    /* From the first byte written to the end, the destination must be the source's bytes. */
    long long end_out = size_of(out), copied = end_out > start_out ? end_out - start_out : 0;
    int whole = copied == 0 || same_bytes(in, (off_t)start_in, out, (off_t)start_out, copied);
    printf("final size=%lld copied=%lld content=%s\n", end_out, copied,
           whole ? "source-prefix" : "BAD");
    return 0;
}
"#;

/// Builds the driver into `dir` (None, after SKIPPED, without a C compiler).
pub(super) fn build_driver(dir: &Path, deadline: Instant) -> Option<PathBuf> {
    if !have_command("cc") {
        skip("no C compiler (cc) for the copy driver");
        return None;
    }
    let source = dir.join("driver.c");
    let program = dir.join("driver");
    std::fs::write(&source, DRIVER_C).expect("write driver.c");
    let mut c = Command::new("cc");
    c.args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&program)
        .arg(&source);
    let output = run_within(&mut c, deadline);
    assert!(
        output.status.success(),
        "cc driver.c: {}",
        describe(&output)
    );
    Some(program)
}

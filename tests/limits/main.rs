//! Limits that stop a copy part way, on a real disk filesystem (ext4), compared call by call
//! with the kernel (issue 5; ENOSPC and RLIMIT_FSIZE are in tests/safety.rs):
//!
//! - EFBIG from the filesystem's maximum file size (`s_maxbytes`: 16 TiB − 4 KiB on ext4 with
//!   4 KiB blocks), which user space cannot see: a copy to just below it returns the partial
//!   count, the next call EFBIG;
//! - EDQUOT from a block quota on a loop-mounted ext4 image, in a private mount namespace,
//!   copying as `nobody` (root is exempt from quotas).
//!
//! Each scenario runs a small C driver (embedded below, built with `cc`) that makes a sequence
//! of copy_file_range calls in one process and prints one line per call: return value, errno,
//! offset variables, file positions, destination size, whether the bytes reported are the
//! source's, and finally whether the destination from the first byte written to its end is
//! exactly the source's prefix. The transcript of the kernel's own copy (ext4 → same ext4) must
//! be identical to the shim's under an injected EOPNOTSUPP (every engine, sparse on/off, libc
//! symbol and `syscall()`) and on the natural EXDEV from tmpfs.
//!
//! A test that needs what this machine lacks (cc, an ext4 root filesystem, root, loop devices,
//! kernel quota support, setquota) prints "SKIPPED: reason" and returns.

#[path = "../common/mod.rs"]
mod common;

use common::{ScratchDir, clean, describe, have_command, is_root, skip, text};
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");

const EOPNOTSUPP: u16 = 95;
const EXDEV: &str = "errno=18";
const EFBIG: &str = "errno=27";
const EDQUOT: &str = "errno=122";

/// ext4's `s_maxbytes` with 4 KiB blocks and extents: 2^32 blocks minus one, in bytes.
const EXT4_MAXBYTES: i64 = (1 << 44) - 4096;
const EXT4_SUPER_MAGIC: i64 = 0xEF53;

/// Each test's whole budget; every process gets what is left of it.
const BUDGET: Duration = Duration::from_secs(25);

// ---------------------------------------------------------------------------------------------
// The driver

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
fn build_driver(dir: &Path, deadline: Instant) -> Option<PathBuf> {
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

// ---------------------------------------------------------------------------------------------
// Running processes

fn figure(line: &str) {
    println!("FIGURES: {line}");
}

/// Runs `command` (stdin from /dev/null); kills it and fails the test once `deadline` has
/// passed (a hang is a bug).
fn run_within(command: &mut Command, deadline: Instant) -> Output {
    let left = deadline.saturating_duration_since(Instant::now());
    common::output_within(command, left, None)
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
        .unwrap_or_else(|| {
            panic!("{command:?} still running at the test's {BUDGET:?} deadline: hung")
        })
}

/// How the driver runs: natively, or with the kernel refusing copy_file_range with EOPNOTSUPP
/// (`cfrfix-inject`), with or without the shim preloaded.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    Native,
    Shim,
    InjectedOnly,
}

/// `driver args` under `setup`; `envs` reach the driver only.
fn driver_command(setup: Setup, envs: &[(&str, &str)], driver: &Path, args: &[String]) -> Command {
    let mut c = match setup {
        Setup::Native => clean(driver),
        Setup::Shim | Setup::InjectedOnly => {
            let mut c = clean(INJECT);
            c.arg(EOPNOTSUPP.to_string()).arg("env");
            if setup == Setup::Shim {
                c.arg(format!("LD_PRELOAD={}", common::cdylib().display()));
            }
            c.args(envs.iter().map(|(k, v)| format!("{k}={v}")));
            c.arg(driver);
            c
        }
    };
    c.args(args);
    c
}

/// Runs a driver command (possibly wrapped) and returns its transcript, after checking the
/// invariants every transcript must satisfy whoever made the copy.
fn transcript(what: &str, command: &mut Command, deadline: Instant) -> String {
    let output = run_within(command, deadline);
    assert!(output.status.success(), "{what}: {}", describe(&output));
    let t = text(&output.stdout);
    check_invariants(what, &t);
    t
}

fn field(line: &str, key: &str) -> i64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} in {line}: {e}"))
}

/// Per call: offsets (or positions) moved by exactly the count, the destination's size is
/// what the count implies, the bytes reported are the source's, no SIGXFSZ (these limits are
/// not RLIMIT_FSIZE); at the end, the destination is the source's prefix.
fn check_invariants(what: &str, t: &str) {
    let lines: Vec<&str> = t.lines().collect();
    let (last, calls) = lines
        .split_last()
        .unwrap_or_else(|| panic!("{what}: no output"));
    assert!(
        last.starts_with("final ") && last.ends_with("content=source-prefix"),
        "{what}: destination is not the source's prefix:\n{t}"
    );
    assert!(!calls.is_empty(), "{what}: no calls:\n{t}");
    let explicit = field(calls[0], "off_in") >= 0;
    let (mut prev_in, mut prev_out, mut prev_size) = (None::<i64>, None::<i64>, 0i64);
    for line in calls {
        assert!(
            line.ends_with("xfsz=0 bytes=ok"),
            "{what}: wrong bytes or SIGXFSZ: {line}\n{t}"
        );
        let n = field(line, "ret").max(0);
        let (now_in, now_out) = if explicit {
            (field(line, "off_in"), field(line, "off_out"))
        } else {
            (field(line, "pos_in"), field(line, "pos_out"))
        };
        if explicit {
            assert!(
                field(line, "pos_in") == 0 && field(line, "pos_out") == 0,
                "{what}: explicit offsets moved a file position: {line}"
            );
        }
        if let (Some(pi), Some(po)) = (prev_in, prev_out) {
            assert!(
                now_in == pi + n && now_out == po + n,
                "{what}: returned {n} but offsets went {pi}->{now_in}, {po}->{now_out}\n{t}"
            );
            let size = field(line, "size");
            assert_eq!(
                size,
                prev_size.max(po + n),
                "{what}: size after {line}\n{t}"
            );
        }
        prev_in = Some(now_in);
        prev_out = Some(now_out);
        prev_size = field(line, "size");
    }
}

/// A transcript's calls in short: each return value, or `errno N` (for the figures).
fn calls_summary(t: &str) -> String {
    t.lines()
        .filter(|l| l.starts_with("call="))
        .map(|l| match field(l, "ret") {
            -1 => format!("errno {}", field(l, "errno")),
            r => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first line of `t` that is a partial count: 0 < ret < len.
fn partial(t: &str) -> Option<&str> {
    t.lines().find(|l| {
        l.starts_with("call=") && field(l, "ret") > 0 && field(l, "ret") < field(l, "len")
    })
}

/// The last call's line.
fn last_call(t: &str) -> &str {
    t.lines()
        .rfind(|l| l.starts_with("call="))
        .expect("a call line")
}

/// Writes `data` at 0, then extends the file to `size` (a trailing hole when larger).
fn write_sparse(path: &Path, data: &[u8], size: u64) {
    std::fs::write(path, data).expect("write source");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open source");
    f.set_len(size).expect("extend source");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn statfs_type(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero is a valid `struct statfs`; statfs fills it.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable struct statfs.
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

/// The shim configurations every scenario runs under.
const CONFIGS: [(&str, &str, &str); 12] = [
    ("auto", "auto", "libc"),
    ("auto", "auto", "syscall"),
    ("auto", "off", "libc"),
    ("auto", "off", "syscall"),
    ("splice", "auto", "libc"),
    ("splice", "auto", "syscall"),
    ("splice", "off", "libc"),
    ("splice", "off", "syscall"),
    ("rw", "auto", "libc"),
    ("rw", "auto", "syscall"),
    ("rw", "off", "libc"),
    ("rw", "off", "syscall"),
];

/// One scenario: the driver's arguments after SRC DST ENTRY.
struct Scenario {
    name: &'static str,
    source: &'static str,
    mode: &'static str,
    off_in: i64,
    off_out: i64,
    len: usize,
}

impl Scenario {
    fn args(&self, src: &Path, dst: &Path, entry: &str) -> Vec<String> {
        vec![
            src.display().to_string(),
            dst.display().to_string(),
            entry.to_string(),
            self.mode.to_string(),
            self.off_in.to_string(),
            self.off_out.to_string(),
            self.len.to_string(),
            "40".to_string(),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// EFBIG at s_maxbytes

/// An ext4 directory whose files stop at EXT4_MAXBYTES (None, after SKIPPED, otherwise): a
/// sparse file can be truncated to exactly that size and not one byte more.
fn ext4_with_known_maxbytes(dir: &Path) -> Option<()> {
    if statfs_type(dir) != Some(EXT4_SUPER_MAGIC) {
        skip(&format!(
            "{} is not on ext4 (statfs type {:?}); the EFBIG test needs ext4's s_maxbytes",
            dir.display(),
            statfs_type(dir)
        ));
        return None;
    }
    let probe = dir.join("maxbytes-probe");
    let f = std::fs::File::create(&probe).expect("create probe");
    let at_max = f.set_len(EXT4_MAXBYTES as u64);
    let past_max = f.set_len(EXT4_MAXBYTES as u64 + 1);
    drop(f);
    let _ = std::fs::remove_file(&probe);
    match (at_max, past_max) {
        (Ok(()), Err(e)) if e.raw_os_error() == Some(libc::EFBIG) => Some(()),
        (a, b) => {
            skip(&format!(
                "ext4 at {} does not have s_maxbytes = 16 TiB - 4 KiB (4 KiB blocks, extents): \
                 truncate to it: {a:?}, one byte more: {b:?}",
                dir.display()
            ));
            None
        }
    }
}

/// Sources: `dense` (256 KiB of data) and `tailhole` (64 KiB of data, then a hole to 1 MiB).
fn efbig_sources(dir: &Path) {
    write_sparse(&dir.join("dense"), &pattern(256 << 10, 1), 256 << 10);
    write_sparse(&dir.join("tailhole"), &pattern(64 << 10, 2), 1 << 20);
}

const S: i64 = EXT4_MAXBYTES;

const EFBIG_SCENARIOS: [Scenario; 6] = [
    // 65536, then 34464 up to the limit, then EFBIG.
    Scenario {
        name: "dense-offsets",
        source: "dense",
        mode: "offsets",
        off_in: 1000,
        off_out: S - 100_000,
        len: 65536,
    },
    // Positions, unaligned: 8192, 4219, EFBIG.
    Scenario {
        name: "dense-positions",
        source: "dense",
        mode: "positions",
        off_in: 4095,
        off_out: S - 3 * 4096 - 123,
        len: 8192,
    },
    // One big call that crosses the limit inside a page: 5000, EFBIG.
    Scenario {
        name: "dense-one-call",
        source: "dense",
        mode: "offsets",
        off_in: 7,
        off_out: S - 5000,
        len: 1 << 20,
    },
    // The source's trailing hole crosses the limit (the shim skips holes past the destination's
    // end and sets the size with ftruncate, which EFBIG refuses): 200000, EFBIG.
    Scenario {
        name: "tailhole-offsets",
        source: "tailhole",
        mode: "offsets",
        off_in: 0,
        off_out: S - 200_000,
        len: 1 << 20,
    },
    // The same with positions, in chunks that end inside the hole: 131072 ×2, 37856, EFBIG.
    Scenario {
        name: "tailhole-positions",
        source: "tailhole",
        mode: "positions",
        off_in: 100,
        off_out: S - 300_000,
        len: 131072,
    },
    // A non-empty copy exactly at the limit: EFBIG at once. (Not len 0: there the kernel says
    // EFBIG and the shim 0, a documented difference.)
    Scenario {
        name: "at-the-limit",
        source: "dense",
        mode: "offsets",
        off_in: 0,
        off_out: S,
        len: 10,
    },
];

#[test]
fn efbig_at_ext4_maximum_file_size_mid_copy_matches_the_kernel() {
    let deadline = Instant::now() + BUDGET;
    let disk = ScratchDir::rootfs("limits-efbig");
    let shm = ScratchDir::tmpfs("limits-efbig");
    let Some(driver) = build_driver(shm.path(), deadline) else {
        return;
    };
    if ext4_with_known_maxbytes(disk.path()).is_none() {
        return;
    }
    efbig_sources(disk.path());
    efbig_sources(shm.path());
    let dst = disk.path().join("dst");
    let mut compared = 0;
    let mut figures = Vec::new();
    for sc in &EFBIG_SCENARIOS {
        let on_disk = disk.path().join(sc.source);
        let on_shm = shm.path().join(sc.source);
        let what = |how: &str| format!("{} ({how})", sc.name);
        // (a) The kernel's own copy, ext4 → same ext4.
        let native = transcript(
            &what("native ext4 -> ext4"),
            &mut driver_command(
                Setup::Native,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
            deadline,
        );
        let last = last_call(&native);
        assert!(
            last.contains(EFBIG),
            "{}: the kernel's copy did not end in EFBIG:\n{native}",
            sc.name
        );
        if sc.name != "at-the-limit" {
            assert!(
                partial(&native).is_some()
                    && field(last, "off_out").max(field(last, "pos_out")) == S,
                "{}: the kernel's copy did not stop part way at s_maxbytes:\n{native}",
                sc.name
            );
        }
        figures.push(format!("{}: {}", sc.name, calls_summary(&native)));
        // The injection bites: without the shim nothing is copied.
        let refused = transcript(
            &what("injected, no shim"),
            &mut driver_command(
                Setup::InjectedOnly,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
            deadline,
        );
        assert!(
            last_call(&refused).contains("errno=95") && refused.lines().count() == 2,
            "{}: injection did not refuse the copy:\n{refused}",
            sc.name
        );
        // The natural EXDEV: tmpfs → ext4 is refused by the kernel.
        let exdev = transcript(
            &what("native tmpfs -> ext4"),
            &mut driver_command(Setup::Native, &[], &driver, &sc.args(&on_shm, &dst, "libc")),
            deadline,
        );
        assert!(
            last_call(&exdev).contains(EXDEV) && exdev.lines().count() == 2,
            "{}: tmpfs -> ext4 is not EXDEV here:\n{exdev}",
            sc.name
        );
        for (engine, sparse, entry) in CONFIGS {
            let envs = [("CFRFIX_ENGINE", engine), ("CFRFIX_SPARSE", sparse)];
            // (b) injected EOPNOTSUPP, ext4 -> ext4; (c) the natural EXDEV from tmpfs. The
            // syscall entry prints the same lines: both compare with the native libc run.
            for (src, injected) in [(&on_disk, true), (&on_shm, false)] {
                let how = if injected {
                    "injected EOPNOTSUPP"
                } else {
                    "EXDEV from tmpfs"
                };
                let mut c = match injected {
                    true => driver_command(Setup::Shim, &envs, &driver, &sc.args(src, &dst, entry)),
                    false => {
                        let mut c = clean("env");
                        c.arg(format!("LD_PRELOAD={}", common::cdylib().display()));
                        c.args(envs.iter().map(|(k, v)| format!("{k}={v}")));
                        c.arg(&driver).args(sc.args(src, &dst, entry));
                        c
                    }
                };
                let label = what(&format!("shim, {how}, {engine}/{sparse}/{entry}"));
                let shim = transcript(&label, &mut c, deadline);
                assert_eq!(shim, native, "{label}: differs from the kernel");
                compared += 1;
            }
        }
    }
    figure(&format!(
        "EFBIG at s_maxbytes = {S}: per-call results (kernel, ext4 -> ext4) {}; identical in \
         {compared} shim runs (injected EOPNOTSUPP and natural EXDEV from tmpfs, 3 engines x \
         sparse auto/off x libc/syscall)",
        figures.join("; ")
    ));
}

/// A hole in the middle of the source whose destination range crosses s_maxbytes, followed by
/// data that lies past it. The kernel writes the hole's zeros up to the limit (300000, then
/// EFBIG at s_maxbytes). A regression test: the sparse engine used to skip the hole, fail on the
/// data after it, and drop the hole (65536, then EFBIG where the kernel still copies).
#[test]
fn efbig_with_a_hole_across_the_limit_matches_the_kernel() {
    let deadline = Instant::now() + BUDGET;
    let disk = ScratchDir::rootfs("limits-efbig-hole");
    let shm = ScratchDir::tmpfs("limits-efbig-hole");
    let Some(driver) = build_driver(shm.path(), deadline) else {
        return;
    };
    if ext4_with_known_maxbytes(disk.path()).is_none() {
        return;
    }
    // 64 KiB of data, a hole to 512 KiB, 64 KiB of data.
    let src = disk.path().join("midhole");
    write_sparse(&src, &pattern(64 << 10, 3), 512 << 10);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .expect("open");
    f.write_all(&pattern(64 << 10, 4)).expect("append");
    drop(f);
    let sc = Scenario {
        name: "midhole-offsets",
        source: "midhole",
        mode: "offsets",
        off_in: 0,
        off_out: S - 300_000,
        len: 1 << 20,
    };
    let dst = disk.path().join("dst");
    let native = transcript(
        "native",
        &mut driver_command(Setup::Native, &[], &driver, &sc.args(&src, &dst, "libc")),
        deadline,
    );
    assert!(partial(&native).is_some() && last_call(&native).contains(EFBIG));
    let shim = transcript(
        "shim, sparse auto",
        &mut driver_command(Setup::Shim, &[], &driver, &sc.args(&src, &dst, "libc")),
        deadline,
    );
    assert_eq!(shim, native, "shim (sparse auto) differs from the kernel");
}

// ---------------------------------------------------------------------------------------------
// EDQUOT on a quota'd ext4 image

/// Blocks (1 KiB units, as setquota counts them) `nobody` may use on the image.
const QUOTA_KIB: u64 = 1024;

/// `inner`, as `nobody`, in a private mount namespace where a fresh ext4 image `img` is
/// loop-mounted on `mnt` (with user quotas and a QUOTA_KIB hard limit for uid 65534 when
/// `quota`), the source `src` copied to `mnt/src` by root, and `mnt` made world-writable.
/// Exit codes: 77 the mount failed, 78 setquota failed.
fn on_ext4_image(img: &Path, mnt: &Path, src: &Path, quota: bool, inner: &Command) -> Command {
    let mut c = clean("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"img=$0 mnt=$1 src=$2 quota=$3; shift 3
            mount -t ext4 -o "loop${quota:+,usrquota}" "$img" "$mnt" || exit 77
            if [ -n "$quota" ]; then setquota -u 65534 0 "$quota" 0 0 "$mnt" || exit 78; fi
            cat "$src" >"$mnt/src" && chmod 644 "$mnt/src" && chmod 1777 "$mnt" || exit 1
            exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@""#,
        )
        .arg(img)
        .arg(mnt)
        .arg(src)
        .arg(if quota {
            QUOTA_KIB.to_string()
        } else {
            String::new()
        })
        .arg(inner.get_program())
        .args(inner.get_args());
    c
}

/// A fresh 64 MiB ext4 image with the quota feature (or without it).
fn mkfs(img: &Path, quota: bool, deadline: Instant) {
    let _ = std::fs::remove_file(img);
    let mut c = clean("mkfs.ext4");
    c.args(["-q", "-F", "-b", "4096", "-m", "0"]);
    if quota {
        c.args(["-O", "quota", "-E", "quotatype=usrquota"]);
    }
    c.arg(img).arg("64M");
    let output = run_within(&mut c, deadline);
    assert!(output.status.success(), "mkfs.ext4: {}", describe(&output));
}

const EDQUOT_SCENARIOS: [Scenario; 3] = [
    // Unaligned offsets, 256 KiB calls: full counts, a partial count, then EDQUOT.
    Scenario {
        name: "quota-offsets",
        source: "src",
        mode: "offsets",
        off_in: 1000,
        off_out: 3000,
        len: 256 << 10,
    },
    // Positions, calls that are not a multiple of the block size.
    Scenario {
        name: "quota-positions",
        source: "src",
        mode: "positions",
        off_in: 0,
        off_out: 5,
        len: 300_000,
    },
    // One call larger than the quota.
    Scenario {
        name: "quota-one-call",
        source: "src",
        mode: "offsets",
        off_in: 4096,
        off_out: 0,
        len: 3 << 20,
    },
];

#[test]
fn edquot_mid_copy_on_ext4_with_quota_matches_the_kernel() {
    let deadline = Instant::now() + BUDGET;
    if !is_root() {
        return skip("needs root for loop devices, mounts and quotas");
    }
    for tool in ["unshare", "setpriv", "mkfs.ext4", "mount"] {
        if !have_command(tool) {
            return skip(&format!("{tool} missing"));
        }
    }
    let shm = ScratchDir::tmpfs("limits-quota");
    let Some(driver) = build_driver(shm.path(), deadline) else {
        return;
    };
    std::fs::set_permissions(shm.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let img = shm.path().join("ext4.img");
    let mnt = shm.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    let source = shm.path().join("src");
    write_sparse(&source, &pattern(3 << 20, 5), 3 << 20);

    // Can this machine loop-mount an ext4 image at all, and then one with quotas?
    for quota in [false, true] {
        mkfs(&img, quota, deadline);
        let output = run_within(
            &mut on_ext4_image(&img, &mnt, &source, quota, &clean("true")),
            deadline,
        );
        match output.status.code() {
            Some(0) => {}
            Some(77) if !quota => {
                return skip(&format!(
                    "cannot loop-mount an ext4 image (no loop devices?): {}",
                    text(&output.stderr).trim()
                ));
            }
            Some(77) => {
                return skip(&format!(
                    "ext4 refuses to mount with quotas: the kernel lacks quota support \
                     (CONFIG_QUOTA and CONFIG_QFMT_V2; dmesg says why): {}",
                    text(&output.stderr).trim()
                ));
            }
            _ => panic!("probing the ext4 image: {}", describe(&output)),
        }
    }
    if !have_command("setquota") {
        return skip("setquota missing (the quota package; .ci/run installs it)");
    }

    let mut compared = 0;
    let mut figures = Vec::new();
    for sc in &EDQUOT_SCENARIOS {
        let on_disk = mnt.join("src");
        let dst = mnt.join("dst");
        // Each run gets a fresh image, so no run's blocks count against the next one's quota.
        let run = |what: String, inner: Command| {
            mkfs(&img, true, deadline);
            let mut c = on_ext4_image(&img, &mnt, &source, true, &inner);
            transcript(&what, &mut c, deadline)
        };
        // (a) The kernel's own copy, ext4 → same ext4, as nobody.
        let native = run(
            format!("{} native", sc.name),
            driver_command(
                Setup::Native,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
        );
        // The quota really limits: a partial count, then EDQUOT; never more than the quota.
        let copied = field(native.lines().last().expect("final"), "copied");
        assert!(
            partial(&native).is_some()
                && last_call(&native).contains(EDQUOT)
                && copied > 0
                && copied <= (QUOTA_KIB as i64) << 10,
            "{}: the kernel's copy did not stop part way with EDQUOT:\n{native}",
            sc.name
        );
        figures.push(format!(
            "{}: {} (copied {copied})",
            sc.name,
            calls_summary(&native)
        ));
        let refused = run(
            format!("{} injected, no shim", sc.name),
            driver_command(
                Setup::InjectedOnly,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
        );
        assert!(
            last_call(&refused).contains("errno=95"),
            "{}: injection did not refuse the copy:\n{refused}",
            sc.name
        );
        for (engine, sparse, entry) in CONFIGS.iter().step_by(3) {
            let envs = [("CFRFIX_ENGINE", *engine), ("CFRFIX_SPARSE", *sparse)];
            // (b) Injected EOPNOTSUPP, ext4 → same ext4.
            let shim = run(
                format!("{} shim injected {engine}/{sparse}/{entry}", sc.name),
                driver_command(Setup::Shim, &envs, &driver, &sc.args(&on_disk, &dst, entry)),
            );
            assert_eq!(
                shim, native,
                "{} injected {engine}/{sparse}/{entry}",
                sc.name
            );
            compared += 1;
        }
        // (c) The natural EXDEV: the source on tmpfs, the destination on the quota'd ext4.
        let exdev = run(
            format!("{} native tmpfs -> ext4", sc.name),
            driver_command(Setup::Native, &[], &driver, &sc.args(&source, &dst, "libc")),
        );
        assert!(
            last_call(&exdev).contains(EXDEV),
            "{}: tmpfs -> ext4 is not EXDEV here:\n{exdev}",
            sc.name
        );
        let mut c = clean("env");
        c.arg(format!("LD_PRELOAD={}", common::cdylib().display()))
            .arg(&driver)
            .args(sc.args(&source, &dst, "libc"));
        let shim = run(format!("{} shim EXDEV", sc.name), c);
        assert_eq!(shim, native, "{}: shim on EXDEV from tmpfs", sc.name);
        compared += 1;
    }
    figure(&format!(
        "EDQUOT ({QUOTA_KIB} KiB quota for nobody on ext4): per-call results (kernel) {}; \
         identical in {compared} shim runs",
        figures.join("; ")
    ));
}

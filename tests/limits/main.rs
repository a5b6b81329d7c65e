//! Limits that stop a copy part way, on a real disk filesystem (ext4), compared call by call
//! with the kernel (issue 5; ENOSPC and RLIMIT_FSIZE are in tests/safety, `full_disk`):
//!
//! - `efbig`: EFBIG from the filesystem's maximum file size (`s_maxbytes`: 16 TiB − 4 KiB on
//!   ext4 with 4 KiB blocks), which user space cannot see: a copy to just below it returns the
//!   partial count, the next call EFBIG;
//! - `edquot`: EDQUOT from a block quota on a loop-mounted ext4 image, in a private mount
//!   namespace, copying as `nobody` (root is exempt from quotas).
//!
//! Each scenario runs a small C driver (`driver`, built with `cc`) that makes a sequence
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

mod driver;
mod edquot;
mod efbig;

use common::{clean, describe, text};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");

const EOPNOTSUPP: u16 = 95;
const EXDEV: &str = "errno=18";
const EFBIG: &str = "errno=27";
const EDQUOT: &str = "errno=122";

/// Each test's whole budget; every process gets what is left of it.
const BUDGET: Duration = Duration::from_secs(25);

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

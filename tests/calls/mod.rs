//! Running `cfrfix-call` (drivers/call/main.rs) natively or under `cfrfix-inject` with the
//! shim, with a deadline, for tests/engines.rs and tests/zero_and_eagain.rs.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common;

pub const CALL: &str = env!("CARGO_BIN_EXE_cfrfix-call");
pub const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");

/// How a `cfrfix-call` process is started.
#[derive(Clone, Copy, Debug)]
pub struct Setup<'a> {
    /// `cfrfix-inject ERRNO` around the process (0: copy_file_range returns 0).
    pub inject: Option<u32>,
    /// `LD_PRELOAD=libcfrfix.so`.
    pub shim: bool,
    /// Extra environment (`CFRFIX_*`).
    pub env: &'a [(&'a str, &'a str)],
}

/// The kernel alone.
pub const NATIVE: Setup<'static> = Setup {
    inject: None,
    shim: false,
    env: &[],
};

impl Setup<'_> {
    /// The shim preloaded, every native copy_file_range failing with `errno`.
    pub fn shim_under(errno: u32) -> Setup<'static> {
        Setup {
            inject: Some(errno),
            shim: true,
            env: &[],
        }
    }
}

/// What one process printed.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cfrfix-call ARGS` under `setup`, killing it after `timeout`.
pub fn run(setup: Setup<'_>, args: &[OsString], timeout: Duration) -> Outcome {
    run_program(CALL, setup, args, "", timeout)
}

/// Runs `program ARGS` under `setup` with `input` on its stdin, killing it after `timeout`.
/// The CFRFIX_* settings of the shell running the tests are cleared: only the test decides
/// what is compared.
pub fn run_program(
    program: &str,
    setup: Setup<'_>,
    args: &[OsString],
    input: &str,
    timeout: Duration,
) -> Outcome {
    let mut cmd = match setup.inject {
        Some(errno) => {
            let mut c = Command::new(INJECT);
            c.arg(errno.to_string()).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    let capture = tempfile_pair();
    let input_path = capture.0.with_extension("in");
    fs::write(&input_path, input).expect("write stdin file");
    cmd.args(args)
        .stdin(fs::File::open(&input_path).expect("open stdin file"));
    for key in [
        "LD_PRELOAD",
        "CFRFIX_MODE",
        "CFRFIX_ENGINE",
        "CFRFIX_SPARSE",
        "CFRFIX_ERRNOS",
        "CFRFIX_LOG",
    ] {
        cmd.env_remove(key);
    }
    if setup.shim {
        cmd.env("LD_PRELOAD", common::cdylib());
    }
    cmd.envs(setup.env.iter().copied());
    // Output to files, so nothing blocks on a full pipe while the deadline is polled.
    cmd.stdout(fs::File::create(&capture.0).expect("create stdout capture"));
    cmd.stderr(fs::File::create(&capture.1).expect("create stderr capture"));
    let what = format!("{program} {args:?} ({setup:?})");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let status = common::wait_or_kill(&mut child, timeout)
        .unwrap_or_else(|| panic!("{what}: still running after {timeout:?}, killed"));
    let outcome = Outcome {
        success: status.success(),
        stdout: fs::read_to_string(&capture.0).unwrap_or_default(),
        stderr: fs::read_to_string(&capture.1).unwrap_or_default(),
    };
    let _ = fs::remove_file(&capture.0);
    let _ = fs::remove_file(&capture.1);
    let _ = fs::remove_file(&input_path);
    outcome
}

/// Two fresh capture file paths in /dev/shm, unique within this test process.
fn tempfile_pair() -> (std::path::PathBuf, std::path::PathBuf) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let base = format!("/dev/shm/cfrfix-call-{}-{n}", std::process::id());
    (format!("{base}.out").into(), format!("{base}.err").into())
}

/// `cfrfix-call copy SRC DST OPTIONS...` under `setup`: its result line. Panics if the helper
/// failed (a bad option, a file it could not open), which is a test bug, not a finding.
pub fn copy(setup: Setup<'_>, src: &Path, dst: &Path, options: &str) -> String {
    let mut args: Vec<OsString> = vec!["copy".into(), src.into(), dst.into()];
    args.extend(options.split_whitespace().map(OsString::from));
    let out = run(setup, &args, Duration::from_secs(30));
    assert!(
        out.success && out.stdout.lines().count() == 1,
        "cfrfix-call {args:?} under {setup:?}: {out:?}"
    );
    out.stdout.trim_end().to_string()
}

/// Deterministic, incompressible, never-zero bytes (splitmix64), different for each seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = common::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // No zero byte: a data byte can never be mistaken for a hole's zeros.
        out.extend(rng.next().to_le_bytes().iter().map(|&b| b | 1));
    }
    out.truncate(len);
    out
}

/// Asserts two byte strings are equal, reporting sizes and the first differing offset.
pub fn assert_same_bytes(what: &str, expected: &[u8], actual: &[u8]) {
    if expected == actual {
        return;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    panic!(
        "{what}: contents differ: expected {} bytes, got {}; first difference at offset {first} \
         (expected {:?}, got {:?})",
        expected.len(),
        actual.len(),
        expected.get(first),
        actual.get(first)
    );
}

/// `st_blocks` (512-byte units) and size of a file.
pub fn blocks_and_size(path: &Path) -> (u64, u64) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.blocks(), m.size())
}

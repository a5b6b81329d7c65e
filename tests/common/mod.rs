//! Helpers shared by the integration tests: where the built library and tools are,
//! scratch directories on tmpfs (where the kernel's own copy_file_range works), a seeded
//! random number generator, running processes with a deadline, a private copy of /etc, and
//! reporting.
#![allow(dead_code)]

pub mod command;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Directory holding the artefacts of the profile the tests were built with
/// (`target/debug` or `target/release`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The preload library under test, brought up to date for the tests' profile: `cargo test`
/// builds the tools the tests run, but not a `cdylib` (nothing links it), so without this a
/// fresh clone has no library and an edited one would be tested stale. `cargo build --lib` runs
/// once per test process (a no-op when the library is current); cargo's own lock orders
/// concurrent test processes. `CFRFIX_TEST_NO_BUILD` skips it: scripts/zfs-vm builds first and
/// runs the test binaries in a VM where the tree is read-only.
pub fn cdylib() -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let p = profile_dir().join("libcfrfix.so");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built && std::env::var_os("CFRFIX_TEST_NO_BUILD").is_none() {
        let profile = match profile_dir().file_name().and_then(OsStr::to_str) {
            Some("debug") => "dev".to_string(),
            Some(name) => name.to_string(),
            None => panic!("cannot tell the profile of {}", profile_dir().display()),
        };
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "--lib",
                "--profile",
                &profile,
                "--manifest-path",
            ])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        let status = cargo
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?}: {e}"));
        assert!(status.success(), "{cargo:?} failed: {status}");
        *built = true;
    }
    assert!(p.exists(), "{} missing after building it", p.display());
    p
}

/// A fresh, empty directory below `base` (created), removed when dropped.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new_in(base: &str, tag: &str) -> ScratchDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = PathBuf::from(base).join(format!(
            "cfrfix-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        ScratchDir(p)
    }
    /// On tmpfs (`/dev/shm`), where the kernel copies natively; or, when `CFRFIX_TEST_DIR`
    /// is set, below that directory (scripts/zfs-vm points it at a ZFS pool).
    pub fn tmpfs(tag: &str) -> ScratchDir {
        match std::env::var("CFRFIX_TEST_DIR") {
            Ok(dir) if !dir.is_empty() => ScratchDir::new_in(&dir, tag),
            _ => ScratchDir::new_in("/dev/shm", tag),
        }
    }
    /// On the root filesystem (not tmpfs): a copy from tmpfs to here is a natural EXDEV.
    pub fn rootfs(tag: &str) -> ScratchDir {
        let base = option_env!("CARGO_TARGET_TMPDIR").unwrap_or("/var/tmp");
        ScratchDir::new_in(base, tag)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// A directory for the whole test process (a shared fixture in a `static`, which is never
/// dropped): removed when the process exits, through `atexit`.
pub fn scratch_dir_for_process(base: &str, tag: &str) -> PathBuf {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    extern "C" fn remove_all() {
        let dirs = std::mem::take(&mut *DIRS.lock().unwrap_or_else(|e| e.into_inner()));
        for dir in dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
    let scratch = ScratchDir::new_in(base, tag);
    let path = scratch.0.clone();
    std::mem::forget(scratch);
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: `remove_all` is an `extern "C" fn()` that does not unwind (errors ignored).
        let registered = unsafe { libc::atexit(remove_all) } == 0;
        assert!(registered, "atexit failed");
    }
    dirs.push(path.clone());
    path
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// splitmix64: reproducible from its seed, for generated test cases and test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 for `n` = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Reports a skipped test: `SKIPPED: <test name>: <reason>`. Written to the real stderr rather
/// than with `eprintln!`, which the test harness captures and hides for passing tests: a skip
/// must show up in the CI log, where `.ci/run` counts each skipped test once (by its name, which
/// the harness gives the test's thread) and not as passed.
pub fn skip(reason: &str) {
    let line = match std::thread::current().name() {
        Some(test) if test != "main" => format!("SKIPPED: {test}: {reason}"),
        _ => format!("SKIPPED: {reason}"),
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `name` is a command the shell finds.
pub fn have_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$0\" >/dev/null", name])
        .status()
        .is_ok_and(|s| s.success())
}

/// A process's output as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit status, signal, stdout and stderr of a finished process, for a failure message.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?} (signal {:?})\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        std::os::unix::process::ExitStatusExt::signal(&output.status),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// A command without the test's own LD_PRELOAD or CFRFIX_* settings, so that every run starts
/// from the library's defaults.
pub fn clean(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_remove("LD_PRELOAD");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CFRFIX_") {
            command.env_remove(key);
        }
    }
    command
}

/// Waits for `child` (polling every 2 ms); after `timeout` kills and reaps it and returns
/// None. A hang is a bug, and must fail the test instead of stalling the suite.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `command` with `input` on its stdin (None: /dev/null) and its stdout and stderr
/// captured through pipes, as `wait_or_kill` does: `Ok(None)` if it was still running after
/// `timeout` and was killed, `Err` if it could not be started.
pub fn output_within(
    command: &mut Command,
    timeout: Duration,
    input: Option<String>,
) -> std::io::Result<Option<Output>> {
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.unwrap_or_default();
        // A separate writer: a process that answers while it reads (the probe) could
        // otherwise deadlock with us. One that exits early closes its stdin; the write fails.
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    });
    // Readers for both pipes, so that the deadline can be polled while the process writes.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout pipe")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr pipe")));
    let Some(status) = wait_or_kill(&mut child, timeout) else {
        return Ok(None);
    };
    if let Some(writer) = writer {
        writer.join().expect("stdin writer");
    }
    Ok(Some(Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }))
}

/// A copy of /etc, used as /etc inside private mount namespaces (the real one is never
/// touched); removed when dropped.
pub struct PrivateEtc {
    _scratch: ScratchDir,
    pub etc: PathBuf,
}

impl PrivateEtc {
    /// Copies /etc (`cp -a`, given a minute) into a fresh directory on tmpfs.
    pub fn copy(tag: &str) -> PrivateEtc {
        let scratch = ScratchDir::tmpfs(tag);
        // /etc holds secrets (shadow): its copy stays private to root.
        fs::set_permissions(scratch.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let etc = scratch.path().join("etc");
        let mut cp = Command::new("cp");
        cp.arg("-a").arg("/etc/.").arg(&etc);
        let limit = Duration::from_secs(60);
        let copied = output_within(&mut cp, limit, None)
            .unwrap_or_else(|e| panic!("cannot run {cp:?}: {e}"))
            .unwrap_or_else(|| panic!("{cp:?} did not finish within {limit:?}: hung"));
        assert!(copied.status.success(), "copy /etc: {}", describe(&copied));
        PrivateEtc {
            _scratch: scratch,
            etc,
        }
    }

    /// A copy where this machine can use one: None, after SKIPPED saying why, without root,
    /// without unshare(1), or where a bind mount in a private mount namespace fails.
    pub fn where_possible(tag: &str) -> Option<PrivateEtc> {
        if !is_root() {
            skip("system-wide tests need root (mount namespaces over a copy of /etc)");
            return None;
        }
        if !have_command("unshare") {
            skip("unshare(1) not installed");
            return None;
        }
        let etc = PrivateEtc::copy(tag);
        let limit = Duration::from_secs(60);
        let mut probe = etc.command("true", &[] as &[&str]);
        let probe = output_within(&mut probe, limit, None)
            .unwrap_or_else(|e| panic!("cannot run unshare: {e}"))
            .unwrap_or_else(|| panic!("unshare true did not finish within {limit:?}: hung"));
        if !probe.status.success() {
            skip(&format!(
                "cannot bind-mount /etc in a private mount namespace: {}",
                describe(&probe)
            ));
            return None;
        }
        Some(etc)
    }

    /// `program args` with the copy bind-mounted over /etc in a private mount namespace,
    /// without the test's LD_PRELOAD or CFRFIX_* settings.
    pub fn command<S: AsRef<OsStr>>(&self, program: impl AsRef<OsStr>, args: &[S]) -> Command {
        let mut command = clean("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc && exec \"$@\"")
            .arg(&self.etc)
            .arg(program)
            .args(args);
        command
    }

    /// A file in the copy.
    pub fn file(&self, name: &str) -> PathBuf {
        self.etc.join(name)
    }
}

/// Compiles C `sources` into `dir/name` with `cc -O2 -Wall -Wextra -Werror -pthread` and
/// `extra` arguments (libraries, flags); None, after SKIPPED, where there is no C compiler.
pub fn compile_c(dir: &Path, name: &str, sources: &[&OsStr], extra: &[&str]) -> Option<PathBuf> {
    if !have_command("cc") {
        skip("no C compiler (cc); .ci/run installs gcc");
        return None;
    }
    let out = dir.join(name);
    let mut cc = Command::new("cc");
    cc.args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&out)
        .args(sources)
        .args(extra);
    let limit = Duration::from_secs(120);
    let built = output_within(&mut cc, limit, None)
        .unwrap_or_else(|e| panic!("cannot run {cc:?}: {e}"))
        .unwrap_or_else(|| panic!("{cc:?} did not finish within {limit:?}"));
    assert!(built.status.success(), "{cc:?}: {}", describe(&built));
    Some(out)
}

//! Helpers shared by the integration tests: where the built library and tools are,
//! scratch directories on tmpfs (where the kernel's own copy_file_range works), a seeded
//! random number generator, and reporting.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// The preload library under test. `cargo test` builds the cdylib next to the tests.
pub fn cdylib() -> PathBuf {
    let p = profile_dir().join("libcfrfix.so");
    assert!(
        p.exists(),
        "{} missing: run `cargo build` for this profile first",
        p.display()
    );
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
    /// On tmpfs (`/dev/shm`), where the kernel copies natively.
    pub fn tmpfs(tag: &str) -> ScratchDir {
        ScratchDir::new_in("/dev/shm", tag)
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

/// Reports a skipped test. Written to the real stderr rather than with `eprintln!`,
/// which the test harness captures and hides for passing tests: a skip must show up
/// in the CI log.
pub fn skip(reason: &str) {
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {reason}");
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

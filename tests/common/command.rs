//! The `cfrfix` command of the checkout, run with the tools of the tests' own profile.

use super::{cdylib, clean, profile_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

pub fn script(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("scripts").join(name)
}

/// Where the library and the helpers of this test profile are (the library built if missing).
pub fn artefact_dir() -> PathBuf {
    cdylib();
    profile_dir()
}

/// `scripts/cfrfix` without the test's LD_PRELOAD and CFRFIX_* settings, using this profile's
/// artefacts (`CFRFIX_ARTEFACT_DIR`, so `cargo test` without --release tests its own build).
pub fn cfrfix() -> Command {
    let mut command = clean(script("cfrfix"));
    command.env("CFRFIX_ARTEFACT_DIR", artefact_dir());
    command
}

/// `stderr` without the command's warnings for ABIs this machine runs that have no build beside
/// this profile's (`cfrfix: warning: i386 programs run without cfrfix: build it: ...`): whether
/// they appear depends on whether scripts/build-targets ran. tests/abi/chain.rs asserts them,
/// and their absence with every ABI's build present.
pub fn without_abi_warnings(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            !(l.starts_with("cfrfix: warning: ") && l.contains(" programs run without cfrfix: "))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// A python3 that is a real interpreter (not a version-manager shim script) if possible.
pub fn python3() -> Option<String> {
    if Path::new("/usr/bin/python3").exists() {
        return Some("/usr/bin/python3".into());
    }
    super::have_command("python3").then(|| "python3".into())
}

/// Python that copies SRC to DST with os.copy_file_range and prints `copied N` or
/// `errno N`.
pub const PYTHON_COPY: &str = "
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
total = 0
try:
    while True:
        n = os.copy_file_range(src, dst, 1 << 20)
        if n == 0:
            break
        total += n
except OSError as e:
    print('errno', e.errno)
    sys.exit(1)
print('copied', total)
";

pub fn write_test_file(path: &Path, len: usize) -> Vec<u8> {
    let content: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(path, &content).expect("write test file");
    content
}

pub fn tmpfs_magic(path: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: statfs writes only into `buf`; `c_path` is NUL-terminated.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(c_path.as_ptr(), &mut buf) == 0 && buf.f_type as i64 == TMPFS_MAGIC
    }
}

pub fn run(command: &mut Command) -> std::process::Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Some shared library other than cfrfix, to stand for a preload the user already has.
pub fn other_preload_library() -> Option<&'static str> {
    [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// The tools and the native library of this profile, copied into `DIR/release/` with no
/// `DIR/<triple>/release/` beside them: a checkout without other ABIs' builds (no i686 one).
pub fn build_without_other_abis(dir: &Path) -> PathBuf {
    let release = dir.join("release");
    std::fs::create_dir_all(&release).expect("mkdir");
    for name in [
        "libcfrfix.so",
        "cfrfix-check",
        "cfrfix-check-copy",
        "cfrfix-inject",
    ] {
        std::fs::copy(artefact_dir().join(name), release.join(name)).expect("copy artefact");
    }
    release
}

/// The newest directory in the tests' cache of Debian packages (`CFRFIX_CACHE`, default
/// /var/cache/cfrfix, as scripts/build-targets fills it) named PREFIX... and holding MARKER.
pub fn newest_in_cache(prefix: &str, marker: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("CFRFIX_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/cfrfix"), PathBuf::from);
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                && p.join(marker).exists()
        })
        .collect();
    found.sort();
    found.pop()
}

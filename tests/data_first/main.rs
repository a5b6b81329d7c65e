//! Data first (issue 9): a copy through cfrfix never holds a byte the source did not, whatever
//! the filesystem says about holes, sizes or seekability, and it opens nothing of the source's.
//!
//! - `fuse`: a FUSE filesystem that lies (tests/fuse/lyingfs.c: SEEK_DATA/SEEK_HOLE both ways,
//!   `st_blocks`, opens by path, non-seekable files, failing `fstat`): every copy through the
//!   library equals what the program's own descriptor reads, under every trigger, engine, sparse
//!   setting and entry point; steps the kernel does not take never become the call's error;
//! - `allocation`: still sparse where the source is, never where it is not;
//! - `inotify`: a watcher sees the same events as for a plain read loop (no second open);
//! - `races`: a source rewritten, truncated, grown or punched between the library's system
//!   calls (deterministically, by a seccomp supervisor) yields only bytes it held at some moment;
//! - `review`: regressions from the adversarial review of this design.

#[path = "../calls/mod.rs"]
mod calls;
#[path = "../common/mod.rs"]
mod common;

mod allocation;
mod fuse;
mod inotify;
mod races;
mod review;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{ScratchDir, have_command, is_root, skip};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// A C helper from tests/c, compiled into `dir` (None, after SKIPPED, without a compiler).
fn c_helper(dir: &Path, name: &str) -> Option<PathBuf> {
    let source = Path::new(MANIFEST_DIR).join(format!("tests/c/{name}.c"));
    common::compile_c(dir, name, &[source.as_os_str()], &[])
}

/// A mounted tests/fuse/lyingfs over a fresh backing directory on tmpfs; unmounted (and its
/// server stopped) when dropped, before the directory is removed.
struct LyingFs {
    backing: PathBuf,
    mnt: PathBuf,
    server: Child,
    _dir: ScratchDir,
}

impl LyingFs {
    /// Mounts with `-o OPTION` for each option (e.g. `lie=holes`, `blocks=zero`); None, after
    /// SKIPPED, where FUSE cannot be used here.
    fn mount(tag: &str, options: &[&str]) -> Option<LyingFs> {
        if !is_root() || !Path::new("/dev/fuse").exists() {
            skip("FUSE tests need root and /dev/fuse");
            return None;
        }
        let dir = ScratchDir::tmpfs(tag);
        let flags = pkg_config_fuse3()?;
        let server_bin = common::compile_c(
            dir.path(),
            "lyingfs",
            &[Path::new(MANIFEST_DIR)
                .join("tests/fuse/lyingfs.c")
                .as_os_str()],
            &flags.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        let backing = dir.path().join("backing");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&backing).expect("backing dir");
        std::fs::create_dir(&mnt).expect("mount point");
        let mut server = Command::new(&server_bin);
        // -f: stay in the foreground (a child we can wait for); -s: one thread, one request at
        // a time, so the server's answers follow the program's calls in order.
        server.arg(&backing).arg(&mnt).args(["-f", "-s"]);
        for option in options {
            server.args(["-o", option]);
        }
        let server = server
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start lyingfs");
        let fs = LyingFs {
            backing,
            mnt,
            server,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs.mounted() {
            assert!(
                Instant::now() < deadline,
                "lyingfs did not mount within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(fs)
    }

    fn mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mnt = self.mnt.display().to_string();
        mounts.lines().any(|l| l.split(' ').nth(4) == Some(&mnt))
    }

    /// A file's path in the backing directory (what the server opens by path).
    fn backing(&self, name: &str) -> PathBuf {
        self.backing.join(name)
    }

    /// The same file seen through the mount.
    fn file(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }
}

impl Drop for LyingFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        if common::wait_or_kill(&mut self.server, Duration::from_secs(10)).is_none() {
            eprintln!("lyingfs did not exit after umount; killed");
        }
    }
}

/// `pkg-config --cflags --libs fuse3`, or None after SKIPPED.
fn pkg_config_fuse3() -> Option<Vec<String>> {
    if !have_command("pkg-config") {
        skip("pkg-config missing (.ci/run installs pkg-config and libfuse3-dev)");
        return None;
    }
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", "fuse3"])
        .output()
        .expect("run pkg-config");
    if !out.status.success() {
        skip("libfuse3-dev missing (.ci/run installs it)");
        return None;
    }
    Some(
        common::text(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect(),
    )
}

/// How the program's copy reaches the user-space copy.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// No injection: the kernel refuses by itself (EXDEV between filesystems).
    Natural,
    /// `cfrfix-inject ERRNO`.
    Injected(u32),
    /// `CFRFIX_MODE=always`: the kernel is not asked.
    Always,
}

const TRIGGERS: [Trigger; 5] = [
    Trigger::Natural,
    Trigger::Injected(95),
    Trigger::Injected(524),
    Trigger::Injected(18),
    Trigger::Always,
];

/// The engine and sparse settings every data-first case runs under.
const SETTINGS: [(&str, &str); 6] = [
    ("auto", "auto"),
    ("splice", "auto"),
    ("rw", "auto"),
    ("auto", "off"),
    ("splice", "off"),
    ("rw", "off"),
];

/// Runs `program args` through the shim under `trigger`, with extra environment `env`.
fn run_through_shim(
    program: &Path,
    args: &[&Path],
    trigger: Trigger,
    env: &[(&str, &str)],
) -> calls::Outcome {
    let mut all_env: Vec<(&str, &str)> = env.to_vec();
    if let Trigger::Always = trigger {
        all_env.push(("CFRFIX_MODE", "always"));
    }
    let setup = calls::Setup {
        inject: match trigger {
            Trigger::Injected(errno) => Some(errno),
            _ => None,
        },
        shim: true,
        env: &all_env,
    };
    let args: Vec<std::ffi::OsString> = args.iter().map(|a| a.as_os_str().to_owned()).collect();
    calls::run_program(
        &program.display().to_string(),
        setup,
        &args,
        "",
        Duration::from_secs(60),
    )
}

//! A fresh Debian root for one test: an overlay whose lower layer is the cached minimal root of
//! `scripts/debian-root` (never changed) and whose upper layer is a scratch directory, removed
//! with the test. Each command runs in a private mount namespace that mounts the overlay, the
//! host's /dev with a private /dev/shm, and /proc, then chroots: nothing is mounted on the host
//! and nothing is left in its /dev/shm.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{self, ScratchDir, describe, is_root, skip, text};

const LIMIT: Duration = Duration::from_secs(300);

pub struct DebianRoot {
    base: PathBuf,
    scratch: ScratchDir,
}

impl DebianRoot {
    /// None after SKIPPED where this machine cannot make one.
    pub fn new(test: &str) -> Option<DebianRoot> {
        if !is_root() {
            skip(&format!("{test}: needs root (chroot, mounts)"));
            return None;
        }
        for program in ["unshare", "chroot"] {
            if !common::have_command(program) {
                skip(&format!("{test}: {program} not installed"));
                return None;
            }
        }
        let script = crate::repo().join("scripts/debian-root");
        let mut command = Command::new(&script);
        let made = common::output_within(&mut command, Duration::from_secs(1200), None)
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
            .unwrap_or_else(|| panic!("{} hung", script.display()));
        match made.status.code() {
            Some(0) => {}
            Some(3) => {
                skip(&format!("{test}: {}", text(&made.stderr).trim()));
                return None;
            }
            _ => panic!("scripts/debian-root failed: {}", describe(&made)),
        }
        let base = PathBuf::from(text(&made.stdout).trim());
        let scratch = ScratchDir::rootfs("packages-root");
        for dir in ["upper", "work", "merged"] {
            std::fs::create_dir(scratch.path().join(dir)).expect("mkdir");
        }
        let root = DebianRoot { base, scratch };
        let probe = root.run("true");
        if !probe.status.success() {
            skip(&format!(
                "{test}: cannot mount an overlay root here: {}",
                describe(&probe)
            ));
            return None;
        }
        Some(root)
    }

    /// Where a file at `path` (absolute, inside the root) is created from the host: the
    /// overlay's upper layer, which the root sees.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.scratch
            .path()
            .join("upper")
            .join(path.trim_start_matches('/'))
    }

    /// Puts `contents` at `path` inside the root, with `mode`.
    pub fn put(&self, path: &str, contents: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let file = self.host_path(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, contents).expect("write into root");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// `sh -c SCRIPT` inside the root, as root, in a clean environment.
    pub fn run(&self, script: &str) -> Output {
        self.mounted(
            "exec chroot \"$2\" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
                 LC_ALL=C DEBIAN_FRONTEND=noninteractive HOME=/root /bin/sh -c \"$3\"",
            script,
        )
    }

    /// `sh -c SCRIPT` on this machine, with the root mounted at `$ROOT` (for `rpm --root`).
    pub fn run_outside(&self, script: &str) -> Output {
        self.mounted("ROOT=$2 exec sh -c \"$3\"", script)
    }

    /// Mounts the root in a private mount namespace, then runs `then` (a shell command that
    /// finds the root at $2 and the script at $3).
    fn mounted(&self, then: &str, script: &str) -> Output {
        let scratch = self.scratch.path();
        let mount = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.base.display(),
            scratch.join("upper").display(),
            scratch.join("work").display()
        );
        let merged = scratch.join("merged");
        let mut command = common::clean("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-ec"])
            .arg(format!(
                "mount -t overlay overlay -o \"$1\" \"$2\"
                 mount --rbind /dev \"$2/dev\"
                 mount -t tmpfs -o mode=1777 tmpfs \"$2/dev/shm\"
                 mount -t proc proc \"$2/proc\"
                 {then}"
            ))
            .arg("sh")
            .arg(&mount)
            .arg(&merged)
            .arg(script);
        common::output_within(&mut command, LIMIT, None)
            .unwrap_or_else(|e| panic!("cannot run unshare: {e}"))
            .unwrap_or_else(|| panic!("`{script}` in the root still running after {LIMIT:?}"))
    }

    /// A file's bytes inside the root (None: absent).
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let output = self.run(&format!("test -e '{path}' && cat '{path}'"));
        output.status.success().then_some(output.stdout)
    }

    pub fn base(&self) -> &Path {
        &self.base
    }
}

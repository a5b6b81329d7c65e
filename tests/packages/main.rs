//! The packages `scripts/build-packages` makes (issue 11, point 5), checked and installed the
//! way users install them:
//!
//! - `contents`: every .deb and .rpm of amd64/x86_64, i386/i686 and arm64/aarch64: names,
//!   architectures, Multi-Arch, dependencies, file lists, the files themselves (each
//!   architecture's own library and helpers), files shared between architectures identical;
//! - `debian`: the .debs installed with apt into a fresh Debian root (an overlay of the root
//!   `scripts/debian-root` made once with debootstrap), amd64 and i386 side by side:
//!   `cfrfix --check` runs, a 64-bit and a 32-bit program get the fix, nothing is left after
//!   removal, and a purge after `cfrfix-system-wide enable` restores /etc/ld.so.preload byte
//!   for byte;
//! - `debian_system_wide`: system-wide mode across an upgrade of both architectures (kept byte
//!   for byte), an i386 loader arriving after enable (a warning in apt's output, `status`
//!   fails) and the removal of one architecture's library (off for every ABI, said so);
//! - `rpm`: the .rpms installed with `rpm --root` into such a root, x86_64 and i686 side by
//!   side, and erased again; erasing the i686 library under system-wide mode turns it off.
//!
//! A test whose packages were not built prints SKIPPED (run scripts/build-packages); packages
//! older than the files they are made of fail (they would test what is no longer there).
//! Tests that need root, debootstrap, rpm or the Debian archive say SKIPPED when absent.

#[path = "../common/mod.rs"]
mod common;

mod contents;
mod debian;
mod debian_system_wide;
mod root;
mod rpm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use common::{describe, skip, text};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The packages' revision (Debian) and release (RPM).
pub const RELEASE: &str = "1";

/// A target the packages are built for, under its three names.
#[derive(Clone, Copy)]
pub struct Arch {
    pub triple: &'static str,
    pub debian: &'static str,
    pub rpm: &'static str,
    /// Debian's multiarch directory, and Fedora's library directory (where $LIB points).
    pub multiarch: &'static str,
    pub rpm_libdir: &'static str,
    /// ELF class (1: 32-bit, 2: 64-bit) and machine.
    pub class: u8,
    pub machine: u16,
}

pub const ARCHES: [Arch; 3] = [
    Arch {
        triple: "x86_64-unknown-linux-gnu",
        debian: "amd64",
        rpm: "x86_64",
        multiarch: "x86_64-linux-gnu",
        rpm_libdir: "/usr/lib64",
        class: 2,
        machine: 62,
    },
    Arch {
        triple: "i686-unknown-linux-gnu",
        debian: "i386",
        rpm: "i686",
        multiarch: "i386-linux-gnu",
        rpm_libdir: "/usr/lib",
        class: 1,
        machine: 3,
    },
    Arch {
        triple: "aarch64-unknown-linux-gnu",
        debian: "arm64",
        rpm: "aarch64",
        multiarch: "aarch64-linux-gnu",
        rpm_libdir: "/usr/lib64",
        class: 2,
        machine: 183,
    },
];

pub fn arch(debian: &str) -> Arch {
    *ARCHES
        .iter()
        .find(|a| a.debian == debian)
        .expect("known arch")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn deb(package: &str, arch: &Arch) -> PathBuf {
    repo().join(format!(
        "target/packages/deb/{package}_{VERSION}-{RELEASE}_{}.deb",
        arch.debian
    ))
}

pub fn rpm(package: &str, arch: &Arch) -> PathBuf {
    repo().join(format!(
        "target/packages/rpm/{package}-{VERSION}-{RELEASE}.{}.rpm",
        arch.rpm
    ))
}

/// The files packages are made of (what `scripts/build-packages` reads, besides the builds).
const SOURCES: &[&str] = &[
    "Cargo.toml",
    "scripts/cfrfix",
    "scripts/cfrfix-system-wide",
    "debian/prerm",
    "debian/libcfrfix/prerm",
    "debian/libcfrfix/postinst",
    "debian/libcfrfix/triggers",
    "debian/libcfrfix/rpm-postun",
    "docs/deployment.md",
    "docs/cfrfix.1",
    "README.md",
];

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// `files` if they all exist and are newer than what they are made of; None after SKIPPED when
/// one was not built. Panics on a stale package.
pub fn built(test: &str, files: &[PathBuf]) -> Option<()> {
    for file in files {
        let Some(made) = modified(file) else {
            skip(&format!(
                "{test}: {} was not built: run scripts/build-packages",
                file.display()
            ));
            return None;
        };
        for source in SOURCES {
            let source = repo().join(source);
            if modified(&source).is_some_and(|changed| changed > made) {
                panic!(
                    "{} is older than {}: run scripts/build-packages",
                    file.display(),
                    source.display()
                );
            }
        }
    }
    Some(())
}

/// Runs a host command (dpkg-deb, rpm) and returns its stdout; panics if it fails.
pub fn query(command: &mut Command) -> String {
    let output = common::output_within(command, std::time::Duration::from_secs(120), None)
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
        .unwrap_or_else(|| panic!("{command:?} hung"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        describe(&output)
    );
    text(&output.stdout)
}

/// Asserts that a command in a root succeeded.
pub fn ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", describe(output));
}

/// ELF class and machine of a file's bytes.
pub fn elf_kind(bytes: &[u8]) -> Option<(u8, u16)> {
    (bytes.get(..4)? == b"\x7fELF").then(|| (bytes[4], u16::from_le_bytes([bytes[18], bytes[19]])))
}

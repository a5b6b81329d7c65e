//! The `cfrfix --check` report. Its lines (documented in docs/deployment.md and the man page):
//!
//! ```text
//! cfrfix 0.1.0 --check: copy_file_range(2) of a 262144-byte test file
//! source: /dev/shm (tmpfs)
//! destination: /var/tmp (ext4)
//! kernel: 6.18.44
//! OpenZFS module: 2.2.3-1                 (only when a directory is on ZFS or the module is loaded)
//! verdict: known-bad: openzfs/zfs #15930, #15933
//!   #15930: ...
//! upgrade: makes cfrfix unnecessary: ...
//! kernel answer: failed with EXDEV (errno 18: Invalid cross-device link) after 0 of 262144 bytes
//! through cfrfix: copied 262144 bytes, contents verified
//!   log: cfrfix[123]: copy_file_range(...): kernel said EXDEV; copied 262144 bytes ...
//! settings: mode auto (default), errnos default, engine auto (default), sparse auto (default)
//! cfrfix already preloaded here:
//!   LD_PRELOAD: no
//!   /etc/ld.so.preload: no (the file does not exist)
//! library used for this check: /usr/$LIB/libcfrfix.so
//! result: works through cfrfix (the kernel alone refuses this copy: cfrfix is needed here)
//! ```

use crate::copy::{Outcome, TEST_FILE_BYTES, TestFiles, check_copy_program};
use crate::parse::{DEFAULT_FALLBACK_SET, Key};
use crate::{EXIT_CANNOT_TEST, EXIT_DOES_NOT_WORK, EXIT_WORKS, VERSION, preload, say, settings};
use crate::{system, zfs};
use std::path::Path;

/// LD_PRELOAD for the through-cfrfix copy: `library` first, the environment's own entries
/// after it, other cfrfix copies dropped (as the cfrfix command does for PROGRAM).
fn preload_value(library: &Path) -> String {
    let mut value = library.display().to_string();
    let existing = std::env::var("LD_PRELOAD").unwrap_or_default();
    for entry in existing.split([' ', ':']).filter(|e| !e.is_empty()) {
        let is_cfrfix = Path::new(entry)
            .file_name()
            .is_some_and(|n| n == "libcfrfix.so");
        if !is_cfrfix {
            value.push(':');
            value.push_str(entry);
        }
    }
    value
}

/// The OpenZFS lines, when a directory is on ZFS or the module is loaded.
fn zfs_section(directories: &[&Path], kernel: &str) {
    let version_file = system::zfs_version_file();
    let version = std::fs::read_to_string(&version_file).map(|v| v.trim().to_string());
    let on_zfs = directories.iter().any(|d| system::is_zfs(d));
    if !on_zfs && version.is_err() {
        return;
    }
    match &version {
        Ok(v) => say!("OpenZFS module: {v}"),
        Err(e) => say!(
            "OpenZFS module: unknown (cannot read {}: {})",
            version_file.display(),
            system::error_text(e)
        ),
    }
    for line in zfs::verdict_lines(version.as_deref().ok(), kernel) {
        say!("{line}");
    }
    if !on_zfs {
        say!(
            "  (neither directory is on ZFS: the verdict is about copies within ZFS on this machine)"
        );
    }
}

fn settings_line() {
    let resolved = settings::resolve();
    let parts: Vec<String> = [Key::Mode, Key::Errnos, Key::Engine, Key::Sparse]
        .into_iter()
        .map(|key| {
            // The default set is long; its members are in `cfrfix --status`.
            let default_set =
                resolved.settings.errnos.unwrap_or(DEFAULT_FALLBACK_SET) == DEFAULT_FALLBACK_SET;
            let value = if key == Key::Errnos && default_set {
                "the default set".to_string()
            } else {
                settings::value(&resolved.settings, key)
            };
            let source = settings::source(&resolved.sources, key);
            format!("{} {value} ({})", key.name(), source.describe())
        })
        .collect();
    say!("settings: {}", parts.join(", "));
    if !resolved.problems.is_empty() {
        say!(
            "  {} settings problem(s): run cfrfix --status",
            resolved.problems.len()
        );
    }
}

fn preload_state(library: &Path) {
    say!("cfrfix already preloaded here:");
    let ld_preload = preload::ld_preload_entries();
    if ld_preload.is_empty() {
        say!("  LD_PRELOAD:         no");
    }
    for entry in ld_preload {
        if preload::per_abi(&entry).native_problem.is_some() {
            say!("  LD_PRELOAD:         no: {entry} is listed but does not load (cfrfix --status)");
        } else {
            say!("  LD_PRELOAD:         yes ({entry})");
        }
    }
    match preload::system_wide_entries() {
        Err(why) => say!("  /etc/ld.so.preload: no ({why})"),
        Ok(entries) if entries.is_empty() => say!("  /etc/ld.so.preload: no"),
        Ok(entries) => say!("  /etc/ld.so.preload: yes ({})", entries.join(" ")),
    }
    say!("library used for this check: {}", library.display());
}

/// Runs the check; returns the exit code.
pub fn run(library: &Path, source_dir: &Path, destination_dir: &Path) -> u8 {
    let absolute = |dir: &Path| std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    say!("cfrfix {VERSION} --check: copy_file_range(2) of a {TEST_FILE_BYTES}-byte test file");
    say!(
        "source: {} ({})",
        absolute(source_dir).display(),
        system::filesystem_name(source_dir)
    );
    say!(
        "destination: {} ({})",
        absolute(destination_dir).display(),
        system::filesystem_name(destination_dir)
    );
    let kernel = system::kernel_release();
    say!("kernel: {kernel}");
    zfs_section(&[source_dir, destination_dir], &kernel);

    let cannot_test = |why: &str| {
        say!("result: cannot test here ({why})");
        EXIT_CANNOT_TEST
    };
    let kernel_outcome = match TestFiles::create(source_dir, destination_dir) {
        Ok(files) => files.kernel_copy(),
        Err(why) => {
            say!("kernel answer: not tested");
            say!("through cfrfix: not tested");
            return cannot_test(&why);
        }
    };
    say!("kernel answer: {}", kernel_outcome.describe());

    let probe = match check_copy_program() {
        Ok(probe) => probe,
        Err(why) => return cannot_test(&why),
    };
    let through = TestFiles::create(source_dir, destination_dir)
        .and_then(|files| files.copy_through(&probe, &preload_value(library)));
    let through = match through {
        Ok(through) => through,
        Err(why) => {
            say!("through cfrfix: not tested");
            return cannot_test(&why);
        }
    };
    if through.loaded.is_none() {
        // The copy ran without cfrfix: whatever it did says nothing about cfrfix.
        say!("through cfrfix: not tested (the library did not load)");
        for line in &through.log {
            say!("  stderr: {line}");
        }
    } else {
        say!("through cfrfix: {}", through.outcome.describe());
        for line in &through.log {
            say!("  log: {line}");
        }
    }
    settings_line();
    preload_state(library);

    if through.loaded.is_none() {
        return cannot_test(&format!("the library does not load: {}", library.display()));
    }
    // A full destination (or quota) stops the kernel's copy and cfrfix's alike, after what
    // fits: that says nothing about copy_file_range.
    for outcome in [&kernel_outcome, &through.outcome] {
        let full = match outcome {
            Outcome::Failed {
                errno: libc::ENOSPC,
                ..
            } => "no space left",
            Outcome::Failed {
                errno: libc::EDQUOT,
                ..
            } => "disk quota exceeded",
            _ => continue,
        };
        return cannot_test(&format!(
            "{full} in {}: free some space and check again",
            absolute(destination_dir).display()
        ));
    }

    let kernel_works = kernel_outcome.works();
    match (&through.outcome, kernel_works) {
        (Outcome::Copied, false) => {
            say!(
                "result: works through cfrfix (the kernel alone refuses this copy: cfrfix is needed here)"
            );
            EXIT_WORKS
        }
        (Outcome::Copied, true) => {
            say!(
                "result: works through cfrfix (the kernel copies by itself here: cfrfix is not \
                 needed for these two directories)"
            );
            EXIT_WORKS
        }
        _ => {
            say!("result: does NOT work through cfrfix");
            EXIT_DOES_NOT_WORK
        }
    }
}

//! `cfrfix --check` (issue 10): a coherent report in every state, distinct exit codes (0 works
//! through cfrfix, 1 does not, 2 usage, 3 cannot test here), nothing left behind however it
//! ends, and the OpenZFS verdict (tested with a stand-in sysfs and kernel release:
//! `CFRFIX_CHECK_SYSFS`, `CFRFIX_CHECK_KERNEL_RELEASE`).

mod common;

use common::command::{cfrfix, run, tmpfs_magic};
use common::{ScratchDir, describe, skip, text};
use std::fs;
use std::path::Path;
use std::process::Output;

/// The line of `stdout` that starts with `prefix`.
fn line<'a>(output: &'a Output, stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line:\n{}", describe(output)))
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir).expect("read_dir").collect();
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

#[test]
fn check_names_exdev_from_tmpfs_to_the_root_filesystem() {
    let source = ScratchDir::tmpfs("check-src");
    let destination = ScratchDir::rootfs("check-dst");
    if tmpfs_magic(destination.path()) {
        return skip("the rootfs scratch directory is on tmpfs: no natural EXDEV");
    }
    let output = run(cfrfix()
        .arg("--check")
        .arg(source.path())
        .arg(destination.path()));
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let stdout = text(&output.stdout);
    assert!(
        line(&output, &stdout, "cfrfix ").contains("--check"),
        "{report}"
    );
    assert!(
        line(&output, &stdout, "source: ").ends_with("(tmpfs)"),
        "{report}"
    );
    assert!(!line(&output, &stdout, "destination: ").ends_with("(tmpfs)"));
    assert!(line(&output, &stdout, "kernel: ").len() > "kernel: ".len());
    assert!(
        line(&output, &stdout, "kernel answer: ").contains("EXDEV (errno 18"),
        "{report}"
    );
    assert_eq!(
        line(&output, &stdout, "through cfrfix: "),
        "through cfrfix: copied 262144 bytes, contents verified"
    );
    assert!(
        line(&output, &stdout, "  log: ").contains("kernel said EXDEV"),
        "the fallback log line:\n{report}"
    );
    assert!(
        line(&output, &stdout, "settings: ").starts_with("settings: mode auto (default)"),
        "{report}"
    );
    assert!(stdout.contains("  LD_PRELOAD:"), "{report}");
    assert!(stdout.contains("  /etc/ld.so.preload:"), "{report}");
    assert!(
        line(&output, &stdout, "result: ")
            .starts_with("result: works through cfrfix (the kernel alone refuses"),
        "{report}"
    );
    assert!(!stdout.contains("OpenZFS") || Path::new("/sys/module/zfs").exists());
    assert_empty(source.path());
    assert_empty(destination.path());
}

#[test]
fn check_reports_a_native_copy_within_tmpfs() {
    let dir = ScratchDir::tmpfs("check-same");
    let output = run(cfrfix().arg("--check").arg(dir.path()));
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let stdout = text(&output.stdout);
    assert_eq!(
        line(&output, &stdout, "kernel answer: "),
        "kernel answer: copied 262144 bytes, contents verified"
    );
    assert!(
        !stdout.contains("  log: "),
        "no fallback expected:\n{report}"
    );
    assert!(
        line(&output, &stdout, "result: ").contains("cfrfix is not needed"),
        "{report}"
    );
    assert_empty(dir.path());
}

#[test]
fn check_fails_when_cfrfix_is_switched_off() {
    let source = ScratchDir::tmpfs("check-off-src");
    let destination = ScratchDir::rootfs("check-off-dst");
    if tmpfs_magic(destination.path()) {
        return skip("the rootfs scratch directory is on tmpfs: no natural EXDEV");
    }
    for (env, option) in [
        (Some("off"), None),
        (None, Some("off")),
        (Some(" Off "), None),
    ] {
        let mut command = cfrfix();
        if let Some(value) = env {
            command.env("CFRFIX_MODE", value);
        }
        if let Some(value) = option {
            command.args(["--mode", value]);
        }
        let output = run(command
            .arg("--check")
            .arg(source.path())
            .arg(destination.path()));
        let report = describe(&output);
        assert_eq!(output.status.code(), Some(1), "{report}");
        let stdout = text(&output.stdout);
        assert!(
            line(&output, &stdout, "settings: ")
                .starts_with("settings: mode off (environment: CFRFIX_MODE)"),
            "{report}"
        );
        assert_eq!(
            line(&output, &stdout, "result: "),
            "result: does NOT work through cfrfix"
        );
    }
}

#[test]
fn check_cannot_test_where_it_cannot_create_files() {
    let scratch = ScratchDir::tmpfs("check-cannot");
    // /proc takes no new files, root's included.
    let output = run(cfrfix().args(["--check", "/proc"]).arg(scratch.path()));
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(3), "{report}");
    let stdout = text(&output.stdout);
    assert_eq!(
        line(&output, &stdout, "kernel answer: "),
        "kernel answer: not tested"
    );
    assert!(
        line(&output, &stdout, "result: ")
            .starts_with("result: cannot test here (cannot create a file in /proc"),
        "{report}"
    );
    assert_empty(scratch.path());
}

#[test]
fn check_leaves_nothing_when_its_output_is_cut_short() {
    let source = ScratchDir::tmpfs("check-head-src");
    let destination = ScratchDir::rootfs("check-head-dst");
    let tmp = ScratchDir::tmpfs("check-head-tmp");
    for lines in 1..=4 {
        let mut piped = std::process::Command::new("sh");
        piped
            .env("TMPDIR", tmp.path())
            .env("CFRFIX_ARTEFACT_DIR", common::command::artefact_dir())
            .env_remove("LD_PRELOAD")
            .arg("-c")
            .arg(format!("\"$0\" --check \"$1\" \"$2\" | head -n {lines}"))
            .arg(common::command::script("cfrfix"))
            .arg(source.path())
            .arg(destination.path());
        let output = run(&mut piped);
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(text(&output.stdout).lines().count(), lines);
        assert_empty(source.path());
        assert_empty(destination.path());
        assert_empty(tmp.path());
    }
}

/// A stand-in sysfs with `module/zfs/version`.
fn fake_sysfs(version: &str) -> ScratchDir {
    let sysfs = ScratchDir::tmpfs("check-sysfs");
    fs::create_dir_all(sysfs.path().join("module/zfs")).expect("mkdir");
    fs::write(
        sysfs.path().join("module/zfs/version"),
        format!("{version}\n"),
    )
    .expect("write");
    sysfs
}

#[test]
fn check_gives_the_openzfs_verdict() {
    let dir = ScratchDir::tmpfs("check-zfs");
    // (module version, kernel release, verdict line, upgrade line prefix)
    let cases = [
        (
            "2.2.3-1",
            "6.8.0-31-generic",
            "verdict: known-bad: openzfs/zfs #15930, #15933",
            "upgrade: makes cfrfix unnecessary: ",
        ),
        (
            "2.2.2-1",
            "6.8.12",
            "verdict: known-bad: openzfs/zfs #15930",
            "upgrade: makes cfrfix unnecessary: ",
        ),
        (
            "2.2.0-1",
            "6.6.1",
            "verdict: known-bad: openzfs/zfs #15526",
            "upgrade: recommended: ",
        ),
        (
            "2.3.2-2~bpo12+2",
            "6.12.48+deb13-amd64",
            "verdict: not known-bad: no known copy_file_range or hole-reporting bug in OpenZFS 2.3.2 on Linux 6.12",
            "upgrade: not needed: ",
        ),
        (
            "2.2.4-1",
            "6.8.0",
            "verdict: not known-bad: no known copy_file_range or hole-reporting bug in OpenZFS 2.2.4 on Linux 6.8",
            "upgrade: not needed: ",
        ),
    ];
    for (version, kernel, verdict, upgrade) in cases {
        let sysfs = fake_sysfs(version);
        let output = run(cfrfix()
            .env("CFRFIX_CHECK_SYSFS", sysfs.path())
            .env("CFRFIX_CHECK_KERNEL_RELEASE", kernel)
            .arg("--check")
            .arg(dir.path()));
        let report = describe(&output);
        assert_eq!(output.status.code(), Some(0), "{report}");
        let stdout = text(&output.stdout);
        assert_eq!(
            line(&output, &stdout, "kernel: "),
            format!("kernel: {kernel}")
        );
        assert_eq!(
            line(&output, &stdout, "OpenZFS module: "),
            format!("OpenZFS module: {version}")
        );
        assert_eq!(line(&output, &stdout, "verdict: "), verdict, "{report}");
        assert!(
            line(&output, &stdout, "upgrade: ").starts_with(upgrade),
            "{report}"
        );
        // Every issue named in the verdict is explained on a line of its own.
        for issue in verdict.split(' ').filter(|w| w.starts_with('#')) {
            let issue = issue.trim_end_matches(',');
            assert!(
                stdout.contains(&format!("\n  {issue}: ")),
                "{issue} unexplained: {report}"
            );
        }
    }
    // Not a release the table knows: a development snapshot, a release candidate, a newer
    // series. The verdict is unknown, whatever the kernel.
    for (version, why) in [
        ("2.2.99-1", "a development build"),
        ("2.2.0-rc4", "a release candidate"),
        ("2.4.0-1", "newer than the releases the table knows"),
    ] {
        let sysfs = fake_sysfs(version);
        let output = run(cfrfix()
            .env("CFRFIX_CHECK_SYSFS", sysfs.path())
            .env("CFRFIX_CHECK_KERNEL_RELEASE", "6.8.0-31-generic")
            .arg("--check")
            .arg(dir.path()));
        let stdout = text(&output.stdout);
        let verdict = line(&output, &stdout, "verdict: ");
        assert!(
            verdict.starts_with("verdict: unknown: ") && verdict.contains(why),
            "{version}: {}",
            describe(&output)
        );
        assert_eq!(line(&output, &stdout, "upgrade: "), "upgrade: unknown");
    }
    // No module (this machine, unless it has ZFS): no OpenZFS lines on a non-ZFS directory.
    if !Path::new("/sys/module/zfs").exists() {
        let output = run(cfrfix().arg("--check").arg(dir.path()));
        assert!(
            !text(&output.stdout).contains("OpenZFS"),
            "{}",
            describe(&output)
        );
    }
}

/// `cfrfix --check SRC DST` with DST a tmpfs of `size` mounted in a private mount namespace.
fn check_into_small_tmpfs(source: &Path, size: &str) -> Option<Output> {
    if !common::is_root() || !common::have_command("unshare") {
        skip("needs root and unshare (a small tmpfs in a private mount namespace)");
        return None;
    }
    let mount_point = ScratchDir::tmpfs("check-full-mnt");
    let mut command = common::clean("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=\"$2\" tmpfs \"$1\" && exec \"$0\" --check \"$3\" \"$1\"")
        .arg(common::command::script("cfrfix"))
        .arg(mount_point.path())
        .arg(size)
        .arg(source)
        .env("CFRFIX_ARTEFACT_DIR", common::command::artefact_dir());
    Some(run(&mut command))
}

#[test]
fn check_cannot_test_a_destination_that_fills_up() {
    let source = ScratchDir::tmpfs("check-full-src");
    // Room for half the test file: both copies stop with ENOSPC after what fits.
    let Some(output) = check_into_small_tmpfs(source.path(), "128k") else {
        return;
    };
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(3), "{report}");
    let stdout = text(&output.stdout);
    assert!(
        line(&output, &stdout, "through cfrfix: ").contains("ENOSPC"),
        "{report}"
    );
    assert!(
        line(&output, &stdout, "result: ")
            .starts_with("result: cannot test here (no space left in "),
        "{report}"
    );
    assert_empty(source.path());
}

/// `chattr +a DIR` (files can be created in it, never removed); false where unsupported.
fn append_only(dir: &Path, on: bool) -> bool {
    common::have_command("chattr")
        && std::process::Command::new("chattr")
            .arg(if on { "+a" } else { "-a" })
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
}

#[test]
fn check_leaves_nothing_in_an_append_only_directory() {
    let dir = ScratchDir::tmpfs("check-append-only");
    if !common::is_root() || !append_only(dir.path(), true) {
        return skip("chattr +a needs root and a filesystem with the flag (tmpfs since 6.0)");
    }
    let check = |no_tmpfile: bool| {
        let mut command = cfrfix();
        if no_tmpfile {
            command.env("CFRFIX_CHECK_NO_TMPFILE", "1");
        }
        run(command.arg("--check").arg(dir.path()))
    };
    // O_TMPFILE: the test files never have a name.
    let with_tmpfile = check(false);
    // Without O_TMPFILE (the fallback, forced): refused before a file is made.
    let without = check(true);
    let left: Vec<_> = fs::read_dir(dir.path()).expect("read_dir").collect();
    assert!(append_only(dir.path(), false), "chattr -a");
    assert!(
        left.is_empty(),
        "left in an append-only directory: {left:?}"
    );
    assert_eq!(
        with_tmpfile.status.code(),
        Some(0),
        "{}",
        describe(&with_tmpfile)
    );
    let report = describe(&without);
    assert_eq!(without.status.code(), Some(3), "{report}");
    assert!(
        text(&without.stdout).contains("is append-only (chattr +a) and has no O_TMPFILE"),
        "{report}"
    );
    // The fallback itself: a named file, removed at once, where removing works (across
    // filesystems, so that the log lines name the files).
    let source = ScratchDir::tmpfs("check-no-tmpfile-src");
    let destination = ScratchDir::rootfs("check-no-tmpfile-dst");
    let output = run(cfrfix()
        .env("CFRFIX_CHECK_NO_TMPFILE", "1")
        .arg("--check")
        .arg(source.path())
        .arg(destination.path()));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    if !tmpfs_magic(destination.path()) {
        assert!(
            line(&output, &stdout, "  log: ").contains(".cfrfix-check-"),
            "the log names the fallback's files: {}",
            describe(&output)
        );
    }
    assert!(
        !stdout.contains("settings problem"),
        "{}",
        describe(&output)
    );
    assert_empty(source.path());
    assert_empty(destination.path());
}

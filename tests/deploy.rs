//! Deployment: the `cfrfix` command, install/uninstall, and system-wide mode.
//!
//! System-wide mode is tried for real, but never on this machine's /etc: each step runs in
//! a private mount namespace (`unshare -m`) where a copy of /etc is bind-mounted over /etc.
//! A copy of the whole directory rather than one file bind-mounted over /etc/ld.so.preload,
//! because cfrfix replaces that file atomically (rename), and rename(2) onto a mount point
//! fails with EBUSY. The copy lives in a mode-0700 directory on /dev/shm and is removed at
//! the end.
//!
//! A test that needs something this machine lacks (root, unshare, gcc, python3) prints
//! "SKIPPED: reason" and returns.

mod common;

use common::{PrivateEtc, ScratchDir, describe, have_command, is_root, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const EOPNOTSUPP: i32 = 95;
const ENOSYS: i32 = 38;

fn script(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("scripts").join(name)
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// A python3 that is a real interpreter (not a version-manager shim script) if possible.
fn python3() -> Option<String> {
    if Path::new("/usr/bin/python3").exists() {
        return Some("/usr/bin/python3".into());
    }
    have_command("python3").then(|| "python3".into())
}

/// Python that copies SRC to DST with os.copy_file_range and prints `copied N` or
/// `errno N`.
const PYTHON_COPY: &str = "
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

fn write_test_file(path: &Path, len: usize) -> Vec<u8> {
    let content: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    fs::write(path, &content).expect("write test file");
    content
}

fn tmpfs_magic(path: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: statfs writes only into `buf`; `c_path` is NUL-terminated.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(c_path.as_ptr(), &mut buf) == 0 && buf.f_type as i64 == TMPFS_MAGIC
    }
}

// ---------------------------------------------------------------------------------
// The cfrfix command from the checkout.

fn cfrfix() -> Command {
    let mut command = Command::new(script("cfrfix"));
    command.env_remove("LD_PRELOAD");
    command
}

/// Some shared library other than cfrfix, to stand for a preload the user already has.
fn other_preload_library() -> Option<&'static str> {
    [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

#[test]
fn wrapper_prepends_to_an_existing_ld_preload() {
    let Some(other) = other_preload_library() else {
        return skip("no libm.so.6 found to stand for an existing preload");
    };
    let output =
        run(cfrfix()
            .env("LD_PRELOAD", other)
            .args(["sh", "-c", "printf %s \"$LD_PRELOAD\""]));
    assert!(output.status.success(), "{}", describe(&output));
    let preload = text(&output.stdout);
    let entries: Vec<&str> = preload.split(':').collect();
    assert_eq!(entries.len(), 2, "LD_PRELOAD={preload}");
    assert!(
        entries[0].ends_with("/libcfrfix.so"),
        "LD_PRELOAD={preload}"
    );
    assert!(Path::new(entries[0]).is_file(), "LD_PRELOAD={preload}");
    assert_eq!(entries[1], other, "the existing entry must be kept");
    assert!(output.stderr.is_empty(), "{}", describe(&output));
}

#[test]
fn wrapper_does_not_duplicate_itself() {
    let Some(other) = other_preload_library() else {
        return skip("no libm.so.6 found to stand for an existing preload");
    };
    let library = common::profile_dir().join("libcfrfix.so");
    let existing = format!("{} {other}", library.display());
    let output =
        run(cfrfix()
            .env("LD_PRELOAD", &existing)
            .args(["sh", "-c", "printf %s \"$LD_PRELOAD\""]));
    assert!(output.status.success(), "{}", describe(&output));
    let preload = text(&output.stdout);
    assert_eq!(
        preload.matches("libcfrfix.so").count(),
        1,
        "LD_PRELOAD={preload}"
    );
    assert!(
        preload.ends_with(&format!(":{other}")),
        "LD_PRELOAD={preload}"
    );
}

#[test]
fn wrapper_sets_log_and_mode_options() {
    let output = run(cfrfix().args([
        "--log",
        "stderr",
        "--mode=always",
        "--",
        "sh",
        "-c",
        "printf '%s %s' \"$CFRFIX_LOG\" \"$CFRFIX_MODE\"",
    ]));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "stderr always");
}

#[test]
fn wrapper_makes_a_refused_copy_work() {
    let Some(python) = python3() else {
        return skip("python3 not installed");
    };
    let dir = ScratchDir::tmpfs("deploy-wrap");
    let content = write_test_file(&dir.path().join("src"), 100_000);
    let copy = |with_cfrfix: bool| {
        let mut command = Command::new(INJECT);
        command.env_remove("LD_PRELOAD").arg("EOPNOTSUPP");
        if with_cfrfix {
            command.arg(script("cfrfix")).args(["--log", "stderr"]);
        }
        run(command
            .args([python.as_str(), "-c", PYTHON_COPY])
            .arg(dir.path().join("src"))
            .arg(dir.path().join("dst")))
    };
    let without = copy(false);
    assert_eq!(
        text(&without.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "{}",
        describe(&without)
    );
    let with = copy(true);
    assert!(with.status.success(), "{}", describe(&with));
    assert!(
        text(&with.stderr).contains("EOPNOTSUPP"),
        "{}",
        describe(&with)
    );
    assert_eq!(fs::read(dir.path().join("dst")).expect("dst"), content);
}

#[test]
fn version_matches_cargo_toml() {
    let output = run(cfrfix().arg("--version"));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("cfrfix {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_shows_usage_and_examples() {
    let output = run(cfrfix().arg("--help"));
    assert!(output.status.success(), "{}", describe(&output));
    let help = text(&output.stdout);
    for expected in ["Usage: cfrfix", "--check", "--enosys", "Examples:"] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

#[test]
fn bad_usage_exits_2_with_a_message() {
    for args in [
        vec!["--no-such-option"],
        vec![],
        vec!["--enosys"],
        vec!["--mode", "sometimes", "true"],
        vec!["--log", "relative/path", "true"],
        vec!["--check", "/", "/", "/"],
    ] {
        let output = run(cfrfix().args(&args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).starts_with("cfrfix: "),
            "{args:?}: {}",
            describe(&output)
        );
    }
}

// ---------------------------------------------------------------------------------
// --check

#[test]
fn check_names_exdev_from_tmpfs_to_the_root_filesystem() {
    let source = ScratchDir::tmpfs("deploy-check-src");
    let destination = ScratchDir::rootfs("deploy-check-dst");
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
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line:\n{report}"))
            .to_string()
    };
    assert!(line("kernel:").contains("EXDEV (errno 18"), "{report}");
    assert!(
        line("through cfrfix:").contains("contents verified"),
        "{report}"
    );
    assert!(
        stdout.contains("kernel said EXDEV"),
        "the fallback log line:\n{report}"
    );
    assert!(stdout.contains("LD_PRELOAD:"), "{report}");
    assert!(stdout.contains("/etc/ld.so.preload:"), "{report}");
    for dir in [source.path(), destination.path()] {
        let left: Vec<_> = fs::read_dir(dir).expect("read_dir").collect();
        assert!(
            left.is_empty(),
            "--check left files in {}: {left:?}",
            dir.display()
        );
    }
}

#[test]
fn check_reports_a_native_copy_within_tmpfs() {
    let dir = ScratchDir::tmpfs("deploy-check-same");
    let output = run(cfrfix().arg("--check").arg(dir.path()));
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("kernel:         copied 262144 bytes"),
        "{report}"
    );
    assert!(
        !stdout.contains("kernel said"),
        "no fallback expected:\n{report}"
    );
}

#[test]
fn check_fails_when_cfrfix_is_switched_off() {
    let source = ScratchDir::tmpfs("deploy-check-off-src");
    let destination = ScratchDir::rootfs("deploy-check-off-dst");
    if tmpfs_magic(destination.path()) {
        return skip("the rootfs scratch directory is on tmpfs: no natural EXDEV");
    }
    let output = run(cfrfix()
        .env("CFRFIX_MODE", "off")
        .arg("--check")
        .arg(source.path())
        .arg(destination.path()));
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(text(&output.stdout).contains("CFRFIX_MODE=off"), "{report}");
}

// ---------------------------------------------------------------------------------
// --enosys

/// A static C program: copy_file_range(argv[1] -> argv[2]) through the raw system call, as
/// a static binary or a Go program does it; prints `copied N` or `errno N`.
const STATIC_COPY_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) return 2;
    long n = syscall(SYS_copy_file_range, in, NULL, out, NULL, 65536L, 0);
    if (n < 0) { printf("errno %d\n", errno); return 1; }
    printf("copied %ld\n", n);
    return 0;
}
"#;

fn build_static_copy_program(dir: &Path) -> Option<PathBuf> {
    if !have_command("gcc") {
        return None;
    }
    let source = dir.join("static-copy.c");
    let program = dir.join("static-copy");
    fs::write(&source, STATIC_COPY_C).expect("write C source");
    let built = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .ok()?;
    built.status.success().then_some(program)
}

#[test]
fn enosys_makes_a_static_program_see_enosys() {
    let dir = ScratchDir::tmpfs("deploy-enosys-static");
    let Some(program) = build_static_copy_program(dir.path()) else {
        return skip("gcc -static cannot build a static program here (gcc or libc.a missing)");
    };
    write_test_file(&dir.path().join("src"), 4096);
    let args = [dir.path().join("src"), dir.path().join("dst")];

    let plain = run(Command::new(&program).args(&args));
    assert_eq!(
        text(&plain.stdout).trim(),
        "copied 4096",
        "{}",
        describe(&plain)
    );

    let under_enosys = run(cfrfix().arg("--enosys").arg(&program).args(&args));
    assert_eq!(
        text(&under_enosys.stdout).trim(),
        format!("errno {ENOSYS}"),
        "{}",
        describe(&under_enosys)
    );
}

#[test]
fn enosys_makes_python_see_enosys() {
    let Some(python) = python3() else {
        return skip("python3 not installed");
    };
    let dir = ScratchDir::tmpfs("deploy-enosys-python");
    write_test_file(&dir.path().join("src"), 4096);
    let output = run(cfrfix()
        .args(["--enosys", &python, "-c", PYTHON_COPY])
        .arg(dir.path().join("src"))
        .arg(dir.path().join("dst")));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("errno {ENOSYS}"),
        "{}",
        describe(&output)
    );
}

#[test]
fn enosys_lets_cp_copy_by_itself() {
    let dir = ScratchDir::tmpfs("deploy-enosys-cp");
    let content = write_test_file(&dir.path().join("src"), 300_000);
    let output = run(cfrfix()
        .args(["--enosys", "cp", "--reflink=never"])
        .arg(dir.path().join("src"))
        .arg(dir.path().join("dst")));
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(fs::read(dir.path().join("dst")).expect("dst"), content);
}

// ---------------------------------------------------------------------------------
// install.sh / uninstall.sh into a temporary prefix

/// What install.sh puts under PREFIX, with the mode each file must have.
const INSTALLED_FILES: [(&str, u32); 8] = [
    ("bin/cfrfix", 0o755),
    ("lib/cfrfix/libcfrfix.so", 0o644),
    ("lib/cfrfix/cfrfix-check", 0o755),
    ("lib/cfrfix/cfrfix-inject", 0o755),
    ("lib/cfrfix/cfrfix-system-wide", 0o755),
    ("share/doc/cfrfix/deployment.md", 0o644),
    ("share/doc/cfrfix/cfrfix.conf.example", 0o644),
    ("share/doc/cfrfix/systemd-dropin-cfrfix.conf", 0o644),
];

fn read_if_exists(path: &str) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

#[test]
fn install_and_uninstall_into_a_temporary_prefix() {
    let scratch = ScratchDir::rootfs("deploy-install");
    let prefix = scratch.path().join("prefix");
    let preload_before = read_if_exists("/etc/ld.so.preload");

    let install = run(Command::new(script("install.sh"))
        .arg("--prefix")
        .arg(&prefix));
    assert!(install.status.success(), "{}", describe(&install));
    for (file, mode) in INSTALLED_FILES {
        let path = prefix.join(file);
        let metadata = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            metadata.permissions().mode() & 0o7777,
            mode,
            "{}",
            path.display()
        );
    }

    // The installed command finds the installed library and helpers, not the checkout's.
    let installed = prefix.join("bin/cfrfix");
    let printed = run(Command::new(&installed).arg("--print-library"));
    assert_eq!(
        text(&printed.stdout).trim(),
        prefix
            .join("lib/cfrfix/libcfrfix.so")
            .to_str()
            .expect("utf-8"),
        "{}",
        describe(&printed)
    );
    let tmpfs = ScratchDir::tmpfs("deploy-install-check");
    let check = run(Command::new(&installed)
        .env_remove("LD_PRELOAD")
        .arg("--check")
        .arg(tmpfs.path()));
    assert!(check.status.success(), "{}", describe(&check));
    let enosys = run(Command::new(&installed).args(["--enosys", "true"]));
    assert!(enosys.status.success(), "{}", describe(&enosys));

    let uninstall = run(Command::new(script("uninstall.sh"))
        .arg("--prefix")
        .arg(&prefix));
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
    for (file, _) in INSTALLED_FILES {
        assert!(!prefix.join(file).exists(), "{file} left behind");
    }
    assert!(
        !prefix.join("lib/cfrfix").exists(),
        "lib/cfrfix left behind"
    );
    assert!(
        !prefix.join("share/doc/cfrfix").exists(),
        "share/doc/cfrfix left behind"
    );
    assert_eq!(
        read_if_exists("/etc/ld.so.preload"),
        preload_before,
        "a plain install must not touch /etc/ld.so.preload"
    );
}

#[test]
fn install_rejects_unknown_arguments() {
    let output = run(Command::new(script("install.sh")).arg("--frobnicate"));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let output = run(Command::new(script("uninstall.sh")).arg("--frobnicate"));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

// ---------------------------------------------------------------------------------
// System-wide mode in a private mount namespace

/// A copy of /etc for one test; None (after printing SKIPPED) when this machine cannot do it.
fn private_etc(tag: &str) -> Option<PrivateEtc> {
    if !is_root() {
        skip("system-wide tests need root (mount namespaces, /etc)");
        return None;
    }
    if !have_command("unshare") {
        skip("unshare(1) not installed");
        return None;
    }
    let private = PrivateEtc::copy(tag);
    let probe = run(&mut private.command("true", &[] as &[&str]));
    if !probe.status.success() {
        skip(&format!(
            "cannot bind-mount in a private mount namespace: {}",
            describe(&probe)
        ));
        return None;
    }
    Some(private)
}

/// Ordinary programs must behave exactly as without a preload: same output, empty stderr.
fn assert_ordinary_programs_unaffected(etc: &PrivateEtc) {
    for (program, args, stdout) in [
        ("/bin/true", Vec::<&str>::new(), ""),
        ("/bin/echo", vec!["hello"], "hello\n"),
        ("sh", vec!["-c", "echo from-sh"], "from-sh\n"),
        ("ls", vec!["-d", "/"], "/\n"),
    ] {
        let output = run(&mut etc.command(program, &args));
        assert!(output.status.success(), "{program}: {}", describe(&output));
        assert_eq!(
            text(&output.stdout),
            stdout,
            "{program}: {}",
            describe(&output)
        );
        assert!(
            output.stderr.is_empty(),
            "{program} printed on stderr: {}",
            describe(&output)
        );
    }
}

/// `cfrfix-inject EOPNOTSUPP python3 PYTHON_COPY` inside the namespace, no LD_PRELOAD.
fn injected_python_copy(etc: &PrivateEtc, dir: &Path, extra_env: &[(&str, &str)]) -> Output {
    let python = python3().expect("python3 checked by the caller");
    let source = dir.join("src");
    let destination = dir.join("dst");
    let _ = fs::remove_file(&destination);
    let mut command = etc.command(
        INJECT,
        &[
            "EOPNOTSUPP",
            &python,
            "-c",
            PYTHON_COPY,
            source.to_str().expect("utf-8"),
            destination.to_str().expect("utf-8"),
        ],
    );
    command.envs(extra_env.iter().copied());
    run(&mut command)
}

/// `bash scripts/install.sh --prefix PREFIX --system-wide` inside the namespace; must succeed.
fn install_system_wide(etc: &PrivateEtc, prefix: &Path) {
    let install = run(&mut etc.command(
        "bash",
        &[
            script("install.sh").as_os_str(),
            "--prefix".as_ref(),
            prefix.as_os_str(),
            "--system-wide".as_ref(),
        ],
    ));
    assert!(install.status.success(), "{}", describe(&install));
}

/// `bash scripts/uninstall.sh --prefix PREFIX` inside the namespace; must succeed.
fn uninstall(etc: &PrivateEtc, prefix: &Path) {
    let uninstall = run(&mut etc.command(
        "bash",
        &[
            script("uninstall.sh").as_os_str(),
            "--prefix".as_ref(),
            prefix.as_os_str(),
        ],
    ));
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
}

#[test]
fn system_wide_install_works_and_uninstall_restores_ld_so_preload() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = private_etc("deploy-system-wide") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let scratch = ScratchDir::rootfs("deploy-system-wide-prefix");
    let prefix = scratch.path().join("prefix");
    let library = prefix.join("lib/cfrfix/libcfrfix.so");
    let data = ScratchDir::tmpfs("deploy-system-wide-data");
    let content = write_test_file(&data.path().join("src"), 200_000);

    // An existing preload file, without a final newline, must come back byte for byte.
    // (Not a comment: glibc 2.36 mis-parses some comment lines in /etc/ld.so.preload.)
    let Some(other) = other_preload_library() else {
        return skip("no libm.so.6 found to stand for an existing preload");
    };
    let original = other.as_bytes();
    fs::write(&preload, original).expect("write ld.so.preload");
    fs::set_permissions(&preload, fs::Permissions::from_mode(0o644)).expect("chmod");
    let _ = fs::remove_file(etc.file("cfrfix.conf"));

    let before = injected_python_copy(&etc, data.path(), &[]);
    assert_eq!(
        text(&before.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "without cfrfix the injected failure must show: {}",
        describe(&before)
    );

    install_system_wide(&etc, &prefix);
    let listed = fs::read_to_string(&preload).expect("ld.so.preload");
    assert_eq!(
        listed,
        format!("{}\n{}\n", text(original), library.display()),
        "the library is appended on a line of its own"
    );
    assert!(
        etc.file("ld.so.preload.cfrfix-backup").exists(),
        "backup kept"
    );
    assert!(
        etc.file("cfrfix.conf").exists(),
        "example /etc/cfrfix.conf installed"
    );

    // Installing again changes nothing.
    install_system_wide(&etc, &prefix);
    assert_eq!(fs::read_to_string(&preload).expect("ld.so.preload"), listed);

    assert_ordinary_programs_unaffected(&etc);

    // A real program whose copy_file_range fails, with no LD_PRELOAD anywhere.
    let fixed = injected_python_copy(&etc, data.path(), &[("CFRFIX_LOG", "stderr")]);
    assert!(fixed.status.success(), "{}", describe(&fixed));
    assert_eq!(
        text(&fixed.stdout).trim(),
        format!("copied {}", content.len())
    );
    assert!(
        text(&fixed.stderr).contains("kernel said EOPNOTSUPP"),
        "{}",
        describe(&fixed)
    );
    assert_eq!(fs::read(data.path().join("dst")).expect("dst"), content);

    // `cfrfix --check` sees the system-wide preload.
    let check = run(&mut etc.command(
        prefix.join("bin/cfrfix"),
        &["--check", data.path().to_str().expect("utf-8")],
    ));
    assert!(check.status.success(), "{}", describe(&check));
    assert!(
        text(&check.stdout).contains(&format!("/etc/ld.so.preload: yes ({})", library.display())),
        "{}",
        describe(&check)
    );

    uninstall(&etc, &prefix);
    assert_eq!(
        fs::read(&preload).expect("ld.so.preload restored"),
        original
    );
    assert_eq!(
        fs::metadata(&preload).expect("meta").permissions().mode() & 0o777,
        0o644
    );
    assert!(!etc.file("ld.so.preload.cfrfix-backup").exists());
    assert!(!etc.file("ld.so.preload.cfrfix-added").exists());
    assert!(
        !etc.file("cfrfix.conf").exists(),
        "the untouched example goes too"
    );
    assert!(!library.exists());

    let after = injected_python_copy(&etc, data.path(), &[]);
    assert_eq!(
        text(&after.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "{}",
        describe(&after)
    );
}

#[test]
fn system_wide_without_a_previous_file_removes_it_again() {
    let Some(etc) = private_etc("deploy-system-wide-none") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("deploy-system-wide-none-prefix");
    let prefix = scratch.path().join("prefix");

    install_system_wide(&etc, &prefix);
    assert_eq!(
        fs::read_to_string(&preload).expect("ld.so.preload created"),
        format!("{}\n", prefix.join("lib/cfrfix/libcfrfix.so").display())
    );
    assert_ordinary_programs_unaffected(&etc);

    uninstall(&etc, &prefix);
    assert!(!preload.exists(), "there was no /etc/ld.so.preload before");
}

#[test]
fn system_wide_uninstall_keeps_later_edits() {
    let Some(etc) = private_etc("deploy-system-wide-edit") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("deploy-system-wide-edit-prefix");
    let prefix = scratch.path().join("prefix");
    install_system_wide(&etc, &prefix);

    let mut edited = fs::read_to_string(&preload).expect("ld.so.preload");
    edited.push_str("# added by the admin later\n");
    fs::write(&preload, &edited).expect("edit");
    uninstall(&etc, &prefix);
    assert_eq!(
        fs::read_to_string(&preload).expect("ld.so.preload kept"),
        "# added by the admin later\n"
    );
}

#[test]
fn system_wide_refuses_a_library_that_does_not_load() {
    let Some(etc) = private_etc("deploy-system-wide-bad") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("deploy-system-wide-bad-lib");
    let not_a_library = scratch.path().join("libcfrfix.so");
    fs::write(&not_a_library, b"not an ELF file\n").expect("write");
    let output = run(&mut etc.command(
        script("cfrfix-system-wide"),
        &["enable", not_a_library.to_str().expect("utf-8")],
    ));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("test load failed"),
        "{}",
        describe(&output)
    );
    assert!(
        !preload.exists(),
        "nothing may be written after a failed test load"
    );
    assert!(!etc.file("ld.so.preload.cfrfix-added").exists());
}

#[test]
fn system_wide_config_file_is_read_and_environment_overrides_it() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = private_etc("deploy-system-wide-conf") else {
        return;
    };
    let library = common::cdylib();
    fs::write(
        etc.file("ld.so.preload"),
        format!("{}\n", library.display()),
    )
    .expect("preload");
    let data = ScratchDir::tmpfs("deploy-system-wide-conf-data");
    write_test_file(&data.path().join("src"), 10_000);

    let config = etc.file("cfrfix.conf");
    fs::write(&config, "# test\nmode = off\n").expect("write cfrfix.conf");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
    let off = injected_python_copy(&etc, data.path(), &[]);
    assert_eq!(
        text(&off.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "mode = off: {}",
        describe(&off)
    );

    let overridden = injected_python_copy(&etc, data.path(), &[("CFRFIX_MODE", "auto")]);
    assert!(
        overridden.status.success(),
        "CFRFIX_MODE=auto over mode = off: {}",
        describe(&overridden)
    );

    fs::write(&config, "log = stderr\n").expect("write cfrfix.conf");
    let logged = injected_python_copy(&etc, data.path(), &[]);
    assert!(logged.status.success(), "{}", describe(&logged));
    assert!(
        text(&logged.stderr).contains("kernel said EOPNOTSUPP"),
        "log = stderr: {}",
        describe(&logged)
    );

    // A config file others can write is not trusted.
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).expect("chmod");
    let untrusted = injected_python_copy(&etc, data.path(), &[]);
    assert!(untrusted.status.success(), "{}", describe(&untrusted));
    assert!(
        untrusted.stderr.is_empty(),
        "world-writable config must be ignored: {}",
        describe(&untrusted)
    );
}

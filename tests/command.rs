//! The `cfrfix` command running a program (issue 10): the preload it sets up, its options and
//! how they compose, the shell's exit codes, logging that works when asked, warnings about
//! settings the library would ignore, and never running PROGRAM without the fix.

mod common;

use common::command::{
    PYTHON_COPY, artefact_dir, cfrfix, other_preload_library, python3, run, script,
    without_abi_warnings, write_test_file,
};
use common::{ScratchDir, describe, have_command, is_root, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const EOPNOTSUPP: i32 = 95;
const ENOSYS: i32 = 38;

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
    // One entry for every ABI: the loader expands `$LIB` to its own directory.
    assert!(
        entries[0].ends_with("/preload/$LIB/libcfrfix.so"),
        "LD_PRELOAD={preload}"
    );
    assert_eq!(entries[1], other, "the existing entry must be kept");
    assert_eq!(
        without_abi_warnings(&text(&output.stderr)),
        "",
        "{}",
        describe(&output)
    );
}

#[test]
fn wrapper_does_not_duplicate_itself() {
    let Some(other) = other_preload_library() else {
        return skip("no libm.so.6 found to stand for an existing preload");
    };
    let library = artefact_dir().join("libcfrfix.so");
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

/// `cfrfix-inject ERRNO [scripts/cfrfix ARGS...] python3 PYTHON_COPY SRC DST`.
fn injected_copy(errno: &str, cfrfix_args: Option<&[&str]>, dir: &Path) -> Output {
    let python = python3().expect("python3 checked by the caller");
    let mut command = Command::new(INJECT);
    command
        .env_remove("LD_PRELOAD")
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
        .arg(errno);
    if let Some(args) = cfrfix_args {
        command.arg(script("cfrfix")).args(args);
    }
    let _ = fs::remove_file(dir.join("dst"));
    run(command
        .args([python.as_str(), "-c", PYTHON_COPY])
        .arg(dir.join("src"))
        .arg(dir.join("dst")))
}

#[test]
fn wrapper_makes_a_refused_copy_work() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let dir = ScratchDir::tmpfs("command-wrap");
    let content = write_test_file(&dir.path().join("src"), 100_000);
    let without = injected_copy("EOPNOTSUPP", None, dir.path());
    assert_eq!(
        text(&without.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "{}",
        describe(&without)
    );
    let with = injected_copy("EOPNOTSUPP", Some(&["--log", "stderr"]), dir.path());
    assert!(with.status.success(), "{}", describe(&with));
    assert!(
        text(&with.stderr).contains("kernel said EOPNOTSUPP"),
        "{}",
        describe(&with)
    );
    assert_eq!(fs::read(dir.path().join("dst")).expect("dst"), content);
}

#[test]
fn log_to_dev_stderr_and_dev_fd_2_works() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let dir = ScratchDir::tmpfs("command-log-stderr");
    let content = write_test_file(&dir.path().join("src"), 50_000);
    for destination in ["/dev/stderr", "/dev/fd/2", "--log=/dev/stderr", "STDERR"] {
        let args: Vec<&str> = if destination.starts_with("--") {
            vec![destination]
        } else {
            vec!["--log", destination]
        };
        let output = injected_copy("EOPNOTSUPP", Some(&args), dir.path());
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("kernel said EOPNOTSUPP; copied 50000 bytes"),
            "{args:?}: the log line: {}",
            describe(&output)
        );
        assert!(
            !without_abi_warnings(&stderr).contains("warning"),
            "{args:?}: {}",
            describe(&output)
        );
        assert_eq!(fs::read(dir.path().join("dst")).expect("dst"), content);
    }
}

#[test]
fn unusable_log_paths_are_refused_before_the_program_starts() {
    let scratch = ScratchDir::tmpfs("command-log-bad");
    let dir = scratch.path();
    fs::create_dir(dir.join("a-directory")).expect("mkdir");
    fs::write(dir.join("linked"), b"").expect("write");
    fs::hard_link(dir.join("linked"), dir.join("second-link")).expect("link");
    std::os::unix::fs::symlink(dir.join("linked"), dir.join("symlink")).expect("symlink");
    let marker = dir.join("program-ran");
    let cases: Vec<(String, &str)> = vec![
        (
            "relative.log".into(),
            "neither stderr, off nor an absolute path",
        ),
        (
            dir.join("missing-dir/x.log").display().to_string(),
            "does not exist",
        ),
        (dir.join("a-directory").display().to_string(), "a directory"),
        (
            dir.join("second-link").display().to_string(),
            "2 hard links",
        ),
        (dir.join("symlink").display().to_string(), "symbolic link"),
        ("/dev/stdout".into(), "symbolic link"),
        // Paths the library's open() never writes: a directory's.
        (
            format!("{}/", dir.join("x.log").display()),
            "ends with '/': names a directory",
        ),
        (
            format!("{}/.", dir.join("x.log").display()),
            "ends with '/.': names a directory",
        ),
        // The library keeps at most 1023 bytes of a path.
        (
            format!("{}/{}x.log", dir.display(), "d/".repeat(520)),
            "the library keeps log paths of at most 1023 bytes",
        ),
        // The library trims the value: what it would open is the symbolic link.
        (
            format!("{} ", dir.join("symlink").display()),
            "symbolic link",
        ),
        (
            "/dev/stderr\t".into(),
            "(the library trims it to '/dev/stderr'): a symbolic link",
        ),
    ];
    for (destination, why) in &cases {
        let output = run(cfrfix().args(["--log", destination, "touch"]).arg(&marker));
        let report = describe(&output);
        assert_eq!(output.status.code(), Some(2), "{destination}: {report}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.starts_with("cfrfix: --log") && stderr.contains(why),
            "{destination}: expected '{why}': {report}"
        );
        assert!(!marker.exists(), "{destination}: PROGRAM ran: {report}");
        assert!(!dir.join("x.log").exists(), "{destination}: {report}");
    }
    // A file nobody else may write, for a user other than its owner.
    if is_root() {
        let file = dir.join("roots.log");
        fs::write(&file, b"").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let output = run(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(script("cfrfix"))
            .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
            .env_remove("LD_PRELOAD")
            .arg("--log")
            .arg(&file)
            .arg("touch")
            .arg(&marker));
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        assert!(
            text(&output.stderr).contains("cannot be written by uid 65534"),
            "{}",
            describe(&output)
        );
        assert!(!marker.exists());
    }
}

#[test]
fn enosys_composes_with_log_and_mode() {
    let Some(python) = python3() else {
        return skip("python3 not installed");
    };
    let dir = ScratchDir::tmpfs("command-enosys");
    let content = write_test_file(&dir.path().join("src"), 4096);
    let copy = |options: &[&str]| {
        let _ = fs::remove_file(dir.path().join("dst"));
        run(cfrfix()
            .args(options)
            .args([python.as_str(), "-c", PYTHON_COPY])
            .arg(dir.path().join("src"))
            .arg(dir.path().join("dst")))
    };
    // The library answers the filter's ENOSYS with its own copy, and logs it.
    for options in [
        &["--enosys", "--log", "stderr"][..],
        &["--log", "stderr", "--enosys"],
        &["--enosys", "--mode", "always", "--log=stderr", "--"],
    ] {
        let output = copy(options);
        assert!(
            output.status.success(),
            "{options:?}: {}",
            describe(&output)
        );
        assert_eq!(text(&output.stdout).trim(), "copied 4096", "{options:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("kernel said ENOSYS") || stderr.contains("mode always"),
            "{options:?}: {}",
            describe(&output)
        );
        assert_eq!(fs::read(dir.path().join("dst")).expect("dst"), content);
    }
    // With the library switched off, the program sees the filter's ENOSYS.
    let output = copy(&["--mode", "off", "--enosys"]);
    assert_eq!(
        text(&output.stdout).trim(),
        format!("errno {ENOSYS}"),
        "{}",
        describe(&output)
    );
}

#[test]
fn program_not_found_or_not_executable_gets_the_shells_codes() {
    let scratch = ScratchDir::tmpfs("command-program");
    let not_executable = scratch.path().join("data.txt");
    fs::write(&not_executable, b"data\n").expect("write");
    let directory = scratch.path().to_path_buf();
    let missing_path = scratch.path().join("no-such-program");
    let cases: Vec<(PathBuf, i32, &str)> = vec![
        (directory, 126, "Is a directory"),
        (not_executable, 126, "Permission denied"),
        (missing_path, 127, "No such file or directory"),
        ("no-such-program-cfrfix".into(), 127, "command not found"),
    ];
    for (program, code, wording) in &cases {
        for enosys in [false, true] {
            let mut command = cfrfix();
            if enosys {
                command.arg("--enosys");
            }
            let output = run(command.arg(program));
            assert_eq!(
                output.status.code(),
                Some(*code),
                "{program:?}: {}",
                describe(&output)
            );
            assert_eq!(
                text(&output.stderr),
                format!("cfrfix: {}: {wording}\n", program.display()),
                "{program:?}"
            );
        }
        // cfrfix-inject on its own uses the same codes.
        let output = run(Command::new(INJECT).arg("95").arg(program));
        assert_eq!(
            output.status.code(),
            Some(*code),
            "cfrfix-inject {program:?}: {}",
            describe(&output)
        );
    }
}

#[test]
fn warnings_name_ignored_settings_before_the_program_runs() {
    let warn = |env: &[(&str, &str)], args: &[&str]| {
        let output = run(cfrfix().envs(env.iter().copied()).args(args).arg("true"));
        assert!(
            output.status.success(),
            "{env:?} {args:?}: {}",
            describe(&output)
        );
        without_abi_warnings(&text(&output.stderr))
    };
    assert_eq!(warn(&[], &[]), "");
    let stderr = warn(&[("CFRFIX_MODE", "banana")], &[]);
    assert!(
        stderr.contains("cfrfix: warning: CFRFIX_MODE: invalid value 'banana' for mode"),
        "{stderr}"
    );
    assert!(stderr.contains("cfrfix --status"), "{stderr}");
    let stderr = warn(&[("CFRFIX_MODE", " OFF ")], &[]);
    assert!(
        stderr.contains("mode is off (environment: CFRFIX_MODE)"),
        "{stderr}"
    );
    // The user asked for it: no warning.
    assert_eq!(warn(&[], &["--mode", "off"]), "");
    let stderr = warn(
        &[("CFRFIX_ERRNOS", "EXDEV,EBOGUS"), ("CFRFIX_MOD", "off")],
        &[],
    );
    assert!(stderr.contains("'EBOGUS' is not an errno"), "{stderr}");
    assert!(
        stderr.contains("CFRFIX_MOD: not a setting of the library"),
        "{stderr}"
    );
    let stderr = warn(&[("CFRFIX_LOG", "/dev/stderr")], &[]);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    // An empty errnos value (an unset shell variable) is invalid, and the set stays; `none`
    // switches cfrfix off in effect, as mode off does.
    let stderr = warn(&[("CFRFIX_ERRNOS", "")], &[]);
    assert!(
        stderr.contains("cfrfix: warning: CFRFIX_ERRNOS: empty value for errnos"),
        "{stderr}"
    );
    let stderr = warn(&[("CFRFIX_ERRNOS", "none")], &[]);
    assert!(
        stderr.contains("cfrfix: warning: errnos is none (environment: CFRFIX_ERRNOS)")
            && stderr.contains("switched off in effect"),
        "{stderr}"
    );
    // In mode always the kernel is not asked: the errno set does not matter.
    assert_eq!(
        warn(&[("CFRFIX_ERRNOS", "none")], &["--mode", "always"]),
        ""
    );
    // A lower-case name is no setting.
    let stderr = warn(&[("cfrfix_mode", "off")], &[]);
    assert!(
        stderr.contains("cfrfix: warning: cfrfix_mode: not a setting")
            && stderr.contains("CFRFIX_MODE"),
        "{stderr}"
    );
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
    for expected in [
        "Usage: cfrfix",
        "--check",
        "--status",
        "--enosys",
        "Examples:",
        "Exit status:",
    ] {
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
        vec!["--log"],
        vec!["--check", "/", "/", "/"],
        vec!["--check", "/no/such/dir-cfrfix"],
        vec!["--check", "/etc/passwd"],
        vec!["--log", "stderr", "--check", "/dev/shm"],
        vec!["--enosys", "--check", "/dev/shm"],
        vec!["--status", "extra"],
        vec!["--mode", "off", "--status"],
        vec!["--print-library", "extra"],
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
// Without a library: a checkout that was never built, and cannot be.

/// A checkout with no build (scripts/cfrfix, Cargo.toml, src/) and a bin directory holding only
/// the programs the command needs, plus whatever `fakes` adds (`cargo`, `rustc` scripts).
struct Unbuilt {
    scratch: ScratchDir,
}

impl Unbuilt {
    fn new(tag: &str, fakes: &[(&str, &str)]) -> Unbuilt {
        let scratch = ScratchDir::tmpfs(tag);
        let root = scratch.path();
        fs::create_dir_all(root.join("checkout/scripts")).expect("mkdir");
        fs::create_dir_all(root.join("checkout/src")).expect("mkdir");
        fs::write(root.join("checkout/Cargo.toml"), "[package]\n").expect("write");
        fs::copy(script("cfrfix"), root.join("checkout/scripts/cfrfix")).expect("copy");
        fs::create_dir(root.join("bin")).expect("mkdir");
        // What the command runs besides bash (`ln`, `mv`, `mkdir`, `rm` for a build's per-ABI
        // links, `awk` for its warnings) and what the tests run through it.
        for tool in [
            "bash", "readlink", "dirname", "touch", "true", "ln", "mv", "mkdir", "rm", "awk",
        ] {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("no {tool} in /usr/bin or /bin"));
            std::os::unix::fs::symlink(found, root.join("bin").join(tool)).expect("symlink");
        }
        for (name, body) in fakes {
            let path = root.join("bin").join(name);
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write fake");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Unbuilt { scratch }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    fn cfrfix(&self, args: &[&str]) -> Output {
        self.cfrfix_in(self.scratch.path(), &[], args)
    }

    /// The checkout's command run in `dir` with `env` added.
    fn cfrfix_in(&self, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
        run(Command::new(self.path("checkout/scripts/cfrfix"))
            .current_dir(dir)
            .env_clear()
            .env("PATH", self.path("bin"))
            .env("HOME", self.scratch.path())
            .envs(env.iter().copied())
            .args(args))
    }

    /// Copies of this profile's library and tools into `dir` (created), as a build.
    fn build_into(&self, dir: &str) -> PathBuf {
        let to = self.path(dir);
        fs::create_dir_all(&to).expect("mkdir");
        for name in [
            "libcfrfix.so",
            "cfrfix-check",
            "cfrfix-check-copy",
            "cfrfix-inject",
        ] {
            fs::copy(artefact_dir().join(name), to.join(name)).expect("copy artefact");
        }
        to
    }
}

#[test]
fn a_checkout_is_always_brought_up_to_date_and_cargo_says_where_the_build_is() {
    // A complete build where a checkout's is, and a cargo that records each call and reports
    // its build (cargo's JSON messages) in another directory.
    let unbuilt = Unbuilt::new("command-stale", &[]);
    unbuilt.build_into("checkout/target/release");
    let elsewhere = unbuilt.build_into("elsewhere/release");
    let cargo = format!(
        "echo \"$*\" >>\"$HOME/cargo-calls\"\n\
         printf '%s\\n' '{{\"reason\":\"compiler-artifact\",\"target\":{{\"name\":\"cfrfix-check\"}},\"executable\":\"{}/cfrfix-check\",\"fresh\":true}}'\n\
         echo '    Finished `release` profile [optimized] target(s) in 0.04s' >&2",
        elsewhere.display()
    );
    let fakes = unbuilt.path("bin");
    for (name, body) in [
        (
            "rustc",
            "echo 'rustc 1.95.0 (59807616e 2026-04-14)'".to_string(),
        ),
        ("cargo", cargo),
    ] {
        fs::write(fakes.join(name), format!("#!/bin/sh\n{body}\n")).expect("write fake");
        fs::set_permissions(fakes.join(name), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let output = unbuilt.cfrfix(&["--print-library"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("{}/preload/$LIB/libcfrfix.so", elsewhere.display()),
        "the build cargo names: {}",
        describe(&output)
    );
    // Cargo's "Finished" line is not shown: a current build says nothing.
    assert!(output.stderr.is_empty(), "{}", describe(&output));
    let marker = unbuilt.path("program-ran");
    let output = unbuilt.cfrfix(&["touch", marker.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists());
    let calls = fs::read_to_string(unbuilt.path("cargo-calls")).unwrap_or_default();
    assert_eq!(
        calls
            .lines()
            .filter(|l| l.starts_with("build --release"))
            .count(),
        2,
        "cargo build --release on every run, although a build was there: {calls:?}"
    );
}

#[test]
fn without_cargo_a_relative_cargo_target_dir_is_taken_from_the_working_directory() {
    let unbuilt = Unbuilt::new("command-target-dir", &[]);
    let work = unbuilt.path("work");
    let built = unbuilt.build_into("work/relative-target/release");
    let output = unbuilt.cfrfix_in(
        &work,
        &[("CARGO_TARGET_DIR", "relative-target")],
        &["--print-library"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("{}/preload/$LIB/libcfrfix.so", built.display())
    );
    // It says that it could not bring the build up to date.
    assert!(
        text(&output.stderr)
            .contains("cfrfix: warning: cargo is not installed: using the build in"),
        "{}",
        describe(&output)
    );
}

/// PROGRAM never runs without the library, and the one line says what failed and how to get
/// Rust; only `--mode off` runs it anyway.
fn assert_not_started(unbuilt: &Unbuilt, why: &str) {
    let marker = unbuilt.path("program-ran");
    let marker_arg = marker.to_str().expect("utf-8");
    let output = unbuilt.cfrfix(&["touch", marker_arg]);
    let report = describe(&output);
    assert_eq!(output.status.code(), Some(125), "{report}");
    assert!(
        !marker.exists(),
        "PROGRAM ran without the library: {report}"
    );
    let stderr = text(&output.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("cfrfix: "), "{report}");
    for expected in [why, "Rust 1.85", "touch was not started"] {
        assert!(last.contains(expected), "'{expected}' missing: {report}");
    }
    // --mode off runs it, without the library.
    let output = unbuilt.cfrfix(&["--mode", "off", "touch", marker_arg]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists(), "--mode off must run PROGRAM");
    // --check reports it can test nothing, --status that it cannot report.
    let dir = unbuilt.scratch.path().to_str().expect("utf-8");
    let output = unbuilt.cfrfix(&["--check", dir]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("result: cannot test here (") && stdout.contains(why),
        "{}",
        describe(&output)
    );
    let output = unbuilt.cfrfix(&["--status"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(text(&output.stdout).contains("cannot report"));
    let output = unbuilt.cfrfix(&["--print-library"]);
    assert_eq!(output.status.code(), Some(125), "{}", describe(&output));
}

#[test]
fn without_cargo_the_program_is_not_started() {
    let unbuilt = Unbuilt::new("command-no-cargo", &[]);
    assert_not_started(&unbuilt, "cargo is not installed");
}

#[test]
fn a_failed_build_does_not_start_the_program() {
    let unbuilt = Unbuilt::new(
        "command-failed-build",
        &[
            ("rustc", "echo 'rustc 1.95.0 (59807616e 2026-04-14)'"),
            (
                "cargo",
                "echo 'error: could not compile `cfrfix`' >&2; exit 101",
            ),
        ],
    );
    assert_not_started(&unbuilt, "cargo build --release failed");
}

#[test]
fn an_old_rust_is_named_and_not_used() {
    let unbuilt = Unbuilt::new(
        "command-old-rust",
        &[
            ("rustc", "echo 'rustc 1.63.0'"),
            ("cargo", "touch \"$HOME/cargo-ran\"; exit 101"),
        ],
    );
    assert_not_started(&unbuilt, "rustc 1.63.0 is too old");
    assert!(!unbuilt.path("cargo-ran").exists(), "cargo must not be run");
}

#[test]
fn an_installation_without_its_library_does_not_start_the_program() {
    let scratch = ScratchDir::tmpfs("command-broken-install");
    fs::create_dir_all(scratch.path().join("bin")).expect("mkdir");
    let helpers = scratch.path().join("libexec/cfrfix");
    fs::create_dir_all(&helpers).expect("mkdir");
    let command = scratch.path().join("bin/cfrfix");
    fs::copy(script("cfrfix"), &command).expect("copy");
    let marker = scratch.path().join("program-ran");
    let start = || {
        run(Command::new(&command)
            .env_remove("LD_PRELOAD")
            .arg("touch")
            .arg(&marker))
    };
    // No helpers at all, then the helpers without PREFIX/$LIB/libcfrfix.so.
    for (step, missing) in [
        ("no helpers", "cfrfix-check"),
        ("no library", "/libcfrfix.so is missing"),
    ] {
        let output = start();
        assert_eq!(
            output.status.code(),
            Some(125),
            "{step}: {}",
            describe(&output)
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(missing) && stderr.contains("reinstall cfrfix"),
            "{step}: {}",
            describe(&output)
        );
        assert!(!marker.exists(), "{step}");
        for tool in ["cfrfix-check", "cfrfix-check-copy", "cfrfix-inject"] {
            fs::copy(artefact_dir().join(tool), helpers.join(tool)).expect("copy helper");
        }
    }
    // --status still reports, and counts the missing library as a problem.
    let output = run(Command::new(&command)
        .env_remove("LD_PRELOAD")
        .arg("--status"));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = text(&output.stdout);
    assert!(
        report.lines().any(
            |l| l.starts_with("problem: the library for `cfrfix PROGRAM`, ")
                && l.contains("/$LIB/libcfrfix.so, does NOT load into ")
                && l.contains("(missing)")
        ),
        "{}",
        describe(&output)
    );
}

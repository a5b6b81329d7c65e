//! Where the library comes from: a checkout's build, brought up to date on every run where cargo
//! says it is; and a checkout that was never built and cannot be (no cargo, a failed build, an
//! old Rust) or an installation without its library: PROGRAM is never started without it.

use crate::common::command::{artefact_dir, run, script};
use crate::common::{ScratchDir, describe, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

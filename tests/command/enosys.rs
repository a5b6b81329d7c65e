//! `--enosys`: a seccomp filter answers copy_file_range with ENOSYS, for programs that call the
//! kernel themselves (static, Go); it composes with `--log` and `--mode`, and `cp` copies by
//! itself under it.

use crate::ENOSYS;
use crate::common::command::{PYTHON_COPY, cfrfix, python3, run, write_test_file};
use crate::common::{ScratchDir, describe, have_command, skip, text};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

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

//! The injection tool itself: `cfrfix-inject ERRNO PROGRAM`.

use crate::common::ScratchDir;
use crate::{INJECT, pattern, require_program};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// Prints what one os.copy_file_range call of up to 1 MiB returns (or its errno).
const PYTHON_ONE_CALL: &str = r#"
import os, sys
src, dst = sys.argv[1:]
i = os.open(src, os.O_RDONLY)
o = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
try:
    print("returned", os.copy_file_range(i, o, 1 << 20))
except OSError as e:
    print("errno", e.errno)
"#;

fn python_one_call(python: &Path, inject: &str, dir: &Path) -> String {
    let out = Command::new(INJECT)
        .args([inject, "--"])
        .arg(python)
        .args(["-c", PYTHON_ONE_CALL, "src.bin", "dst.bin"])
        .current_dir(dir)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run cfrfix-inject");
    assert!(
        out.status.success(),
        "cfrfix-inject {inject} python3: {out:?}"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn inject_sets_the_errno_or_a_zero_return() {
    let Some(python) = require_program("python3") else {
        return;
    };
    let scratch = ScratchDir::tmpfs("inject");
    fs::write(scratch.path().join("src.bin"), pattern(4, 10_000)).unwrap();

    // SECCOMP_RET_ERRNO with data 0 makes the call "succeed" with 0 bytes copied.
    assert_eq!(python_one_call(&python, "0", scratch.path()), "returned 0");
    assert_eq!(
        fs::metadata(scratch.path().join("dst.bin")).unwrap().len(),
        0
    );
    for (arg, errno) in [
        ("ENOTSUPP", 524),
        ("EOPNOTSUPP", 95),
        ("enotsup", 95),
        ("EXDEV", 18),
        ("22", 22),
    ] {
        assert_eq!(
            python_one_call(&python, arg, scratch.path()),
            format!("errno {errno}"),
            "ERRNO argument {arg}"
        );
    }
    // A control: the same script copies without the tool.
    let out = Command::new(&python)
        .args(["-c", PYTHON_ONE_CALL, "src.bin", "dst.bin"])
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "returned 10000"
    );
}

#[test]
fn inject_exit_codes() {
    let status = |args: &[&str]| {
        Command::new(INJECT)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run cfrfix-inject")
            .code()
    };
    assert_eq!(status(&["--help"]), Some(0));
    assert_eq!(status(&[]), Some(2));
    assert_eq!(status(&["EXDEV"]), Some(2));
    assert_eq!(status(&["EXDEV", "--"]), Some(2));
    assert_eq!(status(&["EBOGUS", "true"]), Some(2));
    assert_eq!(status(&["4096", "true"]), Some(2));
    assert_eq!(status(&["EXDEV", "/nonexistent/program"]), Some(127));
    // PROGRAM's own status comes through.
    assert_eq!(status(&["EXDEV", "sh", "-c", "exit 7"]), Some(7));
    assert_eq!(status(&["EXDEV", "--", "true"]), Some(0));
}

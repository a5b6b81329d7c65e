//! `--log`: the library's log reaches stderr however it is named, and a destination the library
//! would not write is refused before PROGRAM starts.

use crate::common::command::{
    artefact_dir, cfrfix, python3, run, script, without_abi_warnings, write_test_file,
};
use crate::common::{ScratchDir, describe, is_root, skip, text};
use crate::injected_copy;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

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

//! The command's interface: the shell's 126/127 for a PROGRAM that cannot run, warnings for
//! settings the library would ignore, `--version`, `--help`, and bad usage (exit 2).

use crate::INJECT;
use crate::common::command::{cfrfix, run, without_abi_warnings};
use crate::common::{ScratchDir, describe, text};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

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

//! `cfrfix PROGRAM` never starts PROGRAM without the library in effect (issue 10, review): the
//! program the kernel will really run (through `#!` lines) is judged before it starts. Static
//! and setuid programs, a 32-bit program whose `$LIB` leads to no i686 build and a library that
//! exists but does not load are refused with exit 125 and one line saying why; `--enosys` runs
//! static programs; the user's own LD_PRELOAD entries are kept. A program with its own loader
//! (PT_INTERP): `own_loader`.

mod common;
#[path = "command_program/own_loader.rs"]
mod own_loader;

use common::command::{
    artefact_dir, build_without_other_abis, cfrfix, other_preload_library, run, script,
    without_abi_warnings,
};
use common::{PrivateEtc, ScratchDir, describe, have_command, is_root, skip, text};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A C program that creates the file named by argv[1] (the proof that it ran).
const TOUCH_C: &str = r#"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    return fd < 0 ? 1 : 0;
}
"#;

/// Compiles TOUCH_C into `dir/name` with `flags`; None (after SKIPPED) where it cannot.
fn touch_program(dir: &Path, name: &str, flags: &[&str]) -> Option<PathBuf> {
    let source = dir.join("touch.c");
    fs::write(&source, TOUCH_C).expect("write C source");
    if !have_command("cc") {
        skip("no C compiler (cc)");
        return None;
    }
    let out = dir.join(name);
    let built = run(Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(&source)
        .args(flags));
    if !built.status.success() {
        skip(&format!(
            "cc {flags:?} cannot build here: {}",
            describe(&built)
        ));
        return None;
    }
    Some(out)
}

/// Asserts that `output` is a refusal: exit 125, one `cfrfix: ...` line containing each of
/// `expected` and ending with "was not started", and `marker` not created.
fn assert_refused(output: &Output, marker: &Path, expected: &[&str]) {
    let report = describe(output);
    assert_eq!(output.status.code(), Some(125), "{report}");
    assert!(!marker.exists(), "PROGRAM ran: {report}");
    let stderr = text(&output.stderr);
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("cfrfix: "), "{report}");
    assert!(last.ends_with("was not started"), "{report}");
    for word in expected {
        assert!(last.contains(word), "'{word}' missing: {report}");
    }
}

#[test]
fn a_static_program_is_refused_and_runs_under_enosys() {
    let dir = ScratchDir::tmpfs("program-static");
    let Some(program) = touch_program(dir.path(), "static-touch", &["-static"]) else {
        return;
    };
    let marker = dir.path().join("ran");
    let output = run(cfrfix().arg(&program).arg(&marker));
    assert_refused(&output, &marker, &["is statically linked", "--enosys"]);

    // A script whose interpreter is that static program: judged by what really runs.
    let script_path = dir.path().join("script");
    fs::write(&script_path, format!("#!{}\n", program.display())).expect("write");
    fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = run(cfrfix().arg(&script_path));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{}", describe(&output));
    assert!(
        stderr.contains(&format!(
            "{} runs {}, which is statically linked",
            script_path.display(),
            program.display()
        )),
        "{}",
        describe(&output)
    );

    // --enosys is the way for such programs; --mode off runs it as asked.
    for options in [&["--enosys"][..], &["--mode", "off"]] {
        let _ = fs::remove_file(&marker);
        let output = run(cfrfix().args(options).arg(&program).arg(&marker));
        assert!(
            output.status.success(),
            "{options:?}: {}",
            describe(&output)
        );
        assert!(marker.exists(), "{options:?}");
    }
}

#[test]
fn dynamic_programs_and_scripts_run() {
    let dir = ScratchDir::tmpfs("program-dynamic");
    let marker = dir.path().join("ran");
    // `#!/usr/bin/env sh` is followed to sh, through PATH.
    let script_path = dir.path().join("script");
    fs::write(&script_path, "#!/usr/bin/env sh\n: >\"$1\"\n").expect("write");
    fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = run(cfrfix().arg(&script_path).arg(&marker));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists());
    assert_eq!(
        without_abi_warnings(&text(&output.stderr)),
        "",
        "{}",
        describe(&output)
    );
}

/// A root-owned copy of a program built from TOUCH_C, setuid (4755), in a directory on the
/// root filesystem (not nosuid) that everybody may enter.
fn setuid_touch(dir: &ScratchDir) -> Option<PathBuf> {
    let program = touch_program(dir.path(), "suid-touch", &[])?;
    fs::set_permissions(&program, fs::Permissions::from_mode(0o4755)).expect("chmod");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    Some(program)
}

/// `scripts/cfrfix ARGS` run as nobody, through setpriv, in `etc` if given.
fn as_nobody(etc: Option<&PrivateEtc>, args: &[&OsStr]) -> Output {
    let mut setpriv: Vec<&OsStr> = ["--reuid=65534", "--regid=65534", "--clear-groups"]
        .iter()
        .map(OsStr::new)
        .collect();
    let cfrfix = script("cfrfix");
    setpriv.push(cfrfix.as_os_str());
    setpriv.extend_from_slice(args);
    let mut command = match etc {
        Some(etc) => etc.command("setpriv", &setpriv),
        None => {
            let mut command = common::clean("setpriv");
            command.args(&setpriv);
            command
        }
    };
    run(command.env("CFRFIX_ARTEFACT_DIR", artefact_dir()))
}

#[test]
fn a_setuid_program_is_refused_unless_ld_so_preload_reaches_it() {
    if !is_root() || !have_command("setpriv") {
        return skip("needs root and setpriv (a setuid-root program run by nobody)");
    }
    let dir = ScratchDir::rootfs("program-setuid");
    let Some(program) = setuid_touch(&dir) else {
        return;
    };
    let marker = dir.path().join("ran");
    let args = [program.as_os_str(), marker.as_os_str()];
    let output = as_nobody(None, &args);
    assert_refused(
        &output,
        &marker,
        &["is setuid (it would run as uid 0)", "/etc/ld.so.preload"],
    );
    // Root runs it as itself: no secure execution, the preload works.
    let output = run(cfrfix().args(args));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists());
    fs::remove_file(&marker).expect("rm");
    // --enosys runs it without its privileges (no_new_privs), with the library.
    let output = as_nobody(None, &[OsStr::new("--enosys"), args[0], args[1]]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists());
    fs::remove_file(&marker).expect("rm");

    // System-wide mode reaches it: it runs, and a CFRFIX_* setting it ignores is named.
    if !have_command("unshare") {
        return skip("unshare(1) not installed");
    }
    let etc = PrivateEtc::copy("program-setuid-etc");
    let library = artefact_dir().join("libcfrfix.so");
    fs::write(
        etc.file("ld.so.preload"),
        format!("{}\n", library.display()),
    )
    .expect("write");
    let output = as_nobody(Some(&etc), &[OsStr::new("--log=stderr"), args[0], args[1]]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("with the settings of /etc/cfrfix.conf alone"),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_program_with_file_capabilities_is_refused_for_other_users() {
    if !is_root() || !have_command("setpriv") || !have_command("setcap") {
        return skip("needs root, setpriv and setcap");
    }
    let dir = ScratchDir::rootfs("program-caps");
    let Some(program) = touch_program(dir.path(), "caps-touch", &[]) else {
        return;
    };
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let set = run(Command::new("setcap")
        .arg("cap_net_bind_service+ep")
        .arg(&program));
    if !set.status.success() {
        return skip(&format!("setcap failed here: {}", describe(&set)));
    }
    let marker = dir.path().join("ran");
    let output = as_nobody(None, &[program.as_os_str(), marker.as_os_str()]);
    assert_refused(&output, &marker, &["has file capabilities"]);
}

#[test]
fn a_32_bit_program_is_served_through_lib_where_its_build_is_and_refused_where_not() {
    let dir = ScratchDir::tmpfs("program-i386");
    if !Path::new("/lib/ld-linux.so.2").exists() {
        return skip("this machine runs no 32-bit x86 programs (no /lib/ld-linux.so.2)");
    }
    let Some(program) = touch_program(dir.path(), "touch32", &["-m32"]) else {
        return;
    };
    let marker = dir.path().join("ran");
    // A build with no i686 build beside it: `$LIB` leads i386 programs nowhere.
    let release = build_without_other_abis(dir.path());
    let without_i686 = || {
        let mut command = cfrfix();
        command.env("CFRFIX_ARTEFACT_DIR", &release);
        command
    };
    let output = run(without_i686().arg(&program).arg(&marker));
    assert_refused(
        &output,
        &marker,
        &[
            "is an i386 program and no cfrfix library for i386 is preloaded",
            "/preload/$LIB/libcfrfix.so is ",
            "/libcfrfix.so: missing)",
            "scripts/build-targets i686-unknown-linux-gnu",
        ],
    );
    // The i686 build beside this profile's, as scripts/build-targets makes it.
    let i686 = artefact_dir()
        .parent()
        .expect("target directory")
        .join("i686-unknown-linux-gnu")
        .join(artefact_dir().file_name().expect("profile"))
        .join("libcfrfix.so");
    if !i686.exists() {
        return skip("no i686 build (scripts/build-targets i686-unknown-linux-gnu)");
    }
    // The user's own i686 build in LD_PRELOAD serves it, and stays.
    let output = run(without_i686()
        .env("LD_PRELOAD", &i686)
        .arg(&program)
        .arg(&marker));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists(), "{}", describe(&output));
    fs::remove_file(&marker).expect("rm");
    // With the i686 build beside the native one, `$LIB` leads the 32-bit program to it.
    let output = run(cfrfix().arg(&program).arg(&marker));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(marker.exists(), "{}", describe(&output));
}

#[test]
fn other_cfrfix_builds_in_ld_preload_are_kept_and_the_same_file_is_not_added_twice() {
    let Some(other) = other_preload_library() else {
        return skip("no libm.so.6 found to stand for an existing preload");
    };
    let dir = ScratchDir::tmpfs("program-preload");
    let library = artefact_dir().join("libcfrfix.so");
    // Another build named libcfrfix.so (a copy: another file), and our own under another name.
    fs::create_dir(dir.path().join("other")).expect("mkdir");
    let copy = dir.path().join("other/libcfrfix.so");
    fs::copy(&library, &copy).expect("copy");
    let alias = dir.path().join("alias-libcfrfix.so");
    std::os::unix::fs::symlink(&library, &alias).expect("symlink");
    let existing = format!("{} {other}:{}", copy.display(), alias.display());
    let output =
        run(cfrfix()
            .env("LD_PRELOAD", &existing)
            .args(["sh", "-c", "printf %s \"$LD_PRELOAD\""]));
    assert!(output.status.success(), "{}", describe(&output));
    // The cfrfix entry names each ABI's build with `$LIB`; the alias is the same file as the
    // native one, the copy another file.
    assert_eq!(
        text(&output.stdout),
        format!(
            "{}/preload/$LIB/libcfrfix.so:{}:{other}",
            artefact_dir().display(),
            copy.display()
        )
    );
}

/// The tools of this profile with a damaged library beside them (CFRFIX_ARTEFACT_DIR).
fn artefacts_with_library(dir: &Path, library: &[u8]) -> PathBuf {
    let artefacts = dir.join("artefacts");
    fs::create_dir_all(&artefacts).expect("mkdir");
    for tool in ["cfrfix-check", "cfrfix-check-copy", "cfrfix-inject"] {
        fs::copy(artefact_dir().join(tool), artefacts.join(tool)).expect("copy tool");
    }
    fs::write(artefacts.join("libcfrfix.so"), library).expect("write library");
    artefacts
}

#[test]
fn a_library_that_does_not_load_starts_nothing_and_is_reported() {
    let dir = ScratchDir::tmpfs("program-broken");
    let good = fs::read(artefact_dir().join("libcfrfix.so")).expect("library");
    let marker = dir.path().join("ran");
    // 1000 bytes: a valid header, segments past the end (SIGBUS when mapped); 10 bytes: ld.so
    // skips it ("file too short").
    for (length, why) in [(1000, "SIGBUS"), (10, "not an ELF file")] {
        let artefacts = artefacts_with_library(dir.path(), &good[..length]);
        let with =
            |args: &[&OsStr]| run(cfrfix().env("CFRFIX_ARTEFACT_DIR", &artefacts).args(args));
        let output = with(&[OsStr::new("touch"), marker.as_os_str()]);
        assert_refused(&output, &marker, &["does not load", why]);
        // --mode off runs it, without the library.
        let output = with(&[
            OsStr::new("--mode"),
            OsStr::new("off"),
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new("printf %s \"${LD_PRELOAD-unset}\""),
        ]);
        assert!(output.status.success(), "{}", describe(&output));
        assert_eq!(text(&output.stdout), "unset", "{}", describe(&output));
        // --check cannot test, --status counts a problem.
        let output = with(&[OsStr::new("--check"), dir.path().as_os_str()]);
        assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
        assert!(
            text(&output.stdout).contains("result: cannot test here ("),
            "{}",
            describe(&output)
        );
        let output = with(&[OsStr::new("--status")]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            text(&output.stdout).contains("does NOT load"),
            "{}",
            describe(&output)
        );
    }
}

#[test]
fn a_program_named_like_an_option_runs() {
    let dir = ScratchDir::tmpfs("program-dash");
    let program = dir.path().join("-l");
    let marker = dir.path().join("ran");
    fs::write(&program, format!("#!/bin/sh\n: >'{}'\n", marker.display())).expect("write");
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = run(cfrfix().env("PATH", &path).args(["--", "-l"]));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        marker.exists(),
        "`cfrfix -- -l` must run -l: {}",
        describe(&output)
    );
    // Without such a program: the shell's "not found", 127.
    let output = run(cfrfix().args(["--", "-no-such-program-cfrfix"]));
    assert_eq!(output.status.code(), Some(127), "{}", describe(&output));
}

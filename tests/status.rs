//! `cfrfix --status` and the settings the library reads (issue 10): the report names each
//! setting's value and source, every invalid value with its line, a config file that is ignored
//! and why, an unusable log destination, and the system-wide preload per ABI; and each time,
//! the library itself is shown to do what the report says.
//!
//! /etc is never touched: each test runs in private mount namespaces over a copy of /etc (see
//! tests/deploy/main.rs), and prints SKIPPED where that is impossible (no root, no unshare).

mod common;

use common::command::{PYTHON_COPY, artefact_dir, python3, run, script, write_test_file};
use common::{PrivateEtc, ScratchDir, cdylib, describe, have_command, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");

/// A copy of /etc without a config file or a preload list (None after SKIPPED).
fn private_etc(tag: &str) -> Option<PrivateEtc> {
    let private = PrivateEtc::where_possible(tag)?;
    for file in ["cfrfix.conf", "ld.so.preload"] {
        let _ = fs::remove_file(private.file(file));
    }
    Some(private)
}

/// `cfrfix --status` in the namespace, with `env` added.
fn status(etc: &PrivateEtc, env: &[(&str, &str)]) -> Output {
    let mut command = etc.command(script("cfrfix"), &["--status"]);
    command
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
        .envs(env.iter().copied());
    run(&mut command)
}

/// Writes /etc/cfrfix.conf in the copy, root-owned, mode 0644.
fn write_config(etc: &PrivateEtc, text: &[u8]) {
    let path = etc.file("cfrfix.conf");
    // A new file: root-owned whatever the previous one was.
    let _ = fs::remove_dir(&path);
    let _ = fs::remove_file(&path);
    fs::write(&path, text).expect("write cfrfix.conf");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// What the library does in the namespace: python3 copies under `cfrfix-inject ERRNO` with the
/// library preloaded and `env` set. `copied N` means it fell back, `errno N` that it did not.
fn library_copy(etc: &PrivateEtc, errno: &str, env: &[(&str, &str)]) -> Output {
    let python = python3().expect("python3 checked by the caller");
    let data = ScratchDir::tmpfs("status-data");
    write_test_file(&data.path().join("src"), 20_000);
    let source = data.path().join("src");
    let destination = data.path().join("dst");
    let mut command = etc.command(
        INJECT,
        &[
            errno,
            &python,
            "-c",
            PYTHON_COPY,
            source.to_str().expect("utf-8"),
            destination.to_str().expect("utf-8"),
        ],
    );
    command
        .env("LD_PRELOAD", cdylib())
        .envs(env.iter().copied());
    run(&mut command)
}

/// The report's line starting with `prefix`.
fn line(output: &Output, prefix: &str) -> String {
    text(&output.stdout)
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line:\n{}", describe(output)))
        .to_string()
}

fn has_line(output: &Output, expected: &str) {
    assert!(
        text(&output.stdout).lines().any(|l| l == expected),
        "missing line '{expected}':\n{}",
        describe(output)
    );
}

#[test]
fn status_without_a_config_file() {
    let Some(etc) = private_etc("status-defaults") else {
        return;
    };
    let output = status(&etc, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    has_line(&output, "mode: auto (default)");
    has_line(&output, "engine: auto (default)");
    has_line(&output, "sparse: auto (default)");
    has_line(&output, "log: silent (default)");
    assert!(line(&output, "errnos: ").ends_with("ENOTSUPP (default)"));
    has_line(&output, "config file: /etc/cfrfix.conf: none");
    has_line(&output, "LD_PRELOAD: no");
    has_line(
        &output,
        "system-wide: no (/etc/ld.so.preload: the file does not exist)",
    );
    has_line(&output, "summary: no problems");
}

#[test]
fn status_shows_where_each_setting_comes_from_and_the_library_agrees() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = private_etc("status-sources") else {
        return;
    };
    write_config(
        &etc,
        b"# test\nmode = always\nsparse: OFF\nengine = Splice\n",
    );
    let env = [("CFRFIX_ENGINE", "rw"), ("CFRFIX_LOG", " stderr ")];
    let output = status(&etc, &env);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    has_line(&output, "mode: always (/etc/cfrfix.conf line 2)");
    has_line(&output, "sparse: off (/etc/cfrfix.conf line 3)");
    has_line(&output, "engine: rw (environment: CFRFIX_ENGINE)");
    has_line(
        &output,
        "  in setuid, setgid and file-capability programs (they ignore CFRFIX_*): splice (/etc/cfrfix.conf line 4)",
    );
    has_line(&output, "log: stderr (environment: CFRFIX_LOG)");
    has_line(
        &output,
        "  in setuid, setgid and file-capability programs (they ignore CFRFIX_*): silent (default)",
    );
    has_line(&output, "config file: /etc/cfrfix.conf: used");

    // The library: mode always (it does not ask the kernel), the rw engine, logging to stderr.
    let copied = library_copy(&etc, "0", &env);
    assert!(copied.status.success(), "{}", describe(&copied));
    let log = text(&copied.stderr);
    assert!(
        log.contains("mode always") && log.contains("(engine rw;"),
        "{}",
        describe(&copied)
    );
}

#[test]
fn status_reports_every_invalid_setting_with_its_line() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = private_etc("status-invalid") else {
        return;
    };
    write_config(
        &etc,
        b"mode = Banana\nerrnos = EXDEV, EFOO\nbogus = 1\njust some words\nengine = \"rw\"\n",
    );
    let env = [("CFRFIX_SPARSE", "maybe"), ("CFRFIX_MOD", "off")];
    let output = status(&etc, &env);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    for expected in [
        "problem: /etc/cfrfix.conf line 1: invalid value 'Banana' for mode (valid: auto, always or off): ignored",
        "problem: /etc/cfrfix.conf line 2: 'EFOO' is not an errno name or a number from 1 to 1023: skipped",
        "problem: /etc/cfrfix.conf line 3: unknown key 'bogus' (the keys are mode, errnos, engine, sparse, log): line ignored",
        "problem: /etc/cfrfix.conf line 4: 'just some words' is not 'key = value': ignored",
        "problem: /etc/cfrfix.conf line 5: invalid value '\"rw\"' for engine (valid: auto, splice or rw); write it without quotes: ignored",
        "problem: CFRFIX_SPARSE: invalid value 'maybe' for sparse (valid: auto or off): ignored",
        "problem: CFRFIX_MOD: not a setting of the library (CFRFIX_MODE, CFRFIX_ERRNOS, CFRFIX_ENGINE, CFRFIX_SPARSE, CFRFIX_LOG): ignored",
        "mode: auto (default)",
        "errnos: EXDEV (/etc/cfrfix.conf line 2)",
        "engine: auto (default)",
        "summary: 7 problems",
    ] {
        has_line(&output, expected);
    }
    // The library: mode auto, only EXDEV falls back.
    let refused = library_copy(&etc, "95", &env);
    assert_eq!(
        text(&refused.stdout).trim(),
        "errno 95",
        "{}",
        describe(&refused)
    );
    let copied = library_copy(&etc, "EXDEV", &env);
    assert_eq!(
        text(&copied.stdout).trim(),
        "copied 20000",
        "{}",
        describe(&copied)
    );
}

#[test]
fn status_reports_an_ignored_config_file_and_the_library_ignores_it() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = private_etc("status-ignored") else {
        return;
    };
    let path = etc.file("cfrfix.conf");
    let mut too_long = b"mode = off\n".to_vec();
    too_long.resize(70_000, b'#');
    too_long.push(b'\n');
    type Setup<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let cases: Vec<Setup<'_>> = vec![
        (
            "problem: /etc/cfrfix.conf: ignored as a whole: writable by group or others (mode 0664; chmod go-w /etc/cfrfix.conf)",
            Box::new(|| {
                write_config(&etc, b"mode = off\n");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).expect("chmod");
            }),
        ),
        (
            "problem: /etc/cfrfix.conf: ignored as a whole: owned by uid 1000, not by root",
            Box::new(|| {
                write_config(&etc, b"mode = off\n");
                std::os::unix::fs::chown(&path, Some(1000), Some(1000)).expect("chown");
            }),
        ),
        (
            "problem: /etc/cfrfix.conf: ignored as a whole: longer than 65536 bytes, the most the library reads",
            Box::new(|| write_config(&etc, &too_long)),
        ),
        // A FIFO: opening it must not block (every process the library is loaded into would
        // hang until a writer came), and it is refused like any other non-regular file.
        (
            "problem: /etc/cfrfix.conf: ignored as a whole: not a regular file (a FIFO)",
            Box::new(|| {
                let _ = fs::remove_file(&path);
                let made = std::process::Command::new("mkfifo").arg(&path).status();
                assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
            }),
        ),
        (
            "problem: /etc/cfrfix.conf: ignored as a whole: not a regular file (a directory)",
            Box::new(|| {
                let _ = fs::remove_file(&path);
                fs::create_dir(&path).expect("mkdir");
            }),
        ),
    ];
    for (expected, setup) in cases {
        setup();
        let output = status(&etc, &[]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        has_line(&output, expected);
        has_line(&output, "mode: auto (default)");
        has_line(
            &output,
            "config file: /etc/cfrfix.conf: NOT used (see below)",
        );
        let copied = library_copy(&etc, "95", &[]);
        assert_eq!(
            text(&copied.stdout).trim(),
            "copied 20000",
            "{expected}: the library must ignore the file: {}",
            describe(&copied)
        );
    }
    let _ = fs::remove_dir(&path);

    // Readable by root alone: other users' programs do not get it, and are told.
    if have_command("setpriv") {
        write_config(&etc, b"mode = off\n");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        let mut command = etc.command(
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                script("cfrfix").to_str().expect("utf-8"),
                "--status",
            ],
        );
        let output = run(command
            .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
            .env("CFRFIX_ENGINE", "rw"));
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        has_line(
            &output,
            "problem: /etc/cfrfix.conf: cannot be read by uid 65534 (Permission denied): programs run by this user do not get its settings (setuid-root programs, which read it as root, do)",
        );
        has_line(&output, "mode: auto (default)");
        // What setuid-root programs get is in the file, which this user cannot read: not
        // "the default".
        has_line(&output, "engine: rw (environment: CFRFIX_ENGINE)");
        has_line(
            &output,
            "  in setuid, setgid and file-capability programs (they ignore CFRFIX_*): unknown here: setuid-root programs read /etc/cfrfix.conf as root, and uid 65534 cannot (run cfrfix --status as root)",
        );
    }

    // Read whole: a setting past the first 4096 bytes applies, in the library too; an overlong
    // line is reported and skipped.
    let mut long = Vec::new();
    for i in 0..300 {
        long.extend_from_slice(
            format!("# padding line {i} to push the setting far down\n").as_bytes(),
        );
    }
    long.extend_from_slice(b"log = /");
    long.extend(std::iter::repeat_n(b'x', 5000));
    long.extend_from_slice(b"\nmode = off\n");
    write_config(&etc, &long);
    let output = status(&etc, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    has_line(&output, "mode: off (/etc/cfrfix.conf line 302)");
    has_line(
        &output,
        "problem: /etc/cfrfix.conf line 301: 4096 bytes or longer: ignored",
    );
    let refused = library_copy(&etc, "95", &[]);
    assert_eq!(
        text(&refused.stdout).trim(),
        "errno 95",
        "{}",
        describe(&refused)
    );
}

#[test]
fn status_checks_the_log_destination() {
    let Some(etc) = private_etc("status-log") else {
        return;
    };
    write_config(&etc, b"log = /nonexistent-cfrfix-dir/x.log\n");
    let output = status(&etc, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    has_line(
        &output,
        "log: /nonexistent-cfrfix-dir/x.log (/etc/cfrfix.conf line 1)",
    );
    has_line(
        &output,
        "problem: log destination /nonexistent-cfrfix-dir/x.log: the directory /nonexistent-cfrfix-dir does not exist: the library will log nothing there",
    );
    let output = status(&etc, &[("CFRFIX_LOG", "/dev/stderr")]);
    assert!(
        line(
            &output,
            "problem: log destination /dev/stderr: a symbolic link"
        )
        .contains("use 'stderr'"),
        "{}",
        describe(&output)
    );
    let scratch = ScratchDir::tmpfs("status-log-ok");
    let good = scratch.path().join("ok.log");
    let good = good.to_str().expect("utf-8");
    write_config(&etc, b"");
    let output = status(&etc, &[("CFRFIX_LOG", good)]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    has_line(&output, &format!("log destination: {good}: can be written"));
    // Paths the library accepts but never writes: a directory's.
    for (value, why) in [
        (
            format!("{good}/"),
            "ends with '/': names a directory, not a file",
        ),
        (
            format!("{good}/."),
            "ends with '/.': names a directory, not a file",
        ),
    ] {
        let output = status(&etc, &[("CFRFIX_LOG", &value)]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        has_line(
            &output,
            &format!("problem: log destination {value}: {why}: the library will log nothing there"),
        );
        assert!(!text(&output.stdout).contains("can be written"));
    }
}

#[test]
fn status_reports_duplicates_comments_and_empty_errnos_as_the_library_reads_them() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = private_etc("status-dropped") else {
        return;
    };
    let logs = ScratchDir::tmpfs("status-dropped-log");
    let log = logs.path().join("cfrfix#1.log");
    write_config(
        &etc,
        format!(
            "mode = off\nmode = auto # the later line wins\nerrnos =\nlog = {}\n",
            log.display()
        )
        .as_bytes(),
    );
    let output = status(&etc, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    for expected in [
        "mode: auto (/etc/cfrfix.conf line 2)".to_string(),
        "problem: /etc/cfrfix.conf line 2: mode is set again: this line wins, line 1's value is overridden".to_string(),
        "problem: /etc/cfrfix.conf line 3: empty value for errnos (valid: errno names or numbers separated by commas, spaces or colons, or none): ignored".to_string(),
        format!("log: {} (/etc/cfrfix.conf line 4)", log.display()),
        format!("log destination: {}: can be written", log.display()),
        "summary: 2 problems".to_string(),
    ] {
        has_line(&output, &expected);
    }
    assert!(line(&output, "errnos: ").ends_with("(default)"));
    // The library: mode auto, the default errnos (EOPNOTSUPP falls back), the log at the path
    // with its '#'.
    let copied = library_copy(&etc, "95", &[]);
    assert_eq!(
        text(&copied.stdout).trim(),
        "copied 20000",
        "{}",
        describe(&copied)
    );
    let written = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        written.contains("kernel said EOPNOTSUPP"),
        "log {}: {written:?}",
        log.display()
    );

    // `errnos = none`: the library never falls back; status warns, as for mode off.
    write_config(&etc, b"errnos = none\n");
    let output = status(&etc, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    has_line(
        &output,
        "warning: errnos is none (/etc/cfrfix.conf line 1): in mode auto cfrfix then never copies, so programs run with cfrfix switched off in effect",
    );
    let refused = library_copy(&etc, "95", &[]);
    assert_eq!(
        text(&refused.stdout).trim(),
        "errno 95",
        "{}",
        describe(&refused)
    );

    // A lower-case variable is no setting, and the library ignores it.
    write_config(&etc, b"");
    let output = status(&etc, &[("cfrfix_mode", "off")]);
    has_line(
        &output,
        "problem: cfrfix_mode: not a setting: the library reads only variables named CFRFIX_... (meant CFRFIX_MODE?): ignored",
    );
    let copied = library_copy(&etc, "95", &[("cfrfix_mode", "off")]);
    assert_eq!(
        text(&copied.stdout).trim(),
        "copied 20000",
        "{}",
        describe(&copied)
    );
}

#[test]
fn status_escapes_invisible_bytes_in_problems() {
    let Some(etc) = private_etc("status-escapes") else {
        return;
    };
    for (config, expected) in [
        (
            &b"\xef\xbb\xbfmode = off\n"[..],
            "problem: /etc/cfrfix.conf line 1: unknown key '\\u{feff}mode' (the keys are mode, errnos, engine, sparse, log): line ignored; the file starts with a byte-order mark: save it without one",
        ),
        (
            b"mode = off\xc2\xa0\n",
            "problem: /etc/cfrfix.conf line 1: invalid value 'off\\u{a0}' for mode (valid: auto, always or off): ignored",
        ),
        (
            b"mode = of\x00f\n",
            "problem: /etc/cfrfix.conf line 1: invalid value 'of\\0f' for mode (valid: auto, always or off): ignored",
        ),
        (
            b"mode = \x1b[31moff\xff\n",
            "problem: /etc/cfrfix.conf line 1: invalid value '\\x1b[31moff\\xff' for mode (valid: auto, always or off): ignored",
        ),
    ] {
        write_config(&etc, config);
        let output = status(&etc, &[]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        has_line(&output, expected);
    }
}

#[test]
fn status_reports_an_ld_preload_that_does_not_load() {
    let Some(etc) = private_etc("status-ld-preload") else {
        return;
    };
    // Each also breaks this very command's processes as ld.so says on their stderr (a library
    // truncated inside its segments would kill them all: there is nothing to report then).
    let scratch = ScratchDir::tmpfs("status-ld-preload");
    let truncated = scratch.path().join("libcfrfix.so");
    let library = fs::read(cdylib()).expect("library");
    fs::write(&truncated, &library[..10]).expect("write");
    let mut cases = vec![
        ("/nonexistent-cfrfix/libcfrfix.so".to_string(), "missing"),
        (truncated.display().to_string(), "not an ELF file"),
    ];
    // Another ABI's library (a 32-bit C library, renamed).
    let i386 = ["/lib32/libc.so.6", "/lib/i386-linux-gnu/libc.so.6"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if let Some(i386) = i386.filter(|_| cfg!(target_arch = "x86_64")) {
        fs::create_dir(scratch.path().join("i386")).expect("mkdir");
        let renamed = scratch.path().join("i386/libcfrfix.so");
        fs::copy(i386, &renamed).expect("copy");
        cases.push((renamed.display().to_string(), "ELF 32-bit i386"));
    }
    for (entry, why) in &cases {
        let entry = entry.as_str();
        let output = status(&etc, &[("LD_PRELOAD", entry)]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        has_line(
            &output,
            &format!("LD_PRELOAD: listed but NOT loaded ({entry})"),
        );
        let (abi, _) = native_abi();
        assert!(
            line(&output, &format!("  {abi} programs: "))
                .starts_with(&format!("  {abi} programs: do NOT get cfrfix ({entry}: "))
                && text(&output.stdout).contains(why),
            "{}",
            describe(&output)
        );
        has_line(
            &output,
            &format!(
                "problem: {entry} in LD_PRELOAD does not load into every ABI this machine runs"
            ),
        );
    }
}

/// The native ABI's name and ELF description in the report.
fn native_abi() -> (&'static str, &'static str) {
    if cfg!(target_arch = "x86_64") {
        ("x86_64", "ELF 64-bit x86-64")
    } else {
        ("aarch64", "ELF 64-bit AArch64")
    }
}

#[test]
fn status_shows_the_system_wide_preload_for_each_abi() {
    let Some(etc) = private_etc("status-preload") else {
        return;
    };
    let library = cdylib();
    let library = library.to_str().expect("utf-8");
    fs::write(etc.file("ld.so.preload"), format!("{library}\n")).expect("write");
    let output = status(&etc, &[("LD_PRELOAD", library)]);
    let (abi, elf) = native_abi();
    has_line(&output, &format!("LD_PRELOAD: yes ({library})"));
    has_line(
        &output,
        &format!("system-wide: yes: /etc/ld.so.preload lists {library}"),
    );
    has_line(
        &output,
        &format!("  {abi} programs: get cfrfix ({library}: {elf})"),
    );
    // A machine with 32-bit x86 programs (libc6-i386 or libc6:i386) does not get it there.
    let runs_i386 = Path::new("/lib/ld-linux.so.2").exists();
    if runs_i386 {
        assert!(
            line(&output, "  i386 programs: ").starts_with("  i386 programs: do NOT get cfrfix"),
            "{}",
            describe(&output)
        );
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    } else {
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    }

    // `$LIB` is expanded per ABI; a missing file is named.
    fs::write(
        etc.file("ld.so.preload"),
        "/nonexistent-cfrfix/$LIB/libcfrfix.so\n",
    )
    .expect("write");
    let output = status(&etc, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let native = line(&output, &format!("  {abi} programs: "));
    assert!(
        native.contains(
            "do NOT get cfrfix (/nonexistent-cfrfix/$LIB/libcfrfix.so = /nonexistent-cfrfix/lib"
        ) && native.contains("missing"),
        "{}",
        describe(&output)
    );
}

#[test]
fn library_keywords_are_case_insensitive_and_trimmed() {
    let Some(python) = python3() else {
        return skip("python3 not installed");
    };
    let data = ScratchDir::tmpfs("status-case");
    write_test_file(&data.path().join("src"), 10_000);
    let copy = |env: &[(&str, &str)]| {
        let _ = fs::remove_file(data.path().join("dst"));
        run(common::clean(INJECT)
            .env("LD_PRELOAD", cdylib())
            .envs(env.iter().copied())
            .args(["95", python.as_str(), "-c", PYTHON_COPY])
            .arg(data.path().join("src"))
            .arg(data.path().join("dst")))
    };
    for off in ["OFF", " off ", "Off\t"] {
        let output = copy(&[("CFRFIX_MODE", off)]);
        assert_eq!(
            text(&output.stdout).trim(),
            "errno 95",
            "{off:?}: {}",
            describe(&output)
        );
    }
    let output = copy(&[("CFRFIX_MODE", " Always"), ("CFRFIX_LOG", "STDERR ")]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("mode always"),
        "{}",
        describe(&output)
    );
    let output = copy(&[("CFRFIX_ERRNOS", " exdev , eio ")]);
    assert_eq!(
        text(&output.stdout).trim(),
        "errno 95",
        "{}",
        describe(&output)
    );
    let output = copy(&[("CFRFIX_ERRNOS", "EOPNOTSUPP")]);
    assert!(output.status.success(), "{}", describe(&output));
}

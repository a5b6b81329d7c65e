//! No self-recursion: futex contention through `syscall()` under the shim, and a DT_NEEDED
//! library whose constructor copies before ours has run.

use super::{FALLBACK, assert_same_file, command, compile, figure, run, run_within, write_pattern};
use crate::common::{ScratchDir, describe, text};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn futex_contention_through_syscall_works_under_the_shim() {
    let bin = ScratchDir::tmpfs("safety-futex");
    let Some(program) = compile(
        &bin.path().join("futex_storm"),
        &["futex_storm.c"],
        &["-pthread"],
    ) else {
        return;
    };
    let src = bin.path().join("src");
    write_pattern(&src, 100_000, 3);
    let (p, s, d) = (
        program.to_str().expect("utf-8"),
        src.to_str().expect("utf-8"),
        bin.path().to_str().expect("utf-8"),
    );
    let output = run_within(
        &mut command(FALLBACK, &[], p, &["8", "300000", s, d]),
        Duration::from_secs(60),
        None,
    );
    assert!(output.status.success(), "{}", describe(&output));
    let figures = text(&output.stdout).trim().to_string();
    assert!(
        !figures.contains("futex_calls=0 "),
        "no contention: {figures}"
    );
    figure(&format!("futex storm (EOPNOTSUPP injected): {figures}"));
}

#[test]
fn a_needed_librarys_constructor_copies_before_ours_has_run() {
    let bin = ScratchDir::rootfs("safety-early");
    let lib = bin.path().join("libearly.so");
    if compile(&lib, &["early_lib.c"], &["-shared", "-fPIC"]).is_none() {
        return;
    }
    let dir = bin.path().to_str().expect("utf-8");
    let rpath = format!("-Wl,-rpath,{dir}");
    let main = compile(
        &bin.path().join("early_main"),
        &["early_main.c"],
        &["-L", dir, "-Wl,--no-as-needed", "-learly", &rpath],
    )
    .expect("compiled above");
    let needed = run(Command::new("readelf").arg("-d").arg(&main));
    assert!(
        text(&needed.stdout).contains("[libearly.so]"),
        "not a DT_NEEDED"
    );

    let data = ScratchDir::tmpfs("safety-early-data");
    let src = data.path().join("src");
    let content = write_pattern(&src, 300_000, 5);
    let early = data.path().join("early");
    let early_sys = data.path().join("early.sys");
    let late = data.path().join("late");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let envs = |mode: &'static str| {
        vec![
            ("EARLY_SRC", s(&src)),
            ("EARLY_DST", s(&early)),
            ("CFRFIX_MODE", mode.to_string()),
        ]
    };
    let run_main = |mode: &'static str| {
        let envs = envs(mode);
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let output = run(&mut command(
            FALLBACK,
            &envs,
            main.to_str().expect("utf-8"),
            &[&s(&src), &s(&late)],
        ));
        assert!(output.status.success(), "{}", describe(&output));
        text(&output.stdout)
    };
    // Our constructor has not run yet when libearly's does: the built-in defaults (auto) apply
    // then, even though CFRFIX_MODE=off applies from main() on. Proves both the order and that
    // early calls work.
    let out = run_main("off");
    assert_eq!(
        out,
        "early libc ret=300000 errno=0\nearly syscall ret=300000 errno=0\nmain ret=-1 errno=95\n"
    );
    assert_same_file(&early, &content);
    assert_same_file(&early_sys, &content);
    let out = run_main("auto");
    assert!(out.ends_with("main ret=300000 errno=0\n"), "{out}");
    assert_same_file(&late, &content);
    figure(
        "early constructor: copy_file_range and syscall(SYS_copy_file_range) before our constructor both fell back correctly",
    );
}

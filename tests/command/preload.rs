//! What the command puts into `LD_PRELOAD` (one entry for every ABI, before the user's own,
//! never twice), the settings it passes on, and a refused copy made to work.

use crate::common::command::{
    artefact_dir, cfrfix, other_preload_library, python3, run, without_abi_warnings,
    write_test_file,
};
use crate::common::{ScratchDir, describe, skip, text};
use crate::{EOPNOTSUPP, injected_copy};
use std::fs;

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

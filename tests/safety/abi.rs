//! Old systems: the library needs glibc 2.17 and only libc (`scripts/check-abi`), and the
//! checker can fail.

use super::{MANIFEST_DIR, compile, figure, run};
use crate::common::{self, ScratchDir, describe, have_command, skip, text};
use std::path::Path;
use std::process::Command;

#[test]
fn abi_needs_glibc_2_17_and_only_libc() {
    if !have_command("objdump") || !have_command("readelf") {
        return skip("binutils (objdump, readelf) not installed");
    }
    let script = Path::new(MANIFEST_DIR).join("scripts/check-abi");
    let output = run(Command::new(&script).arg(common::cdylib()));
    assert!(output.status.success(), "{}", describe(&output));
    figure(text(&output.stdout).trim());
    // The checker itself must be able to fail: a library needing copy_file_range@GLIBC_2.27.
    let bin = ScratchDir::tmpfs("safety-abi");
    let lib = bin.path().join("libearly.so");
    if compile(&lib, &["early_lib.c"], &["-shared", "-fPIC"]).is_some() {
        let bad = run(Command::new(&script).arg(&lib));
        assert!(
            !bad.status.success(),
            "check-abi accepted {}",
            lib.display()
        );
        assert!(
            text(&bad.stderr).contains("GLIBC_2.27"),
            "{}",
            describe(&bad)
        );
    }
    // ...and a library with a reachable panic, i.e. an abort() import.
    let lib = bin.path().join("libpanicking.so");
    if compile(&lib, &["panicking_lib.c"], &["-shared", "-fPIC"]).is_some() {
        let bad = run(Command::new(&script).arg(&lib));
        assert!(
            !bad.status.success() && text(&bad.stderr).contains("imports abort"),
            "{}",
            describe(&bad)
        );
    }
}

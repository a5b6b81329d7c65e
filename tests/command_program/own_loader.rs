//! A program that names its own loader (PT_INTERP) rather than its ABI's standard one: Nix and
//! Guix programs, a side-installed glibc. That loader expands `$LIB` its own way, so the entry
//! is judged, and test-loaded, as it reads it: a copy of the standard loader (the same `$LIB`)
//! runs the program fixed; Debian's libc6-amd64:i386 loader (`$LIB` = lib64, cached by
//! scripts/build-targets) is refused where lib64 holds no library and serves where it does; a
//! loader that does not say what its `$LIB` is is refused.

use super::assert_refused;
use crate::common::command::{artefact_dir, newest_in_cache, run, script, write_test_file};
use crate::common::{ScratchDir, clean, describe, have_command, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// This ABI's standard loader (the one abis.rs knows).
const STANDARD_LOADER: &str = if cfg!(target_arch = "x86_64") {
    "/lib64/ld-linux-x86-64.so.2"
} else {
    "/lib/ld-linux-aarch64.so.1"
};

const COPY_BYTES: usize = 300_000;

/// tests/c/abi_chain.c built into `dir/name` with `loader` as its PT_INTERP (and `rpath`);
/// None after SKIPPED without a C compiler.
fn chain_with_loader(
    dir: &Path,
    name: &str,
    loader: &Path,
    rpath: Option<&Path>,
) -> Option<PathBuf> {
    if !have_command("cc") {
        skip("no C compiler (cc); .ci/run installs gcc");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/abi_chain.c");
    let out = dir.join(name);
    let mut cc = Command::new("cc");
    cc.args(["-O2", "-o"])
        .arg(&out)
        .arg(source)
        .arg(format!("-Wl,--dynamic-linker={}", loader.display()));
    if let Some(rpath) = rpath {
        cc.arg(format!("-Wl,-rpath={}", rpath.display()));
    }
    let built = run(&mut cc);
    assert!(built.status.success(), "{cc:?}: {}", describe(&built));
    Some(out)
}

/// `cfrfix-inject 95 scripts/cfrfix PROGRAM SOURCE DESTINATION` (the kernel answers EOPNOTSUPP)
/// with `preload` as the LD_PRELOAD it starts with.
fn copy_under_injection(program: &Path, dir: &Path, preload: Option<&str>) -> Output {
    let mut command = clean(artefact_dir().join("cfrfix-inject"));
    command
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
        .arg("95")
        .arg(script("cfrfix"))
        .arg(program)
        .arg(dir.join("source"))
        .arg(dir.join("copy"));
    if let Some(preload) = preload {
        command.env("LD_PRELOAD", preload);
    }
    run(&mut command)
}

/// The copy ran through the library `library` and is byte-identical.
fn assert_fixed(output: &Output, dir: &Path, content: &[u8], library: &str) {
    let report = describe(output);
    assert!(output.status.success(), "{report}");
    let line = format!("ret=0 errno=0 total={COPY_BYTES} cfrfix={library}");
    assert!(
        text(&output.stdout).contains(&line),
        "'{line}' missing: {report}"
    );
    let copied = fs::read(dir.join("copy")).expect("the copy");
    assert!(copied == content, "the copy differs: {report}");
}

#[test]
fn a_copy_of_the_standard_loader_runs_the_program_fixed() {
    let dir = ScratchDir::tmpfs("program-loader-copy");
    let content = write_test_file(&dir.path().join("source"), COPY_BYTES);
    let copy = dir.path().join("ld-copy.so");
    fs::copy(STANDARD_LOADER, &copy).expect("copy the loader");
    let link = dir.path().join("ld-link.so");
    std::os::unix::fs::symlink(STANDARD_LOADER, &link).expect("symlink");
    let library = fs::canonicalize(artefact_dir().join("libcfrfix.so")).expect("library");
    for loader in [&copy, &link] {
        let Some(program) = chain_with_loader(dir.path(), "chain", loader, None) else {
            return;
        };
        let _ = fs::remove_file(dir.path().join("copy"));
        let output = copy_under_injection(&program, dir.path(), None);
        assert_fixed(
            &output,
            dir.path(),
            &content,
            library.to_str().expect("UTF-8"),
        );
        assert!(
            !text(&output.stderr).contains("ld.so"),
            "{}: {}",
            loader.display(),
            describe(&output)
        );
    }
}

/// Debian's libc6-amd64:i386 unpacked by scripts/build-targets: its loader (`$LIB` is lib64).
fn libc6_amd64_loader() -> Option<PathBuf> {
    let root = newest_in_cache("i386-libc6-amd64-", ".complete")?;
    Some(root.join("root/lib64/ld-linux-x86-64.so.2"))
}

#[test]
fn a_loader_with_another_lib_is_refused_unless_its_lib_holds_the_library() {
    if !cfg!(target_arch = "x86_64") {
        return skip("the stand-in loader (libc6-amd64:i386) is an x86_64 one");
    }
    let Some(loader) = libc6_amd64_loader() else {
        return skip(
            "no libc6-amd64:i386 in the cache: run scripts/build-targets i686-unknown-linux-gnu",
        );
    };
    let dir = ScratchDir::tmpfs("program-loader-lib64");
    let content = write_test_file(&dir.path().join("source"), COPY_BYTES);
    let lib64 = loader.parent().expect("lib64");
    let Some(program) = chain_with_loader(dir.path(), "own-loader", &loader, Some(lib64)) else {
        return;
    };
    let copy = dir.path().join("copy");
    // The command's entry, ARTEFACTS/preload/$LIB/libcfrfix.so, is preload/lib64/ for it.
    let output = copy_under_injection(&program, dir.path(), None);
    let expected = format!("{}/preload/lib64/libcfrfix.so", artefact_dir().display());
    assert_refused(
        &output,
        &copy,
        &[
            &format!("is started by its own loader {}", loader.display()),
            "whose $LIB is lib64",
            &format!("is {expected}: missing)"),
        ],
    );
    // The user's own entry, DIR/$LIB/libcfrfix.so, with the library in DIR/lib64/: served.
    fs::create_dir(dir.path().join("lib64")).expect("mkdir");
    let served = dir.path().join("lib64/libcfrfix.so");
    let good = fs::read(artefact_dir().join("libcfrfix.so")).expect("library");
    fs::write(&served, &good).expect("write");
    let entry = format!("{}/$LIB/libcfrfix.so", dir.path().display());
    let output = copy_under_injection(&program, dir.path(), Some(&entry));
    assert_fixed(
        &output,
        dir.path(),
        &content,
        served.to_str().expect("UTF-8"),
    );
    // A truncated library there is test-loaded with that loader, and refused.
    fs::remove_file(&copy).expect("rm");
    fs::write(&served, &good[..1000]).expect("write");
    let output = copy_under_injection(&program, dir.path(), Some(&entry));
    assert_refused(
        &output,
        &copy,
        &[
            &format!(
                "does not load into x86_64 programs started by {}",
                loader.display()
            ),
            "SIGBUS",
        ],
    );
}

#[test]
fn a_loader_that_does_not_say_its_lib_is_refused() {
    let dir = ScratchDir::tmpfs("program-loader-silent");
    write_test_file(&dir.path().join("source"), COPY_BYTES);
    // A loader that prints nothing for --list-diagnostics (glibc before 2.33 says nothing too).
    let loader = dir.path().join("silent-ld.so");
    fs::write(&loader, "#!/bin/sh\nexit 0\n").expect("write");
    fs::set_permissions(&loader, fs::Permissions::from_mode(0o755)).expect("chmod");
    let Some(program) = chain_with_loader(dir.path(), "silent", &loader, None) else {
        return;
    };
    let copy = dir.path().join("copy");
    let output = copy_under_injection(&program, dir.path(), None);
    assert_refused(
        &output,
        &copy,
        &[
            &format!("is started by its own loader {}", loader.display()),
            "does not tell where its $LIB points",
            "/preload/$LIB/libcfrfix.so",
        ],
    );
    // A loader that is not there: exec fails by itself (not cfrfix's 125), nothing runs.
    fs::remove_file(&loader).expect("rm");
    let output = copy_under_injection(&program, dir.path(), None);
    assert_eq!(output.status.code(), Some(127), "{}", describe(&output));
    assert!(!copy.exists(), "{}", describe(&output));
}

//! `scripts/build-package-tools TRIPLE` builds with the environment `scripts/build-targets
//! --print-env TRIPLE` gives, whichever toolchain builds it: rustup's (nothing to set for i686:
//! no line at all) and Debian's rustc-web (`RUSTC=...`). Stubs on PATH stand for cargo (it
//! records its environment and arguments, then stops the build) and, for the rustup route, for
//! rustup (it has the target), so nothing is downloaded and nothing built.

use crate::common::command::{newest_in_cache, run, script};
use crate::common::{ScratchDir, clean, describe, have_command, skip, text};
use crate::targets::I686;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What the stub cargo exits with (set -e passes it on).
const CARGO_STUB_STATUS: i32 = 7;

fn executable(path: &Path, body: &str) {
    fs::write(path, body).expect("write stub");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod stub");
}

/// A scratch directory with `bin/cargo` (records `RUSTC` and its arguments in `cargo.log`) and,
/// if `rustup`, `bin/rustup` (it lists the i686 target as installed).
fn stubs(tag: &str, rustup: bool) -> ScratchDir {
    let dir = ScratchDir::tmpfs(tag);
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).expect("mkdir");
    let log = dir.path().join("cargo.log");
    executable(
        &bin.join("cargo"),
        &format!(
            "#!/bin/sh\nprintf 'RUSTC=%s\\nargs=%s\\n' \"${{RUSTC-unset}}\" \"$*\" >>'{}'\n\
             exit {CARGO_STUB_STATUS}\n",
            log.display()
        ),
    );
    if rustup {
        executable(
            &bin.join("rustup"),
            &format!(
                "#!/bin/sh\n[ \"$*\" = 'target list --installed' ] || exit 1\n\
                 printf '%s\\n' x86_64-unknown-linux-gnu {I686}\n"
            ),
        );
    }
    dir
}

/// `scripts/NAME` (of the scratch checkout in `dir`, if there is one) with the stubs first on
/// PATH, the toolchain `route`, a scratch target directory and the cache of the run
/// (CFRFIX_CACHE, if set).
fn stubbed(dir: &ScratchDir, name: &str, route: &str) -> Command {
    let path = format!(
        "{}:{}",
        dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let scratch_checkout = dir.path().join("checkout/scripts").join(name);
    let mut command = if scratch_checkout.exists() {
        clean(scratch_checkout)
    } else {
        clean(script(name))
    };
    command
        .env("PATH", path)
        .env("CFRFIX_TOOLCHAIN", route)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTC");
    if let Some(cache) = std::env::var_os("CFRFIX_CACHE") {
        command.env("CFRFIX_CACHE", cache);
    }
    command
}

/// Whether `cc -m32` links here (build-targets would install gcc-multilib otherwise).
fn links_32_bit(dir: &Path) -> bool {
    let source = dir.join("m32.c");
    fs::write(&source, "int main(void) { return 0; }\n").expect("write");
    Command::new("cc")
        .args(["-m32", "-o"])
        .arg(dir.join("m32"))
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The stub cargo's log: it was reached, with `--target i686-...`, and `RUSTC` as expected.
fn assert_cargo_ran(dir: &ScratchDir, output: &Output, rustc: &str) {
    let report = describe(output);
    assert_eq!(output.status.code(), Some(CARGO_STUB_STATUS), "{report}");
    assert!(!text(&output.stderr).contains("env:"), "{report}");
    let log = fs::read_to_string(dir.path().join("cargo.log")).expect("cargo was not run");
    let mut lines = log.lines();
    assert_eq!(
        lines.next(),
        Some(format!("RUSTC={rustc}").as_str()),
        "{log}"
    );
    let args = lines.next().unwrap_or("");
    assert!(args.starts_with("args=rustc --release"), "{log}");
    assert!(
        args.contains(&format!("--target {I686} --bin cfrfix-check")),
        "{log}"
    );
}

#[test]
fn package_tools_build_with_rustups_target_and_nothing_to_set() {
    if !have_command("cc") || !have_command("rustc") {
        return skip("needs cc and rustc");
    }
    let dir = stubs("package-tools-rustup", true);
    if !links_32_bit(dir.path()) {
        return skip("cc -m32 cannot link here (gcc-multilib; scripts/build-targets installs it)");
    }
    let env = run(stubbed(&dir, "build-targets", "rustup").args(["--print-env", I686]));
    assert!(env.status.success(), "{}", describe(&env));
    assert_eq!(text(&env.stdout), "", "nothing to set: no line");
    let output = run(stubbed(&dir, "build-package-tools", "rustup").arg(I686));
    assert_cargo_ran(&dir, &output, "unset");
}

/// Debian's rustc-web with the i386 standard library, as scripts/build-targets caches it.
fn cached_rust_web() -> Option<PathBuf> {
    newest_in_cache("rust-web-", ".unpacked-libstd-rust-web-dev_i386")
}

#[test]
fn package_tools_build_with_debians_rustc_web() {
    if !have_command("cc") || !have_command("rustc") {
        return skip("needs cc and rustc");
    }
    let Some(root) = cached_rust_web() else {
        return skip(&format!(
            "no cached rustc-web with the i386 standard library: run CFRFIX_TOOLCHAIN=debian \
             scripts/build-targets {I686}"
        ));
    };
    let version = root
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("rust-web-"))
        .expect("version")
        .to_string();
    let dir = stubs("package-tools-debian", false);
    if !links_32_bit(dir.path()) {
        return skip("cc -m32 cannot link here (gcc-multilib; scripts/build-targets installs it)");
    }
    let output = run(stubbed(&dir, "build-package-tools", "debian")
        .arg(I686)
        .env("CFRFIX_RUST_WEB_VERSION", &version));
    assert_cargo_ran(&dir, &output, &format!("{}/rustc", root.display()));
}

/// Empty lines among build-targets' NAME=VALUE lines are no settings (`env ""` would fail):
/// build-package-tools copied into a scratch checkout whose build-targets prints them.
#[test]
fn package_tools_skip_empty_lines_of_the_environment() {
    if !have_command("rustc") || !have_command("readelf") || !have_command("objdump") {
        return skip("needs rustc, readelf and objdump");
    }
    let dir = stubs("package-tools-empty", false);
    let scripts = dir.path().join("checkout/scripts");
    fs::create_dir_all(&scripts).expect("mkdir");
    fs::copy(
        script("build-package-tools"),
        scripts.join("build-package-tools"),
    )
    .expect("copy");
    executable(
        &scripts.join("build-targets"),
        "#!/bin/sh\n\
         case $1 in\n\
         --print-env) printf '\\nRUSTC=/stub/rustc\\n\\n' ;;\n\
         --print-dir) echo target/$2/release ;;\n\
         esac\n",
    );
    let output = run(stubbed(&dir, "build-package-tools", "rustup").arg(I686));
    assert_cargo_ran(&dir, &output, "/stub/rustc");
}

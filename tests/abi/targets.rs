//! Where `scripts/build-targets` put each target's build, whether it is current, and what a
//! target's programs need to run here (a loader, an emulator, a C compiler).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::common::{self, skip};

pub const I686: &str = "i686-unknown-linux-gnu";
pub const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// The i386 loader (Debian's libc6-i386, which gcc-multilib brings).
pub const I386_LOADER: &str = "/lib/ld-linux.so.2";
/// Debian's arm64 C library for cross builds (libc6-dev-arm64-cross), which qemu-aarch64
/// uses as the guest's root (`-L`).
pub const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// One target's build: the library and the probe driver.
pub struct Build {
    pub dir: PathBuf,
}

impl Build {
    pub fn library(&self) -> PathBuf {
        self.dir.join("libcfrfix.so")
    }

    pub fn probe(&self) -> PathBuf {
        self.dir.join("cfrfix-probe")
    }
}

/// The build of `triple`, or `None` (after printing SKIPPED) when there is none. Panics when it
/// is older than the sources it was built from.
pub fn build(triple: &'static str, test: &str) -> Option<Build> {
    // target/release → target/<triple>/release
    let target_dir = common::profile_dir()
        .parent()
        .expect("target directory")
        .to_path_buf();
    let build = Build {
        dir: target_dir.join(triple).join("release"),
    };
    for artefact in [build.library(), build.probe()] {
        if !artefact.exists() {
            skip(&format!(
                "{test}: no {triple} build ({} missing): run scripts/build-targets {triple}",
                artefact.display()
            ));
            return None;
        }
    }
    for (artefact, dep_info) in [
        (build.library(), build.dir.join("libcfrfix.d")),
        (build.probe(), build.dir.join("cfrfix-probe.d")),
    ] {
        if let Some(newer) = newer_source(&artefact, &dep_info) {
            panic!(
                "{} is older than {}: run scripts/build-targets {triple}",
                artefact.display(),
                newer.display()
            );
        }
    }
    Some(build)
}

/// A source file the artefact was built from that changed after it was built: the files
/// Cargo's dep-info lists (only what that target compiled: another architecture's code is not
/// there), and Cargo.toml and Cargo.lock.
fn newer_source(artefact: &Path, dep_info: &Path) -> Option<PathBuf> {
    let built = modified(artefact)?;
    let listed = std::fs::read_to_string(dep_info).ok()?;
    let (_, deps) = listed.lines().next()?.split_once(": ")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    deps.split_whitespace()
        .map(PathBuf::from)
        .chain([root.join("Cargo.toml"), root.join("Cargo.lock")])
        .filter(|source| modified(source).is_some_and(|time| time > built))
        .max_by_key(|source| modified(source))
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// Whether 32-bit x86 programs can run here.
pub fn can_run_i386(test: &str) -> bool {
    let present = Path::new(I386_LOADER).exists();
    if !present {
        skip(&format!(
            "{test}: no i386 loader {I386_LOADER} (install libc6-i386)"
        ));
    }
    present
}

/// `qemu-aarch64 -L SYSROOT`, or `None` (after SKIPPED) without the emulator or the sysroot.
pub fn aarch64_emulator(test: &str) -> Option<Vec<String>> {
    if !common::have_command("qemu-aarch64") {
        skip(&format!(
            "{test}: qemu-aarch64 not found (install qemu-user)"
        ));
        return None;
    }
    if !Path::new(AARCH64_SYSROOT)
        .join("lib/ld-linux-aarch64.so.1")
        .exists()
    {
        skip(&format!(
            "{test}: no arm64 C library in {AARCH64_SYSROOT} (install libc6-dev-arm64-cross)"
        ));
        return None;
    }
    Some(vec![
        "qemu-aarch64".into(),
        "-L".into(),
        AARCH64_SYSROOT.into(),
    ])
}

/// Compiles `tests/c/<name>.c` with `compiler args` into `out/<output>`; `None` (after
/// SKIPPED) when the compiler is missing or cannot build for that ABI here.
pub fn compile_c(
    test: &str,
    out: &Path,
    name: &str,
    output: &str,
    compiler: &str,
    args: &[&str],
) -> Option<PathBuf> {
    if !common::have_command(compiler) {
        skip(&format!("{test}: {compiler} not found"));
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    let binary = out.join(output);
    let result = Command::new(compiler)
        .args(["-O2", "-Wall", "-Werror"])
        .args(args)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run the C compiler");
    if !result.status.success() {
        skip(&format!(
            "{test}: {compiler} {} cannot build {name}.c here (for -m32: install gcc-multilib): {}",
            args.join(" "),
            common::text(&result.stderr).trim()
        ));
        return None;
    }
    Some(binary)
}

/// `gcc -m32`; Debian's multilib headers keep `asm/` under the x86_64 include directory.
pub const GCC_M32: [&str; 3] = ["-m32", "-idirafter", "/usr/include/x86_64-linux-gnu"];

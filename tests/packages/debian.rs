//! The .debs installed with apt into a fresh Debian root, the 64-bit and the 32-bit library
//! side by side, as a user with 32-bit programs (Steam's) installs them.

use std::fs;
use std::path::PathBuf;

use crate::common::{self, Rng, skip, text};
use crate::root::DebianRoot;
use crate::{RELEASE, VERSION, arch, built, deb, ok};

/// Where the test programs and their files live inside the root.
pub const TEST_DIR: &str = "/opt/cfrfix-test";
pub const PACKAGES: &str = "cfrfix libcfrfix:amd64 libcfrfix:i386";

/// A root with the amd64 command and library and the i386 library installed with apt, and the
/// chain programs (tests/c/abi_chain.c, 64-bit and 32-bit) in TEST_DIR; None after SKIPPED.
pub fn installed_root(test: &str) -> Option<DebianRoot> {
    let (amd64, i386) = (arch("amd64"), arch("i386"));
    installed_root_with(
        test,
        &[
            deb("cfrfix", &amd64),
            deb("libcfrfix", &amd64),
            deb("libcfrfix", &i386),
        ],
    )
}

/// A root with `debs` installed with apt (all of them in /tmp/debs inside it), and the chain
/// programs in TEST_DIR; None after SKIPPED.
pub fn installed_root_with(test: &str, debs: &[PathBuf]) -> Option<DebianRoot> {
    built(test, debs)?;
    let programs = chain_programs(test)?;
    let root = DebianRoot::new(test)?;
    let mut arguments = Vec::new();
    for package in debs {
        let name = package.file_name().expect("name").to_str().expect("utf-8");
        root.put(
            &format!("/tmp/debs/{name}"),
            &fs::read(package).expect("read"),
            0o644,
        );
        arguments.push(format!("/tmp/debs/{name}"));
    }
    for (name, program) in [("chain64", &programs.0), ("chain32", &programs.1)] {
        root.put(
            &format!("{TEST_DIR}/{name}"),
            &fs::read(program).expect("read"),
            0o755,
        );
    }
    let mut rng = Rng(0xdeb);
    let source: Vec<u8> = (0..400_000).map(|_| rng.next() as u8).collect();
    root.put(&format!("{TEST_DIR}/source"), &source, 0o644);

    assert_eq!(
        root.read("/etc/ld.so.preload"),
        None,
        "the base root preloads nothing"
    );
    // Offline: the i386 C library it pulls in is in the root's apt cache (scripts/debian-root).
    let install = root.run(&format!(
        "apt-get install -y -q --no-install-recommends {}",
        arguments.join(" ")
    ));
    ok(&install, "apt-get install");
    let status = root.run(
        "dpkg-query -W -f '${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\\n' 'cfrfix*' 'libcfrfix*'",
    );
    ok(&status, "dpkg-query");
    let version = format!("{VERSION}-{RELEASE}");
    for package in debs.iter().map(|deb| {
        let name = deb.file_name().expect("name").to_str().expect("utf-8");
        let (package, rest) = name.split_once('_').expect("package_version_arch.deb");
        let arch = rest
            .rsplit_once('_')
            .expect("arch")
            .1
            .trim_end_matches(".deb");
        format!("{package}:{arch}")
    }) {
        assert!(
            text(&status.stdout).contains(&format!("{package} {version} ii ")),
            "{package}: {}",
            text(&status.stdout)
        );
    }
    assert_eq!(
        root.read("/etc/ld.so.preload"),
        None,
        "installing must not enable system-wide mode"
    );
    Some(root)
}

/// tests/c/abi_chain.c for 64-bit and 32-bit x86, or None after SKIPPED.
fn chain_programs(test: &str) -> Option<(PathBuf, PathBuf)> {
    let bin = common::scratch_dir_for_process("/dev/shm", "packages-bin");
    let source = crate::repo().join("tests/c/abi_chain.c");
    let mut programs = Vec::new();
    for (name, flags) in [
        ("chain64", &[][..]),
        (
            "chain32",
            &[
                "-m32",
                "-idirafter",
                "/usr/include/x86_64-linux-gnu",
                "-D_FILE_OFFSET_BITS=64",
            ][..],
        ),
    ] {
        let out = bin.join(name);
        if !out.exists() {
            let built = std::process::Command::new("gcc")
                .args(["-O2", "-Wall", "-Werror"])
                .args(flags)
                .arg("-o")
                .arg(&out)
                .arg(&source)
                .output();
            if !built.as_ref().is_ok_and(|b| b.status.success()) {
                skip(&format!(
                    "{test}: gcc {} cannot build abi_chain.c (gcc-multilib)",
                    flags.join(" ")
                ));
                return None;
            }
        }
        programs.push(out);
    }
    Some((programs[0].clone(), programs[1].clone()))
}

/// Runs the chain 64-bit → 32-bit inside the root under an injected EOPNOTSUPP, with `prefix`
/// before the first program (`cfrfix`, or `env -u LD_PRELOAD` under system-wide mode), and
/// checks that both links were fixed by their own architecture's packaged library, with no
/// ld.so line. Without system-wide mode, the refusal must first show without cfrfix.
pub fn assert_chain_fixed(root: &DebianRoot, prefix: &str, system_wide: bool) {
    let t = TEST_DIR;
    let chain = format!("{t}/chain64 {t}/source {t}/copy64 {t}/chain32 {t}/source {t}/copy32");
    let source = root.read(&format!("{t}/source")).expect("source");
    if !system_wide {
        let refused = root.run(&format!(
            "/usr/libexec/cfrfix/cfrfix-inject 95 env -u LD_PRELOAD {chain}"
        ));
        ok(&refused, "chain without cfrfix");
        assert_eq!(
            text(&refused.stdout)
                .matches(" ret=-1 errno=95 total=0 cfrfix=none")
                .count(),
            2,
            "{}",
            text(&refused.stdout)
        );
    }
    let fixed = root.run(&format!(
        "/usr/libexec/cfrfix/cfrfix-inject 95 {prefix} {chain}"
    ));
    ok(&fixed, "chain under cfrfix");
    let stdout = text(&fixed.stdout);
    let expected = [
        (
            "bits=64",
            "/usr/lib/x86_64-linux-gnu/libcfrfix.so",
            "copy64",
        ),
        ("bits=32", "/usr/lib/i386-linux-gnu/libcfrfix.so", "copy32"),
    ];
    for (bits, library, copy) in expected {
        assert!(
            stdout.lines().any(|l| l.contains(bits)
                && l.ends_with(&format!(
                    " ret=0 errno=0 total={} cfrfix={library}",
                    source.len()
                ))),
            "{bits}: {stdout}\n{}",
            text(&fixed.stderr)
        );
        assert!(
            root.read(&format!("{t}/{copy}")).expect("copy") == source,
            "{copy} differs"
        );
    }
    assert!(
        !text(&fixed.stderr).contains("ld.so"),
        "{}",
        text(&fixed.stderr)
    );
}

#[test]
fn debian_packages_install_side_by_side_and_leave_nothing_behind() {
    let test = "debian_packages_install_side_by_side_and_leave_nothing_behind";
    let Some(root) = installed_root(test) else {
        return;
    };
    // The diagnosis runs: /dev/shm (tmpfs) → /var/tmp (the root's overlay) is a natural EXDEV.
    let check = root.run("cfrfix --check /dev/shm /var/tmp");
    ok(&check, "cfrfix --check");
    assert!(
        text(&check.stdout).contains("result: works through cfrfix"),
        "{}",
        text(&check.stdout)
    );
    let status = root.run("cfrfix --status");
    for line in [
        "library for `cfrfix PROGRAM`: /usr/$LIB/libcfrfix.so",
        "  x86_64 programs: get cfrfix (/usr/$LIB/libcfrfix.so = /usr/lib/x86_64-linux-gnu/libcfrfix.so: ELF 64-bit x86-64)",
        "  i386 programs: get cfrfix (/usr/$LIB/libcfrfix.so = /usr/lib/i386-linux-gnu/libcfrfix.so: ELF 32-bit i386)",
    ] {
        assert!(
            text(&status.stdout).lines().any(|l| l == line),
            "{line}: {}",
            text(&status.stdout)
        );
    }
    assert_chain_fixed(&root, "cfrfix", false);

    // Removal: every file the packages installed, and every directory they made that no other
    // package (the i386 C library they pulled in) owns, is gone.
    let listed = root.run(&format!("dpkg -L {PACKAGES}"));
    ok(&listed, "dpkg -L");
    let new_paths: Vec<String> = text(&listed.stdout)
        .lines()
        .filter(|p| p.starts_with('/') && !root.base().join(&p[1..]).exists())
        .map(str::to_string)
        .collect();
    assert!(
        new_paths.iter().any(|p| p.ends_with("/libcfrfix.so")),
        "{new_paths:?}"
    );
    ok(
        &root.run(&format!("apt-get purge -y -q {PACKAGES}")),
        "apt-get purge",
    );
    let left = root.run(&format!(
        "for p in {}; do [ ! -e \"$p\" ] || dpkg -S \"$p\" >/dev/null 2>&1 || echo \"$p\"; done; \
         find / -xdev -name '*cfrfix*' ! -path '{TEST_DIR}*' ! -path '/tmp/debs*'",
        new_paths.join(" ")
    ));
    ok(&left, "leftovers");
    assert_eq!(text(&left.stdout), "", "left behind after purge");
}

#[test]
fn debian_purge_after_system_wide_enable_restores_ld_so_preload() {
    let test = "debian_purge_after_system_wide_enable_restores_ld_so_preload";
    let Some(root) = installed_root(test) else {
        return;
    };
    // An existing file without a final newline; a bare name, so that every ABI loads it.
    let original = b"libm.so.6";
    root.put("/etc/ld.so.preload", original, 0o644);
    let enable = root.run("/usr/libexec/cfrfix/cfrfix-system-wide enable '/usr/$LIB/libcfrfix.so'");
    ok(&enable, "cfrfix-system-wide enable");
    assert_eq!(
        root.read("/etc/ld.so.preload").expect("ld.so.preload"),
        b"libm.so.6\n/usr/$LIB/libcfrfix.so\n"
    );
    // Every 64-bit and 32-bit process now gets its own library, with no LD_PRELOAD at all.
    assert_chain_fixed(&root, "env -u LD_PRELOAD", true);

    ok(
        &root.run(&format!("apt-get purge -y -q {PACKAGES}")),
        "apt-get purge",
    );
    assert_eq!(
        root.read("/etc/ld.so.preload").expect("restored"),
        original,
        "restored byte for byte"
    );
    let mode = root.run("stat -c %a /etc/ld.so.preload; ls /etc | grep cfrfix || true");
    assert_eq!(
        text(&mode.stdout),
        "644\n",
        "mode kept, no state files left"
    );
}

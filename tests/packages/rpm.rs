//! The .rpms installed with `rpm --root` into a fresh root, the x86_64 and the i686 library side
//! by side with the x86_64 command, then erased.
//!
//! `--nodeps` on install, because no root here can satisfy what a Fedora package needs from
//! Fedora (`libc.so.6()(64bit)`, `bash`, `/usr/bin/env` are provided by Fedora's glibc, bash and
//! coreutils packages, and only Debian's archive can be reached): the root is the Debian one of
//! `scripts/debian-root` with an empty RPM database, so that the scriptlets have a shell to run
//! in. The packages' dependencies on each other are checked without `--nodeps`: erasing the
//! library the command requires is refused.

use std::collections::BTreeSet;

use crate::common::{self, skip, text};
use crate::root::DebianRoot;
use crate::{RELEASE, VERSION, arch, built, elf_kind, ok, rpm};

/// `rpm` on this machine, for the root mounted at $ROOT.
const RPM_IN_ROOT: &str = "rpm --root \"$ROOT\" --dbpath /var/lib/rpm";

/// A root with cfrfix-libs.x86_64, cfrfix-libs.i686 and cfrfix.x86_64 installed with
/// `rpm -i --nodeps` (their files in /tmp/rpms inside it); None after SKIPPED.
fn rpm_root(test: &str) -> Option<DebianRoot> {
    if !common::have_command("rpm") {
        skip(&format!("{test}: rpm not installed"));
        return None;
    }
    let (x86_64, i686) = (arch("amd64"), arch("i386"));
    let packages = [
        rpm("cfrfix-libs", &x86_64),
        rpm("cfrfix-libs", &i686),
        rpm("cfrfix", &x86_64),
    ];
    built(test, &packages)?;
    let root = DebianRoot::new(test)?;
    let mut paths = Vec::new();
    for package in &packages {
        let name = package.file_name().expect("name").to_str().expect("utf-8");
        root.put(
            &format!("/tmp/rpms/{name}"),
            &std::fs::read(package).expect("read"),
            0o644,
        );
        paths.push(format!("\"$ROOT/tmp/rpms/{name}\""));
    }
    let rpm_in_root = RPM_IN_ROOT;
    ok(
        &root.run_outside(&format!(
            "{rpm_in_root} --initdb && {rpm_in_root} -i --nodeps {}",
            paths.join(" ")
        )),
        "rpm -i",
    );
    Some(root)
}

#[test]
fn rpm_packages_install_side_by_side_and_erase_cleanly() {
    let test = "rpm_packages_install_side_by_side_and_erase_cleanly";
    let Some(root) = rpm_root(test) else {
        return;
    };
    let (x86_64, i686) = (arch("amd64"), arch("i386"));
    let rpm_in_root = RPM_IN_ROOT;
    let installed = root.run_outside(&format!(
        "{rpm_in_root} -qa --qf '%{{NAME}}-%{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\\n'"
    ));
    ok(&installed, "rpm -qa");
    let version = format!("{VERSION}-{RELEASE}");
    let expected_names = [
        format!("cfrfix-libs-{version}.x86_64"),
        format!("cfrfix-libs-{version}.i686"),
        format!("cfrfix-{version}.x86_64"),
    ];
    let stdout = text(&installed.stdout);
    let names: BTreeSet<&str> = stdout.lines().collect();
    for name in &expected_names {
        assert!(names.contains(name.as_str()), "{name}: {names:?}");
    }
    // Each architecture's library where Fedora's loader expands $LIB, and of that architecture.
    for arch in [&x86_64, &i686] {
        let library = format!("{}/libcfrfix.so", arch.rpm_libdir);
        let bytes = root
            .read(&library)
            .unwrap_or_else(|| panic!("{library} missing"));
        assert_eq!(
            elf_kind(&bytes),
            Some((arch.class, arch.machine)),
            "{library}"
        );
    }
    // The command requires its own architecture's library: erasing that is refused.
    let refused = root.run_outside(&format!("{rpm_in_root} -e --test cfrfix-libs.x86_64"));
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("cfrfix-libs(x86-64)")
            && text(&refused.stderr).contains("needed by"),
        "{}",
        text(&refused.stderr)
    );
    let files = root.run_outside(&format!("{rpm_in_root} -qal"));
    ok(&files, "rpm -qal");
    let files: Vec<String> = text(&files.stdout).lines().map(str::to_string).collect();
    assert!(files.len() >= 15, "{files:?}");

    // Erased (the pre-removal scriptlets run in the root's shell): nothing left.
    ok(
        &root.run_outside(&format!(
            "{rpm_in_root} -e cfrfix cfrfix-libs.x86_64 cfrfix-libs.i686"
        )),
        "rpm -e",
    );
    let left = root.run(&format!(
        "for f in {}; do [ ! -e \"$f\" ] || echo \"$f\"; done",
        files.join(" ")
    ));
    ok(&left, "leftovers");
    assert_eq!(text(&left.stdout), "", "left behind after rpm -e");
}

/// System-wide mode on, then `rpm -e cfrfix-libs.i686` with cfrfix-libs.x86_64 kept: %preun
/// is told 1 (rpm counts instances by name) and keeps the entry; %postun, after the file
/// went, finds the i386 ABI without its library and turns system-wide mode off, saying so
/// (left in, every 32-bit process would print an ld.so error). A reinstall (the old files
/// replaced, %preun and %postun told 1) keeps it.
///
/// The root is Debian's, whose loaders expand `$LIB` to lib/x86_64-linux-gnu and
/// lib/i386-linux-gnu: links from there to /usr/lib64 and /usr/lib, where the packages put
/// the libraries, stand for Fedora's expansion, so that `cfrfix-system-wide enable` and the
/// scriptlets' per-ABI check run for real.
#[test]
fn rpm_erasing_the_i686_library_turns_system_wide_mode_off() {
    let test = "rpm_erasing_the_i686_library_turns_system_wide_mode_off";
    let Some(root) = rpm_root(test) else {
        return;
    };
    let entry = "/usr/$LIB/libcfrfix.so";
    // Offline: libc6:i386 is in the root's apt cache (scripts/debian-root).
    ok(
        &root.run(
            "apt-get install -y -q --no-install-recommends libc6:i386 &&
             ln -s /usr/lib64/libcfrfix.so /usr/lib/x86_64-linux-gnu/libcfrfix.so &&
             ln -s /usr/lib/libcfrfix.so /usr/lib/i386-linux-gnu/libcfrfix.so",
        ),
        "i386 C library and Fedora's $LIB",
    );
    ok(
        &root.run(&format!(
            "/usr/libexec/cfrfix/cfrfix-system-wide enable '{entry}'"
        )),
        "cfrfix-system-wide enable",
    );
    let enabled = format!("{entry}\n").into_bytes();
    assert_eq!(root.read("/etc/ld.so.preload"), Some(enabled.clone()));

    let reinstall = root.run_outside(&format!(
        "{RPM_IN_ROOT} -U --replacepkgs --nodeps \"$ROOT\"/tmp/rpms/*.rpm 2>&1"
    ));
    ok(&reinstall, "rpm -U --replacepkgs");
    assert!(
        !text(&reinstall.stdout).contains("OFF"),
        "{}",
        text(&reinstall.stdout)
    );
    assert_eq!(root.read("/etc/ld.so.preload"), Some(enabled), "kept");

    let erase = root.run_outside(&format!("{RPM_IN_ROOT} -e cfrfix-libs.i686 2>&1"));
    ok(&erase, "rpm -e cfrfix-libs.i686");
    let printed = text(&erase.stdout);
    for line in [
        "cfrfix-system-wide: removed /etc/ld.so.preload (there was none before)",
        "cfrfix-system-wide: system-wide mode is now OFF for every ABI, 64-bit programs included:",
        "cfrfix-system-wide: to turn it back on, install the missing library, then run:",
        "cfrfix-system-wide:   /usr/libexec/cfrfix/cfrfix-system-wide enable '/usr/$LIB/libcfrfix.so'",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line}\n{printed}");
    }
    assert!(
        printed.contains(
            "because a library package was removed and i386 programs would not get cfrfix: \
             /usr/lib/i386-linux-gnu/libcfrfix.so is missing; "
        ),
        "{printed}"
    );
    assert_eq!(root.read("/usr/lib/libcfrfix.so"), None, "erased");
    assert_eq!(
        root.read("/etc/ld.so.preload"),
        None,
        "there was none before"
    );
    assert_eq!(root.read("/etc/ld.so.preload.cfrfix-added"), None);
    // The 32-bit C library, a 32-bit program, starts cleanly again.
    let libc32 = root.run("/lib/i386-linux-gnu/libc.so.6");
    ok(&libc32, "i386 libc.so.6");
    assert_eq!(text(&libc32.stderr), "");
}

/// System-wide mode enabled on a 64-bit-only machine, then the i386 C library arrives (Steam)
/// while the i686 library is not installed: the next upgrade or reinstall of cfrfix-libs.x86_64
/// runs the old package's %postun, which judges only its own file (there again) and leaves
/// system-wide mode on. The gap of the other ABI is `status`'s to report, not this package's
/// to act on (an upgrade never turns system-wide mode off).
#[test]
fn rpm_reinstall_keeps_system_wide_mode_when_another_abi_arrived_later() {
    let test = "rpm_reinstall_keeps_system_wide_mode_when_another_abi_arrived_later";
    let Some(root) = rpm_root(test) else {
        return;
    };
    let entry = "/usr/$LIB/libcfrfix.so";
    ok(
        &root.run_outside(&format!("{RPM_IN_ROOT} -e cfrfix-libs.i686 2>&1")),
        "rpm -e cfrfix-libs.i686 (before any enable)",
    );
    ok(
        &root.run(
            "ln -s /usr/lib64/libcfrfix.so /usr/lib/x86_64-linux-gnu/libcfrfix.so && \
             /usr/libexec/cfrfix/cfrfix-system-wide enable '/usr/$LIB/libcfrfix.so'",
        ),
        "cfrfix-system-wide enable (64-bit only)",
    );
    let enabled = format!("{entry}\n").into_bytes();
    assert_eq!(root.read("/etc/ld.so.preload"), Some(enabled.clone()));
    // Offline: libc6:i386 is in the root's apt cache (scripts/debian-root).
    ok(
        &root.run(
            "apt-get install -y -q --no-install-recommends libc6:i386 &&
             ln -s /usr/lib/libcfrfix.so /usr/lib/i386-linux-gnu/libcfrfix.so",
        ),
        "i386 C library, later, and Fedora's $LIB",
    );
    let status = root.run("/usr/libexec/cfrfix/cfrfix-system-wide status");
    assert_eq!(status.status.code(), Some(1), "status names the gap");

    let x86_64 = rpm("cfrfix-libs", &arch("amd64"));
    let name = x86_64.file_name().expect("name").to_str().expect("utf-8");
    let reinstall = root.run_outside(&format!(
        "{RPM_IN_ROOT} -U --replacepkgs --nodeps \"$ROOT/tmp/rpms/{name}\" 2>&1"
    ));
    ok(&reinstall, "rpm -U --replacepkgs cfrfix-libs.x86_64");
    assert!(
        !text(&reinstall.stdout).contains("OFF"),
        "{}",
        text(&reinstall.stdout)
    );
    assert_eq!(root.read("/etc/ld.so.preload"), Some(enabled), "kept");
    assert!(root.read("/etc/ld.so.preload.cfrfix-added").is_some());
}

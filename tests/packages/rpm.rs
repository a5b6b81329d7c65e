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

#[test]
fn rpm_packages_install_side_by_side_and_erase_cleanly() {
    let test = "rpm_packages_install_side_by_side_and_erase_cleanly";
    if !common::have_command("rpm") {
        return skip(&format!("{test}: rpm not installed"));
    }
    let (x86_64, i686) = (arch("amd64"), arch("i386"));
    let packages = [
        rpm("cfrfix-libs", &x86_64),
        rpm("cfrfix-libs", &i686),
        rpm("cfrfix", &x86_64),
    ];
    if built(test, &packages).is_none() {
        return;
    }
    let Some(root) = DebianRoot::new(test) else {
        return;
    };
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
    let rpm_in_root = "rpm --root \"$ROOT\" --dbpath /var/lib/rpm";
    ok(
        &root.run_outside(&format!(
            "{rpm_in_root} --initdb && {rpm_in_root} -i --nodeps {}",
            paths.join(" ")
        )),
        "rpm -i",
    );
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

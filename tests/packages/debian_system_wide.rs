//! System-wide mode (`cfrfix-system-wide enable '/usr/$LIB/libcfrfix.so'`) across what apt
//! does to the .debs and to the C libraries around them: an upgrade of the amd64 and i386
//! instances in step, an i386 loader arriving after enable (Steam), and the removal of one
//! architecture's library.

use std::process::Output;

use crate::common::text;
use crate::debian::{TEST_DIR, assert_chain_fixed, installed_root, installed_root_with};
use crate::root::DebianRoot;
use crate::{RELEASE, VERSION, arch, deb, ok};

const SYSTEM_WIDE: &str = "/usr/libexec/cfrfix/cfrfix-system-wide";
const ENTRY: &str = "/usr/$LIB/libcfrfix.so";

fn enable(root: &DebianRoot) {
    let enable = root.run(&format!("{SYSTEM_WIDE} enable '{ENTRY}'"));
    ok(&enable, "cfrfix-system-wide enable");
    assert_eq!(
        root.read("/etc/ld.so.preload").expect("ld.so.preload"),
        format!("{ENTRY}\n").as_bytes()
    );
}

/// `cfrfix-system-wide status`, stdout and stderr together.
fn status(root: &DebianRoot) -> (Option<i32>, String) {
    let output = root.run(&format!("{SYSTEM_WIDE} status 2>&1"));
    (output.status.code(), text(&output.stdout))
}

/// What apt printed, stdout and stderr (maintainer scripts write to both).
fn printed(output: &Output) -> String {
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

fn assert_has_line(output: &str, line: &str) {
    assert!(
        output.lines().any(|l| l == line),
        "missing line: {line}\n--- in:\n{output}"
    );
}

/// dpkg calls `prerm deconfigure in-favour ...` on the i386 instance while it unpacks the new
/// amd64 one (Multi-Arch: same instances move in step): an upgrade must leave system-wide mode
/// exactly as it was, for both ABIs.
#[test]
fn debian_upgrade_of_both_architectures_keeps_system_wide_mode() {
    let test = "debian_upgrade_of_both_architectures_keeps_system_wide_mode";
    let Some(root) = installed_root(test) else {
        return;
    };
    enable(&root);
    let before = root.read("/etc/ld.so.preload").expect("ld.so.preload");
    // The same packages as the next revision: unpacked, renumbered, packed again.
    let next = format!("{VERSION}-2");
    let current = format!("{VERSION}-{RELEASE}");
    let repack = root.run(&format!(
        "set -e; mkdir /tmp/next; for deb in /tmp/debs/*.deb; do
             rm -rf /tmp/unpacked; dpkg-deb -R \"$deb\" /tmp/unpacked
             sed -i 's/^Version: {current}$/Version: {next}/; s/libcfrfix (= {current})/libcfrfix (= {next})/' \
                 /tmp/unpacked/DEBIAN/control
             dpkg-deb -b /tmp/unpacked /tmp/next/$(basename \"$deb\" | sed 's/_{current}_/_{next}_/') >/dev/null
         done; rm -rf /tmp/unpacked; ls /tmp/next"
    ));
    ok(&repack, "repack as the next revision");
    assert_eq!(
        text(&repack.stdout).lines().count(),
        3,
        "{}",
        text(&repack.stdout)
    );
    // Record what each installed prerm is asked (a line added to the installed copies).
    ok(
        &root.run(
            "for f in /var/lib/dpkg/info/*cfrfix*.prerm; do \
             sed -i '2i echo \"prerm of $DPKG_MAINTSCRIPT_PACKAGE:$DPKG_MAINTSCRIPT_ARCH: $*\"' \"$f\"; done",
        ),
        "instrument prerm",
    );

    let upgrade = root.run("apt-get install -y -q /tmp/next/*.deb");
    ok(&upgrade, "apt-get install (upgrade)");
    let apt = printed(&upgrade);
    // The case that broke it: one instance deconfigured in favour of the other.
    assert!(
        apt.lines()
            .any(|l| l.starts_with("prerm of libcfrfix:") && l.contains(": deconfigure in-favour ")),
        "{apt}"
    );
    assert!(!apt.contains("system-wide mode is now OFF"), "{apt}");
    let versions = root.run(
        "dpkg-query -W -f '${Package}:${Architecture} ${Version}\\n' cfrfix libcfrfix:amd64 libcfrfix:i386",
    );
    let mut versions: Vec<String> = text(&versions.stdout).lines().map(str::to_string).collect();
    versions.sort();
    assert_eq!(
        versions,
        ["cfrfix:amd64", "libcfrfix:amd64", "libcfrfix:i386"].map(|p| format!("{p} {next}"))
    );
    assert_eq!(
        root.read("/etc/ld.so.preload").expect("still there"),
        before,
        "byte for byte"
    );
    assert_eq!(
        root.read("/etc/ld.so.preload.cfrfix-added")
            .expect("state kept"),
        format!("{ENTRY}\n").as_bytes()
    );
    assert_eq!(status(&root).0, Some(0), "{}", status(&root).1);
    // Every 64-bit and 32-bit process still gets its own library, with no LD_PRELOAD at all.
    assert_chain_fixed(&root, "env -u LD_PRELOAD", true);
}

/// Enabled on a machine with 64-bit programs only; then libc6:i386 arrives (Steam's way in).
/// The library's file trigger warns in apt's output, naming the package to install, and
/// changes nothing; `cfrfix-system-wide status` fails naming it; installing it cures both.
#[test]
fn debian_i386_loader_arriving_after_enable_warns_and_status_fails() {
    let test = "debian_i386_loader_arriving_after_enable_warns_and_status_fails";
    let amd64 = arch("amd64");
    let Some(root) = installed_root_with(test, &[deb("cfrfix", &amd64), deb("libcfrfix", &amd64)])
    else {
        return;
    };
    assert_eq!(root.read("/lib/ld-linux.so.2"), None, "no i386 loader yet");
    enable(&root);
    let preload = root.read("/etc/ld.so.preload").expect("ld.so.preload");

    // Offline: libc6:i386 is in the root's apt cache (scripts/debian-root).
    let arrival = root.run("apt-get install -y -q --no-install-recommends libc6:i386");
    ok(&arrival, "apt-get install libc6:i386");
    let apt = printed(&arrival);
    for line in [
        "cfrfix-system-wide: WARNING: system-wide mode is on, but a C library (loader) of another ABI was just installed:",
        "cfrfix-system-wide: WARNING: i386 programs do not get cfrfix: /usr/lib/i386-linux-gnu/libcfrfix.so is missing; install the package libcfrfix:i386 (apt install libcfrfix:i386)",
        "cfrfix-system-wide: WARNING: system-wide mode stays on for the ABIs that have their library (turning it off would take cfrfix from them too);",
    ] {
        assert_has_line(&apt, line);
    }
    assert_eq!(
        apt.matches("WARNING: i386 programs").count(),
        1,
        "one warning: {apt}"
    );
    assert_eq!(
        root.read("/etc/ld.so.preload").expect("kept"),
        preload,
        "the warning changes nothing"
    );
    let (code, report) = status(&root);
    assert_eq!(code, Some(1), "{report}");
    assert_has_line(
        &report,
        "cfrfix-system-wide: problem: i386 programs do not get cfrfix: /usr/lib/i386-linux-gnu/libcfrfix.so is missing; install the package libcfrfix:i386 (apt install libcfrfix:i386)",
    );
    // What the warning is about: the 32-bit program prints the loader's error.
    let run32 = root.run(&format!(
        "{TEST_DIR}/chain32 {TEST_DIR}/source {TEST_DIR}/c32"
    ));
    assert!(
        text(&run32.stderr).contains("ERROR: ld.so: object '/usr/$LIB/libcfrfix.so' from /etc/ld.so.preload cannot be preloaded"),
        "{}",
        text(&run32.stderr)
    );

    let i386 = deb("libcfrfix", &arch("i386"));
    let name = i386.file_name().expect("name").to_str().expect("utf-8");
    root.put(
        &format!("/tmp/debs/{name}"),
        &std::fs::read(&i386).expect("read"),
        0o644,
    );
    let cure = root.run(&format!("apt-get install -y -q /tmp/debs/{name}"));
    ok(&cure, "apt-get install libcfrfix:i386");
    assert!(!printed(&cure).contains("WARNING"), "{}", printed(&cure));
    let (code, report) = status(&root);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        report,
        format!(
            "cfrfix-system-wide: enabled: {ENTRY} (added to /etc/ld.so.preload by cfrfix-system-wide)\n"
        )
    );
    assert_chain_fixed(&root, "env -u LD_PRELOAD", true);
}

/// Removing libcfrfix:i386 alone turns system-wide mode off for every ABI (left in, every
/// 32-bit process would print an ld.so error): the message says so, why, and how to turn it
/// back on; that command works once the library is back.
#[test]
fn debian_removing_one_library_says_system_wide_mode_is_off_for_every_abi() {
    let test = "debian_removing_one_library_says_system_wide_mode_is_off_for_every_abi";
    let Some(root) = installed_root(test) else {
        return;
    };
    enable(&root);
    let removal = root.run("apt-get remove -y -q libcfrfix:i386");
    ok(&removal, "apt-get remove libcfrfix:i386");
    let apt = printed(&removal);
    for line in [
        "cfrfix-system-wide: removed /etc/ld.so.preload (there was none before)",
        "cfrfix-system-wide: system-wide mode is now OFF for every ABI, 64-bit programs included:",
        "cfrfix-system-wide:   /etc/ld.so.preload no longer lists /usr/$LIB/libcfrfix.so, because the package libcfrfix:i386 (a library of one ABI) is being removed",
        "cfrfix-system-wide: to turn it back on, install the package libcfrfix:i386 again (or remove that ABI's C library, if its programs are not to run here), then run:",
        "cfrfix-system-wide:   /usr/libexec/cfrfix/cfrfix-system-wide enable '/usr/$LIB/libcfrfix.so'",
    ] {
        assert_has_line(&apt, line);
    }
    assert_eq!(root.read("/etc/ld.so.preload"), None);
    assert_eq!(
        status(&root),
        (Some(0), "cfrfix-system-wide: not enabled\n".to_string())
    );
    // The 64-bit library and the command stayed; so does the fix under `cfrfix PROGRAM`.
    let kept = root.run("dpkg-query -W -f '${db:Status-Abbrev}' libcfrfix:amd64 cfrfix");
    assert_eq!(text(&kept.stdout), "ii ii ");

    // The printed command, once the library is back.
    ok(
        &root.run("apt-get install -y -q /tmp/debs/libcfrfix_*_i386.deb"),
        "reinstall libcfrfix:i386",
    );
    ok(
        &root.run(&format!("{SYSTEM_WIDE} enable '{ENTRY}'")),
        "the printed command",
    );
    assert_chain_fixed(&root, "env -u LD_PRELOAD", true);
}

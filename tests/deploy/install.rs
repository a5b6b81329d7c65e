//! install.sh / uninstall.sh into a temporary prefix.

use crate::common::command::{artefact_dir, run, script};
use crate::common::{ScratchDir, describe, have_command, is_root, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// What install.sh puts under PREFIX, with the mode each file must have (and, for each ABI,
/// PREFIX/$LIB/libcfrfix.so, listed in libexec/cfrfix/installed).
const INSTALLED_FILES: [(&str, u32); 13] = [
    ("bin/cfrfix", 0o755),
    ("libexec/cfrfix/installed", 0o644),
    ("libexec/cfrfix/cfrfix-check", 0o755),
    ("libexec/cfrfix/cfrfix-check-copy", 0o755),
    ("libexec/cfrfix/cfrfix-inject", 0o755),
    ("libexec/cfrfix/cfrfix-system-wide", 0o755),
    ("share/man/man1/cfrfix.1", 0o644),
    ("share/doc/cfrfix/deployment.md", 0o644),
    ("share/doc/cfrfix/cfrfix.conf.example", 0o644),
    ("share/doc/cfrfix/systemd-dropin-cfrfix.conf", 0o644),
    ("share/doc/cfrfix/CHANGELOG.md", 0o644),
    ("share/doc/cfrfix/LICENSE-MIT", 0o644),
    ("share/doc/cfrfix/LICENSE-APACHE", 0o644),
];

/// install.sh or uninstall.sh with this test profile's build (`CFRFIX_ARTEFACT_DIR`).
fn install_script(name: &str) -> Command {
    let mut command = Command::new(script(name));
    command
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
        .env_remove("LD_PRELOAD");
    command
}

fn read_if_exists(path: &str) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

#[test]
fn install_and_uninstall_into_a_temporary_prefix() {
    let scratch = ScratchDir::rootfs("deploy-install");
    let prefix = scratch.path().join("prefix");
    let preload_before = read_if_exists("/etc/ld.so.preload");

    let install = run(install_script("install.sh").arg("--prefix").arg(&prefix));
    assert!(install.status.success(), "{}", describe(&install));
    for (file, mode) in INSTALLED_FILES {
        let path = prefix.join(file);
        let metadata = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            metadata.permissions().mode() & 0o7777,
            mode,
            "{}",
            path.display()
        );
    }

    // One library per ABI, where that ABI's loader expands $LIB; the native one first.
    let manifest = fs::read_to_string(prefix.join("libexec/cfrfix/installed")).expect("manifest");
    let libraries: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("file "))
        .collect();
    assert!(!libraries.is_empty(), "{manifest}");
    for library in &libraries {
        let metadata = fs::metadata(library).unwrap_or_else(|e| panic!("{library}: {e}"));
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o644, "{library}");
        assert!(library.ends_with("/libcfrfix.so"), "{library}");
    }
    assert_eq!(
        fs::read(libraries[0]).expect("read"),
        fs::read(artefact_dir().join("libcfrfix.so")).expect("read"),
        "the native build"
    );

    // The installed command finds the installed libraries and helpers, not the checkout's.
    let installed = prefix.join("bin/cfrfix");
    let printed = run(Command::new(&installed).arg("--print-library"));
    assert_eq!(
        text(&printed.stdout).trim(),
        format!("{}/$LIB/libcfrfix.so", prefix.display()),
        "{}",
        describe(&printed)
    );
    let tmpfs = ScratchDir::tmpfs("deploy-install-check");
    let check = run(Command::new(&installed)
        .env_remove("LD_PRELOAD")
        .arg("--check")
        .arg(tmpfs.path()));
    assert!(check.status.success(), "{}", describe(&check));
    let enosys = run(Command::new(&installed).args(["--enosys", "true"]));
    assert!(enosys.status.success(), "{}", describe(&enosys));

    let manual = run(Command::new("man")
        .env("MANWIDTH", "80")
        .arg("-l")
        .arg(prefix.join("share/man/man1/cfrfix.1")));
    if manual.status.success() {
        assert!(
            text(&manual.stdout).contains("cfrfix - run a program"),
            "{}",
            describe(&manual)
        );
    }

    let uninstall = run(install_script("uninstall.sh").arg("--prefix").arg(&prefix));
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
    for (file, _) in INSTALLED_FILES {
        assert!(!prefix.join(file).exists(), "{file} left behind");
    }
    for library in &libraries {
        assert!(!Path::new(library).exists(), "{library} left behind");
    }
    assert!(
        !prefix.join("libexec/cfrfix").exists(),
        "libexec/cfrfix left behind"
    );
    assert!(
        !prefix.join("share/doc/cfrfix").exists(),
        "share/doc/cfrfix left behind"
    );
    assert_eq!(
        read_if_exists("/etc/ld.so.preload"),
        preload_before,
        "a plain install must not touch /etc/ld.so.preload"
    );
}

/// `$LIB` of this tool's own ABI, as `cfrfix-check --abis` finds it (lib/x86_64-linux-gnu).
fn native_lib() -> String {
    let table = run(Command::new(artefact_dir().join("cfrfix-check")).arg("--abis"));
    text(&table.stdout)
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&"native"))
        .and_then(|fields| fields.get(3).map(|lib| lib.to_string()))
        .unwrap_or_else(|| panic!("no native ABI: {}", describe(&table)))
}

/// `install.sh ARGS` as an unprivileged user (nobody, through setpriv) when the tests run as
/// root, as the test's own user otherwise.
fn install_unprivileged(args: &[&std::ffi::OsStr]) -> Output {
    let mut command = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(script("install.sh"));
        c
    } else {
        Command::new(script("install.sh"))
    };
    run(command
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
        .env_remove("LD_PRELOAD")
        .args(args))
}

#[test]
fn install_refuses_prefixes_the_installed_command_cannot_use() {
    let scratch = ScratchDir::rootfs("deploy-install-prefix");
    for name in [
        "with space",
        "with:colon",
        "with$dollar",
        "with#hash",
        "tab\there",
    ] {
        let prefix = scratch.path().join(name);
        let output = run(install_script("install.sh").arg("--prefix").arg(&prefix));
        assert_eq!(
            output.status.code(),
            Some(1),
            "{name}: {}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains("choose another --prefix"),
            "{name}: {}",
            describe(&output)
        );
        assert!(!prefix.exists(), "{name}: install.sh created the prefix");
    }
    assert!(
        fs::read_dir(scratch.path())
            .expect("read_dir")
            .next()
            .is_none()
    );
}

#[test]
fn install_checks_permissions_before_changing_anything() {
    if is_root() && !have_command("setpriv") {
        return skip("setpriv(1) not installed: cannot run install.sh unprivileged");
    }
    let scratch = ScratchDir::rootfs("deploy-install-perms");
    let prefix = scratch.path().join("prefix");
    // --system-wide: root first, even where the prefix could be written.
    fs::set_permissions(scratch.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let output = install_unprivileged(&[
        "--prefix".as_ref(),
        prefix.as_os_str(),
        "--system-wide".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("--system-wide needs root"),
        "{}",
        describe(&output)
    );
    assert!(
        !prefix.exists(),
        "install.sh changed something before failing"
    );
    // A prefix that cannot be written.
    if is_root() {
        fs::set_permissions(scratch.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let output = install_unprivileged(&["--prefix".as_ref(), prefix.as_os_str()]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            text(&output.stderr).contains("is not writable"),
            "{}",
            describe(&output)
        );
        assert!(!prefix.exists());
    }
    // A prefix this user owns, with the top of the library's directory (lib/ of
    // lib/x86_64-linux-gnu, the native `$LIB`) one it cannot write: nothing installed, not
    // even bin/.
    if is_root() {
        let prefix = scratch.path().join("owned");
        let lib = native_lib();
        let top = lib.split('/').next().expect("a directory");
        fs::create_dir_all(prefix.join(top)).expect("mkdir");
        std::os::unix::fs::chown(&prefix, Some(65534), Some(65534)).expect("chown");
        let output = install_unprivileged(&["--prefix".as_ref(), prefix.as_os_str()]);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        assert!(
            text(&output.stderr).contains(&format!(
                "install.sh: cannot install into {}: {} is not writable by uid 65534",
                prefix.join(&lib).display(),
                prefix.join(top).display()
            )) && text(&output.stderr).contains("nothing was installed"),
            "{}",
            describe(&output)
        );
        let entries: Vec<_> = fs::read_dir(&prefix)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            entries,
            [top],
            "install.sh changed something before failing"
        );
        assert!(
            fs::read_dir(prefix.join(top))
                .expect("read_dir")
                .next()
                .is_none()
        );
    }
}

#[test]
fn uninstall_removes_the_directories_install_created_and_only_those() {
    let scratch = ScratchDir::rootfs("deploy-install-dirs");
    // A fresh prefix, two levels deep: install.sh creates both, and everything below.
    let fresh = scratch.path().join("a/prefix");
    let install = run(install_script("install.sh").arg("--prefix").arg(&fresh));
    assert!(install.status.success(), "{}", describe(&install));
    let uninstall = run(install_script("uninstall.sh").arg("--prefix").arg(&fresh));
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
    assert!(
        fs::read_dir(scratch.path())
            .expect("read_dir")
            .next()
            .is_none(),
        "left behind: {}",
        describe(&run(Command::new("find").arg(scratch.path())))
    );

    // A prefix with directories of its own: they stay (lib/ too, where each ABI's library
    // directory, lib/x86_64-linux-gnu, is created), and so does what the user added to a
    // directory install.sh created.
    let prefix = scratch.path().join("existing");
    fs::create_dir_all(prefix.join("bin")).expect("mkdir");
    fs::create_dir_all(prefix.join("lib")).expect("mkdir");
    fs::create_dir_all(prefix.join("share/man")).expect("mkdir");
    let install = run(install_script("install.sh").arg("--prefix").arg(&prefix));
    assert!(install.status.success(), "{}", describe(&install));
    fs::write(prefix.join("share/doc/mine.txt"), b"mine").expect("write");
    // A second install over the first keeps the record.
    let install = run(install_script("install.sh").arg("--prefix").arg(&prefix));
    assert!(install.status.success(), "{}", describe(&install));
    let uninstall = run(install_script("uninstall.sh").arg("--prefix").arg(&prefix));
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
    let left = run(Command::new("find").arg(&prefix).args(["-mindepth", "1"]));
    let mut left: Vec<String> = text(&left.stdout)
        .lines()
        .map(|l| {
            l.trim_start_matches(prefix.to_str().expect("utf-8"))
                .to_string()
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "/bin",
            "/lib",
            "/share",
            "/share/doc",
            "/share/doc/mine.txt",
            "/share/man"
        ],
        "{}",
        describe(&uninstall)
    );
}

#[test]
fn an_interrupted_install_leaves_no_temporary_file() {
    let scratch = ScratchDir::rootfs("deploy-install-interrupted");
    // A `cp` that stops install.sh (SIGTERM) while it writes its first file.
    let bin = scratch.path().join("bin");
    fs::create_dir(&bin).expect("mkdir");
    fs::write(bin.join("cp"), "#!/bin/sh\nkill -TERM \"$PPID\"\nexit 1\n").expect("write");
    fs::set_permissions(bin.join("cp"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let prefix = scratch.path().join("prefix");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = run(install_script("install.sh")
        .env("PATH", path)
        .arg("--prefix")
        .arg(&prefix));
    assert_eq!(output.status.code(), Some(143), "{}", describe(&output));
    let left = run(Command::new("find")
        .arg(&prefix)
        .args(["-name", "*.install.*"]));
    assert_eq!(text(&left.stdout), "", "{}", describe(&output));
}

#[test]
fn install_rejects_unknown_arguments() {
    let output = run(Command::new(script("install.sh")).arg("--frobnicate"));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let output = run(Command::new(script("uninstall.sh")).arg("--frobnicate"));
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}

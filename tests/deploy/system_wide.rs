//! System-wide mode in a private mount namespace over a copy of /etc (see main.rs).

use crate::common;
use crate::common::command::{PYTHON_COPY, artefact_dir, python3, run, script, write_test_file};
use crate::common::{PrivateEtc, ScratchDir, describe, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const EOPNOTSUPP: i32 = 95;

/// Ordinary programs must behave exactly as without a preload: same output, empty stderr.
fn assert_ordinary_programs_unaffected(etc: &PrivateEtc) {
    for (program, args, stdout) in [
        ("/bin/true", Vec::<&str>::new(), ""),
        ("/bin/echo", vec!["hello"], "hello\n"),
        ("sh", vec!["-c", "echo from-sh"], "from-sh\n"),
        ("ls", vec!["-d", "/"], "/\n"),
    ] {
        let output = run(&mut etc.command(program, &args));
        assert!(output.status.success(), "{program}: {}", describe(&output));
        assert_eq!(
            text(&output.stdout),
            stdout,
            "{program}: {}",
            describe(&output)
        );
        assert!(
            output.stderr.is_empty(),
            "{program} printed on stderr: {}",
            describe(&output)
        );
    }
}

/// `cfrfix-inject EOPNOTSUPP python3 PYTHON_COPY` inside the namespace, no LD_PRELOAD.
fn injected_python_copy(etc: &PrivateEtc, dir: &Path, extra_env: &[(&str, &str)]) -> Output {
    let python = python3().expect("python3 checked by the caller");
    let source = dir.join("src");
    let destination = dir.join("dst");
    let _ = fs::remove_file(&destination);
    let mut command = etc.command(
        INJECT,
        &[
            "EOPNOTSUPP",
            &python,
            "-c",
            PYTHON_COPY,
            source.to_str().expect("utf-8"),
            destination.to_str().expect("utf-8"),
        ],
    );
    command.envs(extra_env.iter().copied());
    run(&mut command)
}

/// `bash scripts/install.sh --prefix PREFIX --system-wide` inside the namespace.
fn run_install_system_wide(etc: &PrivateEtc, prefix: &Path) -> Output {
    let mut command = etc.command(
        "bash",
        &[
            script("install.sh").as_os_str(),
            "--prefix".as_ref(),
            prefix.as_os_str(),
            "--system-wide".as_ref(),
        ],
    );
    run(command.env("CFRFIX_ARTEFACT_DIR", artefact_dir()))
}

/// `bash scripts/install.sh --prefix PREFIX --system-wide` inside the namespace; must succeed.
fn install_system_wide(etc: &PrivateEtc, prefix: &Path) {
    let install = run_install_system_wide(etc, prefix);
    assert!(install.status.success(), "{}", describe(&install));
}

/// An ABI this machine runs for which install.sh finds no build to install.
struct MissingBuild {
    /// Why the test cannot install system-wide, for its SKIPPED line.
    why: String,
    /// The line in which install.sh names it.
    refusal: String,
    /// Its target, where cfrfix has one (scripts/build-targets TRIPLE builds it).
    triple: Option<String>,
}

/// The ABIs this machine runs, as install.sh asks `cfrfix-check --abis` for them, that have no
/// build where install.sh looks: the native ABI's is this profile's own; another ABI's is
/// `target/<triple>/<profile>/libcfrfix.so`, from scripts/build-targets. An i386 loader and no
/// i686 build, typically.
fn abis_without_a_build() -> Vec<MissingBuild> {
    let release = artefact_dir();
    let table = run(Command::new(release.join("cfrfix-check")).arg("--abis"));
    assert!(table.status.success(), "{}", describe(&table));
    let mut missing = Vec::new();
    for line in text(&table.stdout).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, triple, role, ..] = fields[..] else {
            panic!("cfrfix-check --abis: {line:?}: {}", describe(&table));
        };
        if triple == "-" {
            missing.push(MissingBuild {
                why: format!("this machine runs {name} programs, and cfrfix has no {name} build"),
                refusal: format!(
                    "{name} programs will not get cfrfix: there is no {name} build of cfrfix"
                ),
                triple: None,
            });
            continue;
        }
        if role == "native" {
            continue;
        }
        let build = release
            .parent()
            .expect("target directory")
            .join(triple)
            .join(release.file_name().expect("profile"))
            .join("libcfrfix.so");
        if !build.is_file() {
            missing.push(MissingBuild {
                why: format!(
                    "this machine runs {name} programs, and there is no {triple} build ({} is \
                     missing)",
                    build.display()
                ),
                refusal: format!(
                    "{name} programs will not get cfrfix: no {name} build in {} \
                     (scripts/build-targets {triple})",
                    build.display()
                ),
                triple: Some(triple.to_string()),
            });
        }
    }
    missing
}

/// Where an ABI this machine runs has no build, `install.sh --system-wide` must refuse (its
/// processes would each print an ld.so error): exit 1, naming each missing build, with nothing
/// installed and /etc's cfrfix files unchanged byte for byte (or still absent). Asserts that,
/// prints SKIPPED for the rest of the test (which needs every ABI's build), and returns true;
/// returns false, having done nothing, where every ABI has its build.
fn refused_for_a_missing_build(etc: &PrivateEtc, prefix: &Path) -> bool {
    let missing = abis_without_a_build();
    if missing.is_empty() {
        return false;
    }
    let watched = [
        "ld.so.preload",
        "ld.so.preload.cfrfix-backup",
        "ld.so.preload.cfrfix-added",
        "cfrfix.conf",
    ];
    let read_all = || watched.map(|name| fs::read(etc.file(name)).ok());
    let before = read_all();
    let install = run_install_system_wide(etc, prefix);
    assert_eq!(install.status.code(), Some(1), "{}", describe(&install));
    let stderr = text(&install.stderr);
    for abi in &missing {
        assert!(
            stderr.contains(&format!("install.sh: {}\n", abi.refusal)),
            "'{}' missing: {}",
            abi.refusal,
            describe(&install)
        );
    }
    assert!(
        stderr.contains("--system-wide would make each of their processes print an ld.so error; nothing was installed"),
        "{}",
        describe(&install)
    );
    for (name, (was, is)) in watched.iter().zip(before.iter().zip(read_all().iter())) {
        assert!(was == is, "/etc/{name} changed by a refused install");
    }
    assert!(
        !prefix.exists(),
        "install.sh changed something before failing"
    );
    let why: Vec<&str> = missing.iter().map(|abi| abi.why.as_str()).collect();
    let builds: Vec<&str> = missing
        .iter()
        .filter_map(|abi| abi.triple.as_deref())
        .collect();
    let mut reason = format!(
        "{}: install.sh --system-wide refuses, as it must (checked)",
        why.join("; ")
    );
    if !builds.is_empty() {
        reason.push_str(&format!(
            " (build it with CFRFIX_TOOLCHAIN=debian scripts/build-targets {})",
            builds.join(" ")
        ));
    }
    skip(&reason);
    true
}

/// `bash scripts/uninstall.sh --prefix PREFIX` inside the namespace; must succeed.
fn uninstall(etc: &PrivateEtc, prefix: &Path) {
    let uninstall = run(&mut etc.command(
        "bash",
        &[
            script("uninstall.sh").as_os_str(),
            "--prefix".as_ref(),
            prefix.as_os_str(),
        ],
    ));
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
}

#[test]
fn system_wide_install_works_and_uninstall_restores_ld_so_preload() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = PrivateEtc::where_possible("deploy-system-wide") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let scratch = ScratchDir::rootfs("deploy-system-wide-prefix");
    let prefix = scratch.path().join("prefix");
    // One entry for every ABI: each loader expands $LIB to its own directory.
    let library = format!("{}/$LIB/libcfrfix.so", prefix.display());
    let data = ScratchDir::tmpfs("deploy-system-wide-data");
    let content = write_test_file(&data.path().join("src"), 200_000);

    // An existing preload file, without a final newline, must come back byte for byte.
    // (Not a comment: glibc 2.36 mis-parses some comment lines in /etc/ld.so.preload. A bare
    // name, which every ABI's loader looks up in its own directories: a 64-bit path there
    // would make 32-bit programs print an ld.so error before cfrfix is even enabled.)
    let original = b"libm.so.6";
    fs::write(&preload, original).expect("write ld.so.preload");
    fs::set_permissions(&preload, fs::Permissions::from_mode(0o644)).expect("chmod");
    let _ = fs::remove_file(etc.file("cfrfix.conf"));

    let before = injected_python_copy(&etc, data.path(), &[]);
    assert_eq!(
        text(&before.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "without cfrfix the injected failure must show: {}",
        describe(&before)
    );

    if refused_for_a_missing_build(&etc, &prefix) {
        return;
    }
    install_system_wide(&etc, &prefix);
    let listed = fs::read_to_string(&preload).expect("ld.so.preload");
    assert_eq!(
        listed,
        format!("{}\n{library}\n", text(original)),
        "the library is appended on a line of its own"
    );
    assert!(
        etc.file("ld.so.preload.cfrfix-backup").exists(),
        "backup kept"
    );
    assert!(
        etc.file("cfrfix.conf").exists(),
        "example /etc/cfrfix.conf installed"
    );

    // Installing again changes nothing.
    install_system_wide(&etc, &prefix);
    assert_eq!(fs::read_to_string(&preload).expect("ld.so.preload"), listed);

    assert_ordinary_programs_unaffected(&etc);

    // A real program whose copy_file_range fails, with no LD_PRELOAD anywhere.
    let fixed = injected_python_copy(&etc, data.path(), &[("CFRFIX_LOG", "stderr")]);
    assert!(fixed.status.success(), "{}", describe(&fixed));
    assert_eq!(
        text(&fixed.stdout).trim(),
        format!("copied {}", content.len())
    );
    assert!(
        text(&fixed.stderr).contains("kernel said EOPNOTSUPP"),
        "{}",
        describe(&fixed)
    );
    assert_eq!(fs::read(data.path().join("dst")).expect("dst"), content);

    // `cfrfix --check` sees the system-wide preload.
    let check = run(&mut etc.command(
        prefix.join("bin/cfrfix"),
        &["--check", data.path().to_str().expect("utf-8")],
    ));
    assert!(check.status.success(), "{}", describe(&check));
    assert!(
        text(&check.stdout).contains(&format!("/etc/ld.so.preload: yes ({library})")),
        "{}",
        describe(&check)
    );

    let manifest = fs::read_to_string(prefix.join("libexec/cfrfix/installed")).expect("manifest");
    uninstall(&etc, &prefix);
    assert_eq!(
        fs::read(&preload).expect("ld.so.preload restored"),
        original
    );
    assert_eq!(
        fs::metadata(&preload).expect("meta").permissions().mode() & 0o777,
        0o644
    );
    assert!(!etc.file("ld.so.preload.cfrfix-backup").exists());
    assert!(!etc.file("ld.so.preload.cfrfix-added").exists());
    assert!(
        !etc.file("cfrfix.conf").exists(),
        "the untouched example goes too"
    );
    for installed in manifest.lines().filter_map(|l| l.strip_prefix("file ")) {
        assert!(!Path::new(installed).exists(), "{installed} left behind");
    }

    let after = injected_python_copy(&etc, data.path(), &[]);
    assert_eq!(
        text(&after.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "{}",
        describe(&after)
    );
}

#[test]
fn system_wide_without_a_previous_file_removes_it_again() {
    let Some(etc) = PrivateEtc::where_possible("deploy-system-wide-none") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("deploy-system-wide-none-prefix");
    let prefix = scratch.path().join("prefix");

    if refused_for_a_missing_build(&etc, &prefix) {
        return;
    }
    install_system_wide(&etc, &prefix);
    assert_eq!(
        fs::read_to_string(&preload).expect("ld.so.preload created"),
        format!("{}/$LIB/libcfrfix.so\n", prefix.display())
    );
    assert_ordinary_programs_unaffected(&etc);

    uninstall(&etc, &prefix);
    assert!(!preload.exists(), "there was no /etc/ld.so.preload before");
}

#[test]
fn system_wide_uninstall_keeps_later_edits() {
    let Some(etc) = PrivateEtc::where_possible("deploy-system-wide-edit") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("deploy-system-wide-edit-prefix");
    let prefix = scratch.path().join("prefix");
    if refused_for_a_missing_build(&etc, &prefix) {
        return;
    }
    install_system_wide(&etc, &prefix);

    let mut edited = fs::read_to_string(&preload).expect("ld.so.preload");
    edited.push_str("# added by the admin later\n");
    fs::write(&preload, &edited).expect("edit");
    uninstall(&etc, &prefix);
    assert_eq!(
        fs::read_to_string(&preload).expect("ld.so.preload kept"),
        "# added by the admin later\n"
    );
}

#[test]
fn system_wide_refuses_a_library_that_does_not_load() {
    let Some(etc) = PrivateEtc::where_possible("deploy-system-wide-bad") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("deploy-system-wide-bad-lib");
    let not_a_library = scratch.path().join("libcfrfix.so");
    fs::write(&not_a_library, b"not an ELF file\n").expect("write");
    let output = run(&mut etc.command(
        script("cfrfix-system-wide"),
        &["enable", not_a_library.to_str().expect("utf-8")],
    ));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    // Every ABI is checked for a library of its own before anything is loaded (a library that
    // is an ELF file but does not load cleanly: tests/abi/chain.rs).
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(" is not an ELF file; ") && stderr.contains("not enabling"),
        "{}",
        describe(&output)
    );
    assert!(!preload.exists(), "nothing may be written after a refusal");
    assert!(!etc.file("ld.so.preload.cfrfix-added").exists());
}

#[test]
fn system_wide_config_file_is_read_and_environment_overrides_it() {
    if python3().is_none() {
        return skip("python3 not installed");
    }
    let Some(etc) = PrivateEtc::where_possible("deploy-system-wide-conf") else {
        return;
    };
    let library = common::cdylib();
    fs::write(
        etc.file("ld.so.preload"),
        format!("{}\n", library.display()),
    )
    .expect("preload");
    let data = ScratchDir::tmpfs("deploy-system-wide-conf-data");
    write_test_file(&data.path().join("src"), 10_000);

    let config = etc.file("cfrfix.conf");
    fs::write(&config, "# test\nmode = off\n").expect("write cfrfix.conf");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
    let off = injected_python_copy(&etc, data.path(), &[]);
    assert_eq!(
        text(&off.stdout).trim(),
        format!("errno {EOPNOTSUPP}"),
        "mode = off: {}",
        describe(&off)
    );

    let overridden = injected_python_copy(&etc, data.path(), &[("CFRFIX_MODE", "auto")]);
    assert!(
        overridden.status.success(),
        "CFRFIX_MODE=auto over mode = off: {}",
        describe(&overridden)
    );

    fs::write(&config, "log = stderr\n").expect("write cfrfix.conf");
    let logged = injected_python_copy(&etc, data.path(), &[]);
    assert!(logged.status.success(), "{}", describe(&logged));
    assert!(
        text(&logged.stderr).contains("kernel said EOPNOTSUPP"),
        "log = stderr: {}",
        describe(&logged)
    );

    // A config file others can write is not trusted.
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).expect("chmod");
    let untrusted = injected_python_copy(&etc, data.path(), &[]);
    assert!(untrusted.status.success(), "{}", describe(&untrusted));
    assert!(
        untrusted.stderr.is_empty(),
        "world-writable config must be ignored: {}",
        describe(&untrusted)
    );
}

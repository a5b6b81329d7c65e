//! What is in each package, read with dpkg-deb and rpm (no root needed).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, ScratchDir, skip};
use crate::{ARCHES, Arch, RELEASE, VERSION, built, deb, elf_kind, query, repo, rpm};

/// The command package's files (besides its directories), Debian and Fedora.
const COMMAND_FILES: [&str; 5] = [
    "/usr/bin/cfrfix",
    "/usr/libexec/cfrfix/cfrfix-check",
    "/usr/libexec/cfrfix/cfrfix-check-copy",
    "/usr/libexec/cfrfix/cfrfix-inject",
    "/usr/libexec/cfrfix/cfrfix-system-wide",
];
const DEB_DOCS: [&str; 10] = [
    "/usr/share/doc/cfrfix/CHANGELOG.md",
    "/usr/share/doc/cfrfix/LICENSE-APACHE",
    "/usr/share/doc/cfrfix/LICENSE-MIT",
    "/usr/share/doc/cfrfix/README.md",
    "/usr/share/doc/cfrfix/cfrfix.conf.example",
    "/usr/share/doc/cfrfix/copyright",
    "/usr/share/doc/cfrfix/deployment.md",
    "/usr/share/doc/cfrfix/systemd-dropin-cfrfix.conf",
    "/usr/share/man/man1/cfrfix.1.gz",
    "/usr/share/doc/libcfrfix/copyright",
];

/// Where this target's library build is (scripts/build-targets --print-dir).
fn build_dir(arch: &Arch) -> PathBuf {
    // The tests run on the machine they were built for.
    let host = match arch.triple {
        "x86_64-unknown-linux-gnu" => cfg!(target_arch = "x86_64"),
        "aarch64-unknown-linux-gnu" => cfg!(target_arch = "aarch64"),
        _ => cfg!(target_arch = "x86"),
    };
    if host {
        repo().join("target/release")
    } else {
        repo().join("target").join(arch.triple).join("release")
    }
}

/// The regular files in a .deb, as absolute paths.
fn deb_files(package: &Path) -> BTreeSet<String> {
    query(Command::new("dpkg-deb").arg("--contents").arg(package))
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

fn field(package: &Path, name: &str) -> String {
    query(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(package)
            .arg(name),
    )
    .trim()
    .to_string()
}

#[test]
fn debian_packages_for_every_architecture() {
    let test = "debian_packages_for_every_architecture";
    if !common::have_command("dpkg-deb") {
        return skip(&format!("{test}: dpkg-deb not installed"));
    }
    let all: Vec<PathBuf> = ARCHES
        .iter()
        .flat_map(|a| [deb("libcfrfix", a), deb("cfrfix", a)])
        .collect();
    if built(test, &all).is_none() {
        return;
    }
    let version = format!("{VERSION}-{RELEASE}");
    let mut shared: Vec<(String, Vec<u8>)> = Vec::new();
    for arch in &ARCHES {
        let library = deb("libcfrfix", arch);
        let command = deb("cfrfix", arch);
        for (package, name, multi_arch, depends) in [
            (&library, "libcfrfix", "same", "libc6 (>= 2.17)".to_string()),
            (
                &command,
                "cfrfix",
                "foreign",
                format!("libc6 (>= 2.17), libcfrfix (= {version})"),
            ),
        ] {
            let what = format!("{name} {}", arch.debian);
            assert_eq!(field(package, "Package"), name, "{what}");
            assert_eq!(field(package, "Version"), version, "{what}");
            assert_eq!(field(package, "Architecture"), arch.debian, "{what}");
            assert_eq!(field(package, "Multi-Arch"), multi_arch, "{what}");
            assert_eq!(field(package, "Depends"), depends, "{what}");
            // The tree's scripts: a pre-removal script (nothing is enabled on install), and for
            // the library the file trigger with the post-installation script that handles it.
            let control: &[(&str, &str)] = if name == "libcfrfix" {
                &[
                    ("prerm", "debian/libcfrfix/prerm"),
                    ("postinst", "debian/libcfrfix/postinst"),
                    ("triggers", "debian/libcfrfix/triggers"),
                ]
            } else {
                &[("prerm", "debian/prerm")]
            };
            let scripts = query(Command::new("dpkg-deb").arg("--info").arg(package));
            for script in ["preinst", "postinst", "postrm", "triggers"] {
                assert_eq!(
                    scripts.contains(&format!(" {script} ")),
                    control.iter().any(|(file, _)| *file == script),
                    "{what}: {script}"
                );
            }
            let unpacked = ScratchDir::rootfs("packages-deb-control");
            query(
                Command::new("dpkg-deb")
                    .arg("--control")
                    .arg(package)
                    .arg(unpacked.path()),
            );
            for (file, source) in control {
                assert_eq!(
                    fs::read(unpacked.path().join(file)).expect("control file"),
                    fs::read(repo().join(source)).expect("source"),
                    "{what}: {file}"
                );
            }
        }
        let library_path = format!("/usr/lib/{}/libcfrfix.so", arch.multiarch);
        assert_eq!(
            deb_files(&library),
            BTreeSet::from([
                library_path.clone(),
                "/usr/share/doc/libcfrfix/copyright".into()
            ])
        );
        let mut expected: BTreeSet<String> = COMMAND_FILES.iter().map(|f| f.to_string()).collect();
        expected.extend(DEB_DOCS[..9].iter().map(|f| f.to_string()));
        assert_eq!(deb_files(&command), expected, "cfrfix {}", arch.debian);

        // The files: this architecture's builds, the tree's scripts.
        let root = ScratchDir::rootfs("packages-deb-files");
        for package in [&library, &command] {
            query(
                Command::new("dpkg-deb")
                    .arg("--extract")
                    .arg(package)
                    .arg(root.path()),
            );
        }
        let file =
            |path: &str| fs::read(root.path().join(path.trim_start_matches('/'))).expect(path);
        assert!(
            file(&library_path) == fs::read(build_dir(arch).join("libcfrfix.so")).expect("build"),
            "{library_path} is the {} build",
            arch.triple
        );
        for helper in &COMMAND_FILES[1..4] {
            assert_eq!(
                elf_kind(&file(helper)),
                Some((arch.class, arch.machine)),
                "{helper} in cfrfix {}",
                arch.debian
            );
        }
        for (installed, source) in [
            ("/usr/bin/cfrfix", "scripts/cfrfix"),
            (
                "/usr/libexec/cfrfix/cfrfix-system-wide",
                "scripts/cfrfix-system-wide",
            ),
        ] {
            assert!(file(installed) == fs::read(repo().join(source)).expect(source));
        }
        // Multi-Arch: same: whatever the library packages share must be byte-identical.
        let copyright = file("/usr/share/doc/libcfrfix/copyright");
        shared.push((arch.debian.to_string(), copyright));
    }
    assert!(
        shared.windows(2).all(|pair| pair[0].1 == pair[1].1),
        "libcfrfix's shared files differ between architectures"
    );
}

fn rpm_query(package: &Path, args: &[&str]) -> String {
    query(Command::new("rpm").arg("-qp").args(args).arg(package))
}

#[test]
fn rpm_packages_for_every_architecture() {
    let test = "rpm_packages_for_every_architecture";
    if !common::have_command("rpm") {
        return skip(&format!("{test}: rpm not installed"));
    }
    let all: Vec<PathBuf> = ARCHES
        .iter()
        .flat_map(|a| [rpm("cfrfix-libs", a), rpm("cfrfix", a)])
        .collect();
    if built(test, &all).is_none() {
        return;
    }
    let isa = |arch: &Arch| match arch.rpm {
        "x86_64" => "x86-64",
        "i686" => "x86-32",
        _ => "aarch-64",
    };
    let script = |path: &str| fs::read_to_string(repo().join(path)).expect("script");
    let (command_preun, libs_preun, libs_postun) = (
        script("debian/prerm"),
        script("debian/libcfrfix/prerm"),
        script("debian/libcfrfix/rpm-postun"),
    );
    for arch in &ARCHES {
        let (library, command) = (rpm("cfrfix-libs", arch), rpm("cfrfix", arch));
        let what = format!("{} rpms", arch.rpm);
        assert_eq!(
            rpm_query(&library, &["--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"]),
            format!("cfrfix-libs {VERSION}-{RELEASE} {}", arch.rpm)
        );
        assert_eq!(
            rpm_query(&command, &["--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}"]),
            format!("cfrfix {VERSION}-{RELEASE} {}", arch.rpm)
        );
        let listed = |package: &Path| -> BTreeSet<String> {
            rpm_query(package, &["--list"])
                .lines()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            listed(&library),
            BTreeSet::from([
                format!("{}/libcfrfix.so", arch.rpm_libdir),
                "/usr/share/licenses/cfrfix-libs/LICENSE-APACHE".to_string(),
                "/usr/share/licenses/cfrfix-libs/LICENSE-MIT".to_string(),
            ]),
            "{what}"
        );
        let command_files = listed(&command);
        for file in COMMAND_FILES {
            assert!(command_files.contains(file), "{what}: {file}");
        }
        // Requires: its own architecture's library (by ISA), bash, and a glibc of 2.17 at most.
        let requires = rpm_query(&command, &["--requires"]);
        let wanted = format!("cfrfix-libs({}) = {VERSION}-{RELEASE}", isa(arch));
        assert!(requires.lines().any(|l| l == wanted), "{what}: {requires}");
        assert!(requires.lines().any(|l| l == "bash"), "{what}: {requires}");
        let provides = rpm_query(&library, &["--provides"]);
        assert!(
            provides
                .lines()
                .any(|l| l == format!("cfrfix-libs({}) = {VERSION}-{RELEASE}", isa(arch))),
            "{what}: {provides}"
        );
        for package in [&library, &command] {
            let requires = rpm_query(package, &["--requires"]);
            let libc = if arch.class == 2 {
                "libc.so.6()(64bit)"
            } else {
                "libc.so.6"
            };
            assert!(requires.lines().any(|l| l == libc), "{what}: {requires}");
            for version in requires.lines().filter_map(|l| l.split("GLIBC_").nth(1)) {
                let version = version.split(')').next().unwrap_or("");
                let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
                assert!(parts <= vec![2, 17], "{what}: needs GLIBC_{version}");
            }
            let scripts = rpm_query(package, &["--scripts"]);
            assert!(
                !scripts.contains("postinstall") && !scripts.contains("preinstall"),
                "{what}: nothing runs on install: {scripts}"
            );
        }
        // %preun of each package and %postun of the library, the tree's scripts.
        let scripts = rpm_query(&command, &["--scripts"]);
        assert!(
            scripts.contains(command_preun.trim()) && !scripts.contains("postuninstall"),
            "{what}: {scripts}"
        );
        let scripts = rpm_query(&library, &["--scripts"]);
        let (preun, postun) = scripts
            .split_once("postuninstall scriptlet")
            .unwrap_or_else(|| panic!("{what}: no %postun: {scripts}"));
        // The %postun names this architecture's library (scripts/build-packages fills it in).
        let libdir = if arch.rpm == "i686" {
            "/usr/lib"
        } else {
            "/usr/lib64"
        };
        let libs_postun = libs_postun.replace("@LIBRARY@", &format!("{libdir}/libcfrfix.so"));
        assert!(
            preun.contains(libs_preun.trim()) && postun.contains(libs_postun.trim()),
            "{what}: {scripts}"
        );
    }
}

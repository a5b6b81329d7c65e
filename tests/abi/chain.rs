//! One install, every ABI (issue 11, point 4): a process chain 64-bit → 32-bit → 64-bit, each
//! link an unmodified C program (`tests/c/abi_chain.c`, built with gcc and gcc -m32) that
//! copies a file through `copy_file_range` and then execs the next. Under an injected
//! EOPNOTSUPP (the 64-bit `cfrfix-inject`, whose filter every link inherits and which matches
//! i386 too), started under the `cfrfix` command and, in a private mount namespace, under
//! system-wide mode: every link's copy is byte-identical, each link has its own ABI's build
//! mapped, and no process prints an ld.so line. The library is named with `$LIB` in both
//! cases, so that one `LD_PRELOAD` / `/etc/ld.so.preload` entry serves both ABIs.
//!
//! Without a 32-bit build, 64-bit programs keep working and the command says what is missing;
//! system-wide mode refuses, naming what to build, before it changes anything.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::command::{artefact_dir, build_without_other_abis, cfrfix, script};
use crate::common::{self, PrivateEtc, Rng, ScratchDir, describe, skip, text};
use crate::targets::{self, GCC_M32, I686};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const LIMIT: Duration = Duration::from_secs(60);

/// The two programs of the chain, in a scratch directory.
struct Chain {
    _bin: ScratchDir,
    program64: PathBuf,
    program32: PathBuf,
}

fn chain_programs(test: &str) -> Option<Chain> {
    if !targets::can_run_i386(test) {
        return None;
    }
    let bin = ScratchDir::tmpfs("abi-chain-bin");
    let program64 = targets::compile_c(test, bin.path(), "abi_chain", "chain64", "gcc", &[])?;
    let flags: Vec<&str> = GCC_M32
        .iter()
        .copied()
        .chain(["-D_FILE_OFFSET_BITS=64"])
        .collect();
    let program32 = targets::compile_c(test, bin.path(), "abi_chain", "chain32", "gcc", &flags)?;
    Some(Chain {
        _bin: bin,
        program64,
        program32,
    })
}

impl Chain {
    /// `chain64 SRC DST1 chain32 SRC DST2 chain64 SRC DST3` (the destinations in `dir`).
    fn argv(&self, source: &Path, dir: &Path) -> Vec<String> {
        let mut argv = Vec::new();
        for (i, program) in [&self.program64, &self.program32, &self.program64]
            .into_iter()
            .enumerate()
        {
            argv.push(program.display().to_string());
            argv.push(source.display().to_string());
            argv.push(dir.join(format!("copy{}", i + 1)).display().to_string());
        }
        argv
    }
}

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut rng = Rng(0xc4a1);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    fs::write(path, &bytes).expect("write source");
    bytes
}

fn finish(command: &mut Command) -> Output {
    common::output_within(command, LIMIT, None)
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
        .unwrap_or_else(|| panic!("{command:?} still running after {LIMIT:?}: hung"))
}

/// Each link copied every byte with the library of its own ABI mapped (`libraries`: the
/// 64-bit and the 32-bit build, as /proc/self/maps names them), and nobody printed an ld.so
/// line.
fn assert_chain_fixed(output: &Output, dir: &Path, content: &[u8], libraries: [&Path; 2]) {
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "three links: {}", describe(output));
    for (i, (line, bits)) in lines.iter().zip([64, 32, 64]).enumerate() {
        let library = if bits == 64 {
            libraries[0]
        } else {
            libraries[1]
        };
        let library = fs::canonicalize(library).expect("library");
        assert!(
            line.starts_with(&format!("link bits={bits} pid=")),
            "link {}: {}",
            i + 1,
            describe(output)
        );
        assert!(
            line.ends_with(&format!(
                " ret=0 errno=0 total={} cfrfix={}",
                content.len(),
                library.display()
            )),
            "link {} ({bits}-bit): {}",
            i + 1,
            describe(output)
        );
        let copy = dir.join(format!("copy{}", i + 1));
        assert!(
            fs::read(&copy).expect("copy") == content,
            "link {}: {} differs from the source",
            i + 1,
            copy.display()
        );
    }
    assert!(output.status.success(), "{}", describe(output));
    assert!(
        !text(&output.stderr).contains("ld.so"),
        "a process printed an ld.so line: {}",
        describe(output)
    );
}

/// Without the library, the injected refusal reaches every link (so the fix above is real).
fn assert_chain_refused(output: &Output) {
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", describe(output));
    for (line, bits) in lines.iter().zip([64, 32, 64]) {
        assert!(
            line.starts_with(&format!("link bits={bits} "))
                && line.contains(" ret=-1 errno=95 total=0 cfrfix=none"),
            "{}",
            describe(output)
        );
    }
}

#[test]
fn chain_64_32_64_under_the_cfrfix_command() {
    let test = "chain_64_32_64_under_the_cfrfix_command";
    let Some(build) = targets::build(I686, test) else {
        return;
    };
    let Some(chain) = chain_programs(test) else {
        return;
    };
    let data = ScratchDir::tmpfs("abi-chain-data");
    let source = data.path().join("source");
    let content = random_file(&source, 700_001);
    let argv = chain.argv(&source, data.path());

    let refused = finish(common::clean(INJECT).arg("95").args(&argv));
    assert_chain_refused(&refused);

    // cfrfix-inject 95 cfrfix chain64 ... (the command inside the filter, as a user would).
    let command = cfrfix();
    let cfrfix_program = command.get_program().to_owned();
    let envs: Vec<_> = command
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
        .collect();
    let mut injected = common::clean(INJECT);
    injected.arg("95").arg(cfrfix_program).args(&argv);
    for (key, value) in envs {
        match value {
            Some(value) => injected.env(key, value),
            None => injected.env_remove(key),
        };
    }
    let output = finish(&mut injected);
    assert_chain_fixed(
        &output,
        data.path(),
        &content,
        [&artefact_dir().join("libcfrfix.so"), &build.library()],
    );
    assert!(
        output.stderr.is_empty(),
        "no warning with every ABI's build present: {}",
        describe(&output)
    );
}

/// `bash scripts/NAME ARGS` inside the namespace, with this profile's build.
fn script_in(etc: &PrivateEtc, name: &str, args: &[&str]) -> Output {
    let script = script(name);
    let mut argv: Vec<&str> = vec![script.to_str().expect("utf-8")];
    argv.extend_from_slice(args);
    let mut command = etc.command("bash", &argv);
    finish(command.env("CFRFIX_ARTEFACT_DIR", artefact_dir()))
}

#[test]
fn chain_64_32_64_under_system_wide_mode() {
    let test = "chain_64_32_64_under_system_wide_mode";
    let Some(build) = targets::build(I686, test) else {
        return;
    };
    let Some(chain) = chain_programs(test) else {
        return;
    };
    let Some(etc) = PrivateEtc::where_possible("abi-chain-system-wide") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let original = b"\n";
    fs::write(&preload, original).expect("write ld.so.preload");
    let scratch = ScratchDir::rootfs("abi-chain-prefix");
    let prefix = scratch.path().join("prefix");
    let prefix_arg = prefix.to_str().expect("utf-8");
    let install = script_in(
        &etc,
        "install.sh",
        &["--prefix", prefix_arg, "--system-wide"],
    );
    assert!(install.status.success(), "{}", describe(&install));
    let entry = format!("{prefix_arg}/$LIB/libcfrfix.so");
    assert_eq!(
        fs::read_to_string(&preload).expect("ld.so.preload"),
        format!("\n{entry}\n"),
        "one line, with $LIB"
    );

    let data = ScratchDir::tmpfs("abi-chain-system-wide-data");
    let source = data.path().join("source");
    let content = random_file(&source, 333_333);
    let argv = chain.argv(&source, data.path());
    let mut args: Vec<&str> = vec!["95"];
    args.extend(argv.iter().map(String::as_str));
    let output = finish(&mut etc.command(INJECT, &args));
    // The installed copies, as each ABI's loader found them through $LIB.
    let installed: Vec<PathBuf> = fs::read_to_string(prefix.join("libexec/cfrfix/installed"))
        .expect("manifest")
        .lines()
        .filter_map(|l| l.strip_prefix("file "))
        .map(PathBuf::from)
        .collect();
    let of_class = |class: u8| {
        installed
            .iter()
            .find(|p| fs::read(p).is_ok_and(|b| b.get(4) == Some(&class)))
            .unwrap_or_else(|| panic!("no ELF class {class} library in {installed:?}"))
    };
    assert_chain_fixed(&output, data.path(), &content, [of_class(2), of_class(1)]);
    assert!(
        fs::read(of_class(1)).expect("read") == fs::read(build.library()).expect("read"),
        "the 32-bit library installed is the i686 build"
    );

    let uninstall = script_in(&etc, "uninstall.sh", &["--prefix", prefix_arg]);
    assert!(uninstall.status.success(), "{}", describe(&uninstall));
    assert_eq!(fs::read(&preload).expect("restored"), original);
    for library in &installed {
        assert!(!library.exists(), "{} left behind", library.display());
    }
}

#[test]
fn a_checkout_without_a_32_bit_build_serves_64_bit_and_says_what_it_lacks() {
    let test = "a_checkout_without_a_32_bit_build_serves_64_bit_and_says_what_it_lacks";
    let Some(chain) = chain_programs(test) else {
        return;
    };
    let scratch = ScratchDir::rootfs("abi-chain-no-i686");
    let release = build_without_other_abis(scratch.path());
    let data = ScratchDir::tmpfs("abi-chain-no-i686-data");
    let source = data.path().join("source");
    let content = random_file(&source, 100_000);
    let copy = data.path().join("copy");
    let output = finish(
        common::clean(INJECT)
            .arg("95")
            .arg(script("cfrfix"))
            .arg(&chain.program64)
            .arg(&source)
            .arg(&copy)
            .env("CFRFIX_ARTEFACT_DIR", &release),
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains(&format!(" ret=0 errno=0 total={} ", content.len())),
        "{}",
        describe(&output)
    );
    assert!(fs::read(&copy).expect("copy") == content);
    assert_eq!(
        text(&output.stderr),
        format!(
            "cfrfix: warning: i386 programs run without cfrfix: build it: scripts/build-targets \
             {I686}\n"
        ),
        "one line says what is missing"
    );

    let status = finish(
        common::clean(script("cfrfix"))
            .arg("--status")
            .env("CFRFIX_ARTEFACT_DIR", &release),
    );
    let report = text(&status.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("  i386 programs: do NOT get cfrfix (")
                && l.contains("/preload/$LIB/libcfrfix.so = ")
                && l.contains(": missing)")),
        "{}",
        describe(&status)
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("  x86_64 programs: get cfrfix (")),
        "{}",
        describe(&status)
    );
}

#[test]
fn system_wide_mode_refuses_an_abi_without_its_library() {
    let test = "system_wide_mode_refuses_an_abi_without_its_library";
    if !targets::can_run_i386(test) {
        return;
    }
    let Some(etc) = PrivateEtc::where_possible("abi-chain-refuse") else {
        return;
    };
    let preload = etc.file("ld.so.preload");
    let _ = fs::remove_file(&preload);
    let scratch = ScratchDir::rootfs("abi-chain-refuse");
    let release = build_without_other_abis(scratch.path());

    // install.sh --system-wide checks before it installs anything.
    let prefix = scratch.path().join("prefix");
    let prefix_arg = prefix.to_str().expect("utf-8");
    let mut command = etc.command(
        "bash",
        &[
            script("install.sh").to_str().expect("utf-8"),
            "--prefix",
            prefix_arg,
            "--system-wide",
        ],
    );
    let install = finish(command.env("CFRFIX_ARTEFACT_DIR", &release));
    assert_eq!(install.status.code(), Some(1), "{}", describe(&install));
    let stderr = text(&install.stderr);
    assert!(
        stderr.contains("i386 programs will not get cfrfix: no i386 build")
            && stderr.contains(&format!("(scripts/build-targets {I686})"))
            && stderr.contains("nothing was installed"),
        "{}",
        describe(&install)
    );
    assert!(
        !prefix.exists(),
        "install.sh changed something before failing"
    );

    // cfrfix-system-wide itself, given a 64-bit library only.
    let libraries = scratch.path().join("libraries");
    place_library(
        &libraries,
        &abi_lib(&release, "x86_64"),
        &release.join("libcfrfix.so"),
    );
    let entry = format!("{}/$LIB/libcfrfix.so", libraries.display());
    let mut command = etc.command(script("cfrfix-system-wide"), &["enable", &entry]);
    let output = finish(command.env("CFRFIX_ARTEFACT_DIR", &release));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("i386 programs would not get cfrfix: ")
            && stderr.contains(
                "/libcfrfix.so is missing; build it (scripts/build-targets i686-unknown-linux-gnu)"
            )
            && stderr.contains("not enabling"),
        "{}",
        describe(&output)
    );
    assert!(!preload.exists(), "nothing may be written after a refusal");
    assert!(!etc.file("ld.so.preload.cfrfix-added").exists());
}

/// `$LIB` of ABI `name` here, as `cfrfix-check --abis` finds it.
fn abi_lib(release: &Path, name: &str) -> String {
    let table = finish(Command::new(release.join("cfrfix-check")).arg("--abis"));
    text(&table.stdout)
        .lines()
        .find(|l| l.starts_with(&format!("{name}\t")))
        .and_then(|l| l.split('\t').nth(3).map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} ABI: {}", describe(&table)))
}

/// Copies `library` to `root/lib/libcfrfix.so`, in directories only root may write.
fn place_library(root: &Path, lib: &str, library: &Path) {
    let dir = root.join(lib);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::copy(library, dir.join("libcfrfix.so")).expect("copy library");
    let mut path = dir.as_path();
    while path.starts_with(root) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path = path.parent().expect("parent");
    }
}

#[test]
fn system_wide_mode_test_loads_every_abi() {
    let test = "system_wide_mode_test_loads_every_abi";
    if !targets::can_run_i386(test) {
        return;
    }
    let Some(etc) = PrivateEtc::where_possible("abi-chain-test-load") else {
        return;
    };
    let scratch = ScratchDir::rootfs("abi-chain-test-load");
    let release = build_without_other_abis(scratch.path());
    // A 32-bit library that loads but writes to stderr: every 32-bit program would print.
    let flags: Vec<&str> = GCC_M32
        .iter()
        .copied()
        .chain(["-shared", "-fPIC"])
        .collect();
    let Some(noisy) =
        targets::compile_c(test, scratch.path(), "noisy_lib", "noisy.so", "gcc", &flags)
    else {
        return;
    };
    let libraries = scratch.path().join("libraries");
    place_library(
        &libraries,
        &abi_lib(&release, "x86_64"),
        &release.join("libcfrfix.so"),
    );
    place_library(&libraries, &abi_lib(&release, "i386"), &noisy);
    let entry = format!("{}/$LIB/libcfrfix.so", libraries.display());
    let preload = etc.file("ld.so.preload");
    let enable = || {
        let mut command = etc.command(script("cfrfix-system-wide"), &["enable", &entry]);
        finish(command.env("CFRFIX_ARTEFACT_DIR", &release))
    };

    let _ = fs::remove_file(&preload);
    let output = enable();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("test load failed: LD_PRELOAD=")
            && stderr.contains("stderr: noisy library loaded"),
        "the 32-bit C library is a 32-bit program to test-load into: {}",
        describe(&output)
    );
    assert!(
        !preload.exists(),
        "nothing may be written after a failed test load"
    );

    // An existing file that already breaks 32-bit programs (a 64-bit path) is named.
    let Some(other) = crate::common::command::other_preload_library() else {
        return skip("no libm.so.6 found to stand for an existing preload");
    };
    fs::write(&preload, format!("{other}\n")).expect("write");
    let output = enable();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("i386 programs (")
            && text(&output.stderr).contains("print, without cfrfix: ERROR: ld.so: object"),
        "{}",
        describe(&output)
    );
    assert_eq!(
        fs::read_to_string(&preload).expect("kept"),
        format!("{other}\n")
    );
}

/// System-wide mode enabled while this machine ran 64-bit programs only, then an i386 loader
/// arrived (Steam's libc6:i386): `cfrfix-system-wide status` runs `enable`'s per-ABI check and
/// exits 1 naming the ABI, its missing library and what to get; once disabled, 0.
#[test]
fn system_wide_status_names_an_abi_that_lacks_its_library() {
    let test = "system_wide_status_names_an_abi_that_lacks_its_library";
    if !targets::can_run_i386(test) {
        return;
    }
    let Some(etc) = PrivateEtc::where_possible("abi-chain-status") else {
        return;
    };
    let scratch = ScratchDir::rootfs("abi-chain-status");
    let release = build_without_other_abis(scratch.path());
    let libraries = scratch.path().join("libraries");
    let x86_64_lib = abi_lib(&release, "x86_64");
    place_library(&libraries, &x86_64_lib, &release.join("libcfrfix.so"));
    let entry = format!("{}/$LIB/libcfrfix.so", libraries.display());
    let i386_library = format!(
        "{}/{}/libcfrfix.so",
        libraries.display(),
        abi_lib(&release, "i386")
    );
    // What `enable` left before the i386 loader came (its check passed then).
    fs::write(etc.file("ld.so.preload"), format!("{entry}\n")).expect("write");
    fs::write(etc.file("ld.so.preload.cfrfix-added"), format!("{entry}\n")).expect("write");
    let status = || {
        let mut command = etc.command(script("cfrfix-system-wide"), &["status"]);
        finish(command.env("CFRFIX_ARTEFACT_DIR", &release))
    };

    let output = status();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for line in [
        format!(
            "cfrfix-system-wide: enabled: {entry} (added to /etc/ld.so.preload by cfrfix-system-wide)"
        ),
        format!(
            "cfrfix-system-wide: problem: i386 programs do not get cfrfix: {i386_library} is \
             missing; build it (scripts/build-targets {I686}) and install it (scripts/install.sh)"
        ),
        format!(
            "cfrfix-system-wide: each process of such an ABI prints \"ERROR: ld.so: object \
             '{entry}' from /etc/ld.so.preload cannot be preloaded\" and runs without cfrfix"
        ),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line}\n{}",
            describe(&output)
        );
    }
    assert!(
        !stdout.contains("x86_64 programs do not"),
        "{}",
        describe(&output)
    );

    // A library of the wrong ABI at the i386 path is a problem too, named by what it is.
    place_library(
        &libraries,
        &abi_lib(&release, "i386"),
        &release.join("libcfrfix.so"),
    );
    let output = status();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains(&format!(
            "i386 programs do not get cfrfix: {i386_library} is ELF 64-bit x86-64; "
        )),
        "{}",
        describe(&output)
    );

    let mut command = etc.command(script("cfrfix-system-wide"), &["disable"]);
    let disabled = finish(command.env("CFRFIX_ARTEFACT_DIR", &release));
    assert!(disabled.status.success(), "{}", describe(&disabled));
    let output = status();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(text(&output.stdout), "cfrfix-system-wide: not enabled\n");
}

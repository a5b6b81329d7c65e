//! Unmodified 32-bit programs with the i686 library preloaded: C programs built with `gcc -m32`
//! (with and without `_FILE_OFFSET_BITS=64`) copying through glibc's `copy_file_range` and
//! through `syscall(SYS_copy_file_range)`, other calls forwarded by the library's `syscall()`,
//! and Debian's i386 `cp`, under an injected EOPNOTSUPP and across filesystems (a natural EXDEV).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::{self, Rng, ScratchDir, describe, skip, text};
use crate::targets::{self, Build, GCC_M32, I386_LOADER, I686};

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// `PROGRAM ARGS` in a clean environment, optionally under `cfrfix-inject ERRNO` and with
/// `library` preloaded (through env(1), so that the 64-bit injector is not given it).
fn run(
    inject: Option<u32>,
    library: Option<&Path>,
    env: &[(&str, &str)],
    program: &[&str],
) -> Output {
    let mut argv: Vec<String> = Vec::new();
    if let Some(errno) = inject {
        argv.push(env!("CARGO_BIN_EXE_cfrfix-inject").into());
        argv.push(errno.to_string());
    }
    argv.push("env".into());
    if let Some(library) = library {
        argv.push(format!("LD_PRELOAD={}", library.display()));
    }
    argv.extend(program.iter().map(|s| s.to_string()));
    let mut command = common::clean(&argv[0]);
    command.args(&argv[1..]).envs(env.iter().copied());
    common::output_within(&mut command, RUN_LIMIT, None)
        .expect("start program")
        .unwrap_or_else(|| panic!("{argv:?} still running after {RUN_LIMIT:?}: hung"))
}

fn random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    std::fs::write(path, &bytes).expect("write source");
    bytes
}

fn is_elf32(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.get(..5) == Some(b"\x7fELF\x01"))
}

fn i686_build(test: &str) -> Option<Build> {
    let build = targets::build(I686, test)?;
    targets::can_run_i386(test).then_some(build)
}

#[test]
fn i686_c_programs_copy_byte_identically() {
    let test = "i686_c_programs_copy_byte_identically";
    let Some(build) = i686_build(test) else {
        return;
    };
    let bin = ScratchDir::tmpfs("abi-i686-bin");
    let mut programs: Vec<(&str, PathBuf)> = Vec::new();
    for (variant, flags) in [
        ("largefile", &["-D_FILE_OFFSET_BITS=64"][..]),
        ("32-bit off_t", &[][..]),
    ] {
        let args: Vec<&str> = GCC_M32
            .iter()
            .copied()
            .chain(flags.iter().copied())
            .collect();
        let name = format!("abi_copy{}", flags.len());
        let Some(binary) = targets::compile_c(test, bin.path(), "abi_copy", &name, "gcc", &args)
        else {
            return;
        };
        assert!(
            is_elf32(&binary),
            "{} is not a 32-bit program",
            binary.display()
        );
        programs.push((variant, binary));
    }
    let library = build.library();
    let tmpfs = ScratchDir::tmpfs("abi-i686-copy");
    let rootfs = ScratchDir::rootfs("abi-i686-copy");
    let source = tmpfs.path().join("source");
    let content = random_file(&source, 3 * 1024 * 1024 + 123, 0x1686);
    let mut runs = 0;
    for (variant, program) in &programs {
        for entry in ["libc", "syscall"] {
            let program = program.to_str().expect("utf-8 path");
            let same_fs = tmpfs.path().join("copy");
            let other_fs = rootfs.path().join("copy");
            let (src, near, far) = (
                source.to_str().unwrap(),
                same_fs.to_str().unwrap(),
                other_fs.to_str().unwrap(),
            );
            let what = format!("{variant} program, {entry}");
            // The kernel's refusal reaches the program without the library...
            for (inject, dst, errno) in [(Some(95), near, 95), (None, far, 18)] {
                let out = run(inject, None, &[], &[program, entry, src, dst, "1048576"]);
                assert!(
                    text(&out.stdout).starts_with(&format!("ret=-1 errno={errno} total=0 ")),
                    "{what}, without the library: {}",
                    describe(&out)
                );
            }
            // ...and the library copies every byte instead.
            for (inject, dst) in [(Some(95), &same_fs), (None, &other_fs)] {
                let _ = std::fs::remove_file(dst);
                let dst_arg = dst.to_str().unwrap();
                let out = run(
                    inject,
                    Some(&library),
                    &[],
                    &[program, entry, src, dst_arg, "1048576"],
                );
                let expected = format!("ret=0 errno=0 total={} calls=5\n", content.len());
                assert_eq!(
                    text(&out.stdout),
                    expected,
                    "{what}, into {dst_arg}: {}",
                    describe(&out)
                );
                assert!(
                    std::fs::read(dst).expect("read copy") == content,
                    "{what}: bytes differ in {dst_arg}"
                );
                assert!(out.stderr.is_empty(), "{what}: {}", describe(&out));
                runs += 1;
            }
        }
    }
    println!(
        "FIGURES: i686: {runs} C program copies byte-identical (EOPNOTSUPP injected, natural EXDEV)"
    );
}

#[test]
fn i686_syscall_export_forwards_other_calls() {
    let test = "i686_syscall_export_forwards_other_calls";
    let Some(build) = i686_build(test) else {
        return;
    };
    let bin = ScratchDir::tmpfs("abi-i686-syscalls");
    let Some(program) = targets::compile_c(
        test,
        bin.path(),
        "abi_syscalls",
        "abi_syscalls",
        "gcc",
        &GCC_M32,
    ) else {
        return;
    };
    let file = bin.path().join("sparse");
    let args = [program.to_str().unwrap(), file.to_str().unwrap()];
    let plain = run(None, None, &[], &args);
    let library = build.library();
    let shimmed = run(None, Some(&library), &[], &args);
    let (plain, shimmed) = (text(&plain.stdout), text(&shimmed.stdout));
    let mut plain_lines = plain.lines();
    let mut shim_lines = shimmed.lines();
    assert_eq!(
        plain_lines.next(),
        Some("syscall() from libc.so.6"),
        "{plain}"
    );
    assert_eq!(
        shim_lines.next(),
        Some("syscall() from libcfrfix.so"),
        "{shimmed}"
    );
    let (plain_rest, shim_rest): (Vec<&str>, Vec<&str>) =
        (plain_lines.collect(), shim_lines.collect());
    assert_eq!(plain_rest.len(), 4, "{plain}");
    assert_eq!(
        plain_rest, shim_rest,
        "with the library:\n{shimmed}\nwithout:\n{plain}"
    );
    assert!(shim_rest.iter().all(|l| l.ends_with(" ok")), "{shimmed}");
}

/// Debian's i386 coreutils, unpacked by scripts/build-targets.
fn debian_i386_coreutils() -> Option<PathBuf> {
    let cache = std::env::var_os("CFRFIX_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/cfrfix"), PathBuf::from);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("i386-coreutils-"))
                && p.join(".complete").exists()
        })
        .collect();
    found.sort();
    found.pop().map(|dir| dir.join("root"))
}

#[test]
fn i686_debian_cp_copies_byte_identically() {
    let test = "i686_debian_cp_copies_byte_identically";
    let Some(build) = i686_build(test) else {
        return;
    };
    let Some(root) = debian_i386_coreutils() else {
        skip(&format!(
            "{test}: no Debian i386 coreutils in the cache: run scripts/build-targets {I686}"
        ));
        return;
    };
    let cp = root.join("bin/cp");
    assert!(is_elf32(&cp), "{} is not a 32-bit program", cp.display());
    let library_path = format!(
        "{}:{}",
        root.join("lib/i386-linux-gnu").display(),
        root.join("usr/lib/i386-linux-gnu").display()
    );
    let tmpfs = ScratchDir::tmpfs("abi-i686-cp");
    let rootfs = ScratchDir::rootfs("abi-i686-cp");
    let source = tmpfs.path().join("source");
    let content = random_file(&source, 5 * 1024 * 1024 + 7, 0xcf);
    let library = build.library();
    for (inject, dst_dir, said) in [(Some(95), &tmpfs, "EOPNOTSUPP"), (None, &rootfs, "EXDEV")] {
        let dst = dst_dir.path().join("copy");
        let log = tmpfs.path().join(format!("log-{said}"));
        let log_setting = log.display().to_string();
        let out = run(
            inject,
            Some(&library),
            &[("CFRFIX_LOG", log_setting.as_str())],
            &[
                I386_LOADER,
                "--library-path",
                &library_path,
                cp.to_str().unwrap(),
                source.to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "cp ({said}): {}",
            describe(&out)
        );
        assert!(
            std::fs::read(&dst).expect("read copy") == content,
            "cp ({said}): bytes differ"
        );
        // The log proves the 32-bit library made the copy, not cp's own read/write fallback.
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let expected = format!(
            "kernel said {said}; copied {} bytes in user space",
            content.len()
        );
        assert!(
            logged.contains(&expected),
            "cp ({said}): expected {expected:?} in the log: {logged:?}"
        );
    }
}

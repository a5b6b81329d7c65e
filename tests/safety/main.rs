//! Safety: the library is loaded into every process (init, sshd, setuid programs, daemons) and
//! must never be the reason one of them crashes, hangs, loses data or lets someone in.
//!
//! Each test drives real processes with the shim preloaded, almost always under `cfrfix-inject`
//! so that the kernel refuses every copy_file_range and each copy is the shim's own:
//!
//! - `pointers`: bad offset pointers, and the pipe path taken when a seccomp profile forbids
//!   process_vm_readv/writev: compared with the kernel through `cfrfix-probe`;
//! - `fuzz`: a bounded differential fuzz over the whole argument space (seed and count printed;
//!   `CFRFIX_FUZZ_SEED` and `CFRFIX_FUZZ_CASES` change them);
//! - `concurrency`: threads, fork, signal storms (`cfrfix-stress`);
//! - `full_disk`: ENOSPC on a 1 MiB tmpfs and RLIMIT_FSIZE: per-call transcripts equal to the
//!   kernel's;
//! - `secure_execution`: a setuid-root program run by `nobody` with /etc/ld.so.preload in a
//!   private mount namespace; nothing on fds 1/2 by default;
//! - `recursion`: no self-recursion: futex contention through `syscall()`, and a DT_NEEDED
//!   library whose constructor copies before ours has run;
//! - `abi`: the ABI (`scripts/check-abi`); `valgrind`: memcheck over every engine.
//!
//! A test that needs what this machine lacks (root, unshare, cc, valgrind) prints
//! "SKIPPED: reason" and returns. Figures are printed on stdout (`--nocapture` shows them).

#[path = "../common/mod.rs"]
mod common;

mod abi;
mod concurrency;
mod full_disk;
mod fuzz;
mod pointers;
mod recursion;
mod secure_execution;
mod valgrind;

use common::{ScratchDir, clean, describe, text};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const PROBE: &str = env!("CARGO_BIN_EXE_cfrfix-probe");
const STRESS: &str = env!("CARGO_BIN_EXE_cfrfix-stress");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

const ENOSYS: u16 = 38;
const EOPNOTSUPP: u16 = 95;
const EPERM: u16 = 1;

// ---------------------------------------------------------------------------------------------
// Running processes

fn figure(line: &str) {
    println!("FIGURES: {line}");
}

/// Runs `command` with `input` on stdin; kills it and fails the test after `limit` (a hang is
/// a bug, and must not stall the whole suite).
fn run_within(command: &mut Command, limit: Duration, input: Option<String>) -> Output {
    match common::output_within(command, limit, input) {
        Ok(Some(output)) => output,
        Ok(None) => panic!("{command:?} did not finish within {limit:?}: hung"),
        Err(e) => panic!("cannot run {command:?}: {e}"),
    }
}

fn run(command: &mut Command) -> Output {
    run_within(command, Duration::from_secs(60), None)
}

/// How a program is started: natively, or with the kernel refusing copy_file_range with
/// `errno` and the shim preloaded; optionally with process_vm_readv/writev failing too.
#[derive(Clone, Copy, Debug)]
enum Setup {
    Native,
    Shim {
        errno: u16,
        deny_vm: Option<u16>,
    },
    /// Injected, without the shim: proves the injection bites.
    InjectedOnly {
        errno: u16,
    },
}

/// `program args` under `setup`, with `envs` set for the program only.
fn command(setup: Setup, envs: &[(&str, &str)], program: &str, args: &[&str]) -> Command {
    let mut c = match setup {
        Setup::Native => {
            let mut c = clean(program);
            c.envs(envs.iter().copied());
            c
        }
        Setup::Shim { errno, deny_vm } => injected(errno, deny_vm, true, envs, program),
        Setup::InjectedOnly { errno } => injected(errno, None, false, envs, program),
    };
    c.args(args);
    c
}

/// `cfrfix-inject ERRNO [cfrfix-stress deny-vm E --] env [LD_PRELOAD=...] ENVS... PROGRAM`:
/// the variables reach only PROGRAM, not the tools in front of it.
fn injected(
    errno: u16,
    deny_vm: Option<u16>,
    shim: bool,
    envs: &[(&str, &str)],
    program: &str,
) -> Command {
    let mut c = clean(INJECT);
    c.arg(errno.to_string());
    if let Some(e) = deny_vm {
        c.args([STRESS, "deny-vm", &e.to_string(), "--"]);
    }
    c.arg("env");
    if shim {
        c.arg(format!("LD_PRELOAD={}", common::cdylib().display()));
    }
    c.args(envs.iter().map(|(k, v)| format!("{k}={v}")));
    c.arg(program);
    c
}

/// Compiles C `sources` from tests/c into `out` with `common::compile_c` (None, after SKIPPED,
/// without a compiler).
fn compile(out: &Path, sources: &[&str], args: &[&str]) -> Option<PathBuf> {
    let dir = out.parent().expect("output path has a directory");
    let name = out.file_name().expect("output path has a file name");
    let paths: Vec<PathBuf> = sources
        .iter()
        .map(|s| Path::new(MANIFEST_DIR).join("tests/c").join(s))
        .collect();
    let paths: Vec<&OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    common::compile_c(dir, name.to_str().expect("utf-8 name"), &paths, args)
}

fn write_pattern(path: &Path, len: usize, seed: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect();
    fs::write(path, &data).expect("write test file");
    data
}

fn assert_same_file(path: &Path, expected: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(got.len(), expected.len(), "{}: size", path.display());
    if let Some(i) = got.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("{}: first differing byte at {i}", path.display());
    }
}

// ---------------------------------------------------------------------------------------------
// The probe (pointers, fuzz)

/// Runs the probe over `cases` (each line gets its own fixture); one result line per case.
fn probe_lines(setup: Setup, cases: &[String]) -> Vec<String> {
    let scratch = ScratchDir::tmpfs("safety-probe");
    let base = scratch.path().to_str().expect("utf-8 path").to_string();
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let output = run_within(
        &mut command(setup, &[], PROBE, &[&base]),
        Duration::from_secs(120),
        Some(input),
    );
    let lines: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    assert!(
        output.status.success() && lines.len() == cases.len(),
        "probe under {setup:?}: {} of {} lines; {}",
        lines.len(),
        cases.len(),
        describe(&Output {
            stdout: Vec::new(),
            ..output
        })
    );
    lines
}

/// Compares every line with the native one; panics with the first few differences.
fn assert_same_results(what: &str, cases: &[String], native: &[String], shim: &[String]) {
    let differing: Vec<usize> = (0..cases.len()).filter(|&i| native[i] != shim[i]).collect();
    if differing.is_empty() {
        return;
    }
    let mut report = String::new();
    for &i in differing.iter().take(15) {
        report += &format!(
            "case #{i}: {}\n  native: {}\n  shim:   {}\n",
            cases[i], native[i], shim[i]
        );
    }
    panic!(
        "{what}: {} of {} cases differ from the kernel:\n{report}",
        differing.len(),
        cases.len()
    );
}

// ---------------------------------------------------------------------------------------------
// cfrfix-stress (concurrency, secure execution, recursion)

fn stress(setup: Setup, envs: &[(&str, &str)], args: &[&str]) -> Output {
    run(&mut command(setup, envs, STRESS, args))
}

fn stress_ok(setup: Setup, args: &[&str]) -> String {
    let output = stress(setup, &[], args);
    assert!(
        output.status.success(),
        "cfrfix-stress {args:?} under {setup:?}: {}",
        describe(&output)
    );
    text(&output.stdout).trim().to_string()
}

const FALLBACK: Setup = Setup::Shim {
    errno: EOPNOTSUPP,
    deny_vm: None,
};

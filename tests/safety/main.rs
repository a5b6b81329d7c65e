//! Safety: the library is loaded into every process (init, sshd, setuid programs, daemons) and
//! must never be the reason one of them crashes, hangs, loses data or lets someone in.
//!
//! Each test drives real processes with the shim preloaded, almost always under `cfrfix-inject`
//! so that the kernel refuses every copy_file_range and each copy is the shim's own:
//!
//! - bad offset pointers, and the pipe path taken when a seccomp profile forbids
//!   process_vm_readv/writev: compared with the kernel through `cfrfix-probe`;
//! - a bounded differential fuzz over the whole argument space (seed and count printed;
//!   `CFRFIX_FUZZ_SEED` and `CFRFIX_FUZZ_CASES` change them);
//! - threads, fork, signal storms (`cfrfix-stress`);
//! - ENOSPC on a 1 MiB tmpfs and RLIMIT_FSIZE: per-call transcripts equal to the kernel's;
//! - secure execution: a setuid-root program run by `nobody` with /etc/ld.so.preload in a
//!   private mount namespace; nothing on fds 1/2 by default;
//! - no self-recursion: futex contention through `syscall()`, and a DT_NEEDED library whose
//!   constructor copies before ours has run;
//! - the ABI (`scripts/check-abi`) and valgrind memcheck over every engine.
//!
//! A test that needs what this machine lacks (root, unshare, cc, valgrind) prints
//! "SKIPPED: reason" and returns. Figures are printed on stdout (`--nocapture` shows them).

#[path = "../common/mod.rs"]
mod common;

use common::{PrivateEtc, Rng, ScratchDir, clean, describe, have_command, is_root, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
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

/// Compiles C sources from tests/c with `cc` (None, after SKIPPED, without a compiler).
fn compile(out: &Path, sources: &[&str], args: &[&str]) -> Option<PathBuf> {
    if !have_command("cc") {
        skip("no C compiler (cc)");
        return None;
    }
    let mut c = Command::new("cc");
    c.args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out);
    for s in sources {
        c.arg(Path::new(MANIFEST_DIR).join("tests/c").join(s));
    }
    c.args(args);
    let output = run(&mut c);
    assert!(
        output.status.success(),
        "cc {sources:?}: {}",
        describe(&output)
    );
    Some(out.to_path_buf())
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
// The probe: bad pointers and fuzzing

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

/// Unmapped, partly mapped, page-zero and read-only offset pointers, alone and combined with
/// every other check, through all three entry points.
fn bad_pointer_cases() -> Vec<String> {
    let kinds = [
        "fault",
        "splitfault",
        "lowaddr",
        "ro:0",
        "ro:10",
        "splitro:10",
        "splitro:0xfffffff0",
        "null",
        "5",
    ];
    let mut cases = Vec::new();
    for entry in ["libc", "syscall", "dlsym"] {
        for off_in in kinds {
            for off_out in kinds.iter().chain(&["alias"]) {
                for len in [0, 100, 70_000] {
                    cases.push(format!(
                        "entry={entry} src_size=100000 dst_size=50 src_pos=3 dst_pos=4 off_in={off_in} off_out={off_out} len={len} seed=1"
                    ));
                }
            }
            // The pointer checks come after EBADF and before the flags, EISDIR, EINVAL, EFBIG.
            for extra in [
                "src=minus1",
                "dst=closed",
                "flags=1",
                "src=dir",
                "dst=pipe",
                "dst_mode=append",
                "fsize=0",
            ] {
                cases.push(format!(
                    "entry={entry} src_size=1000 off_in={off_in} off_out=fault len=10 {extra}"
                ));
                cases.push(format!(
                    "entry={entry} src_size=1000 off_in={off_in} off_out=ro:7 len=10 {extra}"
                ));
            }
        }
    }
    cases
}

#[test]
fn bad_offset_pointers_match_the_kernel_even_where_it_never_looked() {
    let cases = bad_pointer_cases();
    let native = probe_lines(Setup::Native, &cases);
    // The kernel's "copied, then EFAULT on write-back" must be among the answers, or this test
    // would not test it: a read-only off_out with bytes in the destination afterwards.
    let copied_then_efault = native
        .iter()
        .zip(&cases)
        .filter(|(l, c)| {
            c.contains("off_out=ro:")
                && l.starts_with("ret=-1 errno=14 ")
                && !l.contains(" dst=50:")
        })
        .count();
    assert!(
        copied_then_efault > 20,
        "only {copied_then_efault} copied-then-EFAULT cases"
    );
    let efault = native.iter().filter(|l| l.contains(" errno=14 ")).count();
    let mut runs = 0;
    for setup in [
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: None,
        },
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: Some(ENOSYS),
        },
        Setup::Shim {
            errno: EPERM,
            deny_vm: Some(EPERM),
        },
    ] {
        let shim = probe_lines(setup, &cases);
        assert_same_results(&format!("{setup:?}"), &cases, &native, &shim);
        runs += 1;
    }
    figure(&format!(
        "bad pointers: {} cases x {runs} shim setups (process_vm_* allowed; denied with ENOSYS; \
         denied with EPERM = pipe path), {efault} EFAULT answers, {copied_then_efault} copied-then-EFAULT",
        cases.len()
    ));
}

/// Found by the fuzz (a regression test now): a destination inode made append-only (`chattr +a`)
/// after it was opened for writing, and a source ending in a hole. The kernel writes the hole
/// as zeros; the sparse engine skipped it and then failed to extend the destination with
/// ftruncate, which append-only inodes refuse (EPERM): a short count, then EPERM.
#[test]
fn append_only_destination_with_a_sparse_source_matches_the_kernel() {
    let mut cases = Vec::new();
    for entry in ["libc", "syscall"] {
        for extra in [
            "",
            "off_in=0 off_out=0",
            "dst_size=200 off_in=200 off_out=200",
        ] {
            cases.push(format!(
                "entry={entry} src_size=100 src_trunc=100000 len=100000 dst_attr=appendonly {extra}"
            ));
        }
    }
    let native = probe_lines(Setup::Native, &cases);
    let shim = probe_lines(
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: None,
        },
        &cases,
    );
    assert_same_results("append-only destination", &cases, &native, &shim);
}

const FUZZ_DEFAULT_SEED: u64 = 0x5afe_cf12_0000_0001;
const FUZZ_DEFAULT_CASES: usize = 5000;

fn fuzz_params() -> (u64, usize) {
    let seed = match std::env::var("CFRFIX_FUZZ_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        Some(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
            .expect("CFRFIX_FUZZ_SEED: a number, 0x-hex or 'random'"),
        None => FUZZ_DEFAULT_SEED,
    };
    let cases = std::env::var("CFRFIX_FUZZ_CASES")
        .ok()
        .map(|s| s.parse().expect("CFRFIX_FUZZ_CASES: a number"))
        .unwrap_or(FUZZ_DEFAULT_CASES);
    (seed, cases)
}

/// An offset argument for a file of `size` bytes.
fn fuzz_offset(rng: &mut Rng, size: u64, is_out: bool) -> String {
    let near = |rng: &mut Rng| rng.below(size + 2000);
    match rng.below(100) {
        0..=34 => "null".into(),
        35..=69 => near(rng).to_string(),
        70..=79 => rng
            .pick(&[
                "-1",
                "-4096",
                "0x7ffff000",
                "0x7ffffffffffffffe",
                "0x7fffffffffffffff",
                "0x8000000000000000",
                "0xffffffffffffff9c",
                "1099511627776",
            ])
            .to_string(),
        80..=85 => format!("ro:{}", near(rng)),
        86..=88 => format!("splitro:{}", near(rng)),
        89..=91 => "fault".into(),
        92..=93 => "splitfault".into(),
        94..=95 => "lowaddr".into(),
        _ if is_out => "alias".into(),
        _ => near(rng).to_string(),
    }
}

fn fuzz_case(rng: &mut Rng) -> String {
    let mut fields: Vec<String> = Vec::new();
    let mut add = |s: String| fields.push(s);
    add(format!("entry={}", rng.pick(&["libc", "syscall", "dlsym"])));
    let src_size = match rng.below(4) {
        0 => rng.below(100),
        1 => rng.below(10_000),
        2 => rng.below(100_000),
        _ => rng.below(300_000),
    };
    add(format!("src_size={src_size} seed={}", rng.next()));
    if rng.chance(10) {
        // A sparse tail (bounded: the kernel would fill holes in with real zero pages) or a
        // truncation below the data.
        let trunc = if rng.chance(70) {
            src_size + rng.below(4 << 20)
        } else {
            rng.below(src_size + 1)
        };
        add(format!("src_trunc={trunc}"));
    }
    if rng.chance(12) {
        add(format!(
            "src={}",
            rng.pick(&["dir", "pipe", "devnull", "minus1", "closed"])
        ));
    }
    if rng.chance(12) {
        add(format!(
            "src_mode={}",
            rng.pick(&["wo", "rw", "append", "rwappend", "path"])
        ));
    }
    if rng.chance(30) {
        add(format!("src_pos={}", rng.below(src_size + 1000)));
    }
    match rng.below(100) {
        0..=9 => add(format!(
            "dst={} src_mode=rw",
            rng.pick(&["samefd", "samepath", "hardlink"])
        )),
        10..=17 => add(format!(
            "dst={}",
            rng.pick(&["dir", "pipe", "devnull", "minus1", "closed"])
        )),
        _ => {
            add(format!("dst_size={}", rng.below(2 * src_size + 10)));
            if rng.chance(8) {
                add(format!("dst_trunc={}", rng.below(1 << 22)));
            }
        }
    }
    if rng.chance(15) {
        add(format!(
            "dst_mode={}",
            rng.pick(&["rw", "ro", "append", "rwappend", "path"])
        ));
    }
    if rng.chance(30) {
        add(format!("dst_pos={}", rng.below(src_size + 1000)));
    }
    let mut off_in = fuzz_offset(rng, src_size, false);
    let off_out = fuzz_offset(rng, src_size, true);
    if off_out == "alias" && off_in == "null" {
        // Aliasing needs an off_in pointer to alias.
        off_in = rng.below(src_size + 2000).to_string();
    }
    add(format!("off_in={off_in} off_out={off_out}"));
    let len = match rng.below(10) {
        0 => *rng.pick(&[
            0u64,
            1,
            4096,
            0x7fff_f000,
            0x7fff_f001,
            0xffff_ffff,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ]),
        1 => rng.below(100),
        2..=6 => rng.below(src_size + 5000),
        _ => rng.below(400_000),
    };
    add(format!("len={len}"));
    if rng.chance(5) {
        add(format!(
            "flags={}",
            rng.pick(&["1", "2", "0x80000000", "0xffffffff"])
        ));
    }
    if rng.chance(8) {
        add(format!("fsize={}", rng.below(src_size + 2000)));
    }
    if rng.chance(3) {
        add(format!(
            "dst_attr={}",
            rng.pick(&["immutable", "appendonly"])
        ));
    }
    if rng.chance(2) {
        add("src_attr=immutable".into());
    }
    fields.join(" ")
}

struct Fuzz {
    seed: u64,
    cases: Vec<String>,
    native: Vec<String>,
}

/// The generated cases and the kernel's answers, shared by the fuzz tests.
fn fuzz() -> &'static Fuzz {
    static FUZZ: OnceLock<Fuzz> = OnceLock::new();
    FUZZ.get_or_init(|| {
        let (seed, count) = fuzz_params();
        let mut rng = Rng(seed);
        let cases: Vec<String> = (0..count).map(|_| fuzz_case(&mut rng)).collect();
        let native = probe_lines(Setup::Native, &cases);
        if let Some(i) = native.iter().position(|l| l.starts_with("error=")) {
            panic!(
                "fuzz case #{i} does not parse: {} → {}",
                cases[i], native[i]
            );
        }
        Fuzz {
            seed,
            cases,
            native,
        }
    })
}

fn fuzz_against(setup: Setup) {
    let f = fuzz();
    let shim = probe_lines(setup, &f.cases);
    let copied = f
        .native
        .iter()
        .filter(|l| !l.starts_with("ret=-1 ") && !l.starts_with("ret=0 "))
        .count();
    let failed = f.native.iter().filter(|l| l.starts_with("ret=-1 ")).count();
    let mut errnos: Vec<&str> = f
        .native
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|e| *e != "errno=0")
        .collect();
    errnos.sort_unstable();
    errnos.dedup();
    figure(&format!(
        "fuzz seed={:#x} cases={} under {setup:?}: {copied} copied data, {failed} failed ({}) \
         (CFRFIX_FUZZ_SEED=... CFRFIX_FUZZ_CASES=... to change)",
        f.seed,
        f.cases.len(),
        errnos.join(" ")
    ));
    assert_same_results(
        &format!("fuzz seed {:#x} under {setup:?}", f.seed),
        &f.cases,
        &f.native,
        &shim,
    );
    // A generator that produced only early failures would prove little (about a quarter of
    // the cases copy data; any seed stays well above a sixth).
    assert!(
        copied * 6 >= f.cases.len(),
        "only {copied} cases copied data"
    );
}

#[test]
fn fuzz_shim_matches_kernel_under_enosys() {
    fuzz_against(Setup::Shim {
        errno: ENOSYS,
        deny_vm: None,
    });
}

#[test]
fn fuzz_shim_matches_kernel_with_process_vm_denied() {
    // The seccomp profile of a container that forbids process_vm_*: offsets go through a pipe.
    fuzz_against(Setup::Shim {
        errno: ENOSYS,
        deny_vm: Some(ENOSYS),
    });
}

#[test]
fn fuzz_shim_matches_kernel_under_eopnotsupp_with_process_vm_eperm() {
    fuzz_against(Setup::Shim {
        errno: EOPNOTSUPP,
        deny_vm: Some(EPERM),
    });
}

// ---------------------------------------------------------------------------------------------
// Concurrency and signals

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

#[test]
fn eight_threads_copy_at_once_while_others_contend_on_a_mutex() {
    let dir = ScratchDir::tmpfs("safety-threads");
    let d = dir.path().to_str().expect("utf-8");
    // Without the shim the same run fails: every copy below is a fallback.
    let refused = stress(
        Setup::InjectedOnly { errno: EOPNOTSUPP },
        &[],
        &["threads", d, "2", "1"],
    );
    assert!(!refused.status.success(), "injection did not bite");
    let figures = stress_ok(FALLBACK, &["threads", d, "8", "4"]);
    figure(&format!("threads (EOPNOTSUPP injected): {figures}"));
}

#[test]
fn fork_while_threads_are_copying() {
    let dir = ScratchDir::tmpfs("safety-fork");
    let d = dir.path().to_str().expect("utf-8");
    let figures = stress_ok(FALLBACK, &["fork", d, "16"]);
    figure(&format!("fork (EOPNOTSUPP injected): {figures}"));
}

#[test]
fn signal_storms_give_full_partial_or_clean_eintr() {
    let dir = ScratchDir::tmpfs("safety-signals");
    let d = dir.path().to_str().expect("utf-8");
    for restart in ["norestart", "restart"] {
        let native = stress_ok(Setup::Native, &["signals", d, "32", "6", restart]);
        let shim = stress_ok(FALLBACK, &["signals", d, "32", "6", restart]);
        figure(&format!("signals native: {native}"));
        figure(&format!("signals shim (EOPNOTSUPP injected): {shim}"));
        assert!(
            !shim.contains(" signals=0 "),
            "no signal arrived during the copies: {shim}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Full disk and limits

/// `program args` inside a private mount namespace with a fresh tmpfs of `options` on `dir`.
fn on_small_tmpfs(dir: &Path, options: &str, inner: Command) -> Command {
    let mut c = clean("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o \"$1\" cfrfix-safety \"$0\" && shift && exec \"$@\"")
        .arg(dir)
        .arg(options)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn limits_transcript(dir: &Path, setup: Setup, envs: &[(&str, &str)]) -> String {
    let d = dir.to_str().expect("utf-8");
    let inner = command(setup, envs, STRESS, &["limits", d]);
    let output = run(&mut on_small_tmpfs(dir, "size=1m", inner));
    assert!(
        output.status.success(),
        "limits under {setup:?} {envs:?}: {}",
        describe(&output)
    );
    text(&output.stdout)
}

#[test]
fn enospc_and_rlimit_fsize_mid_copy_match_the_kernel() {
    if !is_root() || !have_command("unshare") {
        return skip("needs root and unshare(1) for a private 1 MiB tmpfs");
    }
    let dir = ScratchDir::tmpfs("safety-limits");
    let native = limits_transcript(dir.path(), Setup::Native, &[]);
    // The scenario must really stop part way: a partial count, then ENOSPC; the RLIMIT_FSIZE
    // clamp, then EFBIG with SIGXFSZ.
    for needle in ["enospc:b:1 ", "errno=28", "errno=27", "xfsz=1"] {
        assert!(
            native.contains(needle),
            "native transcript lacks {needle}:\n{native}"
        );
    }
    let partial = native
        .lines()
        .filter(|l| {
            l.starts_with("enospc")
                && !l.contains("ret=153600")
                && !l.contains("ret=-1")
                && !l.contains("ret=0 ")
        })
        .count();
    let mut runs = 0;
    for engine in ["auto", "splice", "rw"] {
        for sparse in ["auto", "off"] {
            for entry in ["libc", "syscall"] {
                let envs = [
                    ("CFRFIX_ENGINE", engine),
                    ("CFRFIX_SPARSE", sparse),
                    ("STRESS_ENTRY", entry),
                ];
                let shim = limits_transcript(
                    dir.path(),
                    Setup::Shim {
                        errno: ENOSYS,
                        deny_vm: None,
                    },
                    &envs,
                );
                assert_eq!(
                    shim, native,
                    "engine {engine}, sparse {sparse}, entry {entry}: shim transcript differs"
                );
                runs += 1;
            }
        }
    }
    let calls = native.lines().count();
    figure(&format!(
        "limits: {calls} calls per transcript ({partial} partial counts at ENOSPC/EOF, ENOSPC and \
         EFBIG+SIGXFSZ after them), identical to the kernel under {runs} shim configurations"
    ));
}

#[test]
fn edquot_on_a_tmpfs_with_quota() {
    if !is_root() || !have_command("unshare") {
        return skip("needs root and unshare(1)");
    }
    let dir = ScratchDir::tmpfs("safety-quota");
    let probe = run(&mut on_small_tmpfs(
        dir.path(),
        "size=8m,usrquota,usrquota_block_hardlimit=1m",
        clean("true"),
    ));
    if !probe.status.success() {
        return skip(&format!(
            "tmpfs quota unavailable (kernel without CONFIG_TMPFS_QUOTA, before 6.6): {}",
            text(&probe.stderr).trim()
        ));
    }
    // Same scenario as ENOSPC, as `nobody` (root is exempt from quotas): EDQUOT where the
    // 1 MiB filesystem said ENOSPC.
    let d = dir.path().to_str().expect("utf-8");
    let transcript = |setup: Setup| {
        let inner = command(setup, &[], STRESS, &["limits", d]);
        let mut c = clean("sh");
        c.args([
            "-c",
            "chmod 1777 \"$0\" && exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$@\"",
        ])
        .arg(d)
        .arg(inner.get_program())
        .args(inner.get_args());
        let output = run(&mut on_small_tmpfs(
            dir.path(),
            "size=8m,usrquota,usrquota_block_hardlimit=1m",
            c,
        ));
        assert!(output.status.success(), "{setup:?}: {}", describe(&output));
        text(&output.stdout)
    };
    let native = transcript(Setup::Native);
    assert!(
        native.contains("errno=122"),
        "no EDQUOT natively:\n{native}"
    );
    let shim = transcript(Setup::Shim {
        errno: ENOSYS,
        deny_vm: None,
    });
    assert_eq!(shim, native);
    figure("EDQUOT: shim transcript identical to the kernel's");
}

// ---------------------------------------------------------------------------------------------
// Secure execution and quiet fds

#[test]
fn setuid_program_ignores_cfrfix_environment_but_keeps_the_fallback() {
    if !is_root() || !have_command("unshare") || !have_command("setpriv") {
        return skip("needs root, unshare(1) and setpriv(1)");
    }
    // On the root filesystem: /dev/shm may be mounted nosuid.
    let bin = ScratchDir::rootfs("safety-setuid-bin");
    let Some(program) = compile(&bin.path().join("setuid_copy"), &["setuid_copy.c"], &[]) else {
        return;
    };
    let setuid = bin.path().join("setuid_copy_suid");
    fs::copy(&program, &setuid).expect("copy program");
    fs::set_permissions(&setuid, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = ScratchDir::rootfs("safety-setuid-data");
    fs::set_permissions(data.path(), fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    let src = data.path().join("src");
    let content = write_pattern(&src, 300_000, 7);
    let env_log = data.path().join("env.log");
    let conf_log = bin.path().join("conf.log");

    let etc = PrivateEtc::copy("safety-setuid-etc");
    let _ = fs::remove_file(etc.file("cfrfix.conf"));
    fs::write(
        etc.file("ld.so.preload"),
        format!("{}\n", common::cdylib().display()),
    )
    .expect("ld.so.preload");
    let conf = etc.file("cfrfix.conf");
    fs::write(&conf, format!("log = {}\n", conf_log.display())).expect("cfrfix.conf");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).expect("chmod");

    let env_log_s = env_log.to_str().expect("utf-8");
    let hostile = [("CFRFIX_LOG", env_log_s), ("CFRFIX_MODE", "off")];
    let as_nobody = |program: &Path, dst: &str, envs: &[(&str, &str)]| {
        let setpriv = Path::new("setpriv");
        let mut args = vec!["--reuid=65534", "--regid=65534", "--clear-groups", "env"];
        let pairs: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.extend(pairs.iter().map(String::as_str));
        let program = program.to_str().expect("utf-8");
        let src = src.to_str().expect("utf-8");
        args.extend([program, src, dst]);
        let output = run(&mut etc.command(setpriv, &args));
        assert!(output.status.success(), "{}", describe(&output));
        text(&output.stdout)
    };

    // The setuid program: AT_SECURE, so CFRFIX_MODE=off and CFRFIX_LOG are the attacker's and
    // ignored; the root-owned /etc/cfrfix.conf still applies (its log file is written).
    let dst = data.path().join("dst");
    let out = as_nobody(&setuid, dst.to_str().expect("utf-8"), &hostile);
    assert_eq!(out, "secure=1 ruid=65534 euid=0\ncopied 300000\n");
    assert_same_file(&dst, &content);
    assert!(!env_log.exists(), "the setuid program honoured CFRFIX_LOG");
    let logged = fs::read_to_string(&conf_log).expect("the root-owned config's log file");
    assert!(logged.contains("kernel said EOPNOTSUPP"), "{logged}");

    // Control: the same program without the setuid bit honours the same environment, so the
    // assertions above can fail.
    let dst2 = data.path().join("dst2");
    let out = as_nobody(&program, dst2.to_str().expect("utf-8"), &hostile);
    assert_eq!(out, "secure=0 ruid=65534 euid=65534\nerrno 95\n");
    let out = as_nobody(&program, dst2.to_str().expect("utf-8"), &hostile[..1]);
    assert_eq!(out, "secure=0 ruid=65534 euid=65534\ncopied 300000\n");
    assert!(
        env_log.exists(),
        "CFRFIX_LOG not honoured outside secure execution"
    );

    // The log file is opened with O_NOFOLLOW: a symlink planted at the path is not followed,
    // even by root.
    let victim = bin.path().join("victim");
    fs::write(&victim, "precious\n").expect("victim");
    let link = data.path().join("link.log");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let link_s = link.to_str().expect("utf-8");
    let dst3 = data.path().join("dst3");
    let output = run(etc
        .command(
            &program,
            &[src.to_str().expect("utf-8"), dst3.to_str().expect("utf-8")],
        )
        .env("CFRFIX_LOG", link_s));
    assert_eq!(
        text(&output.stdout),
        "secure=0 ruid=0 euid=0\ncopied 300000\n"
    );
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    figure(
        "secure execution: setuid copy as nobody used the fallback, ignored CFRFIX_LOG/CFRFIX_MODE, honoured root-owned cfrfix.conf; log path symlink not followed",
    );
}

#[test]
fn nothing_is_written_to_stdout_or_stderr_by_default() {
    let dir = ScratchDir::tmpfs("safety-quiet");
    let src = dir.path().join("src");
    let content = write_pattern(&src, 2_000_000, 9);
    let (s, d) = (
        src.to_str().expect("utf-8").to_string(),
        dir.path().join("dst").to_str().expect("utf-8").to_string(),
    );
    // The same program's output natively and with every copy a fallback: byte for byte.
    let native = stress(Setup::Native, &[], &["copy", &s, &d]);
    let fallback = stress(FALLBACK, &[], &["copy", &s, &d]);
    assert!(native.status.success() && fallback.status.success());
    assert_eq!(text(&native.stdout), "copied 2000000\n");
    assert_eq!(fallback.stdout, native.stdout);
    assert!(
        native.stderr.is_empty() && fallback.stderr.is_empty(),
        "{}",
        describe(&fallback)
    );
    assert_same_file(Path::new(&d), &content);

    // A daemon that closed 1 and 2 and reused the numbers for data files: fallbacks that
    // succeed and fail (EINVAL, EBADF, EFAULT) write nothing into them.
    let daemon_dir = ScratchDir::tmpfs("safety-daemon");
    let dd = daemon_dir.path().to_str().expect("utf-8");
    for setup in [
        FALLBACK,
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: Some(ENOSYS),
        },
    ] {
        let output = stress(setup, &[], &["daemon", dd]);
        let result = fs::read_to_string(daemon_dir.path().join("result")).unwrap_or_default();
        assert!(
            output.status.success() && result.contains(" clean"),
            "{setup:?}: {result}\n{}",
            describe(&output)
        );
        assert_eq!(
            fs::metadata(daemon_dir.path().join("data1"))
                .expect("data1")
                .len(),
            0
        );
        assert_eq!(
            fs::metadata(daemon_dir.path().join("data2"))
                .expect("data2")
                .len(),
            0
        );
    }
    figure(
        "quiet: stdout/stderr identical with and without fallbacks; 15 fallback calls with fds 1/2 reused wrote nothing there",
    );
}

// ---------------------------------------------------------------------------------------------
// No self-recursion

#[test]
fn futex_contention_through_syscall_works_under_the_shim() {
    let bin = ScratchDir::tmpfs("safety-futex");
    let Some(program) = compile(
        &bin.path().join("futex_storm"),
        &["futex_storm.c"],
        &["-pthread"],
    ) else {
        return;
    };
    let src = bin.path().join("src");
    write_pattern(&src, 100_000, 3);
    let (p, s, d) = (
        program.to_str().expect("utf-8"),
        src.to_str().expect("utf-8"),
        bin.path().to_str().expect("utf-8"),
    );
    let output = run_within(
        &mut command(FALLBACK, &[], p, &["8", "300000", s, d]),
        Duration::from_secs(60),
        None,
    );
    assert!(output.status.success(), "{}", describe(&output));
    let figures = text(&output.stdout).trim().to_string();
    assert!(
        !figures.contains("futex_calls=0 "),
        "no contention: {figures}"
    );
    figure(&format!("futex storm (EOPNOTSUPP injected): {figures}"));
}

#[test]
fn a_needed_librarys_constructor_copies_before_ours_has_run() {
    let bin = ScratchDir::rootfs("safety-early");
    let lib = bin.path().join("libearly.so");
    if compile(&lib, &["early_lib.c"], &["-shared", "-fPIC"]).is_none() {
        return;
    }
    let dir = bin.path().to_str().expect("utf-8");
    let rpath = format!("-Wl,-rpath,{dir}");
    let main = compile(
        &bin.path().join("early_main"),
        &["early_main.c"],
        &["-L", dir, "-Wl,--no-as-needed", "-learly", &rpath],
    )
    .expect("compiled above");
    let needed = run(Command::new("readelf").arg("-d").arg(&main));
    assert!(
        text(&needed.stdout).contains("[libearly.so]"),
        "not a DT_NEEDED"
    );

    let data = ScratchDir::tmpfs("safety-early-data");
    let src = data.path().join("src");
    let content = write_pattern(&src, 300_000, 5);
    let early = data.path().join("early");
    let early_sys = data.path().join("early.sys");
    let late = data.path().join("late");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let envs = |mode: &'static str| {
        vec![
            ("EARLY_SRC", s(&src)),
            ("EARLY_DST", s(&early)),
            ("CFRFIX_MODE", mode.to_string()),
        ]
    };
    let run_main = |mode: &'static str| {
        let envs = envs(mode);
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let output = run(&mut command(
            FALLBACK,
            &envs,
            main.to_str().expect("utf-8"),
            &[&s(&src), &s(&late)],
        ));
        assert!(output.status.success(), "{}", describe(&output));
        text(&output.stdout)
    };
    // Our constructor has not run yet when libearly's does: the built-in defaults (auto) apply
    // then, even though CFRFIX_MODE=off applies from main() on. Proves both the order and that
    // early calls work.
    let out = run_main("off");
    assert_eq!(
        out,
        "early libc ret=300000 errno=0\nearly syscall ret=300000 errno=0\nmain ret=-1 errno=95\n"
    );
    assert_same_file(&early, &content);
    assert_same_file(&early_sys, &content);
    let out = run_main("auto");
    assert!(out.ends_with("main ret=300000 errno=0\n"), "{out}");
    assert_same_file(&late, &content);
    figure(
        "early constructor: copy_file_range and syscall(SYS_copy_file_range) before our constructor both fell back correctly",
    );
}

// ---------------------------------------------------------------------------------------------
// Old systems

#[test]
fn abi_needs_glibc_2_17_and_only_libc() {
    if !have_command("objdump") || !have_command("readelf") {
        return skip("binutils (objdump, readelf) not installed");
    }
    let script = Path::new(MANIFEST_DIR).join("scripts/check-abi");
    let output = run(Command::new(&script).arg(common::cdylib()));
    assert!(output.status.success(), "{}", describe(&output));
    figure(text(&output.stdout).trim());
    // The checker itself must be able to fail: a library needing copy_file_range@GLIBC_2.27.
    let bin = ScratchDir::tmpfs("safety-abi");
    let lib = bin.path().join("libearly.so");
    if compile(&lib, &["early_lib.c"], &["-shared", "-fPIC"]).is_some() {
        let bad = run(Command::new(&script).arg(&lib));
        assert!(
            !bad.status.success(),
            "check-abi accepted {}",
            lib.display()
        );
        assert!(
            text(&bad.stderr).contains("GLIBC_2.27"),
            "{}",
            describe(&bad)
        );
    }
    // ...and a library with a reachable panic, i.e. an abort() import.
    let lib = bin.path().join("libpanicking.so");
    if compile(&lib, &["panicking_lib.c"], &["-shared", "-fPIC"]).is_some() {
        let bad = run(Command::new(&script).arg(&lib));
        assert!(
            !bad.status.success() && text(&bad.stderr).contains("imports abort"),
            "{}",
            describe(&bad)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// valgrind

#[test]
fn valgrind_memcheck_over_every_engine() {
    if !have_command("valgrind") {
        return skip("valgrind not installed (.ci/run installs it)");
    }
    let configs: [(&str, &str, &str, Option<u16>); 5] = [
        ("auto", "auto", "engine sendfile", None),
        ("splice", "auto", "engine splice", None),
        ("rw", "auto", "engine rw", None),
        ("auto", "off", "engine sendfile", None),
        ("rw", "off", "engine rw", Some(ENOSYS)),
    ];
    let handles: Vec<_> = configs
        .into_iter()
        .map(|(engine, sparse, expect_engine, deny_vm)| {
            std::thread::spawn(move || {
                let dir = ScratchDir::tmpfs("safety-valgrind");
                let log = dir.path().join("cfrfix.log");
                let log_s = log.to_str().expect("utf-8").to_string();
                let work = dir.path().join("work");
                fs::create_dir(&work).expect("mkdir");
                let work_s = work.to_str().expect("utf-8");
                let envs = [
                    ("CFRFIX_ENGINE", engine),
                    ("CFRFIX_SPARSE", sparse),
                    ("CFRFIX_LOG", log_s.as_str()),
                ];
                let setup = Setup::Shim {
                    errno: ENOSYS,
                    deny_vm,
                };
                let output = run_within(
                    &mut command(
                        setup,
                        &envs,
                        "valgrind",
                        &[
                            "--error-exitcode=99",
                            "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect",
                            STRESS,
                            "workload",
                            work_s,
                        ],
                    ),
                    Duration::from_secs(120),
                    None,
                );
                let stderr = text(&output.stderr);
                let name = format!("engine={engine} sparse={sparse} deny_vm={deny_vm:?}");
                assert!(
                    output.status.success() && text(&output.stdout).starts_with("workload ok"),
                    "{name}: {}",
                    describe(&output)
                );
                assert!(
                    stderr.contains("ERROR SUMMARY: 0 errors"),
                    "{name}: {stderr}"
                );
                let logged = fs::read_to_string(&log).unwrap_or_default();
                assert!(
                    logged.contains(expect_engine),
                    "{name}: the log shows no {expect_engine}:\n{logged}"
                );
                let leaks: Vec<String> = stderr
                    .lines()
                    .filter(|l| {
                        l.contains("definitely lost")
                            || l.contains("indirectly lost")
                            || l.contains("All heap blocks were freed")
                            || l.contains("ERROR SUMMARY")
                    })
                    .map(|l| l.split("== ").nth(1).unwrap_or(l).trim().to_string())
                    .collect();
                format!(
                    "{name}: {} | {}",
                    text(&output.stdout).trim(),
                    leaks.join("; ")
                )
            })
        })
        .collect();
    for h in handles {
        match h.join() {
            Ok(line) => figure(&format!("valgrind {line}")),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}

//! Differential test: the shim must be indistinguishable from the kernel.
//!
//! Every case (see `drivers/probe/main.rs` for the format) is run once natively on tmpfs,
//! where the kernel's own copy_file_range works, and then under `cfrfix-inject ERRNO` with
//! `LD_PRELOAD=libcfrfix.so` for every "unsupported" errno and every entry point. The kernel
//! now refuses every call, so each result line (return value, errno, positions, offsets,
//! bytes, SIGXFSZ count) comes from the shim's emulation and must equal the native line.

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Rng, ScratchDir};

/// The errnos the shim treats as "the kernel cannot do it": EOPNOTSUPP, ENOTSUPP, EXDEV,
/// ENOSYS, EPERM, EIO.
const INJECTED_ERRNOS: [u32; 6] = [95, 524, 18, 38, 1, 5];
/// glibc's symbol, the variadic `syscall()` (libuv), `dlsym(RTLD_DEFAULT)` (Java NIO).
const ENTRY_POINTS: [&str; 3] = ["libc", "syscall", "dlsym"];
/// Fixed so that every run generates the same cases.
const CASE_SEED: u64 = 0x00c0_ffee_cf12_f1c5;
const RANDOM_CASES: usize = 700;
/// One probe run over the whole case set takes well under a second; this is for a hang.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// How many mismatching cases a failure prints in full.
const MISMATCHES_SHOWN: usize = 20;

const MAX_RW_COUNT: u64 = 0x7fff_f000;
const I64_MAX: u64 = i64::MAX as u64;

// ---------------------------------------------------------------------------------------
// Case generation

/// Lengths that hit the kernel's clamps and overflow checks.
const EDGE_LENS: [u64; 13] = [
    0,
    1,
    7,
    4096,
    65536,
    0x7fff_ffff,
    MAX_RW_COUNT,
    MAX_RW_COUNT + 1,
    0xffff_ffff,
    I64_MAX,
    I64_MAX + 1,
    u64::MAX - 1,
    u64::MAX,
];

/// Offsets (as the probe's number syntax) relative to a source of `size` bytes: inside,
/// at and past EOF, negative, near i64::MAX and near the u64 wrap.
fn edge_offsets(size: u64) -> Vec<String> {
    let mut offsets: Vec<String> = [0, 1, size / 2, size.saturating_sub(1), size, size + 1]
        .iter()
        .map(u64::to_string)
        .collect();
    offsets.extend(
        [
            "4096",
            "1099511627776", // 2^40, far past EOF
            "-1",
            "-5",
            "-4096",
            "0x7ffff000",
            "0x7fffffffffffff00",
            "0x7ffffffffffffffe",
            "0x7fffffffffffffff",
            "0x8000000000000000", // i64::MIN
            "0xffffffffffffff9c", // -100: u64::MAX - 99
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    offsets
}

fn explicit_cases() -> Vec<String> {
    let mut cases = Vec::new();
    let src_size = 5000u64;

    // Length sweep against NULL and explicit offsets, with source positions.
    for (index, len) in EDGE_LENS.iter().enumerate() {
        for offsets in [
            "",
            "off_in=0 off_out=0",
            "off_in=1 off_out=7",
            "off_in=4999 off_out=null",
            "off_in=5000",
            "off_in=null off_out=0x7ffffffffffffff0",
            "off_out=0x7fffffffffffffff",
        ] {
            let dst_size = [0, 100, 9000][index % 3];
            let case = format!("src_size={src_size} dst_size={dst_size} len={len} {offsets}");
            cases.push(format!("{} seed={index}", case.trim_end()));
        }
        cases.push(format!("src_size={src_size} src_pos=1 len={len} seed=1"));
        cases.push(format!(
            "src_size={src_size} src_pos=6000 dst_pos=3 len={len}"
        ));
        cases.push(format!("src_size=0 len={len}"));
    }

    // Offset sweep, each side separately, with a length that matters for overflow.
    for offset in edge_offsets(src_size) {
        for len in [0, 10, 4096, u64::MAX] {
            cases.push(format!(
                "src_size={src_size} dst_size=200 off_in={offset} len={len} seed=2"
            ));
            cases.push(format!(
                "src_size={src_size} dst_size=200 off_out={offset} len={len} seed=3"
            ));
        }
        cases.push(format!(
            "src_size={src_size} src_pos={offset} dst_pos={offset} len=100"
        ));
    }

    // Destination content smaller, equal, larger than what is copied.
    for dst_size in [0, 1, 2500, 5000, 20000] {
        for dst_pos in [0, 100, 30000] {
            cases.push(format!(
                "src_size={src_size} dst_size={dst_size} dst_pos={dst_pos} len=3000 seed=4"
            ));
        }
    }

    // The same file: one fd, two fds of one path, a hard link. Overlapping ranges are
    // EINVAL, but only after the EOF clamp; non-overlapping ones copy.
    for dst in ["samefd", "samepath", "hardlink"] {
        for (off_in, off_out, len) in [
            (0, 0, 10),
            (0, 5, 10),
            (5, 0, 10),
            (0, 10, 10),
            (10, 0, 10),
            (0, 4000, 1000),
            (0, 4000, 1001),
            (4000, 0, 1000),
            (4000, 0, 5000),  // the source range is clamped at EOF to 1000 bytes
            (4990, 0, 9999),  // clamped to 10 bytes: no overlap
            (0, 4990, 9999),  // overlaps after the clamp
            (0, 5000, 5000),  // appends the file to itself
            (0, 6000, 5000),  // leaves a hole
            (100, 100, 0),    // len 0 with identical ranges
            (5000, 0, 100),   // at EOF: count clamped to 0
            (0, 0, u64::MAX), // overflow check before the overlap check
        ] {
            for mode in ["rw", "wo"] {
                cases.push(format!(
                    "src_size={src_size} src_mode=rw dst={dst} dst_mode={mode} off_in={off_in} off_out={off_out} len={len} seed=5"
                ));
            }
            cases.push(format!(
                "src_size={src_size} src_mode=rw dst={dst} dst_mode=rw src_pos={off_in} dst_pos={off_out} len={len} seed=6"
            ));
        }
        cases.push(format!(
            "src_size={src_size} src_mode=ro dst={dst} dst_mode=rw len=10"
        ));
        cases.push(format!(
            "src_size={src_size} src_mode=rw dst={dst} dst_mode=append off_in=0 off_out=6000 len=10"
        ));
        cases.push(format!(
            "src_size={src_size} src_mode=rw dst={dst} off_in=0 off_out=alias len=10"
        ));
        cases.push(format!(
            "src_size={src_size} src_mode=rw dst={dst} dst_mode=rw off_in=0 off_out=alias len=0"
        ));
    }

    // Open modes of both ends, with len 0 (checks still apply) and a real copy.
    for src_mode in ["ro", "wo", "rw", "append", "rwappend", "path"] {
        for dst_mode in ["wo", "rw", "ro", "append", "rwappend", "path"] {
            for len in [0, 100] {
                cases.push(format!(
                    "src_size=300 dst_size=50 src_mode={src_mode} dst_mode={dst_mode} len={len} seed=7"
                ));
            }
        }
    }

    // Descriptor kinds: EBADF before EISDIR before EINVAL, for every pairing.
    let kinds = ["file", "dir", "pipe", "devnull", "minus1", "closed"];
    for src in kinds {
        for dst in kinds {
            for len in [0, 10] {
                cases.push(format!(
                    "src={src} src_size=100 dst={dst} dst_mode=rw len={len} seed=8"
                ));
            }
            cases.push(format!(
                "src={src} src_size=100 dst={dst} len=10 off_in=fault"
            ));
        }
        cases.push(format!("src={src} src_size=100 dst=samefd len=10"));
    }
    for mode in ["ro", "wo", "path"] {
        cases.push(format!("src=devnull src_mode={mode} dst_mode=rw len=10"));
        cases.push(format!("dst=devnull src_size=10 dst_mode={mode} len=10"));
    }

    // RLIMIT_FSIZE below, at and above pos_out, with len 0 and at EOF: SIGXFSZ and EFBIG
    // even when nothing would be copied.
    for pos_out in [0u64, 49, 50, 51, 100] {
        for len in [0, 1, 10, 1000] {
            cases.push(format!(
                "src_size=1000 dst_size=20 off_out={pos_out} len={len} fsize=50 seed=9"
            ));
            cases.push(format!(
                "src_size=1000 dst_size=20 dst_pos={pos_out} len={len} fsize=50 seed=9"
            ));
        }
        cases.push(format!(
            "src_size=1000 off_in=1000 off_out={pos_out} len=10 fsize=50"
        ));
        cases.push(format!("src_size=1000 off_out={pos_out} len=10 fsize=0"));
        cases.push(format!(
            "src_size=1000 off_out={pos_out} len=10 fsize=50 flags=1"
        ));
        cases.push(format!(
            "src_size=1000 dst_mode=append off_out={pos_out} len=10 fsize=50"
        ));
    }
    cases.push("src_size=1000 off_out=0x7fffffffffffff00 len=1000 fsize=0x7fffffffffffff10".into());

    // Offset pointers: unreadable (EFAULT first, even before the flags check, but after
    // EBADF), read-only (the copy happens, then the write-back fails with EFAULT), aliased.
    for bad in ["fault", "lowaddr"] {
        for other in ["null", "0", "fault", "ro:0"] {
            cases.push(format!("src_size=1000 off_in={bad} off_out={other} len=10"));
            cases.push(format!("src_size=1000 off_in={other} off_out={bad} len=10"));
        }
        cases.push(format!("src_size=1000 off_in={bad} len=10 flags=1"));
        cases.push(format!("src=minus1 off_in={bad} len=10"));
        cases.push(format!("src=dir off_in={bad} len=10"));
        cases.push(format!("src_size=1000 off_out={bad} len=0"));
    }
    for (off_in, off_out) in [
        ("ro:0", "null"),
        ("ro:10", "20"),
        ("null", "ro:0"),
        ("10", "ro:20"),
        ("ro:1", "ro:2"),
        ("ro:1000", "0"),
        ("ro:0", "ro:0"),
        ("ro:-1", "0"),
        ("ro:0", "alias"),
    ] {
        for len in [0, 100] {
            cases.push(format!(
                "src_size=1000 dst_size=10 src_pos=3 dst_pos=4 off_in={off_in} off_out={off_out} len={len} seed=10"
            ));
        }
    }
    cases.push("src_size=1000 dst=samefd src_mode=rw off_in=ro:0 off_out=500 len=100".into());
    // Variables that straddle a page boundary: a partly unreadable one is EFAULT up front; a
    // readable one whose second half is read-only gets the copy, a partial write-back (the
    // kernel stores the bytes up to the boundary) and EFAULT.
    for (off_in, off_out) in [
        ("splitfault", "null"),
        ("null", "splitfault"),
        ("splitro:10", "null"),
        ("null", "splitro:20"),
        ("splitro:10", "splitro:20"),
        ("splitro:0x1234567f", "0"),
        ("splitro:0xfffffff0", "0"),
        ("splitro:5", "alias"),
        ("fault", "alias"),
        ("splitfault", "alias"),
    ] {
        for len in [0, 100, 300_000] {
            cases.push(format!(
                "src_size=300000 src_trunc=0x200000000 off_in={off_in} off_out={off_out} len={len} seed=15"
            ));
        }
    }
    cases.push("src_size=1000 off_in=5 off_out=alias len=100".into());

    // Inode flags: an immutable destination is EPERM even for len 0 (write(2) through a
    // descriptor opened before `chattr +i` would succeed); append-only inodes and an
    // immutable source do not matter.
    for (src_attr, dst_attr) in [
        ("none", "immutable"),
        ("none", "appendonly"),
        ("immutable", "none"),
        ("appendonly", "none"),
    ] {
        for len in [0, 100] {
            for extra in [
                "",
                "dst_mode=rw",
                "off_out=ro:0",
                "fsize=10 dst_pos=10",
                "flags=1",
                "src=dir",
                "dst_mode=append",
                "src_mode=wo",
                "off_in=-5 len=3",
            ] {
                let case = format!(
                    "src_size=1000 len={len} src_attr={src_attr} dst_attr={dst_attr} {extra}"
                );
                cases.push(case.trim_end().to_string());
            }
            for dst in ["samefd", "samepath", "hardlink"] {
                cases.push(format!(
                    "src_size=1000 src_mode=rw dst={dst} dst_mode=rw off_in=0 off_out=2000 len={len} src_attr={src_attr} dst_attr={dst_attr}"
                ));
            }
        }
    }

    // Flags: anything non-zero is EINVAL, after EBADF and EFAULT but before EISDIR.
    for flags in [1u64, 2, 0x8000_0000, 0xffff_ffff] {
        cases.push(format!("src_size=100 len=10 flags={flags}"));
        cases.push(format!("src_size=100 len=0 flags={flags}"));
        cases.push(format!("src=dir len=10 flags={flags}"));
        cases.push(format!("src=minus1 len=10 flags={flags}"));
        cases.push(format!("src=pipe src_size=100 len=10 flags={flags}"));
    }

    // Huge sparse files and offsets near s_maxbytes (i64::MAX on tmpfs): EOF clamps far
    // from zero, EFBIG at pos_out == i64::MAX even for len 0.
    for len in [0, 1, 4096, MAX_RW_COUNT + 1, I64_MAX, u64::MAX] {
        cases.push(format!(
            "src_size=3000 src_trunc=0x100001000 off_in=0x100000000 len={len} seed=11"
        ));
        cases.push(format!(
            "src_size=3000 src_trunc=0x100001000 src_pos=0xfffff000 len={len} seed=11"
        ));
        cases.push(format!(
            "src_size=3000 off_out=0x7fffffffffffffff len={len}"
        ));
        cases.push(format!(
            "src_size=3000 dst_pos=0x7ffffffffffff000 len={len}"
        ));
        cases.push(format!(
            "src_size=3000 dst_size=10 dst_trunc=0x7fffffffffffff00 off_out=0x7ffffffffffffe00 len={len}"
        ));
    }
    cases.push("src_size=0 src_trunc=0x7fffffffffffffff off_in=0x7ffffffffffff000 len=100".into());

    // Large sources: the copy is clamped at EOF (and would be at MAX_RW_COUNT).
    for len in [MAX_RW_COUNT, MAX_RW_COUNT + 1, I64_MAX + 1, u64::MAX] {
        cases.push(format!("src_size=300000 dst_size=400000 len={len} seed=12"));
        cases.push(format!(
            "src_size=300000 src_pos=123 dst_pos=77 len={len} seed=13"
        ));
    }
    cases.push("src_size=300000 off_in=1 off_out=3 len=250000 seed=14".into());

    // The Rust std availability probe.
    cases.push("src=minus1 dst=minus1 len=1".into());
    cases
}

fn random_offset(rng: &mut Rng, size: u64) -> String {
    match rng.below(10) {
        0..=3 => "null".into(),
        4..=6 => rng.below(size + 2000).to_string(),
        7 => rng.pick(&edge_offsets(size)).clone(),
        8 => match rng.below(4) {
            0 => format!("splitro:{}", rng.below(size + 100)),
            _ => format!("ro:{}", rng.below(size + 100)),
        },
        _ => rng.below(200).to_string(),
    }
}

fn random_case(rng: &mut Rng) -> String {
    let src_size = match rng.below(4) {
        0 => rng.below(100),
        1 => rng.below(10_000),
        2 => rng.below(100_000),
        _ => rng.below(400_000),
    };
    let len = match rng.below(8) {
        0 => *rng.pick(&EDGE_LENS),
        1 => rng.below(100),
        2..=5 => rng.below(src_size + 5000),
        _ => rng.below(500_000),
    };
    let mut case = format!(
        "src_size={src_size} len={len} seed={} off_in={} off_out={}",
        rng.next(),
        random_offset(rng, src_size),
        random_offset(rng, src_size)
    );
    let mut add = |text: String| {
        case.push(' ');
        case.push_str(&text);
    };
    if rng.chance(50) {
        add(format!("src_pos={}", rng.below(src_size + 1000)));
    }
    if rng.chance(50) {
        add(format!("dst_pos={}", rng.below(src_size + 1000)));
    }
    if rng.chance(15) {
        let dst = *rng.pick(&["samefd", "samepath", "hardlink"]);
        add(format!("dst={dst} src_mode=rw"));
    } else {
        add(format!("dst_size={}", rng.below(src_size * 2 + 10)));
    }
    if rng.chance(15) {
        add(format!("src_mode={}", rng.pick(&["wo", "rw", "path"])));
    }
    if rng.chance(15) {
        add(format!(
            "dst_mode={}",
            rng.pick(&["rw", "ro", "append", "path"])
        ));
    }
    if rng.chance(10) {
        add(format!("fsize={}", rng.below(src_size + 1000)));
    }
    if rng.chance(5) {
        add(format!("flags={}", rng.below(4)));
    }
    if rng.chance(3) {
        add("dst_attr=immutable".into());
    }
    case
}

/// The full, deterministic case list (without the `entry=` key, which each run adds).
fn cases() -> &'static [String] {
    static CASES: OnceLock<Vec<String>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut cases = explicit_cases();
        let mut rng = Rng(CASE_SEED);
        cases.extend((0..RANDOM_CASES).map(|_| random_case(&mut rng)));
        cases
    })
}

// ---------------------------------------------------------------------------------------
// Running the probe

/// How a probe process is started.
#[derive(Clone, Copy)]
enum Setup<'a> {
    Native,
    /// Under `cfrfix-inject ERRNO`, with or without the preloaded shim, with extra
    /// environment variables (`CFRFIX_ENGINE`, `CFRFIX_SPARSE`) for the probe.
    Injected {
        errno: u32,
        shim: bool,
        env: &'a [(&'a str, &'a str)],
    },
}

struct ProbeRun {
    lines: Vec<String>,
    /// Exit status and stderr, for explaining missing lines.
    failure: Option<String>,
}

fn run_probe(setup: Setup<'_>, entry: &str, cases: &[String]) -> ProbeRun {
    let scratch = ScratchDir::tmpfs("differential");
    let probe = env!("CARGO_BIN_EXE_cfrfix-probe");
    let mut command = match setup {
        Setup::Native => Command::new(probe),
        Setup::Injected { errno, shim, env } => {
            let mut command = Command::new(env!("CARGO_BIN_EXE_cfrfix-inject"));
            command.arg(errno.to_string()).arg("env");
            if shim {
                command.arg(format!("LD_PRELOAD={}", common::cdylib().display()));
            }
            for (key, value) in env {
                command.arg(format!("{key}={value}"));
            }
            command.arg(probe);
            command
        }
    };
    command
        .arg(scratch.path())
        .env_remove("LD_PRELOAD")
        // Only what a test asks for: a CFRFIX_* setting inherited from the shell running
        // `cargo test` would silently change what is being compared.
        .env_remove("CFRFIX_ENGINE")
        .env_remove("CFRFIX_SPARSE")
        .env_remove("CFRFIX_MODE")
        .env_remove("CFRFIX_ERRNOS")
        .env_remove("CFRFIX_LOG");
    let input: String = cases
        .iter()
        .map(|case| format!("entry={entry} {case}\n"))
        .collect();
    // With a deadline: a hung probe, e.g. an engine looping on a pipe, must fail the test
    // instead of stalling CI. A probe that dies early shows up as missing lines below.
    let output = common::output_within(&mut command, PROBE_TIMEOUT, Some(input))
        .expect("spawn cfrfix-probe")
        .unwrap_or_else(|| {
            panic!(
                "cfrfix-probe ({entry}, {} cases) still running after {PROBE_TIMEOUT:?}, killed",
                cases.len()
            )
        });
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let failure = (!output.status.success() || lines.len() != cases.len()).then(|| {
        format!(
            "probe {}, {} of {} result lines; stderr: {}",
            output.status,
            lines.len(),
            cases.len(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    });
    ProbeRun { lines, failure }
}

/// The kernel's answers, computed once and shared by all tests.
fn native_results() -> &'static [String] {
    static NATIVE: OnceLock<Vec<String>> = OnceLock::new();
    NATIVE.get_or_init(|| {
        let run = run_probe(Setup::Native, "libc", cases());
        assert!(run.failure.is_none(), "native run: {:?}", run.failure);
        run.lines
    })
}

/// `key=value` fields of two result lines that differ, e.g. `errno: 22 → 0`.
fn field_differences(native: &str, shim: &str) -> String {
    let shim_fields: Vec<&str> = shim.split_whitespace().collect();
    native
        .split_whitespace()
        .enumerate()
        .filter(|(i, field)| shim_fields.get(*i) != Some(field))
        .map(|(i, field)| {
            let (key, native_value) = field.split_once('=').unwrap_or((field, ""));
            let shim_value = shim_fields
                .get(i)
                .map(|f| f.split_once('=').map_or(*f, |(_, v)| v))
                .unwrap_or("<missing>");
            format!("{key}: {native_value} → {shim_value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs every case under each entry point with `errno` injected and the shim preloaded;
/// panics with a readable report if any result line differs from the native one.
fn assert_shim_matches_kernel(errno: u32) {
    assert_shim_matches_kernel_with(errno, &[]);
}

/// As `assert_shim_matches_kernel`, with `CFRFIX_*` settings in the probe's environment.
fn assert_shim_matches_kernel_with(errno: u32, env: &[(&str, &str)]) {
    let native = native_results();
    let mut report = String::new();
    let mut shown = 0;
    let mut total_mismatches = 0;
    for entry in ENTRY_POINTS {
        let run = run_probe(
            Setup::Injected {
                errno,
                shim: true,
                env,
            },
            entry,
            cases(),
        );
        let mismatches: Vec<usize> = (0..cases().len())
            .filter(|&i| run.lines.get(i) != Some(&native[i]))
            .collect();
        if mismatches.is_empty() {
            continue;
        }
        total_mismatches += mismatches.len();
        report += &format!(
            "\n=== errno {errno}, entry {entry}, env {env:?}: {} of {} cases differ{}\n",
            mismatches.len(),
            cases().len(),
            run.failure
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        );
        for &i in mismatches
            .iter()
            .take(MISMATCHES_SHOWN.saturating_sub(shown))
        {
            let shim_line = run
                .lines
                .get(i)
                .map_or("<no result: probe died>", String::as_str);
            report += &format!(
                "case #{i}: entry={entry} {}\n  native: {}\n  shim:   {}\n  differs: {}\n",
                cases()[i],
                native[i],
                shim_line,
                field_differences(&native[i], shim_line)
            );
            shown += 1;
        }
    }
    assert!(
        total_mismatches == 0,
        "shim differs from the kernel in {total_mismatches} case runs (first {shown} shown):{report}"
    );
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn native_results_are_deterministic_and_the_same_for_every_entry_point() {
    let native = native_results();
    assert!(cases().len() >= 300, "only {} cases", cases().len());
    println!(
        "FIGURES: {} cases ({} explicit, {RANDOM_CASES} generated), each through {} entry points",
        cases().len(),
        cases().len() - RANDOM_CASES,
        ENTRY_POINTS.len()
    );
    if let Some((i, line)) = native
        .iter()
        .enumerate()
        .find(|(_, l)| l.starts_with("error="))
    {
        panic!("case #{i} does not parse: {} → {line}", cases()[i]);
    }
    for entry in ENTRY_POINTS {
        let run = run_probe(Setup::Native, entry, cases());
        assert!(run.failure.is_none(), "native {entry}: {:?}", run.failure);
        for (i, (first, again)) in native.iter().zip(&run.lines).enumerate() {
            assert_eq!(
                first,
                again,
                "native case #{i} (entry={entry} {}) changed between runs",
                cases()[i]
            );
        }
    }
}

/// Pins the kernel behaviour the case list relies on, so a probe bug that turned every
/// case into the same early error could not make the differential tests pass vacuously.
#[test]
fn native_results_cover_successes_and_each_kind_of_failure() {
    let native = native_results();
    let copied = native
        .iter()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|r| r != "ret=-1" && r != "ret=0")
        })
        .count();
    assert!(copied >= 150, "only {copied} cases copied data");
    for (errno, name) in [
        (9, "EBADF"),
        (14, "EFAULT"),
        (21, "EISDIR"),
        (22, "EINVAL"),
        (27, "EFBIG"),
        (75, "EOVERFLOW"),
    ] {
        let needle = format!(" errno={errno} ");
        assert!(
            native.iter().any(|l| l.contains(&needle)),
            "no case produced {name}"
        );
    }
    assert!(
        native.iter().any(|l| l.ends_with(" xfsz=1")),
        "no case raised SIGXFSZ"
    );
}

/// Kernel behaviour that surprises and that the shim must reproduce, stated explicitly.
#[test]
fn native_kernel_quirks() {
    let one = |case: &str| {
        let run = run_probe(Setup::Native, "libc", &[case.to_string()]);
        assert!(run.failure.is_none(), "{case}: {:?}", run.failure);
        run.lines[0].clone()
    };
    // A read-only off_out: the bytes are copied, off_in is written back, then EFAULT.
    let line = one("src_size=1000 off_in=10 off_out=ro:5 len=100");
    assert!(
        line.starts_with("ret=-1 errno=14 pos_in=0 pos_out=0 off_in=110 off_out=5 dst=105:"),
        "{line}"
    );
    // A read-only off_in with a NULL off_out: EFAULT, yet the destination position moved.
    let line = one("src_size=1000 off_in=ro:10 len=100");
    assert!(
        line.starts_with("ret=-1 errno=14 pos_in=0 pos_out=100 off_in=10 off_out=null dst=100:"),
        "{line}"
    );
    // RLIMIT_FSIZE applies even to len 0: EFBIG plus one SIGXFSZ.
    let line = one("src_size=1000 off_out=50 len=0 fsize=50");
    assert!(
        line.starts_with("ret=-1 errno=27 ") && line.ends_with(" xfsz=1"),
        "{line}"
    );
    // Below the limit the count is clamped to it, without a signal.
    let line = one("src_size=1000 off_out=45 len=100 fsize=50");
    assert!(
        line.starts_with("ret=5 errno=0 ") && line.ends_with(" xfsz=0"),
        "{line}"
    );
    // An unreadable offset pointer beats a bad flags value.
    let line = one("src_size=1000 off_in=fault len=10 flags=1");
    assert!(line.starts_with("ret=-1 errno=14 "), "{line}");
    // The same pointer for both offsets: the off_out write-back wins.
    let line = one("src_size=1000 off_in=3 off_out=alias len=5");
    assert!(
        line.starts_with("ret=5 errno=0 pos_in=0 pos_out=0 off_in=8 off_out=8 dst=8:"),
        "{line}"
    );
    // Writes are clamped at s_maxbytes (i64::MAX on tmpfs); at it, EFBIG even for len 0.
    let line = one("src_size=1000 off_out=0x7ffffffffffffff0 len=100");
    assert!(line.starts_with("ret=15 errno=0 "), "{line}");
    let line = one("src_size=1000 off_out=0x7fffffffffffffff len=0");
    assert!(
        line.starts_with("ret=-1 errno=27 ") && line.ends_with(" xfsz=0"),
        "{line}"
    );
    // An immutable destination is EPERM even for len 0, although write(2) would work.
    let line = one("src_size=1000 len=0 dst_attr=immutable");
    assert!(line.starts_with("ret=-1 errno=1 "), "{line}");
    // An off_out whose second half is read-only: copied, the low 4 bytes of the new value
    // written back, EFAULT. 0x1_0000_0010 + 100 = 0x1_0000_0074; the high half stays 1.
    let line = one("src_size=1000 off_out=splitro:0x100000010 len=100");
    let expected = format!(" off_out={} ", 0x1_0000_0074u64);
    assert!(
        line.starts_with("ret=-1 errno=14 ") && line.contains(&expected),
        "{line}"
    );
}

#[test]
fn injected_errno_reaches_callers_without_the_shim() {
    let case = "src_size=4096 len=4096".to_string();
    for entry in ENTRY_POINTS {
        let native = run_probe(Setup::Native, entry, std::slice::from_ref(&case));
        assert!(
            native.lines[0].starts_with("ret=4096 errno=0 "),
            "{entry}: {}",
            native.lines[0]
        );
        let injected = run_probe(
            Setup::Injected {
                errno: 95,
                shim: false,
                env: &[],
            },
            entry,
            std::slice::from_ref(&case),
        );
        assert!(
            injected.failure.is_none(),
            "{entry}: {:?}",
            injected.failure
        );
        assert!(
            injected.lines[0].starts_with("ret=-1 errno=95 pos_in=0 pos_out=0 "),
            "{entry}: {}",
            injected.lines[0]
        );
    }
}

/// Rust std probes availability with copy_file_range(-1, NULL, -1, NULL, 1, 0) and only
/// uses it if that fails with EBADF.
#[test]
fn shim_reports_ebadf_for_fd_minus_one_under_enosys() {
    let case = "src=minus1 dst=minus1 len=1".to_string();
    for entry in ENTRY_POINTS {
        let run = run_probe(
            Setup::Injected {
                errno: 38,
                shim: true,
                env: &[],
            },
            entry,
            std::slice::from_ref(&case),
        );
        assert!(run.failure.is_none(), "{entry}: {:?}", run.failure);
        assert!(
            run.lines[0].starts_with("ret=-1 errno=9 "),
            "{entry}: {}",
            run.lines[0]
        );
    }
}

#[test]
fn shim_matches_kernel_under_eopnotsupp() {
    assert_shim_matches_kernel(INJECTED_ERRNOS[0]);
}

#[test]
fn shim_matches_kernel_under_enotsupp() {
    assert_shim_matches_kernel(INJECTED_ERRNOS[1]);
}

#[test]
fn shim_matches_kernel_under_exdev() {
    assert_shim_matches_kernel(INJECTED_ERRNOS[2]);
}

#[test]
fn shim_matches_kernel_under_enosys() {
    assert_shim_matches_kernel(INJECTED_ERRNOS[3]);
}

#[test]
fn shim_matches_kernel_under_eperm() {
    assert_shim_matches_kernel(INJECTED_ERRNOS[4]);
}

#[test]
fn shim_matches_kernel_under_eio() {
    assert_shim_matches_kernel(INJECTED_ERRNOS[5]);
}

// Every engine must keep the kernel's semantics (issue 3). On tmpfs the default engine is
// splice, so the runs above exercise it; these force each engine, and switch hole skipping
// off, each under a different injected errno so that the engines also meet different
// refusals. The whole case set and every entry point, as above.

#[test]
fn shim_matches_kernel_with_engine_splice() {
    assert_shim_matches_kernel_with(INJECTED_ERRNOS[0], &[("CFRFIX_ENGINE", "splice")]);
}

#[test]
fn shim_matches_kernel_with_engine_rw() {
    assert_shim_matches_kernel_with(INJECTED_ERRNOS[2], &[("CFRFIX_ENGINE", "rw")]);
}

#[test]
fn shim_matches_kernel_with_sparse_off() {
    assert_shim_matches_kernel_with(
        INJECTED_ERRNOS[3],
        &[("CFRFIX_ENGINE", "auto"), ("CFRFIX_SPARSE", "off")],
    );
}

/// The engine tests above only mean something if the setting reaches the library and
/// changes the engine it uses: read the fallback log of one probe case under each setting.
#[test]
fn engine_settings_reach_the_library() {
    let scratch = ScratchDir::tmpfs("differential-engine-log");
    for (engine, expected) in [
        (
            "splice",
            "(engine splice; read 100000, wrote 100000, left 0 as holes)",
        ),
        (
            "rw",
            "(engine rw; read 100000, wrote 100000, left 0 as holes)",
        ),
        (
            "auto",
            "(engine sendfile; read 100000, wrote 100000, left 0 as holes)",
        ),
    ] {
        let log = scratch.path().join(format!("log-{engine}"));
        let log_setting = log.display().to_string();
        let env = [
            ("CFRFIX_ENGINE", engine),
            ("CFRFIX_LOG", log_setting.as_str()),
        ];
        let case = "src_size=100000 len=100000".to_string();
        let run = run_probe(
            Setup::Injected {
                errno: 95,
                shim: true,
                env: &env,
            },
            "libc",
            std::slice::from_ref(&case),
        );
        assert!(run.failure.is_none(), "{engine}: {:?}", run.failure);
        assert!(
            run.lines[0].starts_with("ret=100000 errno=0 "),
            "{engine}: {}",
            run.lines[0]
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.lines().count() == 1
                && text.contains("kernel said EOPNOTSUPP; copied 100000 bytes")
                && text.trim_end().ends_with(expected),
            "CFRFIX_ENGINE={engine}: expected one line ending in {expected:?}, log: {text:?}"
        );
    }
}

//! The differential suite in a 32-bit process: the i686 probe natively (the kernel's answers
//! to a 32-bit caller: 32-bit `size_t` lengths, descriptors without `O_LARGEFILE`) vs the same
//! probe through the i686 library, with every call refused by the kernel (`cfrfix-inject`, whose
//! filter matches AUDIT_ARCH_I386 and number 377), through every entry point.

use std::path::Path;
use std::sync::OnceLock;

use crate::probe::cases::cases;
use crate::probe::{self, Comparison, ENTRY_POINTS, Launch};
use crate::targets::{self, Build, I686};

/// EOPNOTSUPP, ENOTSUPP, EXDEV, ENOSYS, EPERM, EIO: as in tests/differential.rs.
const INJECTED_ERRNOS: [u32; 6] = [95, 524, 18, 38, 1, 5];

/// `MAX_NON_LFS`: the last byte a descriptor without `O_LARGEFILE` may write is before it.
const MAX_NON_LFS: u64 = 0x7fff_ffff;
/// A source that grows past 2 GiB under a descriptor opened without `O_LARGEFILE`.
const GROWN: u64 = MAX_NON_LFS + 1 + 8192;

/// Descriptors opened as a 32-bit program built without `_FILE_OFFSET_BITS=64` opens them,
/// around 2 GiB: the kernel limits writes through such a destination (EFBIG at and past
/// 2 GiB − 1, also for len 0; shorter copies before it), and nothing about the source.
fn non_largefile_cases() -> Vec<String> {
    let mut cases = Vec::new();
    let positions = [
        MAX_NON_LFS - 5000,
        MAX_NON_LFS - 100,
        MAX_NON_LFS - 10,
        MAX_NON_LFS - 1,
        MAX_NON_LFS,
        MAX_NON_LFS + 1,
        MAX_NON_LFS + 4097,
        1 << 32,
        5 << 30,
    ];
    for pos in positions {
        for len in [0u64, 1, 10, 100, 5000, 0xffff_ffff] {
            cases.push(format!(
                "src_size=5000 dst_lfs=no off_out={pos} len={len} seed=20"
            ));
            cases.push(format!(
                "src_size=5000 dst_lfs=no dst_pos={pos} len={len} seed=21"
            ));
        }
        cases.push(format!(
            "src_size=5000 dst_size=300 dst_mode=rw dst_lfs=no off_out={pos} len=200"
        ));
        cases.push(format!(
            "src_size=5000 dst_lfs=no dst_mode=append off_out={pos} len=10"
        ));
    }
    // RLIMIT_FSIZE below, at and above the 2 GiB limit.
    for fsize in [
        MAX_NON_LFS - 150,
        MAX_NON_LFS - 100,
        MAX_NON_LFS - 50,
        MAX_NON_LFS + 10,
    ] {
        let pos = MAX_NON_LFS - 100;
        cases.push(format!(
            "src_size=5000 dst_lfs=no off_out={pos} len=1000 fsize={fsize}"
        ));
        cases.push(format!(
            "src_size=5000 dst_lfs=no off_out={pos} len=0 fsize={fsize}"
        ));
    }
    // The source side: read past 2 GiB through a descriptor without O_LARGEFILE.
    for pos in [
        0,
        MAX_NON_LFS - 10,
        MAX_NON_LFS,
        MAX_NON_LFS + 1,
        MAX_NON_LFS + 101,
        GROWN,
        GROWN + 808,
    ] {
        for len in [0u64, 10, 5000] {
            cases.push(format!(
                "src_size=5000 src_lfs=no src_grow={GROWN} off_in={pos} len={len} seed=22"
            ));
            cases.push(format!(
                "src_size=5000 src_lfs=no src_grow={GROWN} src_pos={pos} len={len} seed=23"
            ));
        }
    }
    // Both sides, and one file through one descriptor without O_LARGEFILE.
    let (past, before) = (MAX_NON_LFS + 101, MAX_NON_LFS - 50);
    cases.push(format!(
        "src_size=5000 src_lfs=no src_grow={GROWN} dst_lfs=no off_in={past} off_out={before} len=100"
    ));
    cases.push(format!(
        "src_size=5000 src_lfs=no src_grow={GROWN} dst_lfs=no src_pos={past} dst_pos={before} len=100"
    ));
    for off_out in [MAX_NON_LFS - 10, MAX_NON_LFS] {
        cases.push(format!(
            "src_size=5000 src_mode=rw src_lfs=no dst=samefd off_in=0 off_out={off_out} len=100"
        ));
        cases.push(format!(
            "src_size=5000 src_mode=rw src_lfs=no src_grow={GROWN} dst=samefd off_in={past} off_out={off_out} len=100"
        ));
    }
    cases
}

/// The i686 case list: the 64-bit suite's cases and the non-`O_LARGEFILE` ones.
fn i686_cases() -> &'static [String] {
    static CASES: OnceLock<Vec<String>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut all = cases().to_vec();
        all.extend(non_largefile_cases());
        all
    })
}

/// The i686 build, if there is one and 32-bit programs run here.
fn i686_build(test: &str) -> Option<Build> {
    let build = targets::build(I686, test)?;
    targets::can_run_i386(test).then_some(build)
}

/// The kernel's answers to the 32-bit probe, computed once per test process.
fn native(build: &Build) -> &'static [String] {
    static NATIVE: OnceLock<Vec<String>> = OnceLock::new();
    NATIVE.get_or_init(|| {
        let probe = build.probe();
        let run = probe::run(&Launch::native(&probe), "libc", i686_cases());
        assert!(run.failure.is_none(), "native i686 run: {:?}", run.failure);
        run.lines
    })
}

/// The result line of one case run natively by `probe`.
fn one(probe: &Path, case: &str) -> String {
    let run = probe::run(&Launch::native(probe), "libc", &[case.to_string()]);
    assert!(run.failure.is_none(), "{case}: {:?}", run.failure);
    run.lines[0].clone()
}

#[test]
fn i686_native_results_cover_successes_and_each_kind_of_failure() {
    let Some(build) = i686_build("i686_native_results_cover_successes_and_each_kind_of_failure")
    else {
        return;
    };
    let native = native(&build);
    println!(
        "FIGURES: i686: {} cases ({} of the 64-bit suite, {} without O_LARGEFILE), each through {} entry points under {} injected errnos and 3 engine settings",
        i686_cases().len(),
        cases().len(),
        i686_cases().len() - cases().len(),
        ENTRY_POINTS.len(),
        INJECTED_ERRNOS.len()
    );
    if let Some((i, line)) = native
        .iter()
        .enumerate()
        .find(|(_, l)| l.starts_with("error="))
    {
        panic!("case #{i} does not parse: {} → {line}", i686_cases()[i]);
    }
    let copied = native
        .iter()
        .filter(|l| !l.starts_with("ret=-1 ") && !l.starts_with("ret=0 "))
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
}

/// What the kernel does with descriptors opened without O_LARGEFILE, as this kernel answers a
/// 32-bit caller: the destination is limited to 2 GiB − 1 (EFBIG at it, even for len 0), the
/// source is not; a 64-bit caller's descriptors always have O_LARGEFILE.
#[test]
fn i686_kernel_limits_writes_through_non_largefile_descriptors_only() {
    let Some(build) =
        i686_build("i686_kernel_limits_writes_through_non_largefile_descriptors_only")
    else {
        return;
    };
    let probe32 = build.probe();
    let probe64 = Path::new(env!("CARGO_BIN_EXE_cfrfix-probe"));
    let at_limit = format!("src_size=5000 dst_lfs=no off_out={MAX_NON_LFS} len=0");
    let line = one(&probe32, &at_limit);
    assert!(line.starts_with("ret=-1 errno=27 "), "{line}");
    let line = one(probe64, &at_limit);
    assert!(line.starts_with("ret=0 errno=0 "), "64-bit: {line}");

    let across = format!(
        "src_size=5000 dst_lfs=no off_out={} len=100",
        MAX_NON_LFS - 10
    );
    let line = one(&probe32, &across);
    assert!(line.starts_with("ret=10 errno=0 "), "{line}");
    let largefile = format!("src_size=5000 off_out={} len=100", MAX_NON_LFS - 10);
    let line = one(&probe32, &largefile);
    assert!(line.starts_with("ret=100 errno=0 "), "{line}");

    let source_past = format!(
        "src_size=5000 src_lfs=no src_grow={GROWN} off_in={} len=100",
        MAX_NON_LFS + 101
    );
    let line = one(&probe32, &source_past);
    assert!(line.starts_with("ret=100 errno=0 "), "{line}");
}

#[test]
fn i686_injection_reaches_a_32_bit_process() {
    let Some(build) = i686_build("i686_injection_reaches_a_32_bit_process") else {
        return;
    };
    let probe = build.probe();
    let case = "src_size=4096 len=4096".to_string();
    for entry in ENTRY_POINTS {
        let native = probe::run(&Launch::native(&probe), entry, std::slice::from_ref(&case));
        assert!(
            native.lines[0].starts_with("ret=4096 errno=0 "),
            "{entry}: {:?}",
            native.lines
        );
        let injected = probe::run(
            &Launch::native(&probe).injected(95),
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

fn assert_i686_shim_matches_kernel(errno: u32, test: &str) {
    assert_i686_shim_matches_kernel_with(errno, &[], test);
}

/// As `assert_i686_shim_matches_kernel`, with `CFRFIX_*` settings (engines, sparse).
fn assert_i686_shim_matches_kernel_with(errno: u32, env: &[(&str, &str)], test: &str) {
    let Some(build) = i686_build(test) else {
        return;
    };
    let native = native(&build);
    let (probe, library) = (build.probe(), build.library());
    let mut comparison = Comparison::default();
    for entry in ENTRY_POINTS {
        let launch = Launch::native(&probe)
            .injected(errno)
            .preloaded(&library)
            .with_env(env);
        let run = probe::run(&launch, entry, i686_cases());
        comparison.add(
            &format!("i686, errno {errno}, entry {entry}, env {env:?}"),
            entry,
            i686_cases(),
            native,
            &run,
        );
    }
    comparison.assert_identical("the i686 library");
}

#[test]
fn i686_shim_matches_kernel_under_eopnotsupp() {
    assert_i686_shim_matches_kernel(95, "i686_shim_matches_kernel_under_eopnotsupp");
}

#[test]
fn i686_shim_matches_kernel_under_enotsupp() {
    assert_i686_shim_matches_kernel(524, "i686_shim_matches_kernel_under_enotsupp");
}

#[test]
fn i686_shim_matches_kernel_under_exdev() {
    assert_i686_shim_matches_kernel(18, "i686_shim_matches_kernel_under_exdev");
}

#[test]
fn i686_shim_matches_kernel_under_enosys() {
    assert_i686_shim_matches_kernel(38, "i686_shim_matches_kernel_under_enosys");
}

#[test]
fn i686_shim_matches_kernel_under_eperm() {
    assert_i686_shim_matches_kernel(1, "i686_shim_matches_kernel_under_eperm");
}

#[test]
fn i686_shim_matches_kernel_under_eio() {
    assert_i686_shim_matches_kernel(5, "i686_shim_matches_kernel_under_eio");
}

// Every engine in a 32-bit process, as tests/differential.rs does for 64-bit ones: with hole
// skipping off, the default engine (sendfile) also meets sources read past 4 GiB.

#[test]
fn i686_shim_matches_kernel_with_sparse_off() {
    assert_i686_shim_matches_kernel_with(
        38,
        &[("CFRFIX_SPARSE", "off")],
        "i686_shim_matches_kernel_with_sparse_off",
    );
}

#[test]
fn i686_shim_matches_kernel_with_engine_splice() {
    assert_i686_shim_matches_kernel_with(
        95,
        &[("CFRFIX_ENGINE", "splice")],
        "i686_shim_matches_kernel_with_engine_splice",
    );
}

#[test]
fn i686_shim_matches_kernel_with_engine_rw() {
    assert_i686_shim_matches_kernel_with(
        18,
        &[("CFRFIX_ENGINE", "rw"), ("CFRFIX_SPARSE", "off")],
        "i686_shim_matches_kernel_with_engine_rw",
    );
}

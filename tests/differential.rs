//! Differential test: the shim must be indistinguishable from the kernel.
//!
//! Every case (see `drivers/probe/main.rs` for the format, `tests/probe/cases.rs` for the list)
//! is run once natively on tmpfs, where the kernel's own copy_file_range works, and then under
//! `cfrfix-inject ERRNO` with `LD_PRELOAD=libcfrfix.so` for every "unsupported" errno and every
//! entry point. The kernel now refuses every call, so each result line (return value, errno,
//! positions, offsets, bytes, SIGXFSZ count) comes from the shim's emulation and must equal the
//! native line. `tests/abi/` runs the same cases in 32-bit and aarch64 processes.

mod common;
mod probe;

use std::path::Path;
use std::sync::OnceLock;

use common::ScratchDir;
use probe::cases::{RANDOM_CASES, cases};
use probe::{Comparison, ENTRY_POINTS, Launch, ProbeRun};

/// The errnos the shim treats as "the kernel cannot do it": EOPNOTSUPP, ENOTSUPP, EXDEV,
/// ENOSYS, EPERM, EIO.
const INJECTED_ERRNOS: [u32; 6] = [95, 524, 18, 38, 1, 5];

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

fn run_probe(setup: Setup<'_>, entry: &str, cases: &[String]) -> ProbeRun {
    let probe = Path::new(env!("CARGO_BIN_EXE_cfrfix-probe"));
    let library = common::cdylib();
    let launch = match setup {
        Setup::Native => Launch::native(probe),
        Setup::Injected { errno, shim, env } => {
            let launch = Launch::native(probe).injected(errno).with_env(env);
            if shim {
                launch.preloaded(&library)
            } else {
                launch
            }
        }
    };
    probe::run(&launch, entry, cases)
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

/// Runs every case under each entry point with `errno` injected and the shim preloaded;
/// panics with a readable report if any result line differs from the native one.
fn assert_shim_matches_kernel(errno: u32) {
    assert_shim_matches_kernel_with(errno, &[]);
}

/// The entry points the shim runs go through: all, or those named (separated by commas) in
/// `CFRFIX_TEST_ENTRY_POINTS`. scripts/zfs-vm names `libc` only: what ZFS does is the same
/// whichever way the call reached the library, and every probe run is slow in its VM.
fn shim_entry_points() -> Vec<&'static str> {
    let Ok(list) = std::env::var("CFRFIX_TEST_ENTRY_POINTS") else {
        return ENTRY_POINTS.to_vec();
    };
    let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
    for name in &wanted {
        assert!(
            ENTRY_POINTS.contains(name),
            "CFRFIX_TEST_ENTRY_POINTS={list:?}: unknown entry point {name:?}"
        );
    }
    ENTRY_POINTS
        .into_iter()
        .filter(|entry| wanted.contains(entry))
        .collect()
}

/// As `assert_shim_matches_kernel`, with `CFRFIX_*` settings in the probe's environment.
fn assert_shim_matches_kernel_with(errno: u32, env: &[(&str, &str)]) {
    let native = native_results();
    let mut comparison = Comparison::default();
    for entry in shim_entry_points() {
        let run = run_probe(
            Setup::Injected {
                errno,
                shim: true,
                env,
            },
            entry,
            cases(),
        );
        let label = format!("errno {errno}, entry {entry}, env {env:?}");
        comparison.add(&label, entry, cases(), native, &run);
    }
    comparison.assert_identical("shim");
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

//! The fallback's engines, hole skipping and memory use (issue 3; `CFRFIX_SPARSE` of issue 6).
//!
//! Sparse copies are checked against the kernel: every case runs once natively on tmpfs
//! (where the kernel copies, filling holes with zeros) and then under `cfrfix-inject 95` with
//! the shim, under each engine. The result line (return value, errno, file positions, offset
//! variables) and the destination's bytes and size must be identical; hole skipping may only
//! change how many blocks the destination occupies.
//!
//! Memory: `cfrfix-call churn` makes many fallback calls in one process and reports
//! /proc/self figures before and after.

mod calls;
mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use calls::{NATIVE, Setup, assert_same_bytes, blocks_and_size};
use common::ScratchDir;

const MIB: u64 = 1 << 20;
/// 1 MiB in `st_blocks` units (512 bytes): the slack issue 3 allows over the source's blocks.
const MIB_IN_BLOCKS: u64 = MIB / 512;

/// The sparse source: data extents (offset, length), then a trailing hole up to `SRC_SIZE`.
/// A hole at the start, holes between extents of various sizes (one larger than the 1 MiB
/// buffer and pipe), unaligned starts and ends, a one-byte extent, an unaligned size.
const EXTENTS: [(u64, usize); 4] = [
    (MIB, 5000),
    (3 * MIB + 123, 70_000),
    (5 * MIB, 3 * MIB as usize / 2),
    (8 * MIB + 4095, 1),
];
const SRC_SIZE: u64 = 12 * MIB + 17;

/// The source file (on tmpfs, which reports holes at page granularity) and its bytes.
struct SparseSource {
    path: PathBuf,
    bytes: Vec<u8>,
    blocks: u64,
}

fn sparse_source() -> &'static SparseSource {
    static SOURCE: OnceLock<SparseSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        // A static is never dropped: the directory goes when the test process exits.
        let dir = common::scratch_dir_for_process("/dev/shm", "engines-src");
        let path = dir.join("sparse");
        let file = fs::File::create(&path).expect("create sparse source");
        let mut bytes = vec![0u8; SRC_SIZE as usize];
        for (i, &(offset, len)) in EXTENTS.iter().enumerate() {
            let data = calls::pattern(i as u64 + 1, len);
            file.write_all_at(&data, offset).expect("write extent");
            bytes[offset as usize..offset as usize + len].copy_from_slice(&data);
        }
        file.set_len(SRC_SIZE).expect("set source size");
        drop(file);
        let (blocks, size) = blocks_and_size(&path);
        assert_eq!(size, SRC_SIZE);
        // The source really is sparse (else the block checks below would prove nothing):
        // its data is about 1.6 MiB of 12 MiB.
        assert!(blocks * 512 < 2 * MIB, "source not sparse: {blocks} blocks");
        SparseSource {
            path,
            bytes,
            blocks,
        }
    })
}

/// A destination at `path`, holding `prefill` bytes of non-zero data (or absent for 0).
fn make_destination(path: &Path, prefill: usize) {
    let _ = fs::remove_file(path);
    if prefill > 0 {
        fs::write(path, calls::pattern(0xd5, prefill)).expect("prefill destination");
    }
}

/// One copy of a case: the helper's result line, the destination's bytes and block count.
struct Copied {
    line: String,
    bytes: Vec<u8>,
    blocks: u64,
}

fn run_case(setup: Setup<'_>, dir: &Path, tag: &str, prefill: usize, options: &str) -> Copied {
    let src = sparse_source();
    let dst = dir.join(format!("dst-{tag}"));
    make_destination(&dst, prefill);
    let line = calls::copy(setup, &src.path, &dst, options);
    let bytes = fs::read(&dst).unwrap_or_default();
    let (blocks, size) = if dst.exists() {
        blocks_and_size(&dst)
    } else {
        (0, 0)
    };
    assert_eq!(size, bytes.len() as u64);
    let _ = fs::remove_file(&dst);
    Copied {
        line,
        bytes,
        blocks,
    }
}

/// The shim setups every sparse case runs under: each engine, hole skipping on.
const SHIM_SETUPS: [(&str, &[(&str, &str)]); 3] = [
    ("auto", &[("CFRFIX_ENGINE", "auto")]),
    ("splice", &[("CFRFIX_ENGINE", "splice")]),
    ("rw", &[("CFRFIX_ENGINE", "rw")]),
];

/// Runs `cases` (prefill, options) natively and under every shim setup; asserts identical
/// results and returns, per case, the native copy and the shim copies' block counts.
fn compare_with_kernel(tag: &str, cases: &[(usize, &str)]) -> Vec<(Copied, Vec<u64>)> {
    let dir = ScratchDir::tmpfs(tag);
    let mut out = Vec::new();
    for (i, &(prefill, options)) in cases.iter().enumerate() {
        let native = run_case(NATIVE, dir.path(), &format!("{i}-native"), prefill, options);
        // The native call must have done something for the comparison to mean anything.
        assert!(
            native.line.starts_with("ret=") && !native.line.starts_with("ret=-1"),
            "case {options}: native copy failed: {}",
            native.line
        );
        let mut shim_blocks = Vec::new();
        for (engine, env) in SHIM_SETUPS {
            let setup = Setup {
                inject: Some(95),
                shim: true,
                env,
            };
            let shim = run_case(
                setup,
                dir.path(),
                &format!("{i}-{engine}"),
                prefill,
                options,
            );
            let what = format!("case `{options}` (prefill {prefill}), engine {engine}");
            assert_eq!(shim.line, native.line, "{what}: result line");
            assert_same_bytes(&what, &native.bytes, &shim.bytes);
            shim_blocks.push(shim.blocks);
        }
        out.push((native, shim_blocks));
    }
    out
}

/// The whole source, as `cp` copies it: calls until one returns 0.
const WHOLE: &str = "len=67108864 repeat=until0";

/// (a) Into a new file: identical bytes and size, and the holes stay holes.
#[test]
fn sparse_source_into_a_new_file_stays_sparse() {
    let src = sparse_source();
    let results = compare_with_kernel("engines-new", &[(0, WHOLE)]);
    let (native, shim_blocks) = &results[0];
    assert_same_bytes("native copy vs source", &src.bytes, &native.bytes);
    eprintln!(
        "source: {} bytes, {} blocks; native tmpfs copy: {} blocks; shim (auto, splice, rw): {:?} blocks",
        SRC_SIZE, src.blocks, native.blocks, shim_blocks
    );
    for (blocks, (engine, _)) in shim_blocks.iter().zip(SHIM_SETUPS) {
        assert!(
            *blocks <= src.blocks + MIB_IN_BLOCKS,
            "engine {engine}: destination has {blocks} blocks, source {} (+1 MiB allowed)",
            src.blocks
        );
    }
}

/// (b) Over existing non-zero data covering the whole range, (c) over data that covers part
/// of the range (the range reaches past the destination's end, so holes are skipped there, but
/// a hole over existing data must become zeros, and a trailing hole extends the file).
#[test]
fn sparse_source_over_existing_data_leaves_no_stale_bytes() {
    let whole = SRC_SIZE as usize;
    let cases: Vec<(usize, &str)> = vec![
        // (b) destination larger than the source / exactly its size.
        (16 * MIB as usize, WHOLE),
        (whole, WHOLE),
        // (c) destination ends inside the first data extent, inside the second hole, inside
        // the second extent, inside the trailing hole, one byte short of the end.
        (MIB as usize + 1000, WHOLE),
        (2 * MIB as usize + 1000, WHOLE),
        (3 * MIB as usize + 200, WHOLE),
        (9 * MIB as usize, WHOLE),
        (whole - 1, WHOLE),
    ];
    let results = compare_with_kernel("engines-overlap", &cases);
    for ((prefill, _), (native, _)) in cases.iter().zip(&results) {
        // What the kernel produced: the source's bytes (holes as zeros) over the old data.
        let mut expected = calls::pattern(0xd5, *prefill);
        expected.resize(whole.max(*prefill), 0);
        expected[..whole].copy_from_slice(&sparse_source().bytes);
        assert_same_bytes(
            &format!("native, prefill {prefill}"),
            &expected,
            &native.bytes,
        );
    }
}

/// (d) Explicit offsets and NULL offsets (file positions): return values, positions and
/// offset variables as the kernel leaves them, for ranges that start and end in holes and
/// data, lie entirely in a hole, or start at or past the end.
#[test]
fn sparse_copies_with_offsets_and_positions_match_the_kernel() {
    let cases: Vec<(usize, &str)> = vec![
        (0, "off_in=0 off_out=0 len=67108864"),
        // From the start hole into the middle hole: the destination is extended over the end.
        (0, "off_in=1000000 off_out=77 len=2500000"),
        (MIB as usize + 300, "off_in=1000000 off_out=77 len=2500000"),
        (0, "off_in=1048576 off_out=5000000 len=3000000"),
        // The one-byte extent, then hole.
        (0, "off_in=8392703 off_out=0 len=100"),
        // Entirely inside the trailing hole: nothing to write, only the size to set.
        (0, "off_in=9000000 off_out=100 len=1000000"),
        (5000, "off_in=9000000 off_out=100 len=1000000"),
        (0, "off_in=12582912 off_out=3 len=100"),
        (0, "off_in=12582929 off_out=0 len=100"),
        (0, "off_in=20000000 off_out=0 len=100"),
        // NULL offsets: the file positions are used and advanced.
        (0, "src_pos=3145000 dst_pos=1234 len=200000"),
        (4096, "src_pos=3145000 dst_pos=1234 len=200000"),
        (0, "src_pos=0 dst_pos=7 len=6000000"),
        (0, "src_pos=12582912 dst_pos=0 len=100"),
        (0, "src_pos=12582929 dst_pos=0 len=100"),
        // Mixed: one offset given, the other side's position.
        (0, "off_in=4000000 src_pos=99 dst_pos=11 len=2000000"),
        (300, "off_out=5 src_pos=1048000 len=100000"),
        // Several calls in a row with positions, as cp does, with a small length.
        (0, "len=700000 repeat=until0"),
    ];
    compare_with_kernel("engines-offsets", &cases);
}

/// (e) `CFRFIX_SPARSE=off`: the same bytes, but every hole written out (for filesystems whose
/// SEEK_DATA/SEEK_HOLE answers are wrong, issue 6).
#[test]
fn sparse_off_copies_every_byte() {
    let src = sparse_source();
    let dir = ScratchDir::tmpfs("engines-sparse-off");
    let native = run_case(NATIVE, dir.path(), "native", 0, WHOLE);
    for engine in ["auto", "splice", "rw"] {
        let env = [("CFRFIX_SPARSE", "off"), ("CFRFIX_ENGINE", engine)];
        let setup = Setup {
            inject: Some(95),
            shim: true,
            env: &env,
        };
        let shim = run_case(setup, dir.path(), engine, 0, WHOLE);
        assert_eq!(shim.line, native.line, "engine {engine}");
        assert_same_bytes(
            &format!("sparse off, engine {engine}"),
            &src.bytes,
            &shim.bytes,
        );
        // Dense: every page of the file allocated (tmpfs allocates whole pages).
        let pages = SRC_SIZE.div_ceil(4096);
        eprintln!(
            "CFRFIX_SPARSE=off, engine {engine}: {} blocks for {SRC_SIZE} bytes (source {})",
            shim.blocks, src.blocks
        );
        assert!(
            shim.blocks >= pages * 8,
            "engine {engine}: {} blocks, expected a dense {} ",
            shim.blocks,
            pages * 8
        );
    }
}

/// The same without injection, across filesystems: tmpfs → the root filesystem (ext4 here)
/// is a natural EXDEV, and the destination filesystem keeps the holes too.
#[test]
fn natural_exdev_to_another_filesystem_keeps_holes() {
    let src = sparse_source();
    let dir = ScratchDir::rootfs("engines-exdev");
    let dst = dir.path().join("dst");
    let log = dir.path().join("log");
    let log_setting = log.display().to_string();
    let env = [("CFRFIX_LOG", log_setting.as_str())];
    let no_shim = calls::copy(NATIVE, &src.path, &dst, WHOLE);
    if !no_shim.starts_with("ret=-1 errno=18 ") {
        panic!(
            "tmpfs -> {} is not EXDEV for the kernel ({no_shim}); this test needs two filesystems",
            dir.path().display()
        );
    }
    let setup = Setup {
        inject: None,
        shim: true,
        env: &env,
    };
    let line = calls::copy(setup, &src.path, &dst, WHOLE);
    assert!(
        line.starts_with(&format!("ret={SRC_SIZE} errno=0 calls=2 ")),
        "{line}"
    );
    assert_same_bytes(
        "tmpfs -> rootfs",
        &src.bytes,
        &fs::read(&dst).expect("read"),
    );
    let (blocks, size) = blocks_and_size(&dst);
    eprintln!("tmpfs -> rootfs through the shim: {blocks} blocks for {size} bytes");
    assert!(blocks <= src.blocks + MIB_IN_BLOCKS, "{blocks} blocks");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("kernel said EXDEV"), "log: {text:?}");
}

// ---------------------------------------------------------------------------------------
// Memory

/// `cfrfix-call churn` figures: (before, after) per key.
fn churn(
    setup: Setup<'_>,
    dir: &Path,
    count: u64,
    len: u64,
    warmup: u64,
) -> Vec<(String, f64, f64)> {
    let src = dir.join("churn-src");
    if !src.exists() {
        fs::write(&src, calls::pattern(7, 64 * MIB as usize)).expect("churn source");
    }
    let dst = dir.join("churn-dst");
    let args: Vec<std::ffi::OsString> = vec![
        "churn".into(),
        src.into(),
        dst.into(),
        count.to_string().into(),
        len.to_string().into(),
        warmup.to_string().into(),
    ];
    let out = calls::run(setup, &args, Duration::from_secs(60));
    assert!(out.success, "churn under {setup:?}: {out:?}");
    out.stdout
        .split_whitespace()
        .filter_map(|field| {
            let (key, value) = field.split_once('=')?;
            let (a, b) = value.split_once("->").unwrap_or((value, value));
            Some((key.to_string(), a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

fn figure(figures: &[(String, f64, f64)], key: &str) -> (f64, f64) {
    figures
        .iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, a, b)| (*a, *b))
        .unwrap_or_else(|| panic!("no {key} in {figures:?}"))
}

/// Many small fallback copies in one process: no growth in mappings, descriptors or
/// resident memory. 1,000,000 calls take about 15 s on the development machine (2 cores,
/// about 15 µs per fallback), too long next to the other tests, so this makes 200,000 with
/// `CFRFIX_MODE=always` (the user-space copy without asking the kernel: the same per-call
/// resources), plus 50,000 with the rw engine and 20,000 through an injected EOPNOTSUPP
/// (the kernel asked first). A leak of one byte per call would show as 200 KB, of one
/// descriptor or mapping per call as thousands.
#[test]
fn many_fallback_calls_do_not_grow_memory() {
    let dir = ScratchDir::tmpfs("engines-churn");
    let always: &[(&str, &str)] = &[("CFRFIX_MODE", "always")];
    let always_rw: &[(&str, &str)] = &[("CFRFIX_MODE", "always"), ("CFRFIX_ENGINE", "rw")];
    let runs = [
        (
            "mode always, engine auto",
            Setup {
                inject: None,
                shim: true,
                env: always,
            },
            200_000,
        ),
        (
            "mode always, engine rw",
            Setup {
                inject: None,
                shim: true,
                env: always_rw,
            },
            50_000,
        ),
        ("injected EOPNOTSUPP", Setup::shim_under(95), 20_000),
    ];
    for (what, setup, count) in runs {
        let started = Instant::now();
        let figures = churn(setup, dir.path(), count, 1, 1000);
        eprintln!(
            "{what}: {count} calls: {figures:?} ({:?} with start-up)",
            started.elapsed()
        );
        for key in ["vsz_kb", "fds", "maps"] {
            let (before, after) = figure(&figures, key);
            assert_eq!(before, after, "{what}: {key} changed over {count} calls");
        }
        // RSS as /proc reports it is approximate (per-CPU counter batching), so allow a few
        // pages of noise, far below what a per-call leak would add.
        let (before, after) = figure(&figures, "rss_kb");
        assert!(
            after - before <= 256.0,
            "{what}: VmRSS grew from {before} kB to {after} kB over {count} calls"
        );
    }
    // The figures above only matter if each call was a fallback: the log shows one line per
    // call (5 calls, below the log's rate limit).
    let log = dir.path().join("log");
    let log_setting = log.display().to_string();
    let env = [
        ("CFRFIX_MODE", "always"),
        ("CFRFIX_LOG", log_setting.as_str()),
    ];
    churn(
        Setup {
            inject: None,
            shim: true,
            env: &env,
        },
        dir.path(),
        5,
        1,
        0,
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        text.matches("mode always; copied 1 bytes").count(),
        5,
        "log: {text}"
    );
}

/// At most about 1 MiB of buffer per call, released on return: the rw engine raises the
/// process's peak virtual size by its 1 MiB buffer, however large the copy, and gives it back;
/// splice needs no user-space buffer at all.
#[test]
fn one_call_maps_at_most_one_mebibyte() {
    let dir = ScratchDir::tmpfs("engines-peak");
    for (engine, min_kb, max_kb) in [("rw", 512.0, 1024.0 + 16.0), ("splice", 0.0, 16.0)] {
        let env = [("CFRFIX_MODE", "always"), ("CFRFIX_ENGINE", engine)];
        let setup = Setup {
            inject: None,
            shim: true,
            env: &env,
        };
        // Three 64 MiB copies from the process's start (no warm-up, so the peak is ours).
        let figures = churn(setup, dir.path(), 3, 64 * MIB, 0);
        eprintln!("engine {engine}, 3 x 64 MiB: {figures:?}");
        let (before, after) = figure(&figures, "peak_kb");
        assert!(
            after - before >= min_kb && after - before <= max_kb,
            "engine {engine}: VmPeak {before} -> {after} kB, expected +{min_kb}..{max_kb}"
        );
        let (before, after) = figure(&figures, "vsz_kb");
        assert_eq!(
            before, after,
            "engine {engine}: VmSize not back after the calls"
        );
    }
}

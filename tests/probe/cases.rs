//! The differential suite's case list: explicit cases at every edge the kernel checks, and
//! generated ones from a fixed seed (see `drivers/probe/main.rs` for the case format). Shared
//! by `tests/differential.rs` (64-bit) and the per-ABI suites in `tests/abi/`.

use std::sync::OnceLock;

use crate::common::Rng;

/// Fixed so that every run generates the same cases.
const CASE_SEED: u64 = 0x00c0_ffee_cf12_f1c5;
pub const RANDOM_CASES: usize = 700;

const MAX_RW_COUNT: u64 = 0x7fff_f000;
const I64_MAX: u64 = i64::MAX as u64;

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
///
/// `CFRFIX_TEST_SKIP_SAME_FILE=1` leaves out the cases whose destination is the source file.
/// scripts/zfs-vm sets it while OpenZFS block cloning is on: OpenZFS 2.3.2's own
/// copy_file_range within one file that it must grow deadlocks the calling thread in the
/// kernel, unkillably (openzfs/zfs#19072), so their native side cannot run there.
pub fn cases() -> &'static [String] {
    static CASES: OnceLock<Vec<String>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut cases = explicit_cases();
        let mut rng = Rng(CASE_SEED);
        cases.extend((0..RANDOM_CASES).map(|_| random_case(&mut rng)));
        if std::env::var_os("CFRFIX_TEST_SKIP_SAME_FILE").is_some() {
            let same_file = ["dst=samefd", "dst=samepath", "dst=hardlink"];
            cases.retain(|case| !same_file.iter().any(|kind| case.contains(kind)));
        }
        cases
    })
}

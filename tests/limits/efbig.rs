//! EFBIG at s_maxbytes: copies across ext4's maximum file size, dense and sparse sources,
//! offsets and positions, compared with the kernel's ext4 -> ext4 copy.

use super::driver::build_driver;
use super::{
    BUDGET, CONFIGS, EFBIG, EXDEV, Scenario, Setup, calls_summary, driver_command, field, figure,
    last_call, partial, pattern, statfs_type, transcript, write_sparse,
};
use crate::common::{self, ScratchDir, clean, skip};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// ext4's `s_maxbytes` with 4 KiB blocks and extents: 2^32 blocks minus one, in bytes.
const EXT4_MAXBYTES: i64 = (1 << 44) - 4096;
const EXT4_SUPER_MAGIC: i64 = 0xEF53;

/// An ext4 directory whose files stop at EXT4_MAXBYTES (None, after SKIPPED, otherwise): a
/// sparse file can be truncated to exactly that size and not one byte more.
fn ext4_with_known_maxbytes(dir: &Path) -> Option<()> {
    if statfs_type(dir) != Some(EXT4_SUPER_MAGIC) {
        skip(&format!(
            "{} is not on ext4 (statfs type {:?}); the EFBIG test needs ext4's s_maxbytes",
            dir.display(),
            statfs_type(dir)
        ));
        return None;
    }
    let probe = dir.join("maxbytes-probe");
    let f = std::fs::File::create(&probe).expect("create probe");
    let at_max = f.set_len(EXT4_MAXBYTES as u64);
    let past_max = f.set_len(EXT4_MAXBYTES as u64 + 1);
    drop(f);
    let _ = std::fs::remove_file(&probe);
    match (at_max, past_max) {
        (Ok(()), Err(e)) if e.raw_os_error() == Some(libc::EFBIG) => Some(()),
        (a, b) => {
            skip(&format!(
                "ext4 at {} does not have s_maxbytes = 16 TiB - 4 KiB (4 KiB blocks, extents): \
                 truncate to it: {a:?}, one byte more: {b:?}",
                dir.display()
            ));
            None
        }
    }
}

/// Sources: `dense` (256 KiB of data) and `tailhole` (64 KiB of data, then a hole to 1 MiB).
fn efbig_sources(dir: &Path) {
    write_sparse(&dir.join("dense"), &pattern(256 << 10, 1), 256 << 10);
    write_sparse(&dir.join("tailhole"), &pattern(64 << 10, 2), 1 << 20);
}

const S: i64 = EXT4_MAXBYTES;

const EFBIG_SCENARIOS: [Scenario; 6] = [
    // 65536, then 34464 up to the limit, then EFBIG.
    Scenario {
        name: "dense-offsets",
        source: "dense",
        mode: "offsets",
        off_in: 1000,
        off_out: S - 100_000,
        len: 65536,
    },
    // Positions, unaligned: 8192, 4219, EFBIG.
    Scenario {
        name: "dense-positions",
        source: "dense",
        mode: "positions",
        off_in: 4095,
        off_out: S - 3 * 4096 - 123,
        len: 8192,
    },
    // One big call that crosses the limit inside a page: 5000, EFBIG.
    Scenario {
        name: "dense-one-call",
        source: "dense",
        mode: "offsets",
        off_in: 7,
        off_out: S - 5000,
        len: 1 << 20,
    },
    // The source's trailing hole crosses the limit (the shim skips holes past the destination's
    // end and sets the size with ftruncate, which EFBIG refuses): 200000, EFBIG.
    Scenario {
        name: "tailhole-offsets",
        source: "tailhole",
        mode: "offsets",
        off_in: 0,
        off_out: S - 200_000,
        len: 1 << 20,
    },
    // The same with positions, in chunks that end inside the hole: 131072 ×2, 37856, EFBIG.
    Scenario {
        name: "tailhole-positions",
        source: "tailhole",
        mode: "positions",
        off_in: 100,
        off_out: S - 300_000,
        len: 131072,
    },
    // A non-empty copy exactly at the limit: EFBIG at once. (Not len 0: there the kernel says
    // EFBIG and the shim 0, a documented difference.)
    Scenario {
        name: "at-the-limit",
        source: "dense",
        mode: "offsets",
        off_in: 0,
        off_out: S,
        len: 10,
    },
];

#[test]
fn efbig_at_ext4_maximum_file_size_mid_copy_matches_the_kernel() {
    let deadline = Instant::now() + BUDGET;
    let disk = ScratchDir::rootfs("limits-efbig");
    let shm = ScratchDir::tmpfs("limits-efbig");
    let Some(driver) = build_driver(shm.path(), deadline) else {
        return;
    };
    if ext4_with_known_maxbytes(disk.path()).is_none() {
        return;
    }
    efbig_sources(disk.path());
    efbig_sources(shm.path());
    let dst = disk.path().join("dst");
    let mut compared = 0;
    let mut figures = Vec::new();
    for sc in &EFBIG_SCENARIOS {
        let on_disk = disk.path().join(sc.source);
        let on_shm = shm.path().join(sc.source);
        let what = |how: &str| format!("{} ({how})", sc.name);
        // (a) The kernel's own copy, ext4 → same ext4.
        let native = transcript(
            &what("native ext4 -> ext4"),
            &mut driver_command(
                Setup::Native,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
            deadline,
        );
        let last = last_call(&native);
        assert!(
            last.contains(EFBIG),
            "{}: the kernel's copy did not end in EFBIG:\n{native}",
            sc.name
        );
        if sc.name != "at-the-limit" {
            assert!(
                partial(&native).is_some()
                    && field(last, "off_out").max(field(last, "pos_out")) == S,
                "{}: the kernel's copy did not stop part way at s_maxbytes:\n{native}",
                sc.name
            );
        }
        figures.push(format!("{}: {}", sc.name, calls_summary(&native)));
        // The injection bites: without the shim nothing is copied.
        let refused = transcript(
            &what("injected, no shim"),
            &mut driver_command(
                Setup::InjectedOnly,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
            deadline,
        );
        assert!(
            last_call(&refused).contains("errno=95") && refused.lines().count() == 2,
            "{}: injection did not refuse the copy:\n{refused}",
            sc.name
        );
        // The natural EXDEV: tmpfs → ext4 is refused by the kernel.
        let exdev = transcript(
            &what("native tmpfs -> ext4"),
            &mut driver_command(Setup::Native, &[], &driver, &sc.args(&on_shm, &dst, "libc")),
            deadline,
        );
        assert!(
            last_call(&exdev).contains(EXDEV) && exdev.lines().count() == 2,
            "{}: tmpfs -> ext4 is not EXDEV here:\n{exdev}",
            sc.name
        );
        for (engine, sparse, entry) in CONFIGS {
            let envs = [("CFRFIX_ENGINE", engine), ("CFRFIX_SPARSE", sparse)];
            // (b) injected EOPNOTSUPP, ext4 -> ext4; (c) the natural EXDEV from tmpfs. The
            // syscall entry prints the same lines: both compare with the native libc run.
            for (src, injected) in [(&on_disk, true), (&on_shm, false)] {
                let how = if injected {
                    "injected EOPNOTSUPP"
                } else {
                    "EXDEV from tmpfs"
                };
                let mut c = match injected {
                    true => driver_command(Setup::Shim, &envs, &driver, &sc.args(src, &dst, entry)),
                    false => {
                        let mut c = clean("env");
                        c.arg(format!("LD_PRELOAD={}", common::cdylib().display()));
                        c.args(envs.iter().map(|(k, v)| format!("{k}={v}")));
                        c.arg(&driver).args(sc.args(src, &dst, entry));
                        c
                    }
                };
                let label = what(&format!("shim, {how}, {engine}/{sparse}/{entry}"));
                let shim = transcript(&label, &mut c, deadline);
                assert_eq!(shim, native, "{label}: differs from the kernel");
                compared += 1;
            }
        }
    }
    figure(&format!(
        "EFBIG at s_maxbytes = {S}: per-call results (kernel, ext4 -> ext4) {}; identical in \
         {compared} shim runs (injected EOPNOTSUPP and natural EXDEV from tmpfs, 3 engines x \
         sparse auto/off x libc/syscall)",
        figures.join("; ")
    ));
}

/// A hole in the middle of the source whose destination range crosses s_maxbytes, followed by
/// data that lies past it. The kernel writes the hole's zeros up to the limit (300000, then
/// EFBIG at s_maxbytes). A regression test: the sparse engine used to skip the hole, fail on the
/// data after it, and drop the hole (65536, then EFBIG where the kernel still copies).
#[test]
fn efbig_with_a_hole_across_the_limit_matches_the_kernel() {
    let deadline = Instant::now() + BUDGET;
    let disk = ScratchDir::rootfs("limits-efbig-hole");
    let shm = ScratchDir::tmpfs("limits-efbig-hole");
    let Some(driver) = build_driver(shm.path(), deadline) else {
        return;
    };
    if ext4_with_known_maxbytes(disk.path()).is_none() {
        return;
    }
    // 64 KiB of data, a hole to 512 KiB, 64 KiB of data.
    let src = disk.path().join("midhole");
    write_sparse(&src, &pattern(64 << 10, 3), 512 << 10);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .expect("open");
    f.write_all(&pattern(64 << 10, 4)).expect("append");
    drop(f);
    let sc = Scenario {
        name: "midhole-offsets",
        source: "midhole",
        mode: "offsets",
        off_in: 0,
        off_out: S - 300_000,
        len: 1 << 20,
    };
    let dst = disk.path().join("dst");
    let native = transcript(
        "native",
        &mut driver_command(Setup::Native, &[], &driver, &sc.args(&src, &dst, "libc")),
        deadline,
    );
    assert!(partial(&native).is_some() && last_call(&native).contains(EFBIG));
    let shim = transcript(
        "shim, sparse auto",
        &mut driver_command(Setup::Shim, &[], &driver, &sc.args(&src, &dst, "libc")),
        deadline,
    );
    assert_eq!(shim, native, "shim (sparse auto) differs from the kernel");
}

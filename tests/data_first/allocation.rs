//! Still sparse where the source is, never where it is not: a copy into a new file allocates
//! about what the source allocates. Holes are left only where the source read as zeros and the
//! source may have holes (`st_blocks`), and where FIEMAP answers (ext4), allocated extents are
//! copied as they are, zeros and preallocated ranges included.

use super::Trigger;
use crate::calls::{self, Setup, blocks_and_size, pattern};
use crate::common::ScratchDir;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

const MIB: u64 = 1 << 20;
/// 1 MiB in `st_blocks` units: the slack allowed over the source's allocation.
const MIB_IN_BLOCKS: u64 = MIB / 512;

/// Copies all of `src` into a new `dst` with `cfrfix-call` under `trigger` (as cp does: calls
/// until 0); asserts the whole file was reported and is identical.
fn copy_whole(src: &Path, dst: &Path, trigger: Trigger) {
    let _ = fs::remove_file(dst);
    let env: &[(&str, &str)] = match trigger {
        Trigger::Always => &[("CFRFIX_MODE", "always")],
        _ => &[],
    };
    let setup = Setup {
        inject: match trigger {
            Trigger::Injected(errno) => Some(errno),
            _ => None,
        },
        shim: true,
        env,
    };
    let size = fs::metadata(src).expect("stat source").len();
    let line = calls::copy(setup, src, dst, "len=2147479552 repeat=until0");
    assert!(
        line.starts_with(&format!("ret={size} errno=0 ")),
        "{} -> {} under {trigger:?}: {line}",
        src.display(),
        dst.display()
    );
    assert_same_files(src, dst);
}

/// Compares two (possibly large) files a MiB at a time.
fn assert_same_files(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (
        fs::File::open(a).expect("open"),
        fs::File::open(b).expect("open"),
    );
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut at = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba);
        let nb = read_full(&mut fb, &mut bb);
        assert_eq!(
            na,
            nb,
            "{} and {} differ in size near {at}",
            a.display(),
            b.display()
        );
        if ba[..na] != bb[..nb] {
            let i = ba.iter().zip(&bb).position(|(x, y)| x != y).unwrap_or(0);
            panic!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                at + i as u64
            );
        }
        if na == 0 {
            return;
        }
        at += na as u64;
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).expect("read") {
            0 => break,
            r => n += r,
        }
    }
    n
}

/// A 1 GiB file with 1 MiB of data in three extents (unaligned, one at the very end).
fn sparse_gibibyte(path: &Path) {
    let f = fs::File::create(path).expect("create");
    for (i, (at, len)) in [
        (0, 256 << 10),
        (300 * MIB + 123, 256 << 10),
        ((1 << 30) - (512 << 10), 512 << 10),
    ]
    .into_iter()
    .enumerate()
    {
        f.write_all_at(&pattern(i as u64 + 20, len), at)
            .expect("extent");
    }
}

/// ext4 for these tests: the directory cargo gives tests (the root filesystem here). None,
/// after SKIPPED, if it is not ext4.
fn ext4_dir(tag: &str) -> Option<ScratchDir> {
    let dir = ScratchDir::rootfs(tag);
    if fs_type(dir.path()) != "ext4" {
        crate::common::skip(&format!(
            "{} is not ext4 (it is {}): the ext4 allocation cases need it",
            dir.path().display(),
            fs_type(dir.path())
        ));
        return None;
    }
    Some(dir)
}

/// The type of the filesystem holding `path`, as the mount table names it.
fn fs_type(path: &Path) -> String {
    let out = std::process::Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "--target"])
        .arg(path)
        .output()
        .expect("findmnt");
    let text = crate::common::text(&out.stdout);
    text.lines().next().unwrap_or("").trim().to_string()
}

/// 1 GiB with 1 MiB of data: every copy (tmpfs and ext4, both ways) allocates at most the
/// source's allocation + 1 MiB, and is identical.
#[test]
fn a_sparse_gibibyte_stays_sparse_on_tmpfs_and_ext4() {
    let tmpfs = ScratchDir::tmpfs("data-first-gib");
    let Some(ext4) = ext4_dir("data-first-gib") else {
        return;
    };
    for src_dir in [tmpfs.path(), ext4.path()] {
        let src = src_dir.join("src");
        sparse_gibibyte(&src);
        let (src_blocks, _) = blocks_and_size(&src);
        assert!(
            src_blocks <= 2 * MIB_IN_BLOCKS,
            "source: {src_blocks} blocks"
        );
        for dst_dir in [tmpfs.path(), ext4.path()] {
            let dst = dst_dir.join("dst");
            // Within one filesystem the kernel copies by itself: inject its refusal there.
            let trigger = if src_dir == dst_dir {
                Trigger::Injected(95)
            } else {
                Trigger::Natural
            };
            copy_whole(&src, &dst, trigger);
            let (blocks, _) = blocks_and_size(&dst);
            eprintln!(
                "{} -> {}: source {src_blocks} blocks, copy {blocks}",
                fs_type(src_dir),
                fs_type(dst_dir)
            );
            assert!(
                blocks <= src_blocks + MIB_IN_BLOCKS,
                "{} -> {}: {blocks} blocks, source {src_blocks} (+1 MiB allowed)",
                src.display(),
                dst.display()
            );
            fs::remove_file(&dst).expect("remove copy");
        }
        fs::remove_file(&src).expect("remove source");
    }
}

/// A fully allocated source made of zero bytes (as databases and VM images preallocate) stays
/// fully allocated: the kernel's own copy keeps it so, and so does every fallback copy.
#[test]
fn a_fully_allocated_zero_source_stays_allocated() {
    let tmpfs = ScratchDir::tmpfs("data-first-zeros");
    let Some(ext4) = ext4_dir("data-first-zeros") else {
        return;
    };
    let size = 16 * MIB;
    for src_dir in [tmpfs.path(), ext4.path()] {
        let src = src_dir.join("zeros");
        fs::write(&src, vec![0u8; size as usize]).expect("write zeros");
        let (src_blocks, _) = blocks_and_size(&src);
        assert!(
            src_blocks * 512 >= size,
            "source not allocated: {src_blocks}"
        );
        // The kernel's own copy, for reference.
        let native = src_dir.join("native");
        let line = calls::copy(calls::NATIVE, &src, &native, "len=2147479552 repeat=until0");
        assert!(line.starts_with(&format!("ret={size} errno=0 ")), "{line}");
        let (native_blocks, _) = blocks_and_size(&native);
        assert!(native_blocks * 512 >= size, "kernel copy: {native_blocks}");
        fs::remove_file(&native).expect("remove");
        for dst_dir in [tmpfs.path(), ext4.path()] {
            for trigger in [Trigger::Injected(95), Trigger::Always, Trigger::Natural] {
                if matches!(trigger, Trigger::Natural) == (src_dir == dst_dir) {
                    continue; // natural EXDEV only across filesystems
                }
                let dst = dst_dir.join("dst");
                copy_whole(&src, &dst, trigger);
                let (blocks, _) = blocks_and_size(&dst);
                assert!(
                    blocks * 512 >= size,
                    "{} -> {} under {trigger:?}: {blocks} blocks for {size} bytes of zeros",
                    fs_type(src_dir),
                    fs_type(dst_dir)
                );
                fs::remove_file(&dst).expect("remove copy");
            }
        }
    }
}

/// Where the source's filesystem has an extent map (ext4), allocation is kept per extent: an
/// allocated range of zeros and a preallocated (unwritten) range stay allocated, a hole stays a
/// hole.
#[test]
fn a_mixed_ext4_source_keeps_its_allocation_per_extent() {
    let Some(ext4) = ext4_dir("data-first-mixed") else {
        return;
    };
    let src = ext4.path().join("mixed");
    let f = fs::File::create(&src).expect("create");
    f.write_all_at(&vec![0u8; MIB as usize], 0).expect("zeros");
    f.write_all_at(&pattern(30, MIB as usize), 9 * MIB)
        .expect("data");
    // SAFETY: fallocate on our own open file; mode 0 allocates (unwritten extents on ext4).
    let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 10 * MIB as i64, MIB as i64) };
    assert_eq!(r, 0, "fallocate: {}", std::io::Error::last_os_error());
    f.set_len(12 * MIB).expect("size");
    f.sync_all().expect("sync");
    drop(f);
    let (src_blocks, _) = blocks_and_size(&src);
    assert!(
        (3 * MIB_IN_BLOCKS..4 * MIB_IN_BLOCKS).contains(&src_blocks),
        "source: {src_blocks} blocks"
    );
    let dst = ext4.path().join("dst");
    for trigger in [Trigger::Injected(95), Trigger::Always] {
        copy_whole(&src, &dst, trigger);
        let (blocks, _) = blocks_and_size(&dst);
        eprintln!("mixed ext4 source: {src_blocks} blocks; copy under {trigger:?}: {blocks}");
        assert!(
            blocks >= src_blocks && blocks <= src_blocks + MIB_IN_BLOCKS,
            "copy under {trigger:?}: {blocks} blocks, source {src_blocks}"
        );
        fs::remove_file(&dst).expect("remove copy");
    }
}

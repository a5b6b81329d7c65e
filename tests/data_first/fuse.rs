//! Copies from a filesystem that lies (tests/fuse/lyingfs.c), through the library: each must
//! equal what the program's own source descriptor reads, byte for byte (tests/c/copy_verify.c
//! checks that inside the program). Before issue 9, a lying SEEK_HOLE turned data into zeros, a
//! second open by path read another file, and the library's own `lseek`/`fstat` failures became
//! the program's errors.

use super::{LyingFs, SETTINGS, TRIGGERS, Trigger, c_helper, run_through_shim};
use crate::calls::pattern;
use crate::common::ScratchDir;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

const MIB: u64 = 1 << 20;

/// The sources every lying mount serves: a dense file of non-zero bytes, and a sparse one
/// (non-zero extents between holes, a trailing hole).
fn write_sources(fs: &LyingFs) -> [(&'static str, u64); 2] {
    fs::write(fs.backing("dense"), pattern(1, 3 * MIB as usize + 77)).expect("dense source");
    let sparse = fs::File::create(fs.backing("sparse")).expect("sparse source");
    for (i, (at, len)) in [(MIB, 5000), (3 * MIB + 123, 70_000), (5 * MIB, 1_500_000)]
        .into_iter()
        .enumerate()
    {
        sparse
            .write_all_at(&pattern(i as u64 + 2, len), at)
            .expect("extent");
    }
    sparse.set_len(8 * MIB + 17).expect("size");
    [("dense", 3 * MIB + 77), ("sparse", 8 * MIB + 17)]
}

/// `copy_verify`'s line for a copy of `size` bytes that matched the source descriptor.
fn copied_whole(size: u64) -> String {
    format!("ret=0 errno=0 total={size} src={size} same=1 first_diff=-1 invented_zeros=0")
}

/// Every source of `fs` copied under every trigger, setting and entry point, into tmpfs (a
/// local filesystem: holes may be left there) and, where the kernel is not the one refusing,
/// into the FUSE mount itself (a cached size: every byte written).
fn copies_equal_the_source(fs: &LyingFs, what: &str) -> usize {
    let out = ScratchDir::tmpfs("data-first-out");
    let Some(copy_verify) = c_helper(out.path(), "copy_verify") else {
        return 0;
    };
    let mut runs = 0;
    for (name, size) in write_sources(fs) {
        for trigger in TRIGGERS {
            for (engine, sparse) in SETTINGS {
                for via in ["libc", "syscall"] {
                    let tmpfs_dst = out.path().join("dst");
                    let fuse_dst = fs.file("dst");
                    let dsts: &[&Path] = match trigger {
                        Trigger::Natural => &[&tmpfs_dst],
                        _ => &[&tmpfs_dst, &fuse_dst],
                    };
                    for dst in dsts {
                        let env = [("CFRFIX_ENGINE", engine), ("CFRFIX_SPARSE", sparse)];
                        let args = [&fs.file(name), *dst, Path::new(via)];
                        let run = run_through_shim(&copy_verify, &args, trigger, &env);
                        assert_eq!(
                            run.stdout.trim_end(),
                            copied_whole(size),
                            "{what}: {name} -> {} under {trigger:?}, engine {engine}, sparse \
                             {sparse}, via {via}: {run:?}",
                            dst.display()
                        );
                        let _ = fs::remove_file(dst);
                        runs += 1;
                    }
                }
            }
        }
    }
    runs
}

/// What a program sees of the mount's lies: `SEEK_DATA` and `SEEK_HOLE` from offset 0 of each
/// source, and `st_blocks`.
fn what_programs_see(fs: &LyingFs, name: &str) -> (i64, i64, u64) {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    let f = fs::File::open(fs.file(name)).expect("open through the mount");
    // SAFETY: lseek on our own open file.
    let seek = |whence| unsafe { libc::lseek(f.as_raw_fd(), 0, whence) };
    let blocks = f.metadata().expect("fstat").blocks();
    (seek(libc::SEEK_DATA), seek(libc::SEEK_HOLE), blocks)
}

/// The lies reach programs (else the copies below would prove nothing): on the dense source
/// `lie=holes` says "hole" at 0, on the sparse one (a hole until 1 MiB) `lie=data` says "data"
/// at 0 and no hole before the end; `blocks=` shows in `st_blocks`.
fn assert_lies_are_seen(fs: &LyingFs, lie: &str, blocks: &str) {
    let (dense_data, dense_hole, dense_blocks) = what_programs_see(fs, "dense");
    let (sparse_data, sparse_hole, _) = what_programs_see(fs, "sparse");
    let size = (3 * MIB + 77) as i64;
    let seen = (dense_data, dense_hole, sparse_data, sparse_hole);
    let expected = match lie {
        "holes" => (-1, 0, -1, 0),
        "data" => (0, size, 0, (8 * MIB + 17) as i64),
        _ => (0, size, MIB as i64, 0),
    };
    assert_eq!(
        seen, expected,
        "lie={lie}: SEEK_DATA/SEEK_HOLE as programs see them"
    );
    let expected_blocks = match blocks {
        "zero" => Some(0),
        "full" => Some((size as u64).div_ceil(512)),
        _ => None,
    };
    if let Some(b) = expected_blocks {
        assert_eq!(
            dense_blocks, b,
            "blocks={blocks}: st_blocks as programs see it"
        );
    }
}

/// Mounts with `lie` and each `st_blocks` lie, and checks every copy.
fn lying_mount(lie: &str) {
    for blocks in ["truth", "zero", "full"] {
        let options = [format!("lie={lie}"), format!("blocks={blocks}")];
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let Some(fs) = LyingFs::mount("data-first-lie", &options) else {
            return;
        };
        write_sources(&fs);
        assert_lies_are_seen(&fs, lie, blocks);
        let runs = copies_equal_the_source(&fs, &format!("lie={lie} blocks={blocks}"));
        eprintln!("lie={lie} blocks={blocks}: {runs} copies equal to the source descriptor");
    }
}

/// OpenZFS 2.2.0-2.2.3: SEEK_HOLE said "hole" over recently written data.
#[test]
fn hole_over_data_never_becomes_zeros() {
    lying_mount("holes");
}

/// The other lie: data where there is a hole (only allocation may suffer, never bytes).
#[test]
fn data_over_hole_copies_the_zeros() {
    lying_mount("data");
}

/// The honest map, through the same FUSE paths (the control for the two lies).
#[test]
fn a_truthful_map_copies_the_same() {
    lying_mount("truth");
}

/// A path-based server opens by path: after another file is renamed over the source's
/// backing path, the program's descriptor still reads the old file, and the copy must too
/// (a second open of the source would reach the new one: all hole here, so zeros).
#[test]
fn a_second_open_would_reach_another_file() {
    let Some(fs) = LyingFs::mount("data-first-rename", &[]) else {
        return;
    };
    let out = ScratchDir::tmpfs("data-first-rename-out");
    let Some(copy_verify) = c_helper(out.path(), "copy_verify") else {
        return;
    };
    let size = 3 * MIB;
    for trigger in TRIGGERS {
        for (engine, sparse) in SETTINGS {
            for via in ["libc", "syscall"] {
                fs::write(fs.backing("src"), pattern(9, size as usize)).expect("source");
                let other = fs::File::create(fs.backing("other")).expect("other");
                other.set_len(size).expect("all hole");
                let dst = out.path().join("dst");
                let (from, to) = (fs.backing("other"), fs.backing("src"));
                let args = [&fs.file("src"), &dst, Path::new(via), &from, &to];
                let env = [("CFRFIX_ENGINE", engine), ("CFRFIX_SPARSE", sparse)];
                let run = run_through_shim(&copy_verify, &args, trigger, &env);
                assert_eq!(
                    run.stdout.trim_end(),
                    copied_whole(size),
                    "renamed over, {trigger:?}, engine {engine}, sparse {sparse}, via {via}: \
                     {run:?}"
                );
            }
        }
    }
}

/// Steps the kernel does not take: the library's `lseek` on a non-seekable file (ESPIPE) and
/// its `fstat` failing (EIO). The program gets the kernel's answer: EXDEV to another
/// filesystem, EINVAL within the FUSE mount, or the injected errno (and in mode `always`, where
/// the kernel is not asked, EXDEV); the log says nothing was read.
#[test]
fn a_failing_step_of_the_emulation_gives_the_kernels_answer() {
    let Some(fs) = LyingFs::mount("data-first-steps", &["attr_timeout=0"]) else {
        return;
    };
    let out = ScratchDir::tmpfs("data-first-steps-out");
    let Some(copy_verify) = c_helper(out.path(), "copy_verify") else {
        return;
    };
    let log = out.path().join("log");
    let log_setting = log.display().to_string();
    for name in ["nonseekable", "failstat"] {
        for trigger in TRIGGERS {
            for via in ["libc", "syscall"] {
                for (dst, kernel_errno) in [(out.path().join("dst"), 18), (fs.file("dst"), 22)] {
                    fs::write(fs.backing(name), pattern(4, 100_000)).expect("source");
                    // Mode always never asks the kernel: an impossible emulation is a
                    // cross-filesystem refusal, which programs answer by copying themselves.
                    let expected = match trigger {
                        Trigger::Injected(errno) => errno,
                        Trigger::Natural => kernel_errno,
                        Trigger::Always => 18,
                    };
                    // Within the mount the kernel copies a failstat file itself: no fallback.
                    if name == "failstat"
                        && kernel_errno == 22
                        && matches!(trigger, Trigger::Natural)
                    {
                        continue;
                    }
                    let _ = fs::remove_file(&log);
                    let env = [("CFRFIX_LOG", log_setting.as_str())];
                    let args = [&fs.file(name), &dst, Path::new(via)];
                    let run = run_through_shim(&copy_verify, &args, trigger, &env);
                    let what = format!("{name} -> {} under {trigger:?} via {via}", dst.display());
                    assert!(
                        run.stdout
                            .starts_with(&format!("ret=-1 errno={expected} total=0 ")),
                        "{what}: expected the kernel's errno {expected}: {run:?}"
                    );
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    assert!(
                        text.contains("user-space copy impossible here (")
                            && text.contains("read 0, wrote 0, left 0 as holes")
                            && !text.contains("; copied "),
                        "{what}: log: {text:?}"
                    );
                }
            }
        }
    }
}

/// Real `cp` from a non-seekable file to another filesystem: it works without cfrfix (cp
/// falls back on EXDEV by itself), so it must work with it, byte for byte.
#[test]
fn cp_copies_a_non_seekable_file_with_and_without_cfrfix() {
    let Some(fs) = LyingFs::mount("data-first-cp", &[]) else {
        return;
    };
    let out = ScratchDir::tmpfs("data-first-cp-out");
    let content = pattern(5, 2_000_000);
    fs::write(fs.backing("nonseekable"), &content).expect("source");
    let cp = Path::new("/bin/cp");
    for shim in [false, true] {
        let dst = out.path().join(format!("dst-{shim}"));
        let src = fs.file("nonseekable");
        let args: [&Path; 2] = [&src, &dst];
        let run = if shim {
            run_through_shim(cp, &args, Trigger::Natural, &[])
        } else {
            let args: Vec<_> = args.iter().map(|a| a.as_os_str().to_owned()).collect();
            crate::calls::run_program(
                "/bin/cp",
                crate::calls::NATIVE,
                &args,
                "",
                std::time::Duration::from_secs(30),
            )
        };
        assert!(run.success, "cp (shim: {shim}): {run:?}");
        assert_eq!(fs::read(&dst).expect("copy"), content, "cp (shim: {shim})");
    }
}

/// A FUSE destination's size is cached, not authoritative: a sparse source is written there
/// byte for byte (the backing file ends up fully allocated), and the log says no holes were
/// left.
#[test]
fn a_fuse_destination_gets_every_byte() {
    let Some(fs) = LyingFs::mount("data-first-fuse-dst", &[]) else {
        return;
    };
    let out = ScratchDir::tmpfs("data-first-fuse-dst-out");
    let Some(copy_verify) = c_helper(out.path(), "copy_verify") else {
        return;
    };
    let src = out.path().join("sparse");
    let file = fs::File::create(&src).expect("source");
    file.write_all_at(&pattern(6, 100_000), 2 * MIB)
        .expect("data");
    file.set_len(6 * MIB).expect("size");
    let log = out.path().join("log");
    let log_setting = log.display().to_string();
    let env = [("CFRFIX_LOG", log_setting.as_str())];
    let dst = fs.file("dst");
    let run = run_through_shim(
        &copy_verify,
        &[&src, &dst, Path::new("libc")],
        Trigger::Injected(95),
        &env,
    );
    assert_eq!(run.stdout.trim_end(), copied_whole(6 * MIB), "{run:?}");
    let blocks = fs::metadata(fs.backing("dst")).expect("stat").blocks();
    assert!(
        blocks * 512 >= 6 * MIB,
        "FUSE destination has {blocks} blocks for 6 MiB: holes were left"
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("left 0 as holes"), "log: {text:?}");
}

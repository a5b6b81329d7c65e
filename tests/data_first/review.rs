//! Regressions from the adversarial review of issue 9: each case gave a wrong answer before its
//! fix (review/FINDINGS.md on the review branch has the reproducers).
//!
//! - F3: a non-seekable destination with an explicit `off_out` got ESPIPE from the library's
//!   own `pwrite` instead of the kernel's answer;
//! - F4: `sendfile` limits the *source* position to the smaller filesystem's maximum file size,
//!   so a copy from tmpfs beyond ext4's 16 TiB to ext4 stopped short; the run now ends with
//!   `pread`/`pwrite`, as a kernel that copies would go on;
//! - F6: with `process_vm_writev` refused and no descriptor left for the pipe that replaces it,
//!   the data was copied and then the call failed with EMFILE; the write-back is now secured
//!   before copying, and the call answers as the kernel did.

use super::{LyingFs, SETTINGS, TRIGGERS, Trigger, c_helper, run_through_shim};
use crate::calls::{self, Setup, pattern};
use crate::common::ScratchDir;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// F3: `cfrfix-call` (explicit `off_out`) into a non-seekable FUSE file.
#[test]
fn a_non_seekable_destination_with_an_offset_gets_the_kernels_answer() {
    let Some(fs) = LyingFs::mount("data-first-review-f3", &[]) else {
        return;
    };
    let out = ScratchDir::tmpfs("data-first-review-f3");
    let tmpfs_src = out.path().join("src");
    fs::write(&tmpfs_src, pattern(70, 100_000)).expect("source");
    fs::write(fs.backing("src"), pattern(70, 100_000)).expect("source on FUSE");
    for trigger in TRIGGERS {
        // From tmpfs the kernel refuses with EXDEV; within the mount it copies by itself, so
        // only an injected refusal reaches the library there.
        let sources: &[(&Path, u32)] = match trigger {
            Trigger::Natural => &[(&tmpfs_src, 18)],
            _ => &[(&tmpfs_src, 18), (&fs.file("src"), 22)],
        };
        for &(src, natural_errno) in sources {
            fs::write(fs.backing("nonseekable-dst"), b"").expect("destination");
            let expected = match trigger {
                Trigger::Injected(errno) => errno,
                Trigger::Natural => natural_errno,
                Trigger::Always => 18,
            };
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
            let line = calls::copy(
                setup,
                src,
                &fs.file("nonseekable-dst"),
                "off_out=0 len=100000",
            );
            assert!(
                line.starts_with(&format!("ret=-1 errno={expected} ")),
                "{} -> non-seekable FUSE file under {trigger:?}: {line}",
                src.display()
            );
        }
    }
}

/// F4: a source range straddling ext4's maximum file size, read from tmpfs (whose maximum is
/// 2^63 - 1) and written to ext4 at offset 0: every engine copies all of it.
#[test]
fn a_source_past_the_destinations_maximum_size_is_copied_whole() {
    const EXT4_MAXBYTES: u64 = (1 << 44) - 4096;
    let tmpfs = ScratchDir::tmpfs("data-first-review-f4");
    let ext4 = ScratchDir::rootfs("data-first-review-f4");
    let src = tmpfs.path().join("src");
    let data = pattern(71, 8192);
    fs::File::create(&src)
        .expect("source")
        .write_all_at(&data, EXT4_MAXBYTES - 4096)
        .expect("data straddling 16 TiB");
    let probe = ext4.path().join("probe");
    let too_big = fs::File::create(&probe)
        .expect("probe")
        .set_len(EXT4_MAXBYTES + 1);
    if too_big.is_ok() {
        crate::common::skip(&format!(
            "{} is not ext4 with 4 KiB blocks (s_maxbytes 16 TiB - 4 KiB): F4 needs it",
            ext4.path().display()
        ));
        return;
    }
    let options = format!("off_in={} len=8192", EXT4_MAXBYTES - 4096);
    for (engine, sparse) in SETTINGS {
        if engine == "splice" {
            continue; // forced splice stops where its engine stops
        }
        let dst = ext4.path().join("dst");
        let _ = fs::remove_file(&dst);
        let env = [("CFRFIX_ENGINE", engine), ("CFRFIX_SPARSE", sparse)];
        let setup = Setup {
            inject: None,
            shim: true,
            env: &env,
        };
        let line = calls::copy(setup, &src, &dst, &options);
        assert!(
            line.starts_with("ret=8192 errno=0 "),
            "engine {engine}, sparse {sparse}: {line}"
        );
        assert_eq!(fs::read(&dst).expect("copy"), data, "engine {engine}");
    }
}

/// F6: the offset write-back has no `process_vm_writev` and no descriptor for a pipe: the call
/// fails before copying, with the trigger's answer, never after copying with EMFILE.
#[test]
fn an_offset_that_cannot_be_written_back_is_known_before_copying() {
    let dir = ScratchDir::tmpfs("data-first-review-f6");
    let Some(helper) = c_helper(dir.path(), "writeback_no_fds") else {
        return;
    };
    let src = dir.path().join("src");
    fs::write(&src, pattern(72, 100_000)).expect("source");
    let dst = dir.path().join("dst");
    for trigger in [Trigger::Injected(95), Trigger::Always] {
        let run = run_through_shim(&helper, &[&src, &dst], trigger, &[]);
        let expected = match trigger {
            Trigger::Injected(errno) => errno,
            _ => 18,
        };
        assert_eq!(
            run.stdout.trim_end(),
            format!("ret=-1 errno={expected} off_out=0 dst_size=0"),
            "under {trigger:?}: {run:?}"
        );
    }
}

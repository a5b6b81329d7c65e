//! No second open: an inotify watcher on the source sees the same events for a fallback copy
//! as for a plain read loop (tests/c/inotify_copy.c folds consecutive repeats, as the kernel
//! does). The sparse engine used to reopen the source through /proc, an extra OPEN and
//! CLOSE_NOWRITE (and a broken write lease for another process).

use super::{SETTINGS, Trigger, c_helper, run_through_shim};
use crate::calls::{self, pattern};
use crate::common::ScratchDir;
use std::fs;
use std::os::unix::fs::FileExt;
use std::time::Duration;

#[test]
fn a_watcher_sees_only_the_programs_own_reading() {
    let dir = ScratchDir::tmpfs("data-first-inotify");
    let other_fs = ScratchDir::rootfs("data-first-inotify");
    let Some(helper) = c_helper(dir.path(), "inotify_copy") else {
        return;
    };
    let dense = dir.path().join("dense");
    fs::write(&dense, pattern(40, 3_000_000)).expect("dense source");
    let sparse = dir.path().join("sparse");
    let f = fs::File::create(&sparse).expect("sparse source");
    f.write_all_at(&pattern(41, 100_000), 2_000_000)
        .expect("extent");
    f.set_len(5_000_000).expect("size");
    for src in [&dense, &sparse] {
        let plain_dst = dir.path().join("plain");
        let args = [src.as_os_str().to_owned(), plain_dst.into(), "read".into()];
        let plain = calls::run_program(
            &helper.display().to_string(),
            calls::NATIVE,
            &args,
            "",
            Duration::from_secs(30),
        );
        assert!(plain.success, "{plain:?}");
        assert_eq!(
            plain.stdout, "OPEN\nACCESS\nCLOSE_NOWRITE\n",
            "the plain read loop's events"
        );
        for trigger in [Trigger::Natural, Trigger::Injected(95), Trigger::Always] {
            for (engine, sparse_setting) in SETTINGS {
                // Across filesystems for the natural EXDEV, on tmpfs otherwise.
                let dst = match trigger {
                    Trigger::Natural => other_fs.path().join("dst"),
                    _ => dir.path().join("dst"),
                };
                let env = [("CFRFIX_ENGINE", engine), ("CFRFIX_SPARSE", sparse_setting)];
                let args = [src.as_path(), dst.as_path(), std::path::Path::new("cfr")];
                let run = run_through_shim(&helper, &args, trigger, &env);
                assert!(run.success, "{run:?}");
                assert_eq!(
                    run.stdout,
                    plain.stdout,
                    "{} under {trigger:?}, engine {engine}, sparse {sparse_setting}: a \
                     watcher saw more than the program's own reading",
                    src.display()
                );
            }
        }
    }
}

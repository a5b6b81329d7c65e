//! A natural failure: tmpfs -> ext4 is EXDEV since Linux 5.19, no injection needed.

use crate::common::{ScratchDir, skip};
use crate::python::PYTHON_COPY_FILE_RANGE_LOOP;
use crate::{
    Setup, Sources, assert_fallback_logged, fresh_dir, require_program, run, script_args,
    stderr_excerpt,
};
use std::fs;
use std::path::Path;

#[test]
fn python_cross_filesystem_exdev() {
    let Some(python) = require_program("python3") else {
        return;
    };
    let tmpfs = ScratchDir::tmpfs("exdev-src");
    let rootfs = ScratchDir::rootfs("exdev-dst");
    use std::os::unix::fs::MetadataExt;
    let device = |dir: &Path| fs::metadata(dir).expect("stat scratch dir").dev();
    if device(tmpfs.path()) == device(rootfs.path()) {
        skip(&format!(
            "natural EXDEV: {} is on the same filesystem as /dev/shm",
            rootfs.path().display()
        ));
        return;
    }
    let sources = Sources::create_in(tmpfs.path());
    let args = |dest: &Path| {
        let mut args = script_args("-c", PYTHON_COPY_FILE_RANGE_LOOP);
        args.extend(sources.paths().map(|p| p.as_os_str().to_owned()));
        args.push(dest.as_os_str().to_owned());
        args
    };

    let dest = fresh_dir(rootfs.path(), "without");
    let out = run(&python, &args(&dest), Setup::PLAIN, rootfs.path(), &[]);
    assert!(
        !out.status.success() && out.stderr.contains("[Errno 18]"),
        "tmpfs -> {}: expected os.copy_file_range to raise EXDEV without cfrfix; stderr: {}",
        rootfs.path().display(),
        stderr_excerpt(&out.stderr)
    );

    let dest = fresh_dir(rootfs.path(), "with");
    let log = rootfs.path().join("with.log");
    let setup = Setup {
        inject_errno: None,
        cfrfix_log: Some(&log),
    };
    let out = run(&python, &args(&dest), setup, rootfs.path(), &[]);
    let context = "python3 os.copy_file_range tmpfs -> rootfs with cfrfix";
    assert!(
        out.status.success(),
        "{context}: failed: {}",
        stderr_excerpt(&out.stderr)
    );
    sources.assert_copied_to(&dest, context);
    assert_fallback_logged(&log, 18, context);
}

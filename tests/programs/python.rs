//! Python: `os.copy_file_range` (a thin wrapper) and `shutil.copyfile` (CPython 3.14+).

use crate::common::skip;
use crate::{CopyProgram, require_program, script_args};
use std::process::Command;

/// `os.copy_file_range` until it returns 0, for each source.
pub(crate) const PYTHON_COPY_FILE_RANGE_LOOP: &str = r#"
import os, sys
*sources, dest = sys.argv[1:]
for src in sources:
    with open(src, "rb") as i, open(os.path.join(dest, os.path.basename(src)), "wb") as o:
        while os.copy_file_range(i.fileno(), o.fileno(), 1 << 30):
            pass
"#;

#[test]
fn python_os_copy_file_range() {
    let Some(python) = require_program("python3") else {
        return;
    };
    CopyProgram {
        label: "python3 os.copy_file_range",
        program: python,
        leading_args: script_args("-c", PYTHON_COPY_FILE_RANGE_LOOP),
        // os.copy_file_range is a thin wrapper: every errno raises.
        fails_without_cfrfix: &[95, 524, 18, 38, 1, 5],
        failure_marker: "[Errno ",
    }
    .check("python-cfr");
}

#[test]
fn python_shutil_copyfile() {
    let Some(python) = require_program("python3") else {
        return;
    };
    // shutil uses copy_file_range only where it has `_USE_CP_COPY_FILE_RANGE`
    // (CPython 3.14+); older versions use sendfile and never reach the shim.
    let probe = Command::new(&python)
        .args(["-c", "import shutil, sys; sys.exit(0 if getattr(shutil, '_USE_CP_COPY_FILE_RANGE', False) else 3)"])
        .output()
        .expect("run python3");
    if probe.status.code() == Some(3) {
        let version = Command::new(&python)
            .arg("--version")
            .output()
            .expect("python3 --version");
        skip(&format!(
            "python3 shutil.copyfile: {} uses sendfile, not copy_file_range (that needs CPython 3.14+)",
            String::from_utf8_lossy(&version.stdout).trim()
        ));
        return;
    }
    assert!(probe.status.success(), "python3 probe failed: {probe:?}");
    CopyProgram {
        label: "python3 shutil.copyfile",
        program: python,
        leading_args: script_args(
            "-c",
            "import os, shutil, sys\n*s, d = sys.argv[1:]\nfor f in s: shutil.copyfile(f, os.path.join(d, os.path.basename(f)))",
        ),
        // shutil gives up on copy_file_range (to sendfile, then read/write) on any
        // error while nothing has been copied.
        fails_without_cfrfix: &[],
        failure_marker: "Error",
    }
    .check("python-shutil");
}

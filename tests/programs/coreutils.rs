//! coreutils `cp`.

use crate::{CopyProgram, require_program};

#[test]
fn coreutils_cp() {
    let Some(cp) = require_program("cp") else {
        return;
    };
    // cp 9.1 tries FICLONE, then copy_file_range, for a plain `cp SRC DST`: no
    // option needed. It falls back to read/write on the "clone not supported"
    // errnos (EOPNOTSUPP, EXDEV, ENOSYS, EPERM, ...), not on EIO or 524.
    CopyProgram {
        label: "cp",
        program: cp,
        leading_args: Vec::new(),
        fails_without_cfrfix: &[524, 5],
        failure_marker: "error copying",
    }
    .check("cp");
}

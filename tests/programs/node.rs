//! Node: `fs.copyFileSync`, through libuv's `syscall()`.

use crate::{CopyProgram, require_program, script_args};

#[test]
fn node_fs_copy_file_sync() {
    let Some(node) = require_program("node") else {
        return;
    };
    // Node's libuv calls `syscall(__NR_copy_file_range, ...)`, not the libc symbol,
    // so only cfrfix's `syscall()` hook can see it.
    CopyProgram {
        label: "node fs.copyFileSync",
        program: node,
        leading_args: script_args(
            "-e",
            "const fs = require('fs'), path = require('path');\
             const a = process.argv.slice(1), d = a.pop();\
             for (const f of a) fs.copyFileSync(f, path.join(d, path.basename(f)));",
        ),
        // libuv falls back to sendfile on ENOSYS, EOPNOTSUPP and EXDEV, and to
        // read/write on EIO; EPERM only on CIFS.
        fails_without_cfrfix: &[524, 1],
        failure_marker: "copyfile",
    }
    .check("node");
}

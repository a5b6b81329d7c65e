//! Rows 4 and 5: what the preloaded shim costs calls it does not take over: one-byte copies the
//! kernel does itself, and a `syscall(SYS_getppid)` loop through the interposed `syscall()`.

use std::path::Path;

use super::{Goal, Group, Ratio, Variant, write_dense};
use crate::driver::{Options, os};

/// Row 4: one-byte copies per measurement.
const BYTE_COPIES: u64 = 200_000;
/// Row 5: `syscall(SYS_getppid)` calls per batch.
const SYSCALLS: u64 = 1_000_000;

pub(crate) fn bytes_group(o: &Options, dir: &Path) -> Result<Group, String> {
    let src = dir.join("bytes-src");
    write_dense(&src, BYTE_COPIES)?;
    let reps = if o.quick { "1" } else { "3" };
    let args = vec![
        os("bytes"),
        os(&src),
        os(dir.join("bytes-dst")),
        os(BYTE_COPIES.to_string()),
        os(reps),
    ];
    let v = |name, preload| Variant {
        name,
        args: args.clone(),
        preload,
        inject: false,
        env: vec![],
        ops: BYTE_COPIES,
    };
    Ok(Group {
        title: format!(
            "row 4: {}k one-byte copies by the kernel",
            BYTE_COPIES / 1000
        ),
        variants: vec![v("none", false), v("shim", true)],
        ratios: vec![Ratio {
            row: "4",
            what: format!(
                "{}k one-byte kernel copies, with shim ÷ without",
                BYTE_COPIES / 1000
            ),
            den: 0,
            num: 1,
            goal: Goal::AtMost(1.03),
        }],
        blocks: vec![],
        verify_arg: None,
    })
}

pub(crate) fn syscall_group(o: &Options) -> Group {
    let reps = if o.quick { "1" } else { "5" };
    let args = vec![os("syscall"), os(SYSCALLS.to_string()), os(reps)];
    let v = |name, preload| Variant {
        name,
        args: args.clone(),
        preload,
        inject: false,
        env: vec![],
        ops: SYSCALLS,
    };
    Group {
        title: "row 5: syscall(SYS_getppid) loop".into(),
        variants: vec![v("none", false), v("shim", true)],
        ratios: vec![Ratio {
            row: "5",
            what: format!(
                "syscall(SYS_getppid) ×{}M, with shim ÷ without",
                SYSCALLS / 1_000_000
            ),
            den: 0,
            num: 1,
            goal: Goal::AtMost(1.05),
        }],
        blocks: vec![],
        verify_arg: None,
    }
}

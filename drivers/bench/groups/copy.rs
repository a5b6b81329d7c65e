//! Rows 1-2 and 1b-2b: a page-cached 256 MiB tmpfs→tmpfs copy by the kernel, by the fallback
//! under each engine and through `cfrfix-inject 95`, and by a 128 KiB pread/pwrite loop; into a
//! new file, then over an existing destination.

use std::path::Path;

use super::{FALLBACK, Goal, Group, Ratio, Variant, write_dense};
use crate::MIB;
use crate::driver::os;

/// Row 1/2 file: big enough that a copy takes tens of milliseconds (timer and start-up noise
/// vanish), small enough that a round of seven copies stays around a second.
const COPY_SIZE: u64 = 256 * MIB;

pub(crate) fn copy_group(dir: &Path) -> Result<Group, String> {
    let src = dir.join("src256");
    eprintln!("making {} ({} MiB)", src.display(), COPY_SIZE / MIB);
    write_dense(&src, COPY_SIZE)?;
    let dst = dir.join("dst");
    let copy = |worker: &str| vec![os(worker), os(&src), os(&dst), os("0")];
    let v = |name, worker: &str, preload, inject, env: Vec<(&'static str, &'static str)>| Variant {
        name,
        args: copy(worker),
        preload,
        inject,
        env,
        ops: 1,
    };
    let engine = |e| vec![FALLBACK, ("CFRFIX_ENGINE", e)];
    // The same six twice: into a new destination file each time (rows 1 and 2, as the issue
    // states them), then overwriting an existing full-size destination (rows 1b and 2b, see
    // `Dest`). Alternated in one group, so both sets see the same machine state.
    let mut variants = Vec::new();
    for (over, [kernel, auto, splice, rw, inject, rwloop]) in [
        ("", ["kernel", "auto", "splice", "rw", "inject", "rwloop"]),
        (
            "-over",
            [
                "kernel-over",
                "auto-over",
                "splice-over",
                "rw-over",
                "inject-over",
                "rwloop-over",
            ],
        ),
    ] {
        let copy = format!("copy{over}");
        variants.extend([
            v(kernel, &copy, false, false, vec![]),
            v(auto, &copy, true, false, engine("auto")),
            v(splice, &copy, true, false, engine("splice")),
            v(rw, &copy, true, false, engine("rw")),
            v(inject, &copy, true, true, vec![("CFRFIX_ENGINE", "auto")]),
            v(rwloop, &format!("rwloop{over}"), false, false, vec![]),
        ]);
    }
    const OVER: usize = 6;
    let size = format!("{} MiB tmpfs→tmpfs", COPY_SIZE / MIB);
    let r = |row, what: String, den, num, goal| Ratio {
        row,
        what,
        den,
        num,
        goal,
    };
    Ok(Group {
        title: format!("rows 1-2 and 1b-2b: copy of a page-cached {size}"),
        ratios: vec![
            r(
                "1",
                format!("fallback (auto) ÷ kernel copy, {size}"),
                0,
                1,
                Goal::AtMost(1.10),
            ),
            r(
                "1",
                "fallback (splice) ÷ kernel copy".into(),
                0,
                2,
                Goal::AtMost(1.10),
            ),
            r(
                "1",
                "fallback (rw) ÷ kernel copy".into(),
                0,
                3,
                Goal::AtMost(1.10),
            ),
            r(
                "1",
                "fallback (auto) via cfrfix-inject 95 ÷ kernel copy".into(),
                0,
                4,
                Goal::AtMost(1.10),
            ),
            r(
                "2",
                "128 KiB pread/pwrite loop ÷ fallback (auto)".into(),
                1,
                5,
                Goal::AtLeast(1.30),
            ),
            r(
                "1b",
                "existing destination overwritten: fallback (auto) ÷ kernel copy".into(),
                OVER,
                OVER + 1,
                Goal::AtMost(1.10),
            ),
            r(
                "1b",
                "existing destination: fallback (splice) ÷ kernel copy".into(),
                OVER,
                OVER + 2,
                Goal::AtMost(1.10),
            ),
            r(
                "1b",
                "existing destination: fallback (rw) ÷ kernel copy".into(),
                OVER,
                OVER + 3,
                Goal::AtMost(1.10),
            ),
            r(
                "1b",
                "existing destination: fallback (auto) via cfrfix-inject 95 ÷ kernel copy".into(),
                OVER,
                OVER + 4,
                Goal::AtMost(1.10),
            ),
            r(
                "2b",
                "existing destination: 128 KiB pread/pwrite loop ÷ fallback (auto)".into(),
                OVER + 1,
                OVER + 5,
                Goal::AtLeast(1.30),
            ),
            r(
                "1b",
                "  kernel copy, new file ÷ existing destination (page allocation)".into(),
                OVER,
                0,
                Goal::Info,
            ),
        ],
        variants,
        blocks: vec![],
        verify_arg: Some(3),
    })
}

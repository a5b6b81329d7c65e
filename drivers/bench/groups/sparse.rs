//! Row 3: a 1 GiB sparse file (1 MiB of data) copied by the fallback, against a dense 1 GiB
//! fallback copy, with `CFRFIX_SPARSE=off` and by the kernel; and the destination's allocation.
//! The fallback reads the holes (issue 9: nothing is skipped that was not read), so the goal
//! is half the dense copy's time, not the near-nothing of a copy that trusts a hole map.
//! Row 3b: the fully allocated 1 GiB source, default engine against the splice engine.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::{BlocksCheck, FALLBACK, Goal, Group, Ratio, Variant, write_dense};
use crate::driver::os;
use crate::{GIB, MIB};

/// Row 3: a 1 GiB file holding `SPARSE_EXTENTS` data extents of `SPARSE_EXTENT` bytes (1 MiB).
const SPARSE_SIZE: u64 = GIB;
const SPARSE_EXTENTS: u64 = 16;
const SPARSE_EXTENT: u64 = 64 * 1024;

pub(crate) fn sparse_group(dir: &Path) -> Result<Group, String> {
    let dense = dir.join("dense1g");
    let sparse = dir.join("sparse1g");
    eprintln!("making {} and {}", dense.display(), sparse.display());
    write_dense(&dense, SPARSE_SIZE)?;
    let src_alloc = write_sparse(&sparse)?;
    let dst = dir.join("dst");
    let copy = |src: &Path| vec![os("copy"), os(src), os(&dst), os("0")];
    let fallback = vec![FALLBACK, ("CFRFIX_ENGINE", "auto")];
    let mut sparse_off = fallback.clone();
    sparse_off.push(("CFRFIX_SPARSE", "off"));
    let splice = vec![FALLBACK, ("CFRFIX_ENGINE", "splice")];
    let v = |name, src: &Path, preload, env| Variant {
        name,
        args: copy(src),
        preload,
        inject: false,
        env,
        ops: 1,
    };
    let variants = vec![
        v("dense", &dense, true, fallback.clone()),
        v("sparse", &sparse, true, fallback),
        v("sparse-off", &sparse, true, sparse_off),
        v("kernel", &sparse, false, vec![]),
        v("dense-splice", &dense, true, splice),
    ];
    let mib = |b: u64| b as f64 / MIB as f64;
    let data = format!(
        "1 GiB sparse file ({:.0} MiB data in {SPARSE_EXTENTS} extents)",
        mib(SPARSE_EXTENTS * SPARSE_EXTENT)
    );
    Ok(Group {
        title: format!("row 3: {data}"),
        ratios: vec![
            Ratio {
                row: "3",
                what: format!("{data}, fallback ÷ 1 GiB dense fallback copy"),
                den: 0,
                num: 1,
                goal: Goal::AtMost(0.5),
            },
            Ratio {
                row: "3",
                what: "  same with CFRFIX_SPARSE=off ÷ dense copy".into(),
                den: 0,
                num: 2,
                goal: Goal::Info,
            },
            Ratio {
                row: "3",
                what: "  kernel copy (no shim) of the sparse file ÷ dense fallback copy".into(),
                den: 0,
                num: 3,
                goal: Goal::Info,
            },
            Ratio {
                row: "3b",
                what: "1 GiB fully allocated: fallback (auto) ÷ fallback (splice engine)".into(),
                den: 4,
                num: 0,
                goal: Goal::AtMost(1.05),
            },
        ],
        blocks: vec![
            BlocksCheck {
                row: "3",
                what: format!(
                    "destination allocation, fallback (source: {:.2} MiB)",
                    mib(src_alloc)
                ),
                variant: 1,
                limit: Some(src_alloc + MIB),
            },
            BlocksCheck {
                row: "3",
                what: "  destination allocation, CFRFIX_SPARSE=off".into(),
                variant: 2,
                limit: None,
            },
            BlocksCheck {
                row: "3",
                what: "  destination allocation, kernel copy".into(),
                variant: 3,
                limit: None,
            },
        ],
        variants,
        verify_arg: Some(3),
    })
}

/// Row 3's source: 1 GiB, holes everywhere but `SPARSE_EXTENTS` evenly spread data extents
/// (starting inside the file and ending with a hole, the harder case for a hole-skipping copy,
/// which must still set the final size). Returns its allocation in bytes.
fn write_sparse(path: &Path) -> Result<u64, String> {
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.set_len(SPARSE_SIZE).map_err(|e| e.to_string())?;
    let data = vec![0x5Au8; SPARSE_EXTENT as usize];
    let stride = SPARSE_SIZE / SPARSE_EXTENTS;
    for i in 0..SPARSE_EXTENTS {
        f.write_all_at(&data, i * stride + stride / 2)
            .map_err(|e| e.to_string())?;
    }
    Ok(f.metadata().map_err(|e| e.to_string())?.blocks() * 512)
}

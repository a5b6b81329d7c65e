//! The measurement groups, one module per family of rows, and what a group is: its variants
//! (how a worker is run), the ratios between them that are printed with their goals, and the
//! allocation checks. Also the fallback setting and the dense test file the groups share.

mod copy;
mod exec;
mod overhead;
mod sparse;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::MIB;
use crate::driver::check_interrupt;

pub(crate) use copy::copy_group;
pub(crate) use exec::exec_group;
pub(crate) use overhead::{bytes_group, syscall_group};
pub(crate) use sparse::sparse_group;

/// How a row's goal reads, applied to the median ratio.
#[derive(Clone, Copy)]
pub(crate) enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Shown for context; no goal.
    Info,
}

/// One way of running a measurement.
pub(crate) struct Variant {
    pub(crate) name: &'static str,
    /// Worker arguments (after `worker`).
    pub(crate) args: Vec<OsString>,
    pub(crate) preload: bool,
    /// Run under `cfrfix-inject 95`.
    pub(crate) inject: bool,
    pub(crate) env: Vec<(&'static str, &'static str)>,
    /// Operations per measurement, to show medians per operation.
    pub(crate) ops: u64,
}

/// A printed line: the ratio `num`/`den` of two variants of the same group, per round.
pub(crate) struct Ratio {
    pub(crate) row: &'static str,
    pub(crate) what: String,
    pub(crate) den: usize,
    pub(crate) num: usize,
    pub(crate) goal: Goal,
}

/// Allocated destination bytes of a variant vs a limit (row 3).
pub(crate) struct BlocksCheck {
    pub(crate) row: &'static str,
    pub(crate) what: String,
    pub(crate) variant: usize,
    /// Goal on the largest destination seen; `None` for context lines.
    pub(crate) limit: Option<u64>,
}

pub(crate) struct Group {
    pub(crate) title: String,
    pub(crate) variants: Vec<Variant>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) blocks: Vec<BlocksCheck>,
    /// The verify flag's position in `args` (set in the first round only), if any.
    pub(crate) verify_arg: Option<usize>,
}

/// The fallback as a program sees it when the kernel refuses: `CFRFIX_MODE=always` makes the
/// library skip the kernel's attempt, which on a kernel that refuses costs one failing syscall
/// per call (nothing against a 256 MiB copy) — the `inject` variant measures the real path
/// under `cfrfix-inject 95` once, to show the two agree.
const FALLBACK: (&str, &str) = ("CFRFIX_MODE", "always");

/// A file of `size` bytes of non-zero data (so no engine can find holes in it).
fn write_dense(path: &Path, size: u64) -> Result<(), String> {
    let mut chunk = vec![0u8; MIB as usize];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in chunk.iter_mut() {
        // xorshift: cheap bytes that are not all alike.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x as u8) | 1;
    }
    let mut f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut left = size;
    while left > 0 {
        check_interrupt()?;
        let n = left.min(MIB) as usize;
        f.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    Ok(())
}

//! Copy engines: move `count` bytes from one position to another with explicit offsets, never
//! touching either file position, and report exactly how many bytes reached the destination.
//!
//! An engine stops at the first error or at end of file. Bytes it read but could not write are
//! not counted: the count is what the destination holds, which is what the caller is told.

mod rw;

use crate::checks::Copy;
use crate::sys::Errno;

/// How far an engine got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written to the destination, from `pos_out` on.
    pub copied: usize,
    /// Why it stopped short of `count`, if an error did that (`None`: done, or end of file).
    pub error: Option<Errno>,
}

/// Copies `job` from `fd_in` to `fd_out`.
pub fn copy(fd_in: i32, fd_out: i32, job: &Copy) -> Progress {
    rw::copy(fd_in, fd_out, job)
}

//! `sendfile`: the kernel's own splice copy (`do_splice_direct`) in one system call, from the
//! source at an explicit offset to the destination at its file position.
//!
//! Why it is the default where it applies: splice through a pipe of our own leaves a system
//! call between reading and writing, and a pipe holds references to page-cache pages, not
//! copies: a source truncated in between has the tail of its last page zeroed in place, and
//! those zeros would be written. Inside one `sendfile` the read and the write are the kernel's,
//! as in its own copy; `pread` copies at read time too, but through user space (slower).

use super::rw::positioned_io_failure;
use super::{Progress, Run};
use crate::sys;

/// Copies `run`; the destination's file position must already be `run.pos_out` (it advances
/// with the data, and the caller sets it at the end). Returns the progress and the bytes read.
pub fn copy(fd_in: i32, fd_out: i32, run: Run) -> (Progress, usize) {
    let mut done: usize = 0;
    let mut pos_in = run.pos_in;
    while done < run.count {
        match sys::sendfile(fd_out, fd_in, &mut pos_in, run.count - done) {
            Ok(0) => break, // end of file: the source shrank
            Ok(n) => done += n.min(run.count - done),
            Err(e) => return (Progress::stopped(done, positioned_io_failure(e)), done),
        }
    }
    (Progress::done(done), done)
}

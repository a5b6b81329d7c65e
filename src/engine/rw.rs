//! `pread`/`pwrite` through the call's private buffer: works on every filesystem, and reads
//! pseudo-files (size 0 in `stat`) to their real end.

use super::{Progress, Run};
use crate::checks::Failure;
use crate::sys::{self, Errno};

/// Copies `run` through `buf`; returns the progress and the bytes read.
pub fn copy(fd_in: i32, fd_out: i32, run: Run, buf: &mut [u8]) -> (Progress, usize) {
    let mut done: usize = 0;
    let mut read: usize = 0;
    while done < run.count {
        let want = (run.count - done).min(buf.len());
        let Some(chunk) = buf.get_mut(..want) else {
            break;
        };
        // Positions cannot overflow: the checks guaranteed pos + count <= i64::MAX.
        let n = match sys::pread(fd_in, chunk, run.pos_in.wrapping_add(done as i64)) {
            Ok(0) => break, // end of file
            Ok(n) => n.min(want),
            Err(e) => return (Progress::stopped(done, positioned_io_failure(e)), read),
        };
        read += n;
        let at = run.pos_out.wrapping_add(done as i64);
        let written = write_all(fd_out, chunk.get(..n).unwrap_or(&[]), at);
        done += written.unwrap_or_else(|(w, _)| w);
        if let Err((_, e)) = written {
            return (Progress::stopped(done, e), read);
        }
    }
    (Progress::done(done), read)
}

/// Writes all of `bytes` at `pos`; on failure, how much was written and why it stopped.
pub fn write_all(fd: i32, bytes: &[u8], pos: i64) -> Result<usize, (usize, Failure)> {
    let mut written: usize = 0;
    while let Some(rest) = bytes.get(written..).filter(|r| !r.is_empty()) {
        match sys::pwrite(fd, rest, pos.wrapping_add(written as i64)) {
            Ok(0) => return Err((written, Failure::Kernel(Errno::EIO))),
            Ok(w) => written += w.min(rest.len()),
            Err(e) => return Err((written, positioned_io_failure(e))),
        }
    }
    Ok(written)
}

/// A failed read or write at a position. `ESPIPE` means the file cannot be read or written at
/// a position (a non-seekable FUSE file): the kernel never does that, so it is the emulation's
/// failure, not an answer for the program.
pub fn positioned_io_failure(e: Errno) -> Failure {
    if e == Errno::ESPIPE {
        Failure::Emulation(e)
    } else {
        Failure::Kernel(e)
    }
}

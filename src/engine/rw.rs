//! `pread`/`pwrite` through a private anonymous mapping: works on every filesystem, and reads
//! pseudo-files (size 0 in `stat`) to their real end.

use super::{Progress, Run};
use crate::sys::{self, MappedBuf};

/// The most memory one call maps for its buffer.
const MAX_BUFFER: usize = 1 << 20;

pub fn copy(fd_in: i32, fd_out: i32, run: Run) -> Progress {
    let len = run.count.min(MAX_BUFFER).next_multiple_of(sys::page_size());
    let mut buf = match MappedBuf::new(len) {
        Ok(b) => b,
        Err(e) => return Progress::stopped(0, e),
    };
    let buf = buf.as_mut_slice();

    let mut done: usize = 0;
    while done < run.count {
        let want = (run.count - done).min(buf.len());
        let Some(chunk) = buf.get_mut(..want) else {
            break;
        };
        // Positions cannot overflow: the checks guaranteed pos + count <= i64::MAX.
        let n = match sys::pread(fd_in, chunk, run.pos_in.wrapping_add(done as i64)) {
            Ok(0) => break, // end of file
            Ok(n) => n.min(want),
            Err(e) => return Progress::stopped(done, e),
        };
        let mut written: usize = 0;
        while written < n {
            let Some(rest) = chunk.get(written..n) else {
                break;
            };
            let at = run.pos_out.wrapping_add((done + written) as i64);
            match sys::pwrite(fd_out, rest, at) {
                Ok(0) => return Progress::stopped(done + written, sys::Errno::EIO),
                Ok(w) => written += w.min(rest.len()),
                Err(e) => return Progress::stopped(done + written, e),
            }
        }
        done += n;
    }
    Progress {
        copied: done,
        error: None,
    }
}

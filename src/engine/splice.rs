//! `splice` through a private pipe: file → pipe → file, both file sides at explicit offsets.
//! Page-cache pages move into the pipe by reference, so the data is copied once, in the kernel,
//! as the kernel's own `copy_file_range` fallback (`do_splice_direct`) does.

use super::{Progress, Run};
use crate::checks::Failure;
use crate::sys::{self, Errno, SysResult};

/// The pipe size asked for: fewer system calls per byte, within the unprivileged default
/// `/proc/sys/fs/pipe-max-size` (1 MiB). Pipe buffers are kernel memory, freed on close.
const PIPE_SIZE: usize = 1 << 20;
/// Every pipe has at least this much (16 pages).
const DEFAULT_PIPE_SIZE: usize = 1 << 16;

pub struct Pipe {
    read_end: i32,
    write_end: i32,
    capacity: usize,
}

impl Pipe {
    /// A pipe big enough for `count` bytes at a time, up to `PIPE_SIZE`.
    pub fn new(count: usize) -> SysResult<Pipe> {
        let [read_end, write_end] = sys::pipe()?;
        let mut capacity = DEFAULT_PIPE_SIZE;
        if count > DEFAULT_PIPE_SIZE {
            capacity = sys::pipe_capacity(write_end, PIPE_SIZE.min(count.next_power_of_two()))
                .unwrap_or(DEFAULT_PIPE_SIZE);
        }
        Ok(Pipe {
            read_end,
            write_end,
            capacity: capacity.max(sys::page_size()),
        })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        sys::close(self.read_end);
        sys::close(self.write_end);
    }
}

/// Copies `run` through `pipe`; returns the progress and the bytes read (spliced into the pipe).
pub fn copy(pipe: &Pipe, fd_in: i32, fd_out: i32, run: Run) -> (Progress, usize) {
    let mut done: usize = 0;
    let mut read: usize = 0;
    while done < run.count {
        // The pipe is empty here, so this never blocks on it; an unaligned start may fill it
        // with less than `want`, which the loop absorbs.
        let want = (run.count - done).min(pipe.capacity);
        let mut pos_in = run.pos_in.wrapping_add(done as i64);
        let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        let filled = match sys::splice(fd_in, Some(&mut pos_in), pipe.write_end, None, want, flags)
        {
            Ok(0) => break, // end of file: the source shrank
            Ok(n) => n.min(want),
            Err(e) => {
                return (
                    Progress::stopped(done, super::rw::positioned_io_failure(e)),
                    read,
                );
            }
        };
        read += filled;
        let mut drained: usize = 0;
        while drained < filled {
            let mut pos_out = run.pos_out.wrapping_add((done + drained) as i64);
            let left = filled - drained;
            match sys::splice(
                pipe.read_end,
                None,
                fd_out,
                Some(&mut pos_out),
                left,
                libc::SPLICE_F_MOVE,
            ) {
                Ok(0) => {
                    let p = Progress::stopped(done + drained, Failure::Kernel(Errno::EIO));
                    return (p, read);
                }
                Ok(n) => drained += n.min(left),
                Err(e) => {
                    let p = Progress::stopped(done + drained, super::rw::positioned_io_failure(e));
                    return (p, read);
                }
            }
        }
        done += filled;
    }
    (Progress::done(done), read)
}

//! When to copy in user space, and the emulated call from checks to offset write-back.
//!
//! This is the one place that decides the strategy (`copy_file_range`); each step it calls is
//! small: the kernel's checks (`checks`), an engine (`engine`), and the syscall's epilogue
//! (`finish`).

use crate::checks::{self, Copy, Request};
use crate::config::{self, Mode};
use crate::engine;
use crate::log;
use crate::sys::{self, Errno, SysResult};
use crate::usermem;

/// `copy_file_range` as the program sees it, through either exported entry point.
pub fn copy_file_range(req: &Request) -> SysResult<usize> {
    match config::mode() {
        Mode::Off => kernel(req),
        Mode::Always => {
            let result = emulate(req);
            log_fallback(req, None, result);
            result
        }
        Mode::Auto => match kernel(req) {
            // A failing copy_file_range has copied nothing (a partial copy returns its count),
            // so a user-space copy cannot duplicate or skip data.
            Err(e) if config::falls_back_on(e) => {
                let result = emulate(req);
                log_fallback(req, Some(e), result);
                result
            }
            other => other,
        },
    }
}

fn kernel(req: &Request) -> SysResult<usize> {
    sys::copy_file_range(
        req.fd_in,
        req.off_in,
        req.fd_out,
        req.off_out,
        req.len,
        req.flags,
    )
}

fn log_fallback(req: &Request, kernel_errno: Option<Errno>, result: SysResult<usize>) {
    log::fallback(&log::Fallback {
        fd_in: req.fd_in,
        fd_out: req.fd_out,
        kernel_errno,
        result,
    });
}

/// The whole system call, done in user space with the kernel's semantics.
pub fn emulate(req: &Request) -> SysResult<usize> {
    let Some(job) = checks::check(req)? else {
        return Ok(0);
    };
    let progress = engine::copy(req.fd_in, req.fd_out, &job);
    match (progress.copied, progress.error) {
        // An error before any progress is the call's error; after progress, the partial count
        // (the error shows again on the next call, as with the kernel).
        (0, Some(e)) => Err(e),
        (0, None) => Ok(0),
        (n, _) => finish(req, &job, n),
    }
}

/// The syscall's epilogue after `copied > 0` bytes: advance each offset by exactly that much,
/// through the caller's pointer or else the file position. A pointer that cannot be written
/// makes the call fail with EFAULT although the data was copied, and the other side is still
/// updated, as in the kernel.
fn finish(req: &Request, job: &Copy, copied: usize) -> SysResult<usize> {
    let mut result = Ok(copied);
    let sides = [
        (req.fd_in, req.off_in, job.pos_in),
        (req.fd_out, req.off_out, job.pos_out),
    ];
    for (fd, ptr, pos) in sides {
        let new_pos = pos.wrapping_add(copied as i64);
        if ptr.is_null() {
            let _ = sys::lseek(fd, new_pos, libc::SEEK_SET);
        } else if let Err(e) = usermem::write_offset(ptr, new_pos) {
            result = Err(e);
        }
    }
    result
}

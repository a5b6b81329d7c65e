//! When to copy in user space, and the emulated call from checks to offset write-back.
//!
//! This is the one place that decides the strategy (`copy_file_range`); each step it calls is
//! small: the kernel's checks (`checks`), the engines (`engine`), and the syscall's epilogue
//! (`finish`).

use crate::checks::{self, Copy, Failure, Request};
use crate::config::{self, Mode};
use crate::engine::{self, Tally};
use crate::log::{self, Trigger};
use crate::sys::{self, Errno, SysResult};
use crate::usermem::{self, WriteBack};

/// `copy_file_range` as the program sees it, through either exported entry point.
pub fn copy_file_range(req: &Request) -> SysResult<usize> {
    let trigger = match config::mode() {
        Mode::Off => return kernel(req),
        Mode::Always => Trigger::ModeAlways,
        Mode::Auto => match kernel(req) {
            // A failing copy_file_range has copied nothing (a partial copy returns its count),
            // so a user-space copy can neither duplicate nor skip data.
            Err(e) if refusal_is_unsupported(req, e) => Trigger::KernelErrno(e),
            // "Success" with nothing copied where there was something to copy: overlayfs
            // (about 5.6-5.10), CIFS on 4.15, procfs/sysfs on 5.3-5.18 did that.
            Ok(0) if req.len > 0 && should_have_copied(req) => Trigger::KernelZero,
            other => return other,
        },
    };
    let (emulated, tally) = emulate(req);
    let result = match emulated {
        Ok(n) => Ok(n),
        Err(Failure::Kernel(e)) => Err(e),
        // A step the kernel does not take failed before anything was copied: the program gets
        // the answer the kernel gave, never that step's. In mode `always` the kernel is never
        // asked to copy (its copy is not trusted): EXDEV, the refusal every runtime answers by
        // copying itself.
        Err(Failure::Emulation(_)) => match trigger {
            Trigger::KernelErrno(e) => Err(e),
            Trigger::KernelZero => Ok(0),
            Trigger::ModeAlways => Err(Errno::EXDEV),
        },
    };
    log::fallback(&log::Fallback {
        fd_in: req.fd_in,
        fd_out: req.fd_out,
        trigger,
        emulated,
        result,
        tally,
    });
    result
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

/// Whether the kernel's error means "cannot do it here" rather than "must not be done".
/// EAGAIN counts only between two regular files opened blocking: older OpenZFS clone paths
/// leaked it there (and Ruby retries EAGAIN forever), whereas for a non-blocking descriptor it
/// is the program's business.
fn refusal_is_unsupported(req: &Request, e: Errno) -> bool {
    config::falls_back_on(e) && (e != Errno::EAGAIN || blocking_regular_pair(req))
}

fn blocking_regular_pair(req: &Request) -> bool {
    [req.fd_in, req.fd_out].iter().all(|&fd| {
        let blocking = sys::fcntl_getfl(fd).is_ok_and(|fl| fl & libc::O_NONBLOCK == 0);
        let regular = sys::fstat(fd).is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFREG);
        blocking && regular
    })
}

/// After the kernel returned 0 for a non-empty request: was there data at the read position?
fn should_have_copied(req: &Request) -> bool {
    let Ok(st) = sys::fstat(req.fd_in) else {
        return false;
    };
    let regular = st.mode & libc::S_IFMT == libc::S_IFREG;
    let pseudo = regular && checks::is_sized_zero_pseudo_file(req.fd_in, &st);
    let pos = if req.off_in.is_null() {
        sys::lseek(req.fd_in, 0, libc::SEEK_CUR)
    } else {
        usermem::read_offset(req.off_in)
    };
    match pos {
        Ok(pos) => zero_hides_data(regular, pseudo, st.size, pos),
        Err(_) => false,
    }
}

/// The decision: a regular source whose size is past the read position, or a pseudo-file (size
/// 0 in `stat`, content when read). A genuine end of file (position at or past the size) is not
/// second-guessed, so the kernel's 0 stands.
fn zero_hides_data(regular: bool, pseudo: bool, size: i64, pos: i64) -> bool {
    regular && (pseudo || (pos >= 0 && pos < size))
}

/// The whole system call, done in user space with the kernel's semantics.
pub fn emulate(req: &Request) -> (Result<usize, Failure>, Tally) {
    let job = match checks::check(req) {
        Ok(Some(job)) => job,
        Ok(None) => return (Ok(0), Tally::default()),
        Err(e) => return (Err(e), Tally::default()),
    };
    let offsets_given = !req.off_in.is_null() || !req.off_out.is_null();
    let write_back = match WriteBack::prepare(offsets_given) {
        Ok(w) => w,
        Err(e) => return (Err(Failure::Emulation(e)), Tally::default()),
    };
    let (progress, tally) = engine::copy(req.fd_in, req.fd_out, &job);
    let result = match (progress.copied, progress.error) {
        // An error before any progress is the call's error; after progress, the partial count
        // (the error shows again on the next call, as with the kernel).
        (0, Some(e)) => Err(e),
        (0, None) => Ok(0),
        (n, _) => finish(req, &job, n, &write_back).map_err(Failure::Kernel),
    };
    (result, tally)
}

/// The syscall's epilogue after `copied > 0` bytes: advance each offset by exactly that much,
/// through the caller's pointer or else the file position. A pointer that cannot be written
/// makes the call fail with EFAULT although the data was copied, and the other side is still
/// updated, as in the kernel.
fn finish(req: &Request, job: &Copy, copied: usize, write_back: &WriteBack) -> SysResult<usize> {
    let mut result = Ok(copied);
    let sides = [
        (req.fd_in, req.off_in, job.pos_in),
        (req.fd_out, req.off_out, job.pos_out),
    ];
    for (fd, ptr, pos) in sides {
        let new_pos = pos.wrapping_add(copied as i64);
        if ptr.is_null() {
            let _ = sys::lseek(fd, new_pos, libc::SEEK_SET);
        } else if let Err(e) = write_back.write(ptr, new_pos) {
            result = Err(e);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::zero_hides_data;

    #[test]
    fn zero_return_decision_table() {
        // (regular, pseudo, size, pos) -> redo in user space?
        let table = [
            (true, false, 100, 0, true), // data at the position: the kernel's 0 was wrong
            (true, false, 100, 99, true), // one byte left
            (true, false, 100, 100, false), // genuine end of file
            (true, false, 100, 500, false), // past the end
            (true, false, 0, 0, false),  // empty regular file
            (true, false, 100, -1, false), // a negative position is the checks' business
            (true, true, 0, 0, true),    // procfs/sysfs: size 0, content when read
            (true, true, 0, 4096, true), // ... at any position (the read finds the real end)
            (false, false, 100, 0, false), // pipes, sockets: not a copy_file_range source
        ];
        for (regular, pseudo, size, pos, redo) in table {
            assert_eq!(
                zero_hides_data(regular, pseudo, size, pos),
                redo,
                "regular={regular} pseudo={pseudo} size={size} pos={pos}"
            );
        }
    }
}

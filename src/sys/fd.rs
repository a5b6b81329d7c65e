//! Descriptors the shim opens and closes itself (files, private pipes), kept above the standard
//! streams, their `fcntl` flags, and what `/proc/thread-self/fd/N` says is behind a descriptor.

use super::{Errno, O_LARGEFILE_KERNEL, SysResult, arch};
use core::ffi::{c_int, c_uint};

pub fn fcntl_getfl(fd: c_int) -> SysResult<c_int> {
    // SAFETY: F_GETFL takes no pointer.
    unsafe { sys!(arch::SYS_FCNTL, fd, libc::F_GETFL) }.map(|v| v as c_int)
}

pub fn close(fd: c_int) {
    // SAFETY: close takes no pointer; the shim closes only descriptors it opened itself.
    let _ = unsafe { sys!(libc::SYS_close, fd) };
}

/// Moves a descriptor the shim opened to a number of 3 or more. The kernel hands out the lowest
/// free number, which in a process that closed its standard streams is 0, 1 or 2: anything the
/// program (a signal handler, another thread, a library's warning) then writes to "stderr"
/// would land in the shim's pipe or file.
fn above_stdio(fd: c_int) -> SysResult<c_int> {
    if fd > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC takes an integer, no pointer.
    let moved = unsafe { sys!(arch::SYS_FCNTL, fd, libc::F_DUPFD_CLOEXEC, 3) };
    close(fd);
    moved.map(|v| v as c_int)
}

/// A private `O_CLOEXEC` pipe `[read end, write end]`, both above the standard streams; the shim
/// closes both ends before returning to the program.
pub fn pipe() -> SysResult<[c_int; 2]> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: `fds` is a writable array of two ints.
    unsafe { sys!(libc::SYS_pipe2, fds.as_mut_ptr(), libc::O_CLOEXEC) }?;
    let [r, w] = fds;
    match (above_stdio(r), above_stdio(w)) {
        (Ok(r), Ok(w)) => Ok([r, w]),
        (r, w) => {
            for fd in [r, w].into_iter().flatten() {
                close(fd);
            }
            Err(Errno(libc::EMFILE))
        }
    }
}

/// `openat(AT_FDCWD, …)` with `O_LARGEFILE`, as glibc's `open` adds it (a 32-bit kernel entry
/// does not: a log file past 2 GiB would fail with EOVERFLOW); the descriptor is placed above
/// the standard streams (see `above_stdio`).
pub fn open(path: &core::ffi::CStr, flags: c_int, mode: c_uint) -> SysResult<c_int> {
    let flags = flags | O_LARGEFILE_KERNEL;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe { sys!(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), flags, mode) }?;
    above_stdio(fd as c_int)
}

/// `F_SETPIPE_SZ` (best effort), then the pipe's actual capacity in bytes.
pub fn pipe_capacity(fd: c_int, wanted: usize) -> SysResult<usize> {
    // SAFETY: these fcntl commands take an integer, no pointer.
    unsafe {
        let _ = sys!(arch::SYS_FCNTL, fd, libc::F_SETPIPE_SZ, wanted);
        sys!(arch::SYS_FCNTL, fd, libc::F_GETPIPE_SZ)
    }
}

/// `readlink(2)` into `buf`; the number of bytes placed there (not NUL-terminated).
pub fn readlink(path: &core::ffi::CStr, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: `path` is NUL-terminated; the kernel writes at most `buf.len()` bytes into `buf`.
    unsafe {
        sys!(
            libc::SYS_readlinkat,
            libc::AT_FDCWD,
            path.as_ptr(),
            buf.as_mut_ptr(),
            buf.len()
        )
    }
}

/// `/proc/thread-self/fd/N` as a C string, built without allocating. (`thread-self`: a thread
/// that unshared its descriptor table has its own; `/proc/self` shows the main thread's.)
pub struct ProcFdPath {
    buf: [u8; 40],
}

impl ProcFdPath {
    pub fn new(fd: c_int) -> ProcFdPath {
        let mut buf = [0u8; 40];
        let prefix = b"/proc/thread-self/fd/";
        let mut len = 0;
        for &b in prefix {
            if let Some(slot) = buf.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
        let mut digits = [0u8; 10];
        let mut n = fd.unsigned_abs();
        let mut count = 0;
        loop {
            if let Some(d) = digits.get_mut(count) {
                *d = b'0' + (n % 10) as u8;
            }
            count += 1;
            n /= 10;
            if n == 0 || count == digits.len() {
                break;
            }
        }
        for i in (0..count).rev() {
            if let (Some(slot), Some(&d)) = (buf.get_mut(len), digits.get(i)) {
                *slot = d;
                len += 1;
            }
        }
        ProcFdPath { buf } // the rest of `buf` is NUL
    }

    pub fn as_cstr(&self) -> &core::ffi::CStr {
        core::ffi::CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// `O_PATH` descriptors carry no file the kernel's `fdget` accepts.
pub const O_PATH: c_int = libc::O_PATH;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fd_paths() {
        assert_eq!(ProcFdPath::new(0).as_cstr(), c"/proc/thread-self/fd/0");
        assert_eq!(
            ProcFdPath::new(1234).as_cstr(),
            c"/proc/thread-self/fd/1234"
        );
        assert_eq!(
            ProcFdPath::new(i32::MAX).as_cstr(),
            c"/proc/thread-self/fd/2147483647"
        );
    }
}

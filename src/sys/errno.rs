//! Kernel error numbers: the `Errno` every wrapper returns, how a raw kernel result splits into
//! one (`result_of`, which `sys!` applies), the calling thread's C `errno`, and the names the log
//! and the configuration use.

use core::ffi::c_long;

/// A kernel error number (positive, as in `errno`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EFBIG: Errno = Errno(libc::EFBIG);
    pub const EOVERFLOW: Errno = Errno(libc::EOVERFLOW);
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub const EINTR: Errno = Errno(libc::EINTR);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const ESPIPE: Errno = Errno(libc::ESPIPE);
    pub const EXDEV: Errno = Errno(libc::EXDEV);
}

pub type SysResult<T> = Result<T, Errno>;

/// Splits a raw kernel return value into a result.
#[inline(always)]
pub fn result_of(ret: c_long) -> SysResult<usize> {
    if (-4095..0).contains(&ret) {
        // (`c_long` is `i32` on 32-bit targets.)
        #[allow(clippy::unnecessary_cast)]
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// Sets the calling thread's C `errno`.
pub fn set_errno(e: Errno) {
    // SAFETY: `__errno_location` (GLIBC_2.2.5) returns the calling thread's errno slot, valid for
    // the thread's lifetime.
    unsafe { *libc::__errno_location() = e.0 }
}

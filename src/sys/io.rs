//! Moving bytes: `read`/`write` at the file position, at an explicit position or through a
//! caller's address, the kernel's own `copy_file_range`, `splice` and `sendfile`, and `lseek`.

use super::{SysResult, UserPtr, arch};
use core::ffi::{c_int, c_uint};

/// The kernel's own `copy_file_range`, with the caller's pointers passed through untouched.
pub fn copy_file_range(
    fd_in: c_int,
    off_in: UserPtr,
    fd_out: c_int,
    off_out: UserPtr,
    len: usize,
    flags: c_uint,
) -> SysResult<usize> {
    // SAFETY: the offset pointers are the caller's, passed on unchanged; the kernel validates them.
    unsafe {
        sys!(
            libc::SYS_copy_file_range,
            fd_in,
            off_in.0,
            fd_out,
            off_out.0,
            len,
            flags
        )
    }
}

/// `lseek` with a 64-bit offset and result on every ABI (`_llseek` on i386).
pub fn lseek(fd: c_int, offset: i64, whence: c_int) -> SysResult<i64> {
    arch::lseek(fd, offset, whence)
}

pub fn pread(fd: c_int, buf: &mut [u8], pos: i64) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    unsafe { arch::pread64(fd, buf.as_mut_ptr(), buf.len(), pos) }
}

pub fn pwrite(fd: c_int, buf: &[u8], pos: i64) -> SysResult<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    unsafe { arch::pwrite64(fd, buf.as_ptr(), buf.len(), pos) }
}

pub fn write(fd: c_int, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`.
    unsafe { sys!(libc::SYS_write, fd, buf.as_ptr(), buf.len()) }
}

/// `write(2)` from a caller-supplied address; `EFAULT` if it is not readable.
pub fn write_from_user(fd: c_int, src: UserPtr, len: usize) -> SysResult<usize> {
    // SAFETY: the kernel only reads from `src`, and reports EFAULT for a bad address.
    unsafe { sys!(libc::SYS_write, fd, src.0, len) }
}

/// `read(2)` into a caller-supplied address; `EFAULT` if it is not writable.
pub fn read_to_user(fd: c_int, dst: UserPtr, len: usize) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `len` bytes at `dst` and reports EFAULT for a bad address;
    // `dst` is memory the program gave us to write exactly this value into.
    unsafe { sys!(libc::SYS_read, fd, dst.0, len) }
}

pub fn read(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    unsafe { sys!(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) }
}

/// `splice(2)` between a file at an explicit offset and a pipe (`None`: the pipe side).
pub fn splice(
    fd_in: c_int,
    off_in: Option<&mut i64>,
    fd_out: c_int,
    off_out: Option<&mut i64>,
    len: usize,
    flags: c_uint,
) -> SysResult<usize> {
    let ptr = |o: Option<&mut i64>| o.map_or(core::ptr::null_mut(), |r| r as *mut i64);
    // SAFETY: each offset pointer is NULL or a live, writable i64 of the caller's (ours).
    unsafe {
        sys!(
            libc::SYS_splice,
            fd_in,
            ptr(off_in),
            fd_out,
            ptr(off_out),
            len,
            flags
        )
    }
}

/// `sendfile(2)`: up to `count` bytes from `fd_in` at `*pos_in` (advanced; the descriptor's
/// position is not) to `fd_out` at its file position (advanced). One system call does what the
/// kernel's own copy falls back to (`do_splice_direct`), reading and writing in one go.
pub fn sendfile(fd_out: c_int, fd_in: c_int, pos_in: &mut i64, count: usize) -> SysResult<usize> {
    // SAFETY: `pos_in` is a live, writable i64 of ours for the duration of the call.
    unsafe { sys!(arch::SYS_SENDFILE, fd_out, fd_in, pos_in as *mut i64, count) }
}

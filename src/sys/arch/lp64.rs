//! The 64-bit system-call forms x86_64 and aarch64 share: every argument, offsets included, fits
//! one register, and the plain `fstat`/`fstatfs`/`lseek`/`mmap` calls are already 64-bit.

use crate::sys::{FileStat, SysResult};
use core::ffi::{c_int, c_long};

pub const SYS_FCNTL: c_long = libc::SYS_fcntl;
pub const SYS_SENDFILE: c_long = libc::SYS_sendfile;

pub fn fstat(fd: c_int) -> SysResult<FileStat> {
    // SAFETY: all-zero is a valid `libc::stat` (plain integers).
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is a writable `struct stat`; on these architectures glibc's `struct stat` is
    // the kernel's, which fstat fills.
    unsafe { sys!(libc::SYS_fstat, fd, &mut st as *mut libc::stat) }?;
    Ok(FileStat {
        mode: st.st_mode,
        size: st.st_size,
        blocks: st.st_blocks as u64,
        uid: st.st_uid,
        nlink: st.st_nlink as u64,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

pub fn lseek(fd: c_int, offset: i64, whence: c_int) -> SysResult<i64> {
    // SAFETY: lseek takes no pointer.
    unsafe { sys!(libc::SYS_lseek, fd, offset, whence) }.map(|v| v as i64)
}

/// # Safety
/// `buf` is writable for `len` bytes.
pub unsafe fn pread64(fd: c_int, buf: *mut u8, len: usize, pos: i64) -> SysResult<usize> {
    // SAFETY: the caller's guarantee; the kernel writes at most `len` bytes at `buf`.
    unsafe { sys!(libc::SYS_pread64, fd, buf, len, pos) }
}

/// # Safety
/// `buf` is readable for `len` bytes.
pub unsafe fn pwrite64(fd: c_int, buf: *const u8, len: usize, pos: i64) -> SysResult<usize> {
    // SAFETY: the caller's guarantee; the kernel reads at most `len` bytes from `buf`.
    unsafe { sys!(libc::SYS_pwrite64, fd, buf, len, pos) }
}

/// A private anonymous read/write mapping of `len` bytes; its address.
pub fn mmap_anonymous(len: usize) -> SysResult<usize> {
    // SAFETY: an anonymous mapping at an address of the kernel's choosing aliases nothing.
    unsafe {
        sys!(
            libc::SYS_mmap,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0
        )
    }
}

pub fn fs_magic(fd: c_int) -> SysResult<i64> {
    // SAFETY: all-zero is a valid `libc::statfs` (plain integers).
    let mut sfs: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: `sfs` is a writable `struct statfs`, the layout the kernel's fstatfs fills here.
    unsafe { sys!(libc::SYS_fstatfs, fd, &mut sfs as *mut libc::statfs) }?;
    Ok(sfs.f_type)
}

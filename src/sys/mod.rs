//! Raw system calls: the only module that talks to the kernel.
//!
//! Everything the shim does goes through `arch::raw_syscall6`, the architecture's system-call
//! instruction (`syscall`, `int 0x80`, `svc 0`), never through libc: glibc's wrappers for `syscall()` and `copy_file_range()` are the very symbols this
//! library exports (calling them would recurse), and newer glibc wrappers (`fstat@GLIBC_2.33`,
//! `dlsym@GLIBC_2.34`) would raise the glibc version the library needs. Results come back as
//! `Result<_, Errno>`; only the exported entry points translate that into the C `-1`/`errno` form.
//!
//! This module holds the portable wrappers. What differs between architectures (the instruction,
//! the calls whose number or argument layout differs, `struct stat`, the kernel's `O_LARGEFILE`)
//! lives in `arch/`, one file per architecture; the wrappers keep one signature everywhere.

use core::ffi::{c_int, c_long, c_uint, c_void};

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

/// `sys!(nr, args...)`: a raw system call with up to six arguments (missing ones are 0), each cast
/// to `c_long` as the kernel takes them (a register's width: a 64-bit position must go through
/// the `arch` function that knows how its ABI passes one). Unsafe for the same reason as
/// `arch::raw_syscall6`.
macro_rules! sys {
    ($nr:expr) => {
        sys!($nr, 0, 0, 0, 0, 0, 0)
    };
    ($nr:expr, $a:expr) => {
        sys!($nr, $a, 0, 0, 0, 0, 0)
    };
    ($nr:expr, $a:expr, $b:expr) => {
        sys!($nr, $a, $b, 0, 0, 0, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr) => {
        sys!($nr, $a, $b, $c, 0, 0, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr, $d:expr) => {
        sys!($nr, $a, $b, $c, $d, 0, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        sys!($nr, $a, $b, $c, $d, $e, 0)
    };
    ($nr:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        $crate::sys::result_of($crate::sys::arch::raw_syscall6(
            $nr,
            $a as core::ffi::c_long,
            $b as core::ffi::c_long,
            $c as core::ffi::c_long,
            $d as core::ffi::c_long,
            $e as core::ffi::c_long,
            $f as core::ffi::c_long,
        ))
    };
}

mod arch;

#[cfg_attr(test, allow(unused_imports))]
pub(crate) use arch::raw_syscall6;
pub use arch::{O_LARGEFILE_KERNEL, opened_largefile};

/// Sets the calling thread's C `errno`.
pub fn set_errno(e: Errno) {
    // SAFETY: `__errno_location` (GLIBC_2.2.5) returns the calling thread's errno slot, valid for
    // the thread's lifetime.
    unsafe { *libc::__errno_location() = e.0 }
}

/// A user-supplied pointer the shim must not dereference directly: it is only handed to the kernel,
/// which answers `EFAULT` for a bad one (see `usermem`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UserPtr(pub usize);

impl UserPtr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

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

pub fn fcntl_getfl(fd: c_int) -> SysResult<c_int> {
    // SAFETY: F_GETFL takes no pointer.
    unsafe { sys!(arch::SYS_FCNTL, fd, libc::F_GETFL) }.map(|v| v as c_int)
}

/// The subset of `struct stat` the shim uses.
#[derive(Clone, Copy, Debug)]
pub struct FileStat {
    pub mode: u32,
    pub size: i64,
    /// Allocated space in 512-byte units (`st_blocks`): a hint, never the truth about data.
    pub blocks: u64,
    pub uid: u32,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
}

/// `fstat` with 64-bit sizes, inode numbers and block counts on every ABI (`fstat64` where the
/// plain call has 32-bit fields and fails with EOVERFLOW on a large file).
pub fn fstat(fd: c_int) -> SysResult<FileStat> {
    arch::fstat(fd)
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

/// `F_SETPIPE_SZ` (best effort), then the pipe's actual capacity in bytes.
pub fn pipe_capacity(fd: c_int, wanted: usize) -> SysResult<usize> {
    // SAFETY: these fcntl commands take an integer, no pointer.
    unsafe {
        let _ = sys!(arch::SYS_FCNTL, fd, libc::F_SETPIPE_SZ, wanted);
        sys!(arch::SYS_FCNTL, fd, libc::F_GETPIPE_SZ)
    }
}

/// The filesystem type (`f_type` magic) of the file behind `fd`.
pub fn fs_magic(fd: c_int) -> SysResult<i64> {
    arch::fs_magic(fd)
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

/// Seconds on `CLOCK_MONOTONIC` (0 if unavailable).
pub fn monotonic_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable `struct timespec`.
    let r = unsafe {
        sys!(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut ts as *mut libc::timespec
        )
    };
    if r.is_ok() { ts.tv_sec as u64 } else { 0 }
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

/// One extent of a `FS_IOC_FIEMAP` answer (`struct fiemap_extent`, linux/fiemap.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FiemapExtent {
    pub logical: u64,
    physical: u64,
    pub length: u64,
    reserved64: [u64; 2],
    pub flags: u32,
    reserved: [u32; 3],
}

/// `FIEMAP_EXTENT_LAST`: no extent follows this one in the file.
pub const FIEMAP_EXTENT_LAST: u32 = 0x1;

/// How many extents one `fiemap` call can return (about 1.8 KB of stack).
pub const FIEMAP_BATCH: usize = 32;

/// `struct fiemap` followed by room for `FIEMAP_BATCH` extents.
#[repr(C)]
struct FiemapRequest {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; FIEMAP_BATCH],
}

/// `_IOWR('f', 11, struct fiemap)`; `struct fiemap` is 32 bytes on every ABI.
const FS_IOC_FIEMAP: c_long = 0xC020_660B_u32 as c_long;

/// The allocated extents of the file behind `fd` that overlap `[start, start + len)`, at most
/// `FIEMAP_BATCH` of them, written into `out`; returns how many. No flags: asking for a sync
/// would write back the program's dirty data, a side effect the kernel's copy does not have.
/// Filesystems without FIEMAP (tmpfs, ZFS, NFS, FUSE) fail with EOPNOTSUPP or ENOTTY.
pub fn fiemap(
    fd: c_int,
    start: u64,
    len: u64,
    out: &mut [FiemapExtent; FIEMAP_BATCH],
) -> SysResult<usize> {
    let mut req = FiemapRequest {
        start,
        length: len,
        flags: 0,
        mapped_extents: 0,
        extent_count: FIEMAP_BATCH as u32,
        reserved: 0,
        extents: [FiemapExtent::default(); FIEMAP_BATCH],
    };
    // SAFETY: `req` is a `struct fiemap` with room for `extent_count` extents after it, which
    // is all FS_IOC_FIEMAP reads or writes.
    unsafe {
        sys!(
            libc::SYS_ioctl,
            fd,
            FS_IOC_FIEMAP,
            &mut req as *mut FiemapRequest
        )
    }?;
    let n = (req.mapped_extents as usize).min(FIEMAP_BATCH);
    *out = req.extents;
    Ok(n)
}

/// The soft `RLIMIT_FSIZE` of the calling process (`u64::MAX` is `RLIM_INFINITY`).
pub fn fsize_limit() -> SysResult<u64> {
    let mut lim = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a NULL new limit reads only; `lim` is a writable `struct rlimit64`.
    unsafe {
        sys!(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_FSIZE,
            0usize,
            &mut lim as *mut libc::rlimit64
        )
    }?;
    Ok(lim.rlim_cur)
}

/// Sends `sig` to the calling thread, as the kernel's `send_sig(sig, current, 0)` does.
pub fn raise_in_this_thread(sig: c_int) {
    // SAFETY: none of these calls takes a pointer.
    unsafe {
        let pid = sys!(libc::SYS_getpid).unwrap_or(0);
        let tid = sys!(libc::SYS_gettid).unwrap_or(0);
        let _ = sys!(libc::SYS_tgkill, pid, tid, sig);
    }
}

/// The calling thread's id: `process_vm_*` accept it as the "pid" and, unlike the process id,
/// it names a live task even after the main thread has exited.
pub fn gettid() -> c_int {
    // SAFETY: gettid takes no pointer and cannot fail.
    unsafe { sys!(libc::SYS_gettid) }.unwrap_or(0) as c_int
}

pub fn getpid() -> c_int {
    // SAFETY: getpid takes no pointer and cannot fail.
    unsafe { sys!(libc::SYS_getpid) }.unwrap_or(0) as c_int
}

/// `process_vm_readv`/`writev` on this thread: moves `len` bytes between our `local` buffer and
/// the caller's address `remote`, reporting `EFAULT` rather than faulting when `remote` is bad.
pub fn process_vm_rw(
    write: bool,
    local: *mut c_void,
    remote: UserPtr,
    len: usize,
) -> SysResult<usize> {
    let local_iov = libc::iovec {
        iov_base: local,
        iov_len: len,
    };
    let remote_iov = libc::iovec {
        iov_base: remote.0 as *mut c_void,
        iov_len: len,
    };
    let nr = if write {
        libc::SYS_process_vm_writev
    } else {
        libc::SYS_process_vm_readv
    };
    // SAFETY: `local` is our own buffer of `len` bytes (checked by the callers in `usermem`); the
    // kernel validates `remote` and fails with EFAULT instead of faulting.
    unsafe {
        sys!(
            nr,
            gettid(),
            &local_iov as *const libc::iovec,
            1,
            &remote_iov as *const libc::iovec,
            1,
            0
        )
    }
}

/// `FS_IMMUTABLE_FL` from linux/fs.h (not in the libc crate).
const FS_IMMUTABLE_FL: c_int = 0x10;

/// Whether the inode behind `fd` is immutable (`chattr +i`). Filesystems without inode flags
/// answer ENOTTY or similar; they have no immutable files.
pub fn is_immutable(fd: c_int) -> bool {
    let mut flags: c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's `put_user(flags, (int __user *)arg)`).
    let r = unsafe {
        sys!(
            libc::SYS_ioctl,
            fd,
            libc::FS_IOC_GETFLAGS,
            &mut flags as *mut c_int
        )
    };
    r.is_ok() && flags & FS_IMMUTABLE_FL != 0
}

/// An anonymous private mapping, unmapped on drop: the copy buffer (no malloc inside hooks).
pub struct MappedBuf {
    ptr: *mut u8,
    len: usize,
}

impl MappedBuf {
    pub fn new(len: usize) -> SysResult<MappedBuf> {
        let addr = arch::mmap_anonymous(len)?;
        Ok(MappedBuf {
            ptr: addr as *mut u8,
            len,
        })
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live read/write mapping of `len` bytes owned by `self`.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for MappedBuf {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`, which nothing else references.
        let _ = unsafe { sys!(libc::SYS_munmap, self.ptr, self.len) };
    }
}

/// The kernel's page size (for `MAX_RW_COUNT`), from the auxiliary vector.
/// Never 0, and visibly so to the compiler (through `NonZeroUsize`): callers divide by it, and a
/// division it cannot prove safe keeps a panic path in the library (on i686 it could not).
pub fn page_size() -> usize {
    // SAFETY: getauxval (GLIBC_2.16) only reads the saved auxiliary vector.
    let p = unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize;
    match core::num::NonZeroUsize::new(p) {
        Some(p) if p.is_power_of_two() => p.get(),
        _ => 4096,
    }
}

/// Whether this process runs in secure-execution mode (setuid, setgid, file capabilities).
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the saved auxiliary vector.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// `O_PATH` descriptors carry no file the kernel's `fdget` accepts.
pub const O_PATH: c_int = libc::O_PATH;

/// Names for the error numbers the shim reports or may be configured with.
pub const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("EINTR", 4),
    ("EIO", 5),
    ("EBADF", 9),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EXDEV", 18),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ENOTTY", 25),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("ENOSYS", 38),
    ("EOVERFLOW", 75),
    ("EOPNOTSUPP", 95),
    ("ENOTSUP", 95),
    ("EDQUOT", 122),
    ("ENOTSUPP", 524),
];

pub fn errno_name(e: Errno) -> Option<&'static str> {
    ERRNO_NAMES
        .iter()
        .find(|(_, n)| *n == e.0)
        .map(|(name, _)| *name)
}

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

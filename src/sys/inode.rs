//! What the file behind a descriptor is: its `stat`, its filesystem's type, which of its ranges
//! hold allocated extents (`FS_IOC_FIEMAP`), and whether it is immutable.

use super::{SysResult, arch};
use core::ffi::{c_int, c_long};

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

/// The filesystem type (`f_type` magic) of the file behind `fd`.
pub fn fs_magic(fd: c_int) -> SysResult<i64> {
    arch::fs_magic(fd)
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

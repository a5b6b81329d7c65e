//! The kernel's argument checks for `copy_file_range`, in the kernel's order.
//!
//! When the shim emulates a call, the kernel may have checked nothing (seccomp `ENOSYS`/`EPERM`),
//! or only part (`EXDEV` comes after the descriptor checks, `EOPNOTSUPP` after all of them). So
//! every check is redone here, in the order of `SYSCALL_DEFINE6(copy_file_range)` →
//! `vfs_copy_file_range` → `generic_copy_file_checks` → `generic_write_check_limits` →
//! `rw_verify_area` (fs/read_write.c), so that the first failing check gives the kernel's errno.
//! The cross-filesystem `EXDEV` check is the one deliberately left out: the shim plays a kernel
//! that can copy between any two filesystems.

use crate::sys::{self, Errno, SysResult, UserPtr};
use core::ffi::{c_int, c_uint};

/// One `copy_file_range` call, as the program made it.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub fd_in: c_int,
    pub off_in: UserPtr,
    pub fd_out: c_int,
    pub off_out: UserPtr,
    pub len: usize,
    pub flags: c_uint,
}

/// A call that passed every check: copy up to `count` bytes (> 0) from `pos_in` to `pos_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copy {
    pub pos_in: i64,
    pub pos_out: i64,
    pub count: usize,
    /// The destination's size when checked (for hole skipping past its end).
    pub size_out: i64,
    /// False for a pseudo-file whose `stat` size (0) is not its content's size: it is read
    /// to its end instead of being clamped to "EOF" at 0.
    pub size_known: bool,
    /// How much of the source's size `st_blocks` does not account for: 0 for a fully allocated
    /// file. A hint that the source may have holes (or is compressed), never a reason to skip.
    pub src_unallocated: u64,
    /// The destination offset is the descriptor's file position (a NULL `off_out`), which the
    /// call advances anyway: an engine may write at the file position.
    pub out_at_file_position: bool,
}

/// Why an emulated call stopped: an answer the kernel itself gives (one of its checks, or an
/// I/O error its own copy meets), or the failure of a step only the emulation takes (an
/// `fstat` a FUSE server fails, an `lseek` on a non-seekable file, no memory for a buffer).
/// The second kind is never the program's answer: the call then answers as the kernel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Kernel(Errno),
    Emulation(Errno),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Failure {
        Failure::Kernel(r.errno)
    }
}

/// The result of a step the kernel does not take: its error is the emulation's.
fn own<T>(r: SysResult<T>) -> Result<T, Failure> {
    r.map_err(Failure::Emulation)
}

impl Copy {
    /// Whether part of the destination range lies past the destination's end of file.
    pub fn reaches_past_dst_eof(&self) -> bool {
        self.pos_out.wrapping_add(self.count as i64) > self.size_out
    }
}

/// Filesystems whose files report size 0 but have content (procfs, sysfs, tracefs, debugfs,
/// securityfs, cgroup v1/v2): the kernel's EOF clamp would copy nothing from them.
const PSEUDO_FS_MAGIC: &[i64] = &[
    0x9fa0,     // PROC_SUPER_MAGIC
    0x62656572, // SYSFS_MAGIC
    0x74726163, // TRACEFS_MAGIC
    0x64626720, // DEBUGFS_MAGIC
    0x73636673, // SECURITYFS_MAGIC
    0x27e0eb,   // CGROUP_SUPER_MAGIC
    0x63677270, // CGROUP2_SUPER_MAGIC
];

/// A source whose size says nothing about its content.
pub fn is_sized_zero_pseudo_file(fd: c_int, st: &sys::FileStat) -> bool {
    st.size == 0 && sys::fs_magic(fd).is_ok_and(|m| PSEUDO_FS_MAGIC.contains(&m))
}

/// What the checks decide: the kernel's error, a successful 0 (nothing to copy), or a copy.
pub type Verdict = Result<Option<Copy>, Failure>;

/// The kernel's `MAX_RW_COUNT`: `INT_MAX & PAGE_MASK`, the most one read, write or copy moves.
pub fn max_rw_count() -> usize {
    (i32::MAX as usize) & !(sys::page_size() - 1)
}

/// Runs the kernel's checks for `req` against the live descriptors.
pub fn check(req: &Request) -> Verdict {
    // fdget(fd_in), fdget(fd_out): an invalid or O_PATH descriptor is EBADF.
    let fl_in = file_flags(req.fd_in)?;
    let fl_out = file_flags(req.fd_out)?;

    // copy_from_user(off_in), then (off_out): EFAULT, before the flags are looked at.
    let user_pos_in = read_offset_if_given(req.off_in)?;
    let user_pos_out = read_offset_if_given(req.off_out)?;

    if req.flags != 0 {
        return Err(Failure::Kernel(Errno::EINVAL));
    }

    // generic_file_rw_checks: directories, then other non-regular files, then open modes.
    // (The kernel reads its inodes; `fstat` may fail where it would not, e.g. on FUSE.)
    let st_in = own(sys::fstat(req.fd_in))?;
    let st_out = own(sys::fstat(req.fd_out))?;
    let is = |st: &sys::FileStat, kind| st.mode & libc::S_IFMT == kind;
    let refuse = |e| Err(Failure::Kernel(e));
    if is(&st_in, libc::S_IFDIR) || is(&st_out, libc::S_IFDIR) {
        return refuse(Errno::EISDIR);
    }
    if !is(&st_in, libc::S_IFREG) || !is(&st_out, libc::S_IFREG) {
        return refuse(Errno::EINVAL);
    }
    if !readable(fl_in) || !writable(fl_out) || fl_out & libc::O_APPEND != 0 {
        return refuse(Errno::EBADF);
    }

    // (The cross-filesystem EXDEV check is skipped on purpose: see the module comment.)
    if sys::is_immutable(req.fd_out) {
        return refuse(Errno::EPERM);
    }

    // With a NULL offset pointer the kernel uses the file position (f_pos); lseek reads it,
    // and fails (ESPIPE) on a non-seekable file, where the kernel reads f_pos directly.
    let pos_in = match user_pos_in {
        Some(p) => p,
        None => own(sys::lseek(req.fd_in, 0, libc::SEEK_CUR))?,
    };
    let pos_out = match user_pos_out {
        Some(p) => p,
        None => own(sys::lseek(req.fd_out, 0, libc::SEEK_CUR))?,
    };

    // A pseudo-file is read to its end: as if its size were the largest possible.
    let size_known = !is_sized_zero_pseudo_file(req.fd_in, &st_in);
    let geometry = Geometry {
        pos_in,
        pos_out,
        len: req.len as u64,
        size_in: if size_known { st_in.size } else { i64::MAX },
        same_inode: st_in.dev == st_out.dev && st_in.ino == st_out.ino,
        fsize_limit: sys::fsize_limit().unwrap_or(libc::RLIM64_INFINITY),
        out_largefile: sys::opened_largefile(fl_out),
    };
    match geometry.clamp() {
        Ok(0) => Ok(None),
        Ok(count) => Ok(Some(Copy {
            pos_in,
            pos_out,
            count: (count as usize).min(max_rw_count()),
            size_out: st_out.size,
            size_known,
            out_at_file_position: user_pos_out.is_none(),
            src_unallocated: if size_known {
                (st_in.size as u64).saturating_sub(st_in.blocks.saturating_mul(512))
            } else {
                0
            },
        })),
        Err(refusal) => {
            if refusal.sigxfsz {
                sys::raise_in_this_thread(libc::SIGXFSZ);
            }
            Err(refusal.into())
        }
    }
}

/// `F_GETFL` of a descriptor `fdget` would accept; EBADF otherwise. (Any other error, e.g. a
/// seccomp profile refusing `fcntl`, is the emulation's.)
fn file_flags(fd: c_int) -> Result<c_int, Failure> {
    match sys::fcntl_getfl(fd) {
        Ok(fl) if fl & sys::O_PATH == 0 => Ok(fl),
        Ok(_) | Err(Errno::EBADF) => Err(Failure::Kernel(Errno::EBADF)),
        Err(e) => Err(Failure::Emulation(e)),
    }
}

/// The caller's offset, or EFAULT as `copy_from_user` gives it. (Any other error, e.g. no
/// descriptor left for the pipe that reads it, is the emulation's.)
fn read_offset_if_given(ptr: UserPtr) -> Result<Option<i64>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    match crate::usermem::read_offset(ptr) {
        Ok(v) => Ok(Some(v)),
        Err(Errno::EFAULT) => Err(Failure::Kernel(Errno::EFAULT)),
        Err(e) => Err(Failure::Emulation(e)),
    }
}

/// The kernel's `OPEN_FMODE`: access mode 0 reads, 1 writes, 2 both, 3 neither.
fn fmode(flags: c_int) -> c_int {
    (flags + 1) & libc::O_ACCMODE
}
fn readable(flags: c_int) -> bool {
    fmode(flags) & 1 != 0
}
fn writable(flags: c_int) -> bool {
    fmode(flags) & 2 != 0
}

/// The numbers the remaining checks work on. Positions are `loff_t` (signed), the length and
/// count are unsigned, and the kernel mixes them exactly as C does; the arithmetic below mirrors
/// each expression's C type (wrapping, since the kernel builds with `-fno-strict-overflow`).
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub pos_in: i64,
    pub pos_out: i64,
    pub len: u64,
    pub size_in: i64,
    pub same_inode: bool,
    /// Soft RLIMIT_FSIZE; `u64::MAX` is RLIM_INFINITY.
    pub fsize_limit: u64,
    pub out_largefile: bool,
}

/// A failed check: the errno, and whether the kernel also sends SIGXFSZ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub errno: Errno,
    pub sigxfsz: bool,
}

impl From<Errno> for Refusal {
    fn from(errno: Errno) -> Refusal {
        Refusal {
            errno,
            sigxfsz: false,
        }
    }
}

/// `MAX_LFS_FILESIZE` on 64-bit; the real per-filesystem `s_maxbytes` is not visible from user
/// space, so a smaller one (ext4: 16 TiB) shows up later, as EFBIG from the write itself.
const MAX_LFS_FILESIZE: i64 = i64::MAX;
/// The limit for descriptors opened without `O_LARGEFILE` (by a 32-bit process).
const MAX_NON_LFS: i64 = i32::MAX as i64;

impl Geometry {
    /// From the overflow check in `generic_copy_file_checks` to the end of `rw_verify_area`:
    /// the number of bytes the kernel would go on to copy (before `MAX_RW_COUNT`), or its refusal.
    pub fn clamp(&self) -> Result<u64, Refusal> {
        let (pos_in, pos_out) = (self.pos_in, self.pos_out);
        let mut count: u64 = self.len;

        // Ensure offsets don't wrap: `pos + count < pos`, in unsigned 64-bit arithmetic.
        if (pos_in as u64).checked_add(count).is_none()
            || (pos_out as u64).checked_add(count).is_none()
        {
            return Err(Errno::EOVERFLOW.into());
        }

        // Shorten the copy to EOF (i_size); `pos_in >= size_in` compares signed.
        if pos_in >= self.size_in {
            count = 0;
        } else {
            count = count.min((self.size_in as u64).wrapping_sub(pos_in as u64));
        }

        // generic_write_check_limits: runs even for a count of 0. Its count is a signed loff_t.
        let mut scount = count as i64;
        if self.fsize_limit != libc::RLIM64_INFINITY {
            let limit = self.fsize_limit as i64;
            if pos_out >= limit {
                return Err(Refusal {
                    errno: Errno::EFBIG,
                    sigxfsz: true,
                });
            }
            scount = scount.min(limit.wrapping_sub(pos_out));
        }
        let max_size = if self.out_largefile {
            MAX_LFS_FILESIZE
        } else {
            MAX_NON_LFS
        };
        if pos_out >= max_size {
            return Err(Errno::EFBIG.into());
        }
        scount = scount.min(max_size.wrapping_sub(pos_out));
        count = scount as u64;

        // No overlapping copy within one inode; unsigned comparisons, with the clamped count.
        if self.same_inode
            && (pos_out as u64).wrapping_add(count) > pos_in as u64
            && (pos_out as u64) < (pos_in as u64).wrapping_add(count)
        {
            return Err(Errno::EINVAL.into());
        }

        // rw_verify_area(READ, pos_in), then (WRITE, pos_out).
        verify_area(pos_in, count)?;
        verify_area(pos_out, count)?;
        Ok(count)
    }
}

/// `rw_verify_area` for a regular file (no `FMODE_UNSIGNED_OFFSET`).
fn verify_area(pos: i64, count: u64) -> Result<(), Errno> {
    if (count as i64) < 0 || pos < 0 || pos.wrapping_add(count as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: u64 = libc::RLIM64_INFINITY;

    fn geo(pos_in: i64, pos_out: i64, len: u64, size_in: i64) -> Geometry {
        Geometry {
            pos_in,
            pos_out,
            len,
            size_in,
            same_inode: false,
            fsize_limit: INF,
            out_largefile: true,
        }
    }

    fn errno(e: Errno) -> Result<u64, Refusal> {
        Err(e.into())
    }

    #[test]
    fn eof_clamp() {
        assert_eq!(geo(0, 0, 10, 100).clamp(), Ok(10));
        assert_eq!(geo(95, 0, 10, 100).clamp(), Ok(5));
        assert_eq!(geo(100, 0, 10, 100).clamp(), Ok(0));
        assert_eq!(geo(1000, 0, 10, 100).clamp(), Ok(0));
        assert_eq!(geo(0, 0, 0, 100).clamp(), Ok(0));
    }

    #[test]
    fn unsigned_overflow_is_eoverflow() {
        // Observed on 6.18: off=-1, len=10 → EOVERFLOW; len=SIZE_MAX at off 1 → EOVERFLOW, at 0 copies.
        assert_eq!(geo(-1, 0, 10, 100).clamp(), errno(Errno::EOVERFLOW));
        assert_eq!(geo(0, -1, 10, 100).clamp(), errno(Errno::EOVERFLOW));
        assert_eq!(geo(1, 0, u64::MAX, 100).clamp(), errno(Errno::EOVERFLOW));
        assert_eq!(geo(0, 0, u64::MAX, 100).clamp(), Ok(100));
        assert_eq!(geo(0, 1, u64::MAX, 100).clamp(), errno(Errno::EOVERFLOW));
    }

    #[test]
    fn negative_positions_are_einval() {
        // off=-5, len=3 passes the overflow check and fails in rw_verify_area.
        assert_eq!(geo(-5, 0, 3, 100).clamp(), errno(Errno::EINVAL));
        assert_eq!(geo(0, -5, 3, 100).clamp(), errno(Errno::EINVAL));
        // Even with nothing to copy: count 0 still goes through rw_verify_area.
        assert_eq!(geo(0, -5, 3, 0).clamp(), errno(Errno::EINVAL));
    }

    #[test]
    fn destination_at_max_file_size() {
        // The destination is clamped to MAX_LFS_FILESIZE first, so one byte still fits...
        assert_eq!(geo(0, i64::MAX - 1, 10, 100).clamp(), Ok(1));
        // ...and at MAX_LFS_FILESIZE itself nothing does, even for len 0.
        assert_eq!(geo(0, i64::MAX, 0, 100).clamp(), errno(Errno::EFBIG));
    }

    #[test]
    fn rlimit_fsize() {
        let mut g = geo(0, 50, 100, 1000);
        g.fsize_limit = 60;
        assert_eq!(g.clamp(), Ok(10));
        g.fsize_limit = 50;
        assert_eq!(
            g.clamp(),
            Err(Refusal {
                errno: Errno::EFBIG,
                sigxfsz: true
            })
        );
        // Also with nothing to copy (len 0, or source at EOF).
        g.len = 0;
        assert_eq!(g.clamp().map_err(|r| r.sigxfsz), Err(true));
    }

    #[test]
    fn non_largefile_destination() {
        let mut g = geo(0, i32::MAX as i64 - 4, 100, 1000);
        g.out_largefile = false;
        assert_eq!(g.clamp(), Ok(4));
        g.pos_out = i32::MAX as i64;
        assert_eq!(g.clamp(), errno(Errno::EFBIG));
    }

    #[test]
    fn same_inode_overlap_uses_clamped_count() {
        let mut g = geo(0, 50, 100, 100);
        g.same_inode = true;
        assert_eq!(g.clamp(), errno(Errno::EINVAL));
        // Source range [60, 100) clamped at EOF, destination at 100: no overlap.
        g.pos_in = 60;
        g.pos_out = 100;
        assert_eq!(g.clamp(), Ok(40));
        // Adjacent ranges do not overlap.
        g.pos_in = 0;
        g.pos_out = 50;
        g.len = 50;
        assert_eq!(g.clamp(), Ok(50));
        g.len = 51;
        assert_eq!(g.clamp(), errno(Errno::EINVAL));
    }

    #[test]
    fn access_modes() {
        assert!(readable(libc::O_RDONLY) && !writable(libc::O_RDONLY));
        assert!(!readable(libc::O_WRONLY) && writable(libc::O_WRONLY));
        assert!(readable(libc::O_RDWR) && writable(libc::O_RDWR));
        assert!(!readable(3) && !writable(3));
    }
}

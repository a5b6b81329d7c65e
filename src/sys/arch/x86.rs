//! i386 (32-bit x86), natively or on an x86_64 kernel's ia32 entry: `int 0x80`, and the calls
//! whose 32-bit forms would truncate: `fstat64` (the plain `fstat` has a 32-bit `st_size` and
//! fails with EOVERFLOW past 2 GiB), `_llseek`, `pread64`/`pwrite64` with the position split
//! into two registers, `mmap2`, `fcntl64`, `fstatfs64`.

use crate::sys::{FileStat, SysResult};
use core::ffi::{c_int, c_long};

/// The kernel's `O_LARGEFILE` on x86 (asm-generic/fcntl.h: 00100000). A 32-bit program built
/// without `_FILE_OFFSET_BITS=64` opens files without it, and the kernel then limits writes to
/// `MAX_NON_LFS` (`checks`).
pub const O_LARGEFILE_KERNEL: c_int = 0o100000;

pub fn opened_largefile(flags: c_int) -> bool {
    flags & O_LARGEFILE_KERNEL != 0
}

pub const SYS_FCNTL: c_long = libc::SYS_fcntl64;
/// `sendfile64`: its offset is a 64-bit `loff_t` (plain `sendfile` takes a 32-bit `off_t`).
pub const SYS_SENDFILE: c_long = libc::SYS_sendfile64;

/// The raw machine instruction: number in eax, arguments in ebx, ecx, edx, esi, edi, ebp, result
/// in eax; `int 0x80` preserves every other register. A value in `-4095..=-1` is a negated errno.
///
/// esi and ebp cannot be named as operands (LLVM may keep its base pointer in esi, and ebp is
/// the frame pointer), so the three upper arguments travel in memory: edi carries the address
/// of `[a4, a5, a6]`; the instructions save esi and ebp on the stack, load esi and ebp from the
/// array and edi last (its own address no longer needed), and restore esi and ebp afterwards.
///
/// # Safety
/// As for every architecture's `raw_syscall6`: the call must not violate memory safety.
#[inline(always)]
pub unsafe fn raw_syscall6(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let upper: [c_long; 3] = [a4, a5, a6];
    let ret: c_long;
    // SAFETY: the i386 Linux system-call ABI as described above. The instructions read the
    // three words of `upper` (live for the whole block), push and pop two words of our own
    // stack (balanced), and leave esi and ebp as they found them; edi is declared clobbered.
    unsafe {
        core::arch::asm!(
            "push ebp",
            "push esi",
            "mov esi, dword ptr [edi]",
            "mov ebp, dword ptr [edi + 8]",
            "mov edi, dword ptr [edi + 4]",
            "int 0x80",
            "pop esi",
            "pop ebp",
            inlateout("eax") nr => ret,
            in("ebx") a1,
            in("ecx") a2,
            in("edx") a3,
            inout("edi") upper.as_ptr() => _,
        );
    }
    ret
}

/// A 64-bit position as the two registers the i386 calls take it in: low word first.
fn halves(pos: i64) -> (u32, u32) {
    (pos as u64 as u32, (pos as u64 >> 32) as u32)
}

/// The kernel's `struct stat64` for i386 (arch/x86/include/uapi/asm/stat.h; packed, 96 bytes;
/// the same layout the ia32 entry of an x86_64 kernel writes). `st_ino` at the end is the full
/// inode number; the 32-bit one after `__pad0` is truncated.
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct Stat64 {
    st_dev: u64,
    __pad0: [u8; 4],
    __st_ino: u32,
    st_mode: u32,
    st_nlink: u32,
    st_uid: u32,
    st_gid: u32,
    st_rdev: u64,
    __pad3: [u8; 4],
    st_size: i64,
    st_blksize: u32,
    st_blocks: u64,
    st_times: [u32; 6],
    st_ino: u64,
}

const _: () = assert!(core::mem::size_of::<Stat64>() == 96);

pub fn fstat(fd: c_int) -> SysResult<FileStat> {
    // SAFETY: all-zero is a valid `Stat64` (plain integers).
    let mut st: Stat64 = unsafe { core::mem::zeroed() };
    // SAFETY: `st` is a writable `struct stat64`, exactly the 96 bytes fstat64 fills.
    unsafe { sys!(libc::SYS_fstat64, fd, &mut st as *mut Stat64) }?;
    Ok(FileStat {
        mode: st.st_mode,
        size: st.st_size,
        blocks: st.st_blocks,
        uid: st.st_uid,
        nlink: u64::from(st.st_nlink),
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

pub fn lseek(fd: c_int, offset: i64, whence: c_int) -> SysResult<i64> {
    let (low, high) = halves(offset);
    let mut result: i64 = 0;
    // SAFETY: `_llseek(fd, offset_high, offset_low, loff_t *result, whence)` writes the new
    // position into `result`, a live i64 of ours.
    unsafe {
        sys!(
            libc::SYS__llseek,
            fd,
            high,
            low,
            &mut result as *mut i64,
            whence
        )
    }?;
    Ok(result)
}

/// # Safety
/// `buf` is writable for `len` bytes.
pub unsafe fn pread64(fd: c_int, buf: *mut u8, len: usize, pos: i64) -> SysResult<usize> {
    let (low, high) = halves(pos);
    // SAFETY: the caller's guarantee; the kernel writes at most `len` bytes at `buf`.
    unsafe { sys!(libc::SYS_pread64, fd, buf, len, low, high) }
}

/// # Safety
/// `buf` is readable for `len` bytes.
pub unsafe fn pwrite64(fd: c_int, buf: *const u8, len: usize, pos: i64) -> SysResult<usize> {
    let (low, high) = halves(pos);
    // SAFETY: the caller's guarantee; the kernel reads at most `len` bytes from `buf`.
    unsafe { sys!(libc::SYS_pwrite64, fd, buf, len, low, high) }
}

/// A private anonymous read/write mapping of `len` bytes (`mmap2`: its offset counts pages,
/// and is 0 here); its address.
pub fn mmap_anonymous(len: usize) -> SysResult<usize> {
    // SAFETY: an anonymous mapping at an address of the kernel's choosing aliases nothing.
    unsafe {
        sys!(
            libc::SYS_mmap2,
            0usize,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0
        )
    }
}

/// The kernel's `struct statfs64` for i386 is 84 bytes (packed to 4; `f_type` first, 32-bit), and
/// `fstatfs64` insists on being told exactly that size. The plain `fstatfs` fails with EOVERFLOW
/// on filesystems whose block counts do not fit 32 bits.
const STATFS64_SIZE: usize = 84;

pub fn fs_magic(fd: c_int) -> SysResult<i64> {
    let mut buf = [0u32; STATFS64_SIZE / 4];
    // SAFETY: `fstatfs64(fd, size, buf)` writes `size` bytes into `buf`, which has exactly that.
    unsafe { sys!(libc::SYS_fstatfs64, fd, STATFS64_SIZE, buf.as_mut_ptr()) }?;
    Ok(i64::from(buf[0]))
}

#[cfg(test)]
mod tests {
    use super::halves;

    #[test]
    fn positions_split_low_word_first() {
        assert_eq!(halves(0x1_2345_6789), (0x2345_6789, 1));
        assert_eq!(halves(-1), (u32::MAX, u32::MAX));
        assert_eq!(halves(i64::MAX), (u32::MAX, 0x7fff_ffff));
    }
}

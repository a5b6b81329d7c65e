//! Memory: user pointers the shim only hands to the kernel, moving bytes through them without
//! faulting (`process_vm_*`), the copy buffer (an anonymous mapping), and the page size.

use super::{SysResult, arch, gettid};
use core::ffi::c_void;

/// A user-supplied pointer the shim must not dereference directly: it is only handed to the kernel,
/// which answers `EFAULT` for a bad one (see `usermem`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UserPtr(pub usize);

impl UserPtr {
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
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

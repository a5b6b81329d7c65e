//! Raw system calls: the only module that talks to the kernel.
//!
//! Everything the shim does goes through `arch::raw_syscall6`, the architecture's system-call
//! instruction (`syscall`, `int 0x80`, `svc 0`), never through libc: glibc's wrappers for
//! `syscall()` and `copy_file_range()` are the very symbols this library exports (calling them
//! would recurse), and newer glibc wrappers (`fstat@GLIBC_2.33`, `dlsym@GLIBC_2.34`) would raise
//! the glibc version the library needs. Results come back as `Result<_, Errno>`; only the
//! exported entry points translate that into the C `-1`/`errno` form.
//!
//! The portable wrappers live in one file per topic: `errno` (the error type, its names, the C
//! `errno`), `fd` (opening, closing, pipes, descriptor flags), `io` (reading, writing, the kernel's
//! copies, positions), `inode` (stat, filesystem type, extents, inode flags), `memory` (user
//! pointers, the copy buffer, the page size) and `process` (ids, a signal, limits, the clock,
//! secure execution). Callers name them through this module (`sys::fstat`), never through the
//! topic. What differs between architectures (the instruction, the calls whose number or argument
//! layout differs, `struct stat`, the kernel's `O_LARGEFILE`) lives in `arch/`, one file per
//! architecture; the wrappers keep one signature everywhere.

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

// After `sys!`: its textual scope covers the modules declared below.
mod arch;
mod errno;
mod fd;
mod inode;
mod io;
mod memory;
mod process;

pub use arch::{O_LARGEFILE_KERNEL, opened_largefile};
pub use errno::{Errno, SysResult, result_of};
// Only the exported entry points use these (`entry` is not built for unit tests).
#[cfg_attr(test, allow(unused_imports))]
pub(crate) use arch::raw_syscall6;
#[cfg_attr(test, allow(unused_imports))]
pub use errno::set_errno;
pub use fd::{O_PATH, ProcFdPath, close, fcntl_getfl, open, pipe, pipe_capacity, readlink};
pub use inode::{
    FIEMAP_BATCH, FIEMAP_EXTENT_LAST, FiemapExtent, FileStat, fiemap, fs_magic, fstat, is_immutable,
};
pub use io::{
    copy_file_range, lseek, pread, pwrite, read, read_to_user, sendfile, splice, write,
    write_from_user,
};
pub use memory::{MappedBuf, UserPtr, page_size, process_vm_rw};
pub use process::{
    fsize_limit, getpid, gettid, monotonic_secs, raise_in_this_thread, secure_execution,
};

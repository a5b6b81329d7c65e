//! Per-architecture system-call code, one file per architecture.
//!
//! Each file provides the same items, which `sys` wraps in portable functions:
//! - `raw_syscall6`: the system-call instruction, with the kernel's register convention;
//! - `O_LARGEFILE_KERNEL`: the kernel's `O_LARGEFILE` bit (its value differs between
//!   architectures, and glibc's headers define it as 0 on 64-bit ones), and `opened_largefile`,
//!   whether `F_GETFL` flags say a descriptor has it (the kernel then allows writes past
//!   2 GiB − 1; a descriptor a 32-bit process opened without it does not);
//! - `SYS_FCNTL`, `SYS_SENDFILE`: `fcntl` and `sendfile`, or `fcntl64` and `sendfile64` where
//!   the plain calls are the 32-bit ones;
//! - `fstat`, `lseek`, `pread64`, `pwrite64`, `mmap_anonymous`, `fs_magic`: the calls whose
//!   number, argument layout or result structure differ (64-bit offsets split into register
//!   pairs, `stat64`, `_llseek`, `mmap2`, `fstatfs64` on i386).
//!
//! x86_64 and aarch64 share the 64-bit forms (`lp64.rs`); they differ only in the instruction
//! and the `O_LARGEFILE` value. x32 (x86_64 instructions, 32-bit pointers) is not supported: its
//! system calls carry `__X32_SYSCALL_BIT` and its `syscall()` passes 64-bit values differently.

#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
pub use x86_64::*;

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86")]
pub use x86::*;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(any(
    all(target_arch = "x86_64", target_pointer_width = "64"),
    target_arch = "aarch64"
))]
mod lp64;

#[cfg(not(any(
    all(target_arch = "x86_64", target_pointer_width = "64"),
    target_arch = "x86",
    target_arch = "aarch64"
)))]
compile_error!("cfrfix has system-call code for x86_64, i386 (x86) and aarch64 Linux only");

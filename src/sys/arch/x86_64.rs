//! x86_64: the `syscall` instruction; the 64-bit call forms (`lp64.rs`).

use core::ffi::{c_int, c_long};

pub use super::lp64::*;

/// The kernel's `O_LARGEFILE` (asm-generic/fcntl.h: 00100000).
pub const O_LARGEFILE_KERNEL: c_int = 0o100000;

pub fn opened_largefile(flags: c_int) -> bool {
    flags & O_LARGEFILE_KERNEL != 0
}

/// The raw machine instruction. Arguments and the result are exactly what the kernel sees/returns:
/// a value in `-4095..=-1` is a negated errno.
///
/// # Safety
/// The caller guarantees that the system call `nr` with these arguments does not violate memory
/// safety (pointers it passes are valid for what that call does with them, or the call is one that
/// reports `EFAULT` instead of touching them).
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
    let ret: c_long;
    // SAFETY: the x86_64 Linux system-call ABI: number in rax, arguments in rdi, rsi, rdx, r10, r8,
    // r9; the instruction clobbers rcx and r11 and nothing else; it does not touch our stack.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

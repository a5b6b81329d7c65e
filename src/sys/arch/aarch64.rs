//! aarch64: the `svc 0` instruction; the 64-bit call forms (`lp64.rs`).

use core::ffi::{c_int, c_long};

pub use super::lp64::*;

/// The kernel's `O_LARGEFILE` on arm64 (arch/arm64/include/uapi/asm/fcntl.h: 0400000, the value
/// 32-bit ARM uses, where the generic one is 0100000).
pub const O_LARGEFILE_KERNEL: c_int = 0o400000;

/// The generic `O_LARGEFILE` value, which arm64 uses for `O_NOFOLLOW`.
const O_LARGEFILE_GENERIC: c_int = 0o100000;

/// Whether `F_GETFL` flags say the descriptor was opened large-file. The kernel gives every
/// descriptor an AArch64 process opens `O_LARGEFILE` (0400000); only one an AArch32 process
/// opened without it and handed down lacks it. Under qemu-user on an x86_64 host, `F_GETFL`
/// passes the host's bit through untranslated: 0100000 and never 0400000, although the host
/// kernel opened the file large-file and lets writes pass 2 GiB. So 0100000 counts too. The
/// one descriptor this misjudges is one an AArch32 process opened with `O_NOFOLLOW` and
/// without `O_LARGEFILE`: the emulation then writes past 2 GiB − 1 where the kernel would
/// answer EFBIG.
pub fn opened_largefile(flags: c_int) -> bool {
    flags & (O_LARGEFILE_KERNEL | O_LARGEFILE_GENERIC) != 0
}

/// The raw machine instruction; see the x86_64 version for the contract.
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
    let ret: c_long;
    // SAFETY: the aarch64 Linux system-call ABI: number in x8, arguments in x0..x5, result in x0;
    // `svc 0` clobbers nothing else and does not touch our stack.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 => ret,
            in("x1") a2, in("x2") a3, in("x3") a4, in("x4") a5, in("x5") a6,
            options(nostack)
        );
    }
    ret
}

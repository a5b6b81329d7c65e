//! `cfrfix-check-copy`: the half of `cfrfix --check` that runs with libcfrfix.so preloaded.
//!
//! It copies descriptor 3 into descriptor 4 (both opened by `cfrfix-check`, which also checks
//! the result) from their file positions with copy_file_range through libc's `syscall()`, an
//! entry point cfrfix interposes, until the source's size is copied, a call returns 0 or fails. It prints `copied N` or `failed ERRNO after
//! N`, then `--- maps` and this process's /proc/self/maps (which tells whether the library was
//! loaded).
//!
//! Why a separate, minimal program: the shipped `cfrfix-check` is linked statically so that the
//! package needs no newer glibc than the library does (2.17), and a static program cannot preload
//! anything. This one is dynamically linked, imports only functions glibc 2.17 has (`syscall`,
//! `lseek`, `open`, `read`, `write`, `_exit`, `__errno_location`), and brings its own `_start`: the C
//! runtime's start file would import `__libc_start_main@GLIBC_2.34` (build.rs links this program
//! with `-nostartfiles`). The loader still initialises libc and runs the preloaded library's
//! constructor before `_start`.
// A harness build (`cargo clippy --all-targets`) gets std and its own main: nothing of this
// program is compiled then.
#![cfg_attr(not(test), no_std, no_main)]
#![cfg(not(test))]

use core::ffi::c_int;

const SOURCE_FD: c_int = 3;
const DESTINATION_FD: c_int = 4;

// The process entry: the kernel leaves the stack 16-byte aligned with argc on top and no return
// address, so align for the call and never return.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym check_copy_main,
);

#[cfg(target_arch = "x86")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "and esp, -16",
    "call {main}",
    "ud2",
    main = sym check_copy_main,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,%function",
    "_start:",
    "mov x29, #0",
    "mov x30, #0",
    "bl {main}",
    "brk #0",
    main = sym check_copy_main,
);

fn write_all(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of its length.
        let n = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        bytes = bytes.get(n as usize..).unwrap_or(&[]);
    }
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Decimal digits of `n` into `buf`; returns them.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    &buf[at..]
}

fn copy() {
    // The source's size, so that the loop stops at its end rather than asking once more (an
    // extra call at the end would be one more fallback, and one more log line).
    // SAFETY: lseek on a descriptor, no memory.
    let size = unsafe { libc::lseek(SOURCE_FD, 0, libc::SEEK_END) };
    // SAFETY: as above.
    if size < 0 || unsafe { libc::lseek(SOURCE_FD, 0, libc::SEEK_SET) } != 0 {
        write_all(b"no source\n");
        return;
    }
    let mut copied: u64 = 0;
    let mut digits = [0u8; 20];
    loop {
        if copied >= size as u64 {
            write_all(b"copied ");
            write_all(decimal(copied, &mut digits));
            write_all(b"\n");
            return;
        }
        // SAFETY: copy_file_range with NULL offset pointers uses only the two descriptors.
        let n = unsafe {
            libc::syscall(
                libc::SYS_copy_file_range,
                SOURCE_FD,
                core::ptr::null_mut::<i64>(),
                DESTINATION_FD,
                core::ptr::null_mut::<i64>(),
                (size as u64 - copied) as usize,
                0u32,
            )
        };
        if n > 0 {
            copied += n as u64;
            continue;
        }
        if n == 0 {
            write_all(b"copied ");
            write_all(decimal(copied, &mut digits));
            write_all(b"\n");
            return;
        }
        let e = errno();
        if e == libc::EINTR {
            continue;
        }
        write_all(b"failed ");
        write_all(decimal(e as u64, &mut digits));
        write_all(b" after ");
        write_all(decimal(copied, &mut digits));
        write_all(b"\n");
        return;
    }
}

fn dump_maps() {
    write_all(b"--- maps\n");
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        write_all(buf.get(..n as usize).unwrap_or(&[]));
    }
}

extern "C" fn check_copy_main() -> ! {
    copy();
    dump_maps();
    // SAFETY: ends the process; nothing to clean up (no stdio buffers are used).
    unsafe { libc::_exit(0) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: as above.
    unsafe { libc::_exit(101) }
}

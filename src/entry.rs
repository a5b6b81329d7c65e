//! The exported symbols: glibc's `copy_file_range`, the variadic `syscall`, and the load-time
//! constructor. Nothing here decides anything; it converts between the C ABI and `policy`.

use crate::checks::Request;
use crate::sys::{self, Errno, SysResult, UserPtr};
use core::ffi::{c_char, c_int, c_long, c_uint};

/// glibc's `ssize_t copy_file_range(int, loff_t *, int, loff_t *, size_t, unsigned)`. Also what
/// `dlsym(RTLD_DEFAULT, "copy_file_range")` finds (Java NIO, Rust std).
///
/// # Safety
/// Callable from C with any arguments: the offset pointers are never dereferenced directly.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn copy_file_range(
    fd_in: c_int,
    off_in: *mut i64,
    fd_out: c_int,
    off_out: *mut i64,
    len: usize,
    flags: c_uint,
) -> isize {
    let req = Request {
        fd_in,
        off_in: UserPtr(off_in as usize),
        fd_out,
        off_out: UserPtr(off_out as usize),
        len,
        flags,
    };
    c_result(crate::policy::copy_file_range(&req)) as isize
}

/// glibc's `long syscall(long number, ...)`, defined with seven `long`s because Rust cannot
/// define a C-variadic function. Sound only where variadic and fixed integer arguments travel
/// the same way: x86_64 System V (rdi, rsi, rdx, rcx, r8, r9, then the stack, which the 7th
/// parameter reads exactly as glibc's own `syscall.S` does), i386 (cdecl: all seven on the
/// stack; glibc's i386 `syscall()` also loads all six argument slots, pushed or not, and a
/// 64-bit argument arrives as two `long`s, forwarded as they came) and aarch64 Linux (x0..x6).
///
/// `SYS_copy_file_range` (what libuv/Node and some Ruby builds call) goes to the same code as the
/// libc symbol; every other number is passed to the kernel untouched, with glibc's convention
/// (-1 and `errno` for -4095..-1), at the cost of one compare.
///
/// # Safety
/// Exactly as unsafe as glibc's `syscall()`: the caller vouches for the arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if number == libc::SYS_copy_file_range {
        // The int and unsigned arguments arrive promoted to long; their upper bits are not
        // defined, so they are truncated first, as the kernel does.
        let req = Request {
            fd_in: a1 as c_int,
            off_in: UserPtr(a2 as usize),
            fd_out: a3 as c_int,
            off_out: UserPtr(a4 as usize),
            len: a5 as usize,
            flags: a6 as c_uint,
        };
        return c_result(crate::policy::copy_file_range(&req)) as c_long;
    }
    // SAFETY: a plain forward of the caller's system call, as glibc's syscall() does.
    let ret = unsafe { sys::raw_syscall6(number, a1, a2, a3, a4, a5, a6) };
    match sys::result_of(ret) {
        Ok(_) => ret,
        Err(e) => {
            sys::set_errno(e);
            -1
        }
    }
}

/// The C convention: the value, or -1 with `errno` set.
fn c_result(r: SysResult<usize>) -> isize {
    match r {
        Ok(n) => n as isize,
        Err(Errno(e)) => {
            sys::set_errno(Errno(e));
            -1
        }
    }
}

/// Load-time constructor: reads the configuration. glibc calls `.init_array` entries with
/// `(argc, argv, envp)`.
extern "C" fn init(_argc: c_int, _argv: *const *const c_char, envp: *const *const c_char) {
    // SAFETY: the loader passes the process environment: NULL-terminated, NUL-terminated strings.
    unsafe { crate::config::load(envp) }
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = init;

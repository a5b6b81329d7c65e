//! cfrfix: an `LD_PRELOAD` library that makes `copy_file_range(2)` work where the kernel or the
//! filesystem refuses it, by doing the copy in user space with the kernel's exact semantics.
//!
//! Layers, outermost first:
//! - `entry`: the exported `copy_file_range` and `syscall`, and the load-time constructor;
//! - `policy`: when to fall back, and the emulated call from checks to offset write-back;
//! - `checks`: the kernel's argument checks, in the kernel's order;
//! - `engine`: the copy engines;
//! - `config`, `log`: configuration from the environment, and the optional fallback log;
//! - `sys`, `usermem`: raw system calls, and fault-free access to the caller's offset pointers.
//!
//! The library is `no_std` and calls no libc function but `__errno_location` and `getauxval`:
//! it must not call its own exports (glibc's `syscall`/`copy_file_range`), it is loaded into every
//! process (so: small, no `libgcc_s`, loadable on old glibc), and it must never block or allocate
//! inside a hook.

#![cfg_attr(not(test), no_std)]
// Unit tests build without the exported entry points (a test binary must not interpose its own
// `syscall`), which leaves the code only they reach unused there.
#![cfg_attr(test, allow(dead_code))]

mod checks;
mod config;
mod engine;
#[cfg(not(test))]
mod entry;
mod log;
mod policy;
mod sys;
mod usermem;

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing in the library panics by design (no unwrap, no indexing on the hot path); should
    // that ever be wrong, stop the process rather than continue with a broken copy.
    // SAFETY: abort() is always safe to call.
    unsafe { libc::abort() }
}

//! The copy_file_range calls the commands make: through glibc's symbol, `syscall()` or a
//! `dlsym` pointer (`Entry`), with offset variables or raw (possibly bad) pointers; `copy_all`
//! copies a whole range in chunks and checks every call's effect on the offsets; `bad_pages`
//! makes the unmapped and read-only offset pointers.

use std::ffi::{c_int, c_long, c_uint, c_void};

use crate::tools::{errno, fail, position};

/// The two ways programs reach copy_file_range: glibc's symbol, and `syscall()` (libuv).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Entry {
    Libc,
    Syscall,
    Dlsym,
}

type CopyFn =
    unsafe extern "C" fn(c_int, *mut i64, c_int, *mut i64, usize, c_uint) -> libc::ssize_t;

/// `copy_file_range` through `entry`: the result and errno (0 on success).
pub(crate) fn cfr(
    entry: Entry,
    fd_in: c_int,
    off_in: Option<&mut i64>,
    fd_out: c_int,
    off_out: Option<&mut i64>,
    len: usize,
    flags: c_uint,
) -> (isize, c_int) {
    let p_in = off_in.map_or(std::ptr::null_mut(), |r| r as *mut i64);
    let p_out = off_out.map_or(std::ptr::null_mut(), |r| r as *mut i64);
    raw_cfr(entry, fd_in, p_in, fd_out, p_out, len, flags)
}

/// As `cfr`, with raw offset pointers (which may be bad on purpose).
pub(crate) fn raw_cfr(
    entry: Entry,
    fd_in: c_int,
    p_in: *mut i64,
    fd_out: c_int,
    p_out: *mut i64,
    len: usize,
    flags: c_uint,
) -> (isize, c_int) {
    // SAFETY: errno is thread-local and always writable.
    unsafe { *libc::__errno_location() = 0 };
    let r = match entry {
        // SAFETY: copy_file_range only hands the offset pointers to the kernel (or the shim,
        // which probes them without dereferencing); bad ones give EFAULT.
        Entry::Libc => unsafe { libc::copy_file_range(fd_in, p_in, fd_out, p_out, len, flags) },
        // SAFETY: as above; the arguments are what the system call takes, as libuv passes them.
        Entry::Syscall => unsafe {
            libc::syscall(
                libc::SYS_copy_file_range,
                fd_in as c_long,
                p_in,
                fd_out as c_long,
                p_out,
                len,
                flags as c_long,
            ) as isize
        },
        Entry::Dlsym => {
            // SAFETY: looking a symbol up by a NUL-terminated name.
            let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"copy_file_range".as_ptr()) };
            if sym.is_null() {
                fail("dlsym(copy_file_range) is NULL");
            }
            // SAFETY: the symbol is glibc's (or the shim's) copy_file_range, of type CopyFn.
            let f: CopyFn = unsafe { std::mem::transmute::<*mut c_void, CopyFn>(sym) };
            // SAFETY: as for the libc entry.
            unsafe { f(fd_in, p_in, fd_out, p_out, len, flags) }
        }
    };
    (r, if r < 0 { errno() } else { 0 })
}

/// Copies `len` bytes from `pos` to `pos` between two descriptors, in chunks of `chunk`, with
/// explicit offsets or the file positions; checks every call's effect on the offsets.
pub(crate) fn copy_all(
    entry: Entry,
    fd_in: c_int,
    fd_out: c_int,
    len: usize,
    chunk: usize,
    explicit: bool,
) -> Result<usize, String> {
    let (mut oi, mut oo) = (0i64, 0i64);
    if !explicit {
        // SAFETY: lseek takes no pointer.
        unsafe {
            libc::lseek(fd_in, 0, libc::SEEK_SET);
            libc::lseek(fd_out, 0, libc::SEEK_SET);
        }
    }
    let mut done = 0usize;
    let mut calls = 0;
    while done < len {
        let want = chunk.min(len - done);
        let (r, e) = if explicit {
            cfr(entry, fd_in, Some(&mut oi), fd_out, Some(&mut oo), want, 0)
        } else {
            cfr(entry, fd_in, None, fd_out, None, want, 0)
        };
        calls += 1;
        if r <= 0 {
            return Err(format!(
                "{entry:?} call {calls} at {done}: ret {r} errno {e}"
            ));
        }
        done += r as usize;
        let (now_in, now_out) = if explicit {
            (oi, oo)
        } else {
            (position(fd_in), position(fd_out))
        };
        if now_in != done as i64 || now_out != done as i64 {
            return Err(format!(
                "{entry:?}: after {done} bytes the offsets are {now_in}/{now_out}"
            ));
        }
    }
    Ok(calls)
}

/// A PROT_NONE page and a read-only page holding an offset: the shim's EFAULT paths.
pub(crate) fn bad_pages() -> (*mut i64, *mut i64) {
    // SAFETY: fresh anonymous mappings at addresses of the kernel's choice alias nothing.
    unsafe {
        let none = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        let ro = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if none == libc::MAP_FAILED || ro == libc::MAP_FAILED {
            fail("mmap");
        }
        libc::mprotect(ro, 4096, libc::PROT_READ);
        (none.cast(), ro.cast())
    }
}

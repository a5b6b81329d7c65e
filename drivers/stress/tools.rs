//! Small tools every command uses: failing with `FAIL:`, errno, the position-dependent test
//! pattern, and file helpers (open, write, size, position, pread until full, and `holds`, which
//! checks a file's size and bytes without allocating, so that a forked child can use it).

use std::ffi::{CString, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(crate) fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("FAIL: {msg}");
    std::process::exit(1)
}

pub(crate) fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The content of test file `seed`: position-dependent, so a misplaced byte shows.
pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub(crate) fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| fail("NUL in path"))
}

pub(crate) fn open(p: &Path, flags: c_int) -> c_int {
    let c = cpath(p);
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        fail(format!("open {}: errno {}", p.display(), errno()));
    }
    fd
}

pub(crate) fn write_file(p: &Path, data: &[u8]) {
    std::fs::write(p, data).unwrap_or_else(|e| fail(format!("write {}: {e}", p.display())));
}

pub(crate) fn file_size(fd: c_int) -> i64 {
    // SAFETY: all-zero is a valid `struct stat`; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable struct stat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        fail(format!("fstat {fd}: errno {}", errno()));
    }
    st.st_size
}

pub(crate) fn position(fd: c_int) -> i64 {
    // SAFETY: lseek takes no pointer.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
}

/// pread until `buf` is full or EOF (retrying EINTR); the number of bytes read.
pub(crate) fn pread_full(fd: c_int, buf: &mut [u8], pos: i64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), pos + done as i64) };
        match n {
            0 => break,
            n if n > 0 => done += n as usize,
            _ if errno() == libc::EINTR => continue,
            _ => fail(format!("pread {fd}: errno {}", errno())),
        }
    }
    done
}

/// Whether `fd` holds exactly `expected` (size and bytes). Allocation-free when `scratch` is
/// big enough, so that a forked child can use it.
pub(crate) fn holds(fd: c_int, expected: &[u8], scratch: &mut [u8]) -> Result<(), String> {
    let size = file_size(fd);
    if size != expected.len() as i64 {
        return Err(format!("size {size}, expected {}", expected.len()));
    }
    let mut pos = 0;
    while pos < expected.len() {
        let want = (expected.len() - pos).min(scratch.len());
        let got = pread_full(fd, &mut scratch[..want], pos as i64);
        if got != want || scratch[..want] != expected[pos..pos + want] {
            return Err(format!("content differs in [{pos}, {})", pos + want));
        }
        pos += want;
    }
    Ok(())
}

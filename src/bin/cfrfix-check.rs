//! `cfrfix-check [--kernel] SRC_DIR DST_DIR`: the probe behind `cfrfix --check`.
//!
//! It creates a test file in SRC_DIR, copies it to a new file in DST_DIR with
//! copy_file_range(2) (file positions, no offsets, looping over short copies), checks the
//! copy byte for byte, removes both files and prints what happened:
//!
//! ```text
//! copy: failed with EXDEV (errno 18: Invalid cross-device link) after 0 of 262144 bytes
//! cfrfix in this process: no
//! ```
//!
//! With `--kernel` the call is the raw system call instruction, so the answer is the
//! kernel's own even when cfrfix is preloaded (by LD_PRELOAD or /etc/ld.so.preload). Without
//! it the call is glibc's `copy_file_range`, which a preloaded cfrfix interposes: run it
//! under `LD_PRELOAD=libcfrfix.so` for the "through cfrfix" answer.
//!
//! Exit status: 0 when the copy completed and matches, 1 when it did not, 2 for bad usage,
//! 3 when the test file cannot be set up.

use std::ffi::c_int;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "Usage: cfrfix-check [--kernel] SRC_DIR DST_DIR";

/// Size of the test file: several engine chunks, so a fallback has to loop.
const TEST_FILE_BYTES: usize = 256 * 1024;

/// Errno names for the values a copy_file_range failure plausibly carries. ENOTSUPP (524) is
/// kernel-internal (no libc name) and reported separately.
const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EXDEV", libc::EXDEV),
    ("EISDIR", libc::EISDIR),
    ("EINVAL", libc::EINVAL),
    ("ETXTBSY", libc::ETXTBSY),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("ESPIPE", libc::ESPIPE),
    ("EROFS", libc::EROFS),
    ("ENOSYS", libc::ENOSYS),
    ("EOVERFLOW", libc::EOVERFLOW),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EDQUOT", libc::EDQUOT),
];

/// The kernel-internal "not supported" errno some filesystems leak to user space.
const ENOTSUPP_KERNEL_INTERNAL: i32 = 524;

/// `EXDEV (errno 18: Invalid cross-device link)`, `errno 524 (ENOTSUPP, kernel-internal)`.
fn describe_errno(errno: i32) -> String {
    if errno == ENOTSUPP_KERNEL_INTERNAL {
        return "errno 524 (ENOTSUPP, kernel-internal)".to_string();
    }
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std formats it as "Description (os error N)"; keep the description only.
    let description = text
        .rsplit_once(" (os error")
        .map_or(text.as_str(), |(d, _)| d);
    match ERRNO_NAMES.iter().find(|&&(_, n)| n == errno) {
        Some((name, _)) => format!("{name} (errno {errno}: {description})"),
        None => format!("errno {errno} ({description})"),
    }
}

/// copy_file_range as the kernel answers it, bypassing glibc and any preloaded library.
/// Returns the byte count or `-errno`.
#[cfg(target_arch = "x86_64")]
fn kernel_copy_file_range(fd_in: c_int, fd_out: c_int, len: usize) -> isize {
    let ret: isize;
    // SAFETY: copy_file_range with NULL offset pointers reads and writes only through the
    // two descriptors; the syscall instruction clobbers rcx and r11, declared below.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_copy_file_range as isize => ret,
            in("rdi") fd_in as isize,
            in("rsi") 0usize,
            in("rdx") fd_out as isize,
            in("r10") 0usize,
            in("r8") len,
            in("r9") 0usize,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
fn kernel_copy_file_range(fd_in: c_int, fd_out: c_int, len: usize) -> isize {
    let ret: isize;
    // SAFETY: as for x86_64; `svc 0` clobbers nothing but x0.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") libc::SYS_copy_file_range as usize,
            inlateout("x0") fd_in as isize => ret,
            in("x1") 0usize,
            in("x2") fd_out as isize,
            in("x3") 0usize,
            in("x4") len,
            in("x5") 0usize,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn kernel_copy_file_range(fd_in: c_int, fd_out: c_int, len: usize) -> isize {
    // No raw-syscall stub for this architecture: glibc's syscall(), which a system-wide
    // cfrfix would interpose. The `cfrfix in this process` line tells when that happened.
    // SAFETY: NULL offsets; only the descriptors are used.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_copy_file_range,
            fd_in,
            std::ptr::null_mut::<i64>(),
            fd_out,
            std::ptr::null_mut::<i64>(),
            len,
            0,
        )
    } as isize;
    if ret < 0 { -(errno() as isize) } else { ret }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// glibc's copy_file_range: interposed by cfrfix when it is loaded. Byte count or `-errno`.
fn libc_copy_file_range(fd_in: c_int, fd_out: c_int, len: usize) -> isize {
    // SAFETY: NULL offsets; only the descriptors are used.
    let ret = unsafe {
        libc::copy_file_range(
            fd_in,
            std::ptr::null_mut(),
            fd_out,
            std::ptr::null_mut(),
            len,
            0,
        )
    };
    if ret < 0 { -(errno() as isize) } else { ret }
}

/// Deterministic, non-repeating content, so a copy from the wrong offset is caught.
fn test_content() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..TEST_FILE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The test files; removed when dropped, whatever happened.
struct TestFiles {
    source: PathBuf,
    destination: PathBuf,
}

impl Drop for TestFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.source);
        let _ = std::fs::remove_file(&self.destination);
    }
}

fn create_new(path: &Path, read: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(read)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

enum Outcome {
    Copied,
    Failed { errno: i32, copied: usize },
    Stopped { copied: usize },
    Mismatch,
}

fn run_copy(files: &TestFiles, kernel: bool) -> Result<Outcome, String> {
    let content = test_content();
    let mut source = create_new(&files.source, false)
        .map_err(|e| format!("cannot create {}: {e}", files.source.display()))?;
    source
        .write_all(&content)
        .map_err(|e| format!("cannot write {}: {e}", files.source.display()))?;
    drop(source);
    let source = File::open(&files.source)
        .map_err(|e| format!("cannot open {}: {e}", files.source.display()))?;
    let destination = create_new(&files.destination, true)
        .map_err(|e| format!("cannot create {}: {e}", files.destination.display()))?;

    let mut copied = 0usize;
    while copied < content.len() {
        let remaining = content.len() - copied;
        let ret = if kernel {
            kernel_copy_file_range(source.as_raw_fd(), destination.as_raw_fd(), remaining)
        } else {
            libc_copy_file_range(source.as_raw_fd(), destination.as_raw_fd(), remaining)
        };
        match ret {
            r if r < 0 => {
                let errno = -r as i32;
                if errno == libc::EINTR {
                    continue;
                }
                return Ok(Outcome::Failed { errno, copied });
            }
            0 => return Ok(Outcome::Stopped { copied }),
            r => copied += r as usize,
        }
    }
    let mut result = Vec::with_capacity(content.len());
    let read = File::open(&files.destination).and_then(|mut f| f.read_to_end(&mut result));
    Ok(match read {
        Ok(_) if result == content => Outcome::Copied,
        _ => Outcome::Mismatch,
    })
}

/// The cfrfix library mapped into this process, if any (whoever preloaded it).
fn loaded_cfrfix() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libcfrfix"))
        })
        .map(str::to_string)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let kernel = args.first().is_some_and(|a| a == "--kernel");
    if kernel {
        args.remove(0);
    }
    let [source_dir, destination_dir] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let tag = format!(".cfrfix-check-{}", std::process::id());
    let files = TestFiles {
        source: Path::new(source_dir).join(format!("{tag}.src")),
        destination: Path::new(destination_dir).join(format!("{tag}.dst")),
    };
    let outcome = run_copy(&files, kernel);
    drop(files);

    let total = TEST_FILE_BYTES;
    let status = match outcome {
        Err(message) => {
            println!("copy: not attempted: {message}");
            3
        }
        Ok(Outcome::Copied) => {
            println!("copy: copied {total} bytes, contents verified");
            0
        }
        Ok(Outcome::Failed { errno, copied }) => {
            let what = describe_errno(errno);
            println!("copy: failed with {what} after {copied} of {total} bytes");
            1
        }
        Ok(Outcome::Stopped { copied }) => {
            println!("copy: returned 0 (nothing copied) after {copied} of {total} bytes");
            1
        }
        Ok(Outcome::Mismatch) => {
            println!("copy: reported success but the copy differs from the source");
            1
        }
    };
    match loaded_cfrfix() {
        Some(path) => println!("cfrfix in this process: {path}"),
        None => println!("cfrfix in this process: no"),
    }
    ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_errnos_the_way_the_issue_asks() {
        assert!(describe_errno(libc::EXDEV).starts_with("EXDEV (errno 18: "));
        assert!(describe_errno(libc::EOPNOTSUPP).starts_with("EOPNOTSUPP (errno 95: "));
        assert_eq!(describe_errno(524), "errno 524 (ENOTSUPP, kernel-internal)");
        assert!(describe_errno(4000).starts_with("errno 4000 ("));
    }
}

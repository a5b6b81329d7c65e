//! The test copy of `--check`: once with the kernel's own copy_file_range (the raw system call,
//! so a system-wide cfrfix cannot answer instead), once through cfrfix (`cfrfix-check-copy`
//! with the library preloaded).
//!
//! The test files never have a name: they are made with `O_TMPFILE`, so nothing is left in
//! either directory however the check ends (SIGPIPE from `| head`, SIGINT, SIGKILL), even one
//! where files can be created but not removed (`chattr +a`). Where the filesystem has no
//! `O_TMPFILE`, a named file is created and unlinked at once, after a check that the directory
//! is not append-only (`CFRFIX_CHECK_NO_TMPFILE`, test-only, takes that path everywhere).

use crate::abis::OwnLoader;
use std::ffi::c_int;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Size of the test file: several engine chunks, so a fallback has to loop.
pub const TEST_FILE_BYTES: usize = 256 * 1024;

/// What one copy did.
pub enum Outcome {
    Copied,
    Failed {
        errno: i32,
        copied: usize,
    },
    /// The call returned 0 before the end of the source.
    Stopped {
        copied: usize,
    },
    Mismatch,
}

impl Outcome {
    pub fn works(&self) -> bool {
        matches!(self, Outcome::Copied)
    }

    /// `copied 262144 bytes, contents verified`, `failed with EXDEV (errno 18: ...) after 0 of
    /// 262144 bytes`.
    pub fn describe(&self) -> String {
        let total = TEST_FILE_BYTES;
        match self {
            Outcome::Copied => format!("copied {total} bytes, contents verified"),
            Outcome::Failed { errno, copied } => format!(
                "failed with {} after {copied} of {total} bytes",
                describe_errno(*errno)
            ),
            Outcome::Stopped { copied } => {
                format!("returned 0 (nothing copied) after {copied} of {total} bytes")
            }
            Outcome::Mismatch => "reported success but the copy differs from the source".into(),
        }
    }
}

/// `EXDEV (errno 18: Invalid cross-device link)`, `errno 524 (ENOTSUPP, kernel-internal)`.
pub fn describe_errno(errno: i32) -> String {
    if errno == 524 {
        return "errno 524 (ENOTSUPP, kernel-internal)".to_string();
    }
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std formats it as "Description (os error N)"; keep the description only.
    let description = text
        .rsplit_once(" (os error")
        .map_or(text.as_str(), |(d, _)| d);
    match crate::parse::ERRNO_NAMES.iter().find(|&&(_, n)| n == errno) {
        Some((name, _)) => format!("{name} (errno {errno}: {description})"),
        None => format!("errno {errno} ({description})"),
    }
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

/// A source holding the test content (position 0) and an empty destination, both already
/// unlinked.
pub struct TestFiles {
    pub source: File,
    pub destination: File,
    content: Vec<u8>,
}

fn cannot_create(dir: &Path, e: &std::io::Error) -> String {
    format!(
        "cannot create a file in {}: {}",
        dir.display(),
        crate::system::error_text(e)
    )
}

/// A new file in `dir` without a name (`O_TMPFILE`), open for reading and writing; where the
/// filesystem cannot make one, a named file unlinked at once.
fn anonymous_file(dir: &Path, role: &str) -> Result<File, String> {
    if std::env::var_os("CFRFIX_CHECK_NO_TMPFILE").is_none() {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(dir)
        {
            Ok(file) => return Ok(file),
            // No O_TMPFILE here: EOPNOTSUPP from the filesystem, EISDIR or EINVAL from a
            // kernel that predates it (3.11).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) => {}
            Err(e) => return Err(cannot_create(dir, &e)),
        }
    }
    named_then_unlinked(dir, role)
}

/// `FS_IOC_GETFLAGS`'s append-only flag (`chattr +a`).
const FS_APPEND_FL: libc::c_int = 0x20;

/// Whether `dir` is append-only: a file made in it could not be removed again.
fn append_only(dir: &Path) -> bool {
    let Ok(handle) = File::open(dir) else {
        return false;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int into `flags` (the kernel's `put_user(flags, (int
    // __user *)arg)`, whatever the request number's size field says).
    let r = unsafe { libc::ioctl(handle.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    r == 0 && flags & FS_APPEND_FL != 0
}

/// The fallback without `O_TMPFILE`: a named file, unlinked as soon as it is open.
fn named_then_unlinked(dir: &Path, role: &str) -> Result<File, String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    if append_only(dir) {
        return Err(format!(
            "{} is append-only (chattr +a) and has no O_TMPFILE: a test file could not be \
             removed again",
            dir.display()
        ));
    }
    let name = format!(
        ".cfrfix-check-{}-{}.{role}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| cannot_create(dir, &e))?;
    std::fs::remove_file(&path).map_err(|e| {
        // Nothing else can remove it: leave it empty, and say where it is.
        let _ = file.set_len(0);
        format!(
            "cannot remove the test file {} ({}): remove it by hand",
            path.display(),
            crate::system::error_text(&e)
        )
    })?;
    Ok(file)
}

impl TestFiles {
    pub fn create(source_dir: &Path, destination_dir: &Path) -> Result<TestFiles, String> {
        let content = test_content();
        let mut source = anonymous_file(source_dir, "src")?;
        source
            .write_all(&content)
            .and_then(|()| source.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| {
                format!(
                    "cannot write a test file in {}: {}",
                    source_dir.display(),
                    crate::system::error_text(&e)
                )
            })?;
        let destination = anonymous_file(destination_dir, "dst")?;
        Ok(TestFiles {
            source,
            destination,
            content,
        })
    }

    /// Whether the destination now holds exactly the content.
    fn verify(&mut self) -> Outcome {
        let mut copy = Vec::with_capacity(TEST_FILE_BYTES);
        let read = self
            .destination
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.destination.read_to_end(&mut copy));
        match read {
            Ok(_) if copy == self.content => Outcome::Copied,
            _ => Outcome::Mismatch,
        }
    }

    /// The kernel's own answer, through the raw system call.
    pub fn kernel_copy(mut self) -> Outcome {
        let (fd_in, fd_out) = (self.source.as_raw_fd(), self.destination.as_raw_fd());
        let mut copied = 0usize;
        while copied < TEST_FILE_BYTES {
            match kernel_copy_file_range(fd_in, fd_out, TEST_FILE_BYTES - copied) {
                r if r == -(libc::EINTR as isize) => continue,
                r if r < 0 => {
                    return Outcome::Failed {
                        errno: -r as i32,
                        copied,
                    };
                }
                0 => return Outcome::Stopped { copied },
                r => copied += r as usize,
            }
        }
        self.verify()
    }

    /// The same copy by `probe` (cfrfix-check-copy) with `preload` as its LD_PRELOAD and the
    /// library's log on its stderr.
    pub fn copy_through(mut self, probe: &Path, preload: &str) -> Result<Through, String> {
        let fds = (self.source.as_raw_fd(), self.destination.as_raw_fd());
        let run = run_probe(probe, preload, Some(fds), None)?;
        let words: Vec<&str> = run.result.split_whitespace().collect();
        let number = |s: &str| s.parse::<usize>().ok();
        let outcome = match words.as_slice() {
            ["copied", n] if number(n) == Some(TEST_FILE_BYTES) => self.verify(),
            ["copied", n] => Outcome::Stopped {
                copied: number(n).unwrap_or(0),
            },
            ["failed", errno, "after", n] => Outcome::Failed {
                errno: errno.parse().unwrap_or(0),
                copied: number(n).unwrap_or(0),
            },
            _ => {
                return Err(format!(
                    "{} did not run with the library preloaded: {}",
                    probe.display(),
                    run.failure()
                ));
            }
        };
        Ok(Through {
            outcome,
            log: run.stderr.lines().map(str::to_string).collect(),
            loaded: run.loaded,
        })
    }
}

/// `cfrfix-check-copy`, next to this program.
pub fn check_copy_program() -> Result<PathBuf, String> {
    std::env::current_exe()
        .map(|exe| exe.with_file_name("cfrfix-check-copy"))
        .map_err(|e| {
            let why = crate::system::error_text(&e);
            format!("cannot find cfrfix-check-copy: {why}")
        })
}

/// Whether the library `entry` (an LD_PRELOAD entry) loads into a program of this tool's ABI:
/// `cfrfix-check-copy`, run with it preloaded and without descriptors 3 and 4 (so that it copies
/// nothing), shows its memory map. Ok: the file mapped; Err: why not (ld.so's complaint, the
/// signal that killed it, ...). A file that exists is not enough: a truncated library is
/// skipped by ld.so, or kills the program with SIGBUS. With `loader`, the program is started by
/// that loader (a program's own), which expands and loads preloads its own way.
pub fn library_loads(entry: &str, loader: Option<&OwnLoader>) -> Result<String, String> {
    let probe = check_copy_program()?;
    let run = run_probe(&probe, entry, None, loader)?;
    match run.loaded {
        Some(path) if run.status.success() => Ok(path),
        _ => Err(run.failure()),
    }
}

/// What one run of cfrfix-check-copy printed.
struct ProbeRun {
    status: std::process::ExitStatus,
    /// Its answer (`copied N`, `failed ERRNO after N`, `no source`).
    result: String,
    stderr: String,
    /// The cfrfix library mapped into it, if any.
    loaded: Option<String>,
}

impl ProbeRun {
    /// Why it did not do its job, in words.
    fn failure(&self) -> String {
        if let Some(signal) = self.status.signal() {
            let name = match signal {
                libc::SIGBUS => {
                    " (SIGBUS: the library file is shorter than its headers say, \
                                 e.g. truncated)"
                }
                libc::SIGSEGV => " (SIGSEGV)",
                _ => "",
            };
            return format!("killed by signal {signal}{name}");
        }
        let complaint = self
            .stderr
            .lines()
            .map(|l| l.trim_start_matches("ERROR: ").trim())
            .find(|l| !l.is_empty());
        match complaint {
            Some(line) => line.to_string(),
            None if self.loaded.is_none() && self.status.success() => {
                "the library was not mapped into the test program".to_string()
            }
            None => format!("{}", self.status),
        }
    }
}

/// Runs `probe` with `preload` as its LD_PRELOAD, the library's log on its stderr, and `fds`
/// (source, destination) as its descriptors 3 and 4, or neither; started by `loader` (a
/// program's own, with its C library's directory) rather than the standard one, if given.
fn run_probe(
    probe: &Path,
    preload: &str,
    fds: Option<(c_int, c_int)>,
    loader: Option<&OwnLoader>,
) -> Result<ProbeRun, String> {
    let mut command = match loader {
        Some(loader) => loader.command(probe),
        None => Command::new(probe),
    };
    command
        .env("LD_PRELOAD", preload)
        .env("CFRFIX_LOG", "stderr")
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
    unsafe {
        command.pre_exec(move || match fds {
            Some((fd_in, fd_out)) => pass_as_3_and_4(fd_in, fd_out),
            None => {
                // Whatever the caller had there (the cfrfix command's own), never a copy.
                libc::close(3);
                libc::close(4);
                Ok(())
            }
        });
    }
    let output = command.output().map_err(|e| {
        let why = crate::system::error_text(&e);
        format!("cannot run {}: {why}", probe.display())
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (result, maps) = stdout.split_once("--- maps\n").unwrap_or((&stdout, ""));
    let loaded = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libcfrfix"))
        })
        .map(str::to_string);
    Ok(ProbeRun {
        status: output.status,
        result: result.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        loaded,
    })
}

/// What happened through cfrfix.
pub struct Through {
    pub outcome: Outcome,
    /// Everything the probe's process wrote on stderr: the library's log lines, or ld.so's
    /// complaint if the library did not load.
    pub log: Vec<String>,
    /// The cfrfix library mapped into the probe, if any.
    pub loaded: Option<String>,
}

/// In the child: the source as descriptor 3, the destination as 4, both inherited by exec.
fn pass_as_3_and_4(fd_in: c_int, fd_out: c_int) -> std::io::Result<()> {
    // Move both out of the way first: either may already be 3 or 4.
    // SAFETY: fcntl and dup2 on descriptors this process owns.
    unsafe {
        let high_in = libc::fcntl(fd_in, libc::F_DUPFD_CLOEXEC, 10);
        let high_out = libc::fcntl(fd_out, libc::F_DUPFD_CLOEXEC, 10);
        if high_in < 0 || high_out < 0 || libc::dup2(high_in, 3) < 0 || libc::dup2(high_out, 4) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// copy_file_range as the kernel answers it, bypassing glibc and any preloaded library, with
/// NULL offsets. Returns the byte count or `-errno`.
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

#[cfg(target_arch = "x86")]
fn kernel_copy_file_range(fd_in: c_int, fd_out: c_int, len: usize) -> isize {
    // i386: `int 0x80`, arguments in ebx, ecx, edx, esi, edi, ebp. esi and ebp cannot be named
    // as operands (LLVM's base and frame pointers), so the upper three (off_out, len, flags)
    // travel in memory through edi, as in the library's src/sys/arch/x86.rs.
    let upper: [usize; 3] = [0, len, 0];
    let ret: isize;
    // SAFETY: copy_file_range with NULL offset pointers reads and writes only through the two
    // descriptors; the block reads `upper` (live throughout), pushes and pops two words of its
    // own stack, leaves esi and ebp as it found them, and declares edi clobbered.
    unsafe {
        std::arch::asm!(
            "push ebp",
            "push esi",
            "mov esi, dword ptr [edi]",
            "mov ebp, dword ptr [edi + 8]",
            "mov edi, dword ptr [edi + 4]",
            "int 0x80",
            "pop esi",
            "pop ebp",
            inlateout("eax") libc::SYS_copy_file_range as isize => ret,
            in("ebx") fd_in as isize,
            in("ecx") 0usize,
            in("edx") fd_out as isize,
            inout("edi") upper.as_ptr() => _,
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_errnos() {
        assert!(describe_errno(libc::EXDEV).starts_with("EXDEV (errno 18: "));
        assert!(describe_errno(libc::EOPNOTSUPP).starts_with("EOPNOTSUPP (errno 95: "));
        assert_eq!(describe_errno(524), "errno 524 (ENOTSUPP, kernel-internal)");
        assert!(describe_errno(4000).starts_with("errno 4000 ("));
    }
}

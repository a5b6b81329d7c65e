//! `cfrfix-inject ERRNO PROGRAM [ARGS...]`: run PROGRAM with every native
//! `copy_file_range(2)` system call failing with ERRNO (or returning 0 when ERRNO
//! is `0`), without touching anything else.
//!
//! It installs a seccomp filter and then execs PROGRAM, so the failure comes from the
//! kernel itself: it is seen identically through glibc's `copy_file_range()`, through
//! `syscall(SYS_copy_file_range, ...)` and through raw `syscall` instructions, and it
//! is inherited by every child process. An `LD_PRELOAD`ed cfrfix still works under it,
//! because its fallback copies with `read`/`write`-family calls, which stay allowed.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
Usage: cfrfix-inject ERRNO [--] PROGRAM [ARGS...]

Run PROGRAM (looked up in PATH) with every copy_file_range(2) system call made by it
and its children failing with ERRNO, using a seccomp filter. Nothing else is affected.

ERRNO is a decimal number (0..=4095) or one of the names
  EOPNOTSUPP ENOTSUP (95)  ENOTSUPP (524)  EXDEV (18)  ENOSYS (38)  EPERM (1)
  EIO (5)  EINVAL (22)  ENOENT (2)  EACCES (13)  EAGAIN (11)
`0` makes copy_file_range return 0, i.e. report success with nothing copied.

The filter needs no_new_privs, which PROGRAM and its children inherit: set-user-ID
and file capabilities do not raise privileges under this tool.

Exit status: PROGRAM's, or 2 for bad usage, 1 if the filter cannot be installed,
127 if PROGRAM cannot be executed.";

/// Errno names accepted on the command line. ENOTSUPP (524) is the kernel-internal
/// value that has no libc name; the kernel can still leak it to user space.
const ERRNO_NAMES: &[(&str, u16)] = &[
    ("EOPNOTSUPP", 95),
    ("ENOTSUP", 95),
    ("ENOTSUPP", 524),
    ("EXDEV", 18),
    ("ENOSYS", 38),
    ("EPERM", 1),
    ("EIO", 5),
    ("EINVAL", 22),
    ("ENOENT", 2),
    ("EACCES", 13),
    ("EAGAIN", 11),
];

/// The kernel clamps `SECCOMP_RET_ERRNO` data above MAX_ERRNO to MAX_ERRNO, so a larger
/// number would silently inject a different errno: reject it instead.
const MAX_ERRNO: u16 = 4095;

fn parse_errno(arg: &str) -> Option<u16> {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        return arg.parse::<u16>().ok().filter(|&n| n <= MAX_ERRNO);
    }
    ERRNO_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(arg))
        .map(|&(_, n)| n)
}

// seccomp filters see `struct seccomp_data`; `arch` is an AUDIT_ARCH_* value
// (<linux/audit.h>: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE). The libc crate does
// not define these.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64 (EM_X86_64 = 62)
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64 (EM_AARCH64 = 183)
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("cfrfix-inject knows the seccomp AUDIT_ARCH value only for x86_64 and aarch64");

/// Syscall numbers the filter fails.
///
/// On x86_64, x32 programs run with the *same* `arch` (AUDIT_ARCH_X86_64) and put
/// `__X32_SYSCALL_BIT` into `nr`; x32 copy_file_range is `326 | __X32_SYSCALL_BIT`.
/// We deliberately catch that number too, so an x32 program cannot slip past the
/// injection (and the usual seccomp pitfall of an x32 alias bypassing a deny-rule
/// does not apply). 32-bit compat calls (i386 `int 0x80`, AArch32) carry a different
/// `arch` and are allowed untouched: cfrfix is a per-ABI preload and this tool tests
/// the native build.
#[cfg(target_arch = "x86_64")]
const COPY_FILE_RANGE_NRS: &[u32] = &[
    libc::SYS_copy_file_range as u32,
    (libc::SYS_copy_file_range | 0x4000_0000) as u32, // __X32_SYSCALL_BIT
];
#[cfg(target_arch = "aarch64")]
const COPY_FILE_RANGE_NRS: &[u32] = &[libc::SYS_copy_file_range as u32];

const fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The BPF program: native arch and nr ∈ COPY_FILE_RANGE_NRS → ERRNO, else ALLOW.
fn filter(errno: u16) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let arch_offset = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
    let nr_offset = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
    let n = COPY_FILE_RANGE_NRS.len();
    let mut prog = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, arch_offset),
        // Not the native arch: skip the nr loads and compares, land on ALLOW.
        jump(
            BPF_JMP | BPF_JEQ | BPF_K,
            AUDIT_ARCH_NATIVE,
            0,
            (n + 1) as u8,
        ),
        stmt(BPF_LD | BPF_W | BPF_ABS, nr_offset),
    ];
    for (i, &nr) in COPY_FILE_RANGE_NRS.iter().enumerate() {
        // Match: jump over the remaining compares and the ALLOW to the ERRNO return.
        prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr, (n - i) as u8, 0));
    }
    prog.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(
        BPF_RET | BPF_K,
        libc::SECCOMP_RET_ERRNO | u32::from(errno),
    ));
    prog
}

fn install_filter(errno: u16) -> std::io::Result<()> {
    let prog = filter(errno);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl with integer arguments; no memory is passed.
    // Required to install a filter without CAP_SYS_ADMIN, and harmless as root.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fprog` points at `prog`, a valid array of `len` instructions that
    // outlives the call; the kernel copies the program before returning.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("cfrfix-inject: {msg}\nTry 'cfrfix-inject --help'.");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(errno_arg) = args.next() else {
        return usage_error("missing ERRNO and PROGRAM");
    };
    if errno_arg == "--help" || errno_arg == "-h" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let errno_str = errno_arg.to_string_lossy();
    let Some(errno) = parse_errno(&errno_str) else {
        return usage_error(&format!(
            "invalid ERRNO '{errno_str}' (a number 0..={MAX_ERRNO} or a name such as EOPNOTSUPP)"
        ));
    };
    let mut rest: Vec<OsString> = args.collect();
    if rest.first().is_some_and(|a| a == "--") {
        rest.remove(0);
    }
    if rest.is_empty() {
        return usage_error("missing PROGRAM");
    }
    let program = rest.remove(0);

    if let Err(e) = install_filter(errno) {
        eprintln!("cfrfix-inject: cannot install the seccomp filter: {e}");
        return ExitCode::from(1);
    }
    // Only returns on failure. std searches PATH like execvp and resets SIGPIPE
    // (which the Rust runtime ignores) to its default before exec.
    let e = Command::new(&program).args(&rest).exec();
    eprintln!(
        "cfrfix-inject: cannot execute {}: {e}",
        program.to_string_lossy()
    );
    ExitCode::from(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_names() {
        assert_eq!(parse_errno("0"), Some(0));
        assert_eq!(parse_errno("524"), Some(524));
        assert_eq!(parse_errno("4095"), Some(4095));
        assert_eq!(parse_errno("4096"), None);
        assert_eq!(parse_errno("99999999999"), None);
        assert_eq!(parse_errno("-1"), None);
        assert_eq!(parse_errno(""), None);
        assert_eq!(parse_errno("ENOTSUP"), Some(95));
        assert_eq!(parse_errno("ENOTSUPP"), Some(524));
        assert_eq!(parse_errno("exdev"), Some(18));
        assert_eq!(parse_errno("EBOGUS"), None);
    }

    #[test]
    fn filter_jumps_land_on_the_returns() {
        let prog = filter(95);
        let ret_allow = prog.len() - 2;
        let ret_errno = prog.len() - 1;
        // Arch mismatch skips to ALLOW.
        assert_eq!(2 + prog[1].jf as usize, ret_allow);
        for (i, compare) in prog.iter().enumerate().take(ret_allow).skip(3) {
            assert_eq!(i + 1 + compare.jt as usize, ret_errno);
            assert_eq!(compare.jf, 0);
        }
        assert_eq!(prog[ret_errno].k, libc::SECCOMP_RET_ERRNO | 95);
    }
}

//! `cfrfix-inject ERRNO PROGRAM [ARGS...]`: run PROGRAM with every
//! `copy_file_range(2)` system call failing with ERRNO (or returning 0 when ERRNO
//! is `0`), without touching anything else. On x86 that covers 64-bit, x32 and 32-bit
//! (i386) processes alike; on aarch64, AArch64 processes.
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
127 if PROGRAM is not found, 126 if it cannot be executed.";

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
// (<linux/audit.h>: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE). The libc crate does not
// define these.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E; // EM_X86_64 = 62, 64-bit, little-endian
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const AUDIT_ARCH_I386: u32 = 0x4000_0003; // EM_386 = 3, little-endian
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7; // EM_AARCH64 = 183, 64-bit, little-endian
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
compile_error!("cfrfix-inject knows the seccomp AUDIT_ARCH values only for x86 and aarch64");

/// `__X32_SYSCALL_BIT`: x32 programs run with AUDIT_ARCH_X86_64 and set it in `nr`.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The copy_file_range numbers the filter fails, per system-call ABI (`arch`). The filter is
/// inherited across exec, so it must catch every ABI a process started under it may use, not
/// only this tool's own.
///
/// On x86 (this tool built for x86_64 or i686): x86_64 programs (326); x32 programs, which run
/// with the *same* `arch` and put `__X32_SYSCALL_BIT` into `nr` (`326 | bit`), caught too so
/// that an x32 program cannot slip past the injection (the usual seccomp pitfall of an x32
/// alias bypassing a deny-rule does not apply); and i386 programs (`int 0x80`, sysenter),
/// which carry AUDIT_ARCH_I386 and call copy_file_range 377, so a 32-bit program started
/// under this tool, directly or by a 64-bit one, gets the injection as well.
///
/// On aarch64: AArch64 programs (285). AArch32 processes (AUDIT_ARCH_ARM) are let through
/// untouched: no 32-bit ARM build of cfrfix exists to test against.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const COPY_FILE_RANGE: &[(u32, &[u32])] = &[
    (AUDIT_ARCH_X86_64, &[326, 326 | X32_SYSCALL_BIT]),
    (AUDIT_ARCH_I386, &[377]),
];
#[cfg(target_arch = "aarch64")]
const COPY_FILE_RANGE: &[(u32, &[u32])] = &[(AUDIT_ARCH_AARCH64, &[285])];

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

/// The BPF program: (arch, nr) listed in COPY_FILE_RANGE → ERRNO, anything else → ALLOW.
///
/// ```text
/// ld arch
/// jeq ARCH_1, next, skip block 1     block 1: ld nr; jeq NR_a → ERRNO; ...; ret ALLOW
/// jeq ARCH_2, next, skip block 2     block 2: ...
/// ret ALLOW                          (no listed arch)
/// ret ERRNO
/// ```
fn filter(errno: u16) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let arch_offset = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
    let nr_offset = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
    let allow = stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW);
    let mut prog = vec![stmt(BPF_LD | BPF_W | BPF_ABS, arch_offset)];
    // Compares whose "equal" branch must land on the final ERRNO return.
    let mut matches = Vec::new();
    for &(arch, nrs) in COPY_FILE_RANGE {
        let block_len = nrs.len() + 2; // ld nr, the compares, ret ALLOW
        prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, arch, 0, block_len as u8));
        prog.push(stmt(BPF_LD | BPF_W | BPF_ABS, nr_offset));
        for &nr in nrs {
            matches.push(prog.len());
            prog.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 0));
        }
        prog.push(allow);
    }
    prog.push(allow);
    let errno_return = prog.len();
    prog.push(stmt(
        BPF_RET | BPF_K,
        libc::SECCOMP_RET_ERRNO | u32::from(errno),
    ));
    for at in matches {
        prog[at].jt = (errno_return - at - 1) as u8;
    }
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
    // The shell's codes: 127 for a program that is not there, 126 for one that cannot run.
    if e.kind() == std::io::ErrorKind::NotFound {
        ExitCode::from(127)
    } else {
        ExitCode::from(126)
    }
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

    /// Runs the filter the way the kernel does, on one (arch, nr): the action it returns.
    fn verdict(prog: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let arch_offset = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
        let mut accumulator = 0;
        let mut pc = 0;
        loop {
            let insn = prog[pc];
            match u32::from(insn.code) {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    accumulator = if insn.k == arch_offset { arch } else { nr };
                    pc += 1;
                }
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    let taken = if accumulator == insn.k {
                        insn.jt
                    } else {
                        insn.jf
                    };
                    pc += 1 + taken as usize;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return insn.k,
                other => panic!("unexpected BPF code {other:#x}"),
            }
        }
    }

    #[test]
    fn filter_fails_exactly_copy_file_range_of_each_abi() {
        let prog = filter(95);
        let errno = libc::SECCOMP_RET_ERRNO | 95;
        for &(arch, nrs) in COPY_FILE_RANGE {
            for &nr in nrs {
                assert_eq!(verdict(&prog, arch, nr), errno, "arch {arch:#x} nr {nr}");
                assert_eq!(verdict(&prog, arch, nr + 1), libc::SECCOMP_RET_ALLOW);
            }
            assert_eq!(verdict(&prog, arch, 0), libc::SECCOMP_RET_ALLOW);
        }
        // Another ABI's number under this ABI's arch, and an unknown arch, are allowed.
        #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
        {
            assert_eq!(
                verdict(&prog, AUDIT_ARCH_X86_64, 377),
                libc::SECCOMP_RET_ALLOW
            );
            assert_eq!(
                verdict(&prog, AUDIT_ARCH_I386, 326),
                libc::SECCOMP_RET_ALLOW
            );
            assert_eq!(
                verdict(&prog, AUDIT_ARCH_I386, 377 | X32_SYSCALL_BIT),
                libc::SECCOMP_RET_ALLOW
            );
        }
        assert_eq!(verdict(&prog, 0x4000_0028, 377), libc::SECCOMP_RET_ALLOW); // ARM
    }
}

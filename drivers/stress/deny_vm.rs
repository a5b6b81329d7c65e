//! `deny-vm ERRNO [--] PROGRAM [ARGS...]`: a seccomp filter that fails `process_vm_readv` and
//! `process_vm_writev` with ERRNO (proved before the exec), so that a shim under it must read and
//! write offset pointers through its pipe path.

use std::ffi::c_int;
use std::os::unix::process::CommandExt;

use crate::tools::{errno, fail};
use crate::usage;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;

fn bpf(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Fails process_vm_readv/writev with `err` from now on, in this process and what it execs.
fn deny_process_vm(err: u16) {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let arch = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
    let nr = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
    let prog = [
        bpf(BPF_LD | BPF_W | BPF_ABS, arch, 0, 0),
        bpf(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 0, 3),
        bpf(BPF_LD | BPF_W | BPF_ABS, nr, 0, 0),
        bpf(
            BPF_JMP | BPF_JEQ | BPF_K,
            libc::SYS_process_vm_readv as u32,
            2,
            0,
        ),
        bpf(
            BPF_JMP | BPF_JEQ | BPF_K,
            libc::SYS_process_vm_writev as u32,
            1,
            0,
        ),
        bpf(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
        bpf(
            BPF_RET | BPF_K,
            libc::SECCOMP_RET_ERRNO | u32::from(err),
            0,
            0,
        ),
    ];
    // The readv compare jumps 2 to the ERRNO return; the writev compare jumps 1 to it; an
    // arch mismatch jumps 3 from index 1 to ALLOW (index 5).
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: integer-only prctl; needed to install a filter without CAP_SYS_ADMIN.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        fail(format!("PR_SET_NO_NEW_PRIVS: errno {}", errno()));
    }
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        fail(format!("PR_SET_SECCOMP: errno {}", errno()));
    }
    // Prove it: read our own memory with process_vm_readv.
    let mut src = 1u64;
    let mut dst = 0u64;
    let local = libc::iovec {
        iov_base: (&mut dst as *mut u64).cast(),
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: (&mut src as *mut u64).cast(),
        iov_len: 8,
    };
    // SAFETY: both iovecs describe live 8-byte locals.
    let r = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if r != -1 || errno() != c_int::from(err) {
        fail(format!(
            "process_vm_readv still works under the filter: {r}, errno {}",
            errno()
        ));
    }
}

pub(crate) fn cmd_deny_vm(args: &[String]) {
    let Some(err) = args.first().and_then(|a| a.parse::<u16>().ok()) else {
        usage()
    };
    let mut rest = &args[1..];
    if rest.first().is_some_and(|a| a == "--") {
        rest = &rest[1..];
    }
    let Some((program, program_args)) = rest.split_first() else {
        usage()
    };
    deny_process_vm(err);
    let e = std::process::Command::new(program)
        .args(program_args)
        .exec();
    eprintln!("cfrfix-stress: cannot execute {program}: {e}");
    std::process::exit(127);
}

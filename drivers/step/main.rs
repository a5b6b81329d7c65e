//! `cfrfix-step`: one copy (as `cp` makes it: `copy_file_range` with NULL offsets until it
//! returns 0 or fails) with the source changed at a chosen point between the system calls the
//! copy makes, deterministically: a test driver for tests/data_first (races).
//!
//! ```text
//! cfrfix-step SRC DST [inject=ERRNO] [via=libc|syscall] [len=N] [ACTION@STEP ...]
//! ```
//!
//! A supervisor thread is started first; then the main thread installs a seccomp filter (on
//! itself only) that answers `copy_file_range` with ERRNO (with `inject=`; otherwise lets it
//! through) and sends every other system call it makes to the supervisor
//! (`SECCOMP_RET_USER_NOTIF`). The supervisor lets each one continue; while the copy runs it
//! numbers them from 1, and before letting call STEP continue it applies every ACTION given for
//! STEP to SRC, by path. The copying thread is stopped inside that call meanwhile, so the change
//! lands exactly between two of the copy's system calls, in every run the same.
//!
//! Actions:
//! - `truncate=LEN`: truncate SRC to LEN bytes;
//! - `replace=PATH`: write the bytes of PATH over SRC from offset 0 (no truncation);
//! - `append=PATH`: append the bytes of PATH to SRC;
//! - `punch=OFF:LEN`: punch a hole (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`).
//!
//! Prints `ret=R errno=E total=T steps=N nr=NR`: the last call's result, the bytes copied in
//! all, how many system calls the copy made (after the kernel's own `copy_file_range`), and the
//! number of the system call that was stopped at STEP (`-` if none).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;
#[cfg(target_arch = "x86")]
const AUDIT_ARCH_NATIVE: u32 = 0x4000_0003;

/// The supervisor's listener descriptor, handed over without a system call (the main thread
/// cannot make one the supervisor does not answer).
static LISTENER: AtomicI32 = AtomicI32::new(-1);
/// Set while the copy runs: only its system calls are numbered.
static ARMED: AtomicBool = AtomicBool::new(false);
static STEPS: AtomicU64 = AtomicU64::new(0);
static STOPPED_NR: AtomicI64 = AtomicI64::new(-1);

enum Action {
    Truncate(u64),
    Replace(String),
    Append(String),
    Punch(i64, i64),
}

struct Options {
    src: String,
    dst: String,
    inject: Option<u16>,
    via_syscall: bool,
    len: usize,
    actions: Vec<(u64, Action)>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let [src, dst, rest @ ..] = args else {
        return Err(
            "usage: cfrfix-step SRC DST [inject=ERRNO] [via=libc|syscall] [len=N] \
                    [truncate=LEN|replace=PATH|append=PATH|punch=OFF:LEN@STEP ...]"
                .into(),
        );
    };
    let mut o = Options {
        src: src.clone(),
        dst: dst.clone(),
        inject: None,
        via_syscall: false,
        len: 1 << 30,
        actions: Vec::new(),
    };
    for arg in rest {
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{arg}: {e}"));
        let (key, value) = arg.split_once('=').ok_or(format!("{arg}: not KEY=VALUE"))?;
        match key {
            "inject" => o.inject = Some(number(value)? as u16),
            "via" => o.via_syscall = value == "syscall",
            "len" => o.len = number(value)? as usize,
            _ => {
                let (value, step) = value.rsplit_once('@').ok_or(format!("{arg}: no @STEP"))?;
                let action = match key {
                    "truncate" => Action::Truncate(number(value)?),
                    "replace" => Action::Replace(value.to_string()),
                    "append" => Action::Append(value.to_string()),
                    "punch" => {
                        let (off, len) = value.split_once(':').ok_or(format!("{arg}: OFF:LEN"))?;
                        Action::Punch(number(off)? as i64, number(len)? as i64)
                    }
                    _ => return Err(format!("unknown option {arg}")),
                };
                o.actions.push((number(step)?, action));
            }
        }
    }
    Ok(o)
}

fn apply(src: &str, action: &Action) -> std::io::Result<()> {
    let file = || fs::OpenOptions::new().write(true).open(src);
    match action {
        Action::Truncate(len) => file()?.set_len(*len),
        Action::Replace(path) => file()?.write_all_at(&fs::read(path)?, 0),
        Action::Append(path) => fs::OpenOptions::new()
            .append(true)
            .open(src)?
            .write_all(&fs::read(path)?),
        Action::Punch(off, len) => {
            let f = file()?;
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            // SAFETY: fallocate on our own open file.
            match unsafe { libc::fallocate(f.as_raw_fd(), mode, *off, *len) } {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        }
    }
}

/// Answers every notification with "continue", after the actions due at that step.
fn supervise(src: String, actions: Vec<(u64, Action)>) {
    let listener = loop {
        let fd = LISTENER.load(Ordering::Acquire);
        if fd >= 0 {
            break fd;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    loop {
        // SAFETY: all-zero is a valid seccomp_notif (integers), as NOTIF_RECV requires.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV fills one seccomp_notif.
        if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } < 0 {
            continue; // EINTR, or the call was interrupted on the other side
        }
        if ARMED.load(Ordering::Acquire) {
            let step = STEPS.fetch_add(1, Ordering::AcqRel) + 1;
            for (_, action) in actions.iter().filter(|(at, _)| *at == step) {
                STOPPED_NR.store(notif.data.nr.into(), Ordering::Release);
                if let Err(e) = apply(&src, action) {
                    eprintln!("cfrfix-step: action at step {step}: {e}");
                    std::process::exit(1);
                }
            }
        }
        let mut resp = libc::seccomp_notif_resp {
            id: notif.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
        let _ = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
}

fn bpf(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Installs the filter on the calling thread and publishes its listener.
fn install_filter(inject: Option<u16>) -> Result<(), String> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let arch = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
    let nr = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
    let on_copy = match inject {
        Some(errno) => libc::SECCOMP_RET_ERRNO | u32::from(errno),
        None => libc::SECCOMP_RET_ALLOW,
    };
    let prog = [
        bpf(BPF_LD | BPF_W | BPF_ABS, arch, 0, 0),
        bpf(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
        bpf(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
        bpf(BPF_LD | BPF_W | BPF_ABS, nr, 0, 0),
        bpf(
            BPF_JMP | BPF_JEQ | BPF_K,
            libc::SYS_copy_file_range as u32,
            0,
            1,
        ),
        bpf(BPF_RET | BPF_K, on_copy, 0, 0),
        bpf(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF, 0, 0),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: integer-only prctl; lets the filter be installed without CAP_SYS_ADMIN.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fprog` points at `prog`, alive across the call; the kernel copies the program.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
    }
    LISTENER.store(fd as i32, Ordering::Release);
    Ok(())
}

/// One copy_file_range call with NULL offsets, through the chosen entry point: (ret, errno).
fn copy_once(via_syscall: bool, fd_in: i32, fd_out: i32, len: usize) -> (isize, i32) {
    let null = std::ptr::null_mut::<libc::loff_t>();
    // SAFETY: NULL offset pointers; descriptors owned by main.
    let ret = unsafe {
        if via_syscall {
            libc::syscall(libc::SYS_copy_file_range, fd_in, null, fd_out, null, len, 0) as isize
        } else {
            libc::copy_file_range(fd_in, null, fd_out, null, len, 0)
        }
    };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    (ret, if ret < 0 { errno } else { 0 })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cfrfix-step: {e}");
            return ExitCode::from(2);
        }
    };
    let src = fs::File::open(&o.src);
    let dst = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&o.dst);
    let (Ok(src), Ok(dst)) = (src, dst) else {
        eprintln!("cfrfix-step: cannot open {} or {}", o.src, o.dst);
        return ExitCode::FAILURE;
    };
    let (path, actions) = (o.src.clone(), o.actions);
    std::thread::spawn(move || supervise(path, actions));
    if let Err(e) = install_filter(o.inject) {
        eprintln!("cfrfix-step: {e}");
        return ExitCode::FAILURE;
    }
    ARMED.store(true, Ordering::Release);
    let mut total = 0i64;
    let last = loop {
        let (ret, errno) = copy_once(o.via_syscall, src.as_raw_fd(), dst.as_raw_fd(), o.len);
        if ret <= 0 {
            break (ret, errno);
        }
        total += ret as i64;
    };
    ARMED.store(false, Ordering::Release);
    let nr = match STOPPED_NR.load(Ordering::Acquire) {
        -1 => "-".to_string(),
        n => n.to_string(),
    };
    println!(
        "ret={} errno={} total={total} steps={} nr={nr}",
        last.0,
        last.1,
        STEPS.load(Ordering::Acquire)
    );
    ExitCode::SUCCESS
}

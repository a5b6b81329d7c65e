//! `cfrfix-stress COMMAND ...`: workloads for tests/safety.rs, run with or without the preloaded
//! shim (and usually under `cfrfix-inject`, so that every copy is a user-space fallback).
//!
//! Commands (each exits 0 when every invariant it checks held, 1 with `FAIL: ...` on stderr
//! otherwise, 2 on bad usage):
//!
//! - `deny-vm ERRNO [--] PROGRAM [ARGS...]`: adds a seccomp filter that fails
//!   `process_vm_readv`/`process_vm_writev` with ERRNO, checks that it works, then execs PROGRAM.
//!   Stacked under `cfrfix-inject`, the shim must take its pipe path to read and write offsets.
//! - `threads DIR THREADS ROUNDS`: THREADS threads copy one source concurrently, through both
//!   entry points, with explicit offsets and with file positions, while as many threads again
//!   contend on a `std::sync::Mutex` (futex through `syscall()`); every destination is verified.
//! - `fork DIR FORKS`: copying threads run while the main thread forks FORKS times; each child
//!   copies and verifies a file of its own, then the parent verifies its threads' files.
//! - `signals DIR MIB ITERATIONS restart|norestart`: copies of MIB MiB with a SIGALRM every
//!   100 µs; every call must be a full count, a partial count that matches the offsets, positions
//!   and bytes, or EINTR with nothing changed. Prints the tally.
//! - `limits DIR`: fills a small filesystem (ENOSPC) and runs into RLIMIT_FSIZE (EFBIG), printing
//!   one transcript line per call, so that native and shim transcripts can be compared.
//! - `daemon DIR`: closes fds 1 and 2, reopens two data files on those numbers, makes fallback
//!   copies (successes and failures), and checks that nothing was written to them.
//! - `copy SRC DST`: copies SRC to DST with `copy_file_range` and prints `copied N` (or `errno E`).
//! - `workload DIR`: a small, varied set of copies for valgrind: every entry point, sparse and
//!   dense sources, errors, and a check that fallbacks leak no mapping and no descriptor.
//!
//! It never calls `std::fs::copy` or `std::io::copy` (they would call `copy_file_range` behind
//! our back); files are written with write(2) and read back with pread(2).

use std::ffi::{CString, c_int, c_long, c_uint, c_void};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------------
// Small tools

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("FAIL: {msg}");
    std::process::exit(1)
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The content of test file `seed`: position-dependent, so a misplaced byte shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
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

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| fail("NUL in path"))
}

fn open(p: &Path, flags: c_int) -> c_int {
    let c = cpath(p);
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        fail(format!("open {}: errno {}", p.display(), errno()));
    }
    fd
}

fn write_file(p: &Path, data: &[u8]) {
    std::fs::write(p, data).unwrap_or_else(|e| fail(format!("write {}: {e}", p.display())));
}

fn file_size(fd: c_int) -> i64 {
    // SAFETY: all-zero is a valid `struct stat`; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable struct stat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        fail(format!("fstat {fd}: errno {}", errno()));
    }
    st.st_size
}

fn position(fd: c_int) -> i64 {
    // SAFETY: lseek takes no pointer.
    unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) }
}

/// pread until `buf` is full or EOF (retrying EINTR); the number of bytes read.
fn pread_full(fd: c_int, buf: &mut [u8], pos: i64) -> usize {
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
fn holds(fd: c_int, expected: &[u8], scratch: &mut [u8]) -> Result<(), String> {
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

/// The two ways programs reach copy_file_range: glibc's symbol, and `syscall()` (libuv).
#[derive(Clone, Copy, Debug)]
enum Entry {
    Libc,
    Syscall,
    Dlsym,
}

type CopyFn =
    unsafe extern "C" fn(c_int, *mut i64, c_int, *mut i64, usize, c_uint) -> libc::ssize_t;

/// `copy_file_range` through `entry`: the result and errno (0 on success).
fn cfr(
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
fn raw_cfr(
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
fn copy_all(
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

// ---------------------------------------------------------------------------------------------
// deny-vm

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

fn cmd_deny_vm(args: &[String]) {
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

// ---------------------------------------------------------------------------------------------
// threads

/// What the copying threads of `threads` and `fork` did.
#[derive(Default)]
struct Tally {
    copies: AtomicUsize,
    calls: AtomicUsize,
    bytes: AtomicU64,
}

/// One copying thread: `rounds` copies of `src` into `dst`, varying entry, chunk and offsets.
fn copier(
    index: usize,
    rounds: usize,
    src: &Path,
    dst: &Path,
    expected: &[u8],
    tally: &Tally,
) -> Result<(), String> {
    let fd_in = open(src, libc::O_RDONLY);
    let fd_out = open(dst, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC);
    let mut scratch = vec![0u8; 1 << 20];
    let chunks = [expected.len(), 1 << 20, 65_536 + 17, 4096, 300_001];
    for round in 0..rounds {
        // SAFETY: ftruncate takes no pointer.
        unsafe { libc::ftruncate(fd_out, 0) };
        let entry = if (index + round) % 2 == 0 {
            Entry::Libc
        } else {
            Entry::Syscall
        };
        let explicit = (index + round / 2) % 2 == 0;
        let chunk = chunks[(index * 7 + round) % chunks.len()];
        let calls = copy_all(entry, fd_in, fd_out, expected.len(), chunk, explicit)
            .map_err(|e| format!("thread {index} round {round}: {e}"))?;
        holds(fd_out, expected, &mut scratch)
            .map_err(|e| format!("thread {index} round {round}: {}: {e}", dst.display()))?;
        tally.copies.fetch_add(1, Ordering::Relaxed);
        tally.calls.fetch_add(calls, Ordering::Relaxed);
        tally
            .bytes
            .fetch_add(expected.len() as u64, Ordering::Relaxed);
    }
    // SAFETY: closing descriptors this thread opened.
    unsafe {
        libc::close(fd_in);
        libc::close(fd_out);
    }
    Ok(())
}

fn spawn_copiers(
    dir: &Path,
    count: usize,
    rounds: usize,
    src: &Path,
    expected: &Arc<Vec<u8>>,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<Result<(), String>>> {
    (0..count)
        .map(|i| {
            let (src, dst) = (src.to_path_buf(), dir.join(format!("dst.{i}")));
            let (expected, tally) = (Arc::clone(expected), Arc::clone(tally));
            std::thread::spawn(move || copier(i, rounds, &src, &dst, &expected, &tally))
        })
        .collect()
}

fn join_all(handles: Vec<std::thread::JoinHandle<Result<(), String>>>) {
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail(e),
            Err(_) => fail("a thread panicked"),
        }
    }
}

fn cmd_threads(args: &[String]) {
    let [dir, threads, rounds] = args else {
        usage()
    };
    let dir = PathBuf::from(dir);
    let threads: usize = threads.parse().unwrap_or_else(|_| usage());
    let rounds: usize = rounds.parse().unwrap_or_else(|_| usage());
    let src = dir.join("src");
    let expected = Arc::new(pattern(3 * (1 << 20) + 123, 1));
    write_file(&src, &expected);
    let tally = Arc::new(Tally::default());

    // Contention on a std Mutex: std's futex wait/wake go through `syscall()`, the shim's export.
    let counter = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let lockers: Vec<_> = (0..threads)
        .map(|_| {
            let (counter, stop) = (Arc::clone(&counter), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) || ops < 10_000 {
                    let mut c = counter.lock().unwrap_or_else(|p| p.into_inner());
                    *c += 1;
                    drop(c);
                    ops += 1;
                }
                ops
            })
        })
        .collect();

    join_all(spawn_copiers(
        &dir, threads, rounds, &src, &expected, &tally,
    ));
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = lockers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let total = *counter.lock().unwrap_or_else(|p| p.into_inner());
    if total != ops {
        fail(format!(
            "mutex counter {total}, but {ops} increments were made"
        ));
    }
    println!(
        "threads={threads} rounds={rounds} copies={} calls={} bytes={} mutex_threads={threads} mutex_ops={ops}",
        tally.copies.load(Ordering::Relaxed),
        tally.calls.load(Ordering::Relaxed),
        tally.bytes.load(Ordering::Relaxed),
    );
}

// ---------------------------------------------------------------------------------------------
// fork

fn cmd_fork(args: &[String]) {
    let [dir, forks] = args else { usage() };
    let dir = PathBuf::from(dir);
    let forks: usize = forks.parse().unwrap_or_else(|_| usage());
    let src = dir.join("src");
    let expected = Arc::new(pattern(2 * (1 << 20) + 7, 2));
    write_file(&src, &expected);
    let tally = Arc::new(Tally::default());
    let copiers = spawn_copiers(&dir, 4, 12, &src, &expected, &tally);

    // Everything a child needs is prepared before fork: after fork in a threaded process only
    // async-signal-safe work is allowed, so the child opens, copies, preads and compares only.
    let src_c = cpath(&src);
    let child_paths: Vec<CString> = (0..forks)
        .map(|k| cpath(&dir.join(format!("child.{k}"))))
        .collect();
    let mut scratch = vec![0u8; 1 << 20];
    let mut children = Vec::new();
    for (k, dst_c) in child_paths.iter().enumerate() {
        // SAFETY: the child runs only async-signal-safe code (system calls, the shim's raw
        // system calls, slice compares) on memory prepared before the fork, then _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            fail(format!("fork: errno {}", errno()));
        }
        if pid == 0 {
            // SAFETY: see above; `src_c`/`dst_c` are NUL-terminated.
            let code = unsafe {
                let fd_in = libc::open(src_c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                let fd_out = libc::open(
                    dst_c.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644,
                );
                if fd_in < 0 || fd_out < 0 {
                    10
                } else {
                    let entry = if k % 2 == 0 {
                        Entry::Libc
                    } else {
                        Entry::Syscall
                    };
                    let (mut oi, mut oo) = (0i64, 0i64);
                    let mut code = 0;
                    while (oo as usize) < expected.len() {
                        let (r, _) = cfr(
                            entry,
                            fd_in,
                            Some(&mut oi),
                            fd_out,
                            Some(&mut oo),
                            1 << 20,
                            0,
                        );
                        if r <= 0 {
                            code = 11;
                            break;
                        }
                    }
                    if code == 0 && holds(fd_out, &expected, &mut scratch).is_err() {
                        code = 12;
                    }
                    code
                }
            };
            // SAFETY: leaving the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        children.push(pid);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let mut ok = 0;
    for (k, pid) in children.iter().enumerate() {
        let mut status = 0;
        // SAFETY: `status` is a writable int.
        unsafe { libc::waitpid(*pid, &mut status, 0) };
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            ok += 1;
        } else {
            fail(format!(
                "child {k} ended with status {status:#x} (10: open, 11: copy, 12: content)"
            ));
        }
    }
    join_all(copiers);
    println!(
        "forks={forks} children_ok={ok} parent_threads=4 parent_copies={} parent_calls={}",
        tally.copies.load(Ordering::Relaxed),
        tally.calls.load(Ordering::Relaxed)
    );
}

// ---------------------------------------------------------------------------------------------
// signals

static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_alarm(_: c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

fn set_timer(interval_us: i64) {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: interval_us,
    };
    let it = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: `it` is a valid itimerval; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

fn cmd_signals(args: &[String]) {
    let [dir, mib, iterations, restart] = args else {
        usage()
    };
    let dir = PathBuf::from(dir);
    let mib: usize = mib.parse().unwrap_or_else(|_| usage());
    let iterations: usize = iterations.parse().unwrap_or_else(|_| usage());
    let sa_restart = match restart.as_str() {
        "restart" => libc::SA_RESTART,
        "norestart" => 0,
        _ => usage(),
    };
    let src = dir.join("src");
    let expected = pattern(mib << 20, 3);
    write_file(&src, &expected);
    let fd_in = open(&src, libc::O_RDONLY);
    let fd_out = open(
        &dir.join("dst"),
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    );

    // SAFETY: installing a handler that only bumps an atomic (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(c_int) as usize;
        sa.sa_flags = sa_restart;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
    }
    let (mut calls, mut full, mut partial, mut eintr) = (0usize, 0usize, 0usize, 0usize);
    let mut scratch = vec![0u8; 1 << 20];
    set_timer(100);
    for it in 0..iterations {
        // SAFETY: ftruncate/lseek take no pointer.
        unsafe {
            libc::ftruncate(fd_out, 0);
            libc::lseek(fd_in, 0, libc::SEEK_SET);
            libc::lseek(fd_out, 0, libc::SEEK_SET);
        }
        let explicit = it % 2 == 0;
        let entry = if it % 4 < 2 {
            Entry::Libc
        } else {
            Entry::Syscall
        };
        let (mut oi, mut oo) = (0i64, 0i64);
        let mut done = 0usize;
        let mut eintr_in_a_row = 0;
        while done < expected.len() {
            let want = expected.len() - done;
            let size_before = file_size(fd_out);
            let (r, e) = if explicit {
                cfr(entry, fd_in, Some(&mut oi), fd_out, Some(&mut oo), want, 0)
            } else {
                cfr(entry, fd_in, None, fd_out, None, want, 0)
            };
            calls += 1;
            let (now_in, now_out) = if explicit {
                (oi, oo)
            } else {
                (position(fd_in), position(fd_out))
            };
            if r < 0 {
                if e != libc::EINTR {
                    fail(format!("iteration {it}: errno {e} at {done}"));
                }
                // EINTR: nothing may have changed.
                if now_in != done as i64 || now_out != done as i64 {
                    fail(format!(
                        "EINTR moved the offsets: {now_in}/{now_out}, expected {done}"
                    ));
                }
                if file_size(fd_out) != size_before {
                    fail("EINTR changed the destination's size");
                }
                eintr += 1;
                eintr_in_a_row += 1;
                if eintr_in_a_row > 10_000 {
                    fail("EINTR forever: no progress under signals");
                }
                continue;
            }
            eintr_in_a_row = 0;
            let r = r as usize;
            if r == 0 || r > want {
                fail(format!("iteration {it}: returned {r} for {want}"));
            }
            let end = done + r;
            if now_in != end as i64 || now_out != end as i64 {
                fail(format!(
                    "returned {r} at {done} but the offsets are {now_in}/{now_out}"
                ));
            }
            if file_size(fd_out) != (end as i64).max(size_before) {
                fail(format!(
                    "returned {r} at {done} but the destination is {} bytes",
                    file_size(fd_out)
                ));
            }
            // The bytes reported are in place.
            let mut pos = done;
            while pos < end {
                let n = (end - pos).min(scratch.len());
                let got = pread_full(fd_out, &mut scratch[..n], pos as i64);
                if got != n || scratch[..n] != expected[pos..pos + n] {
                    fail(format!(
                        "bytes reported copied differ in [{pos}, {})",
                        pos + n
                    ));
                }
                pos += n;
            }
            if r == want {
                full += 1;
            } else {
                partial += 1;
            }
            done = end;
        }
    }
    set_timer(0);
    println!(
        "calls={calls} full={full} partial={partial} eintr={eintr} signals={} mib={mib} iterations={iterations} sa_restart={}",
        SIGNALS.load(Ordering::Relaxed),
        sa_restart != 0
    );
}

// ---------------------------------------------------------------------------------------------
// limits

static XFSZ: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_xfsz(_: c_int) {
    XFSZ.fetch_add(1, Ordering::Relaxed);
}

/// One call and its transcript line; checks that the offsets moved by exactly the count, that
/// the destination's size agrees, and that the bytes reported are the source's.
#[allow(clippy::too_many_arguments)]
fn limits_call(
    tag: &str,
    entry: Entry,
    fd_in: c_int,
    fd_out: c_int,
    offs: Option<(&mut i64, &mut i64)>,
    len: usize,
    expected: &[u8],
    out: &mut Vec<String>,
) -> isize {
    let explicit = offs.is_some();
    let (before_in, before_out, r, e, after_in, after_out);
    let size_before = file_size(fd_out);
    let xfsz_before = XFSZ.load(Ordering::Relaxed);
    match offs {
        Some((oi, oo)) => {
            (before_in, before_out) = (*oi, *oo);
            (r, e) = cfr(entry, fd_in, Some(&mut *oi), fd_out, Some(&mut *oo), len, 0);
            (after_in, after_out) = (*oi, *oo);
        }
        None => {
            (before_in, before_out) = (position(fd_in), position(fd_out));
            (r, e) = cfr(entry, fd_in, None, fd_out, None, len, 0);
            (after_in, after_out) = (position(fd_in), position(fd_out));
        }
    }
    let size = file_size(fd_out);
    let xfsz = XFSZ.load(Ordering::Relaxed) - xfsz_before;
    out.push(format!(
        "{tag} {} len={len} ret={r} errno={e} in={after_in} out={after_out} size={size} xfsz={xfsz}",
        if explicit { "offsets" } else { "positions" }
    ));
    let n = r.max(0) as i64;
    if after_in != before_in + n || after_out != before_out + n {
        fail(format!(
            "{tag}: returned {r} but offsets moved {before_in}->{after_in}, {before_out}->{after_out}"
        ));
    }
    if size != size_before.max(before_out + n) {
        fail(format!(
            "{tag}: returned {r} from {before_out} but the size went {size_before} -> {size}"
        ));
    }
    if n > 0 {
        let mut got = vec![0u8; n as usize];
        let read = pread_full(fd_out, &mut got, before_out);
        let from = before_in as usize;
        if read != n as usize || got[..] != expected[from..from + n as usize] {
            fail(format!(
                "{tag}: the {n} bytes reported are not the source's"
            ));
        }
    }
    r
}

fn cmd_limits(args: &[String]) {
    let [dir] = args else { usage() };
    let dir = PathBuf::from(dir);
    let entry = match std::env::var("STRESS_ENTRY").as_deref() {
        Ok("syscall") => Entry::Syscall,
        _ => Entry::Libc,
    };
    // SAFETY: installing a handler that only bumps an atomic.
    unsafe { libc::signal(libc::SIGXFSZ, on_xfsz as extern "C" fn(c_int) as usize) };
    let expected = pattern(400 << 10, 4);
    let src = dir.join("src");
    write_file(&src, &expected);
    let fd_in = open(&src, libc::O_RDONLY);
    let mut out = Vec::new();

    // ENOSPC: `a` fits (400 KiB of the 1 MiB filesystem), `b` fills it part way (a partial
    // count), and the next call fails with nothing changed. Then `a` is removed and `c` starts at
    // unaligned offsets, so that the space runs out in the middle of a source page.
    let plan: [(&str, Option<(i64, i64)>); 4] = [
        ("a", Some((0, 0))),
        ("b", None),
        ("c", Some((1000, 3000))),
        ("d", Some((0, 0))),
    ];
    for (name, offsets) in plan {
        if name == "c" {
            let _ = std::fs::remove_file(dir.join("a"));
        }
        let fd_out = open(&dir.join(name), libc::O_RDWR | libc::O_CREAT);
        let (mut oi, mut oo) = offsets.unwrap_or((0, 0));
        for call in 0..6 {
            let offs = offsets.is_some().then_some((&mut oi, &mut oo));
            let r = limits_call(
                &format!("enospc:{name}:{call}"),
                entry,
                fd_in,
                fd_out,
                offs,
                150 << 10,
                &expected,
                &mut out,
            );
            if r <= 0 {
                break;
            }
        }
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd_out) };
    }
    // Free space again, then RLIMIT_FSIZE: the count is clamped to the limit (no signal), and the
    // next call at the limit is EFBIG with SIGXFSZ; the offsets stay where the bytes ended.
    for name in ["b", "c", "d"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let limit = libc::rlimit {
        rlim_cur: 300_001,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) };
    for (name, explicit) in [("f", true), ("g", false)] {
        let fd_out = open(&dir.join(name), libc::O_RDWR | libc::O_CREAT);
        let (mut oi, mut oo) = (1000i64, 1000i64);
        if !explicit {
            // SAFETY: lseek takes no pointer.
            unsafe {
                libc::lseek(fd_in, 1000, libc::SEEK_SET);
                libc::lseek(fd_out, 1000, libc::SEEK_SET);
            }
        }
        for call in 0..6 {
            let offs = explicit.then_some((&mut oi, &mut oo));
            let r = limits_call(
                &format!("fsize:{name}:{call}"),
                entry,
                fd_in,
                fd_out,
                offs,
                128 << 10,
                &expected,
                &mut out,
            );
            if r < 0 {
                break;
            }
        }
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd_out) };
    }
    for line in out {
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// daemon, copy

/// A PROT_NONE page and a read-only page holding an offset: the shim's EFAULT paths.
fn bad_pages() -> (*mut i64, *mut i64) {
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

fn cmd_daemon(args: &[String]) {
    let [dir] = args else { usage() };
    let dir = PathBuf::from(dir);
    let expected = pattern(100_000, 5);
    let src = dir.join("src");
    write_file(&src, &expected);
    // A daemon that closed stdout/stderr and reused the numbers for data files.
    // SAFETY: closing the standard descriptors is this command's purpose.
    unsafe {
        libc::close(1);
        libc::close(2);
    }
    let one = open(
        &dir.join("data1"),
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    );
    let two = open(
        &dir.join("data2"),
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    );
    let mut report = Vec::new();
    if (one, two) != (1, 2) {
        report.push(format!("data files got fds {one} and {two}, not 1 and 2"));
    }
    let fd_in = open(&src, libc::O_RDONLY);
    let fd_out = open(
        &dir.join("dst"),
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    );
    let (none, ro) = bad_pages();
    let mut attempts = Vec::new();
    for entry in [Entry::Libc, Entry::Syscall, Entry::Dlsym] {
        let (mut oi, mut oo) = (0i64, 0i64);
        attempts.push(cfr(
            entry,
            fd_in,
            Some(&mut oi),
            fd_out,
            Some(&mut oo),
            1 << 20,
            0,
        ));
        attempts.push(cfr(entry, fd_in, None, fd_out, None, 1000, 1)); // EINVAL
        attempts.push(cfr(entry, -1, None, fd_out, None, 1000, 0)); // EBADF
        attempts.push(raw_cfr(entry, fd_in, none, fd_out, none, 10, 0)); // EFAULT
        attempts.push(raw_cfr(
            entry,
            fd_in,
            std::ptr::null_mut(),
            fd_out,
            ro,
            10,
            0,
        ));
    }
    if attempts[0].0 != expected.len() as isize {
        report.push(format!("first copy: {:?}", attempts[0]));
    }
    for fd in [1, 2] {
        let size = file_size(fd);
        if size != 0 {
            report.push(format!("{size} bytes were written to fd {fd}"));
        }
    }
    let summary = format!(
        "attempts={} results={:?} {}\n",
        attempts.len(),
        attempts,
        if report.is_empty() {
            "clean".to_string()
        } else {
            report.join("; ")
        }
    );
    write_file(&dir.join("result"), summary.as_bytes());
    std::process::exit(if report.is_empty() { 0 } else { 1 });
}

fn cmd_copy(args: &[String]) {
    let [src, dst] = args else { usage() };
    let fd_in = open(Path::new(src), libc::O_RDONLY);
    let fd_out = open(
        Path::new(dst),
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
    );
    let mut total = 0usize;
    loop {
        let (r, e) = cfr(Entry::Libc, fd_in, None, fd_out, None, 1 << 20, 0);
        if r < 0 {
            println!("errno {e}");
            std::process::exit(1);
        }
        if r == 0 {
            break;
        }
        total += r as usize;
    }
    println!("copied {total}");
}

// ---------------------------------------------------------------------------------------------
// workload (for valgrind)

fn count_entries(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn count_lines(path: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn cmd_workload(args: &[String]) {
    let [dir] = args else { usage() };
    let dir = PathBuf::from(dir);
    let dense = pattern(300_000, 6);
    let src = dir.join("src");
    write_file(&src, &dense);
    // A sparse source: data, a hole, data, a hole at the end.
    let sparse_path = dir.join("sparse");
    let mut sparse = vec![0u8; 1 << 20];
    sparse[..10_000].copy_from_slice(&dense[..10_000]);
    sparse[512 << 10..(512 << 10) + 10_000].copy_from_slice(&dense[10_000..20_000]);
    {
        let f = std::fs::File::create(&sparse_path).unwrap_or_else(|e| fail(e));
        let fd = f.as_raw_fd();
        // SAFETY: writing our own buffers at explicit offsets; ftruncate takes no pointer.
        unsafe {
            libc::pwrite(fd, sparse.as_ptr().cast(), 10_000, 0);
            libc::pwrite(fd, sparse[512 << 10..].as_ptr().cast(), 10_000, 512 << 10);
            libc::ftruncate(fd, sparse.len() as i64);
        }
    }
    let mut scratch = vec![0u8; 1 << 16];
    let mut calls = 0;
    let (_none, ro) = bad_pages();
    for (i, entry) in [Entry::Libc, Entry::Syscall, Entry::Dlsym]
        .into_iter()
        .enumerate()
    {
        for (source, content) in [(&src, &dense), (&sparse_path, &sparse)] {
            let fd_in = open(source, libc::O_RDONLY);
            let dst = dir.join(format!("dst.{i}"));
            let fd_out = open(&dst, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC);
            for explicit in [true, false] {
                // SAFETY: ftruncate takes no pointer.
                unsafe { libc::ftruncate(fd_out, 0) };
                calls += copy_all(entry, fd_in, fd_out, content.len(), 200_000, explicit)
                    .unwrap_or_else(|e| fail(e));
                if let Err(e) = holds(fd_out, content, &mut scratch) {
                    fail(format!("{entry:?} {}: {e}", source.display()));
                }
            }
            // At EOF: 0. Errors: EINVAL (flags), EBADF, copied-then-EFAULT (read-only off_out).
            let (mut oi, mut oo) = (content.len() as i64, 0i64);
            let r = cfr(entry, fd_in, Some(&mut oi), fd_out, Some(&mut oo), 100, 0);
            let bad_flags = cfr(entry, fd_in, None, fd_out, None, 100, 1);
            let bad_fd = cfr(entry, -1, None, fd_out, None, 100, 0);
            let mut zero = 0i64;
            let write_back = raw_cfr(entry, fd_in, &mut zero, fd_out, ro, 100, 0);
            calls += 4;
            if r != (0, 0)
                || bad_flags != (-1, libc::EINVAL)
                || bad_fd != (-1, libc::EBADF)
                || write_back != (-1, libc::EFAULT)
            {
                fail(format!(
                    "{entry:?}: eof {r:?}, flags {bad_flags:?}, fd {bad_fd:?}, ro off_out {write_back:?}"
                ));
            }
            // SAFETY: closing our own descriptors.
            unsafe {
                libc::close(fd_in);
                libc::close(fd_out);
            }
        }
    }
    // Leaks that valgrind cannot see: the shim's mmap buffers and pipes.
    let (fds_before, maps_before) = (
        count_entries("/proc/self/fd"),
        count_lines("/proc/self/maps"),
    );
    let fd_in = open(&src, libc::O_RDONLY);
    let fd_out = open(
        &dir.join("leak"),
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    );
    for round in 0..30 {
        let entry = if round % 2 == 0 {
            Entry::Libc
        } else {
            Entry::Syscall
        };
        calls += copy_all(entry, fd_in, fd_out, dense.len(), 100_000, round % 3 == 0)
            .unwrap_or_else(|e| fail(e));
    }
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(fd_in);
        libc::close(fd_out);
    }
    let (fds_after, maps_after) = (
        count_entries("/proc/self/fd"),
        count_lines("/proc/self/maps"),
    );
    if fds_after != fds_before || maps_after != maps_before {
        fail(format!(
            "fallbacks leaked: fds {fds_before} -> {fds_after}, mappings {maps_before} -> {maps_after}"
        ));
    }
    println!("workload ok calls={calls} fds={fds_after} maps={maps_after}");
}

// ---------------------------------------------------------------------------------------------

fn usage() -> ! {
    eprintln!(
        "usage: cfrfix-stress deny-vm ERRNO [--] PROGRAM [ARGS...] | threads DIR THREADS ROUNDS | \
         fork DIR FORKS | signals DIR MIB ITERATIONS restart|norestart | limits DIR | daemon DIR | \
         copy SRC DST | workload DIR"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        usage()
    };
    match command.as_str() {
        "deny-vm" => cmd_deny_vm(rest),
        "threads" => cmd_threads(rest),
        "fork" => cmd_fork(rest),
        "signals" => cmd_signals(rest),
        "limits" => cmd_limits(rest),
        "daemon" => cmd_daemon(rest),
        "copy" => cmd_copy(rest),
        "workload" => cmd_workload(rest),
        _ => usage(),
    }
}

//! `cfrfix-stress COMMAND ...`: workloads for tests/safety/, run with or without the preloaded
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

mod calls;
mod copy;
mod daemon;
mod deny_vm;
mod fork;
mod limits;
mod signals;
mod threads;
mod tools;
mod workload;

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
        "deny-vm" => deny_vm::cmd_deny_vm(rest),
        "threads" => threads::cmd_threads(rest),
        "fork" => fork::cmd_fork(rest),
        "signals" => signals::cmd_signals(rest),
        "limits" => limits::cmd_limits(rest),
        "daemon" => daemon::cmd_daemon(rest),
        "copy" => copy::cmd_copy(rest),
        "workload" => workload::cmd_workload(rest),
        _ => usage(),
    }
}

//! `fork DIR FORKS`: forks while copying threads run; each child copies and verifies a file of
//! its own using only async-signal-safe work, then the parent checks its threads' copies.

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::calls::{Entry, cfr};
use crate::threads::{Tally, join_all, spawn_copiers};
use crate::tools::{cpath, errno, fail, holds, pattern, write_file};
use crate::usage;

pub(crate) fn cmd_fork(args: &[String]) {
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

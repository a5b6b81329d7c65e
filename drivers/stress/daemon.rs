//! `daemon DIR`: a daemon that closed fds 1 and 2 and reused the numbers for data files makes
//! fallback copies, successful and failing; nothing may be written into those files.

use std::path::PathBuf;

use crate::calls::{Entry, bad_pages, cfr, raw_cfr};
use crate::tools::{file_size, open, pattern, write_file};
use crate::usage;

pub(crate) fn cmd_daemon(args: &[String]) {
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

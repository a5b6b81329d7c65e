//! One line per fallback, only when `CFRFIX_LOG` (or `log` in /etc/cfrfix.conf) asks for it.
//!
//! The line is built in a stack buffer (no allocation, no `core::fmt`) and written with a single
//! `write(2)`, so lines from concurrent processes appending to one file do not interleave. A
//! process logs at most `BURST` lines per second; the rest are counted and the count is reported
//! on the next line that goes out, so a hot loop cannot fill a disk.

use crate::checks::Failure;
use crate::config::{self, LogTarget};
use crate::engine::{Engines, Tally};
use crate::sys::{self, Errno};
use core::sync::atomic::{AtomicU64, Ordering};

/// Why the user-space copy ran.
#[derive(Clone, Copy, Debug)]
pub enum Trigger {
    KernelErrno(Errno),
    /// The kernel returned 0 where the source had data.
    KernelZero,
    /// `CFRFIX_MODE=always`: the kernel was not asked.
    ModeAlways,
}

/// What happened in one fallback, for the log line.
pub struct Fallback {
    pub fd_in: i32,
    pub fd_out: i32,
    pub trigger: Trigger,
    /// What the user-space copy came to.
    pub emulated: Result<usize, Failure>,
    /// What the program was told.
    pub result: Result<usize, Errno>,
    pub tally: Tally,
}

const BURST: u64 = 20;
/// The second (CLOCK_MONOTONIC) the current budget belongs to, and lines logged / suppressed in it.
static WINDOW: AtomicU64 = AtomicU64::new(u64::MAX);
static LOGGED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Whether this line may go out now; also returns how many were suppressed before it.
fn admit() -> Option<u64> {
    let now = sys::monotonic_secs();
    if WINDOW.swap(now, Ordering::Relaxed) != now {
        LOGGED.store(0, Ordering::Relaxed);
    }
    if LOGGED.fetch_add(1, Ordering::Relaxed) < BURST {
        Some(SUPPRESSED.swap(0, Ordering::Relaxed))
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        None
    }
}

pub fn fallback(event: &Fallback) {
    let target = config::log_target();
    if target == LogTarget::Silent {
        return;
    }
    let Some(suppressed) = admit() else {
        return;
    };
    let mut line = Line::new();
    line.push(b"cfrfix[");
    line.push_u64(sys::getpid() as u64);
    line.push(b"]: copy_file_range(");
    line.push_fd(event.fd_in);
    line.push(b" -> ");
    line.push_fd(event.fd_out);
    line.push(b"): ");
    match event.trigger {
        Trigger::KernelErrno(e) => {
            line.push(b"kernel said ");
            line.push_errno(e);
        }
        Trigger::KernelZero => line.push(b"kernel returned 0 with data to copy"),
        Trigger::ModeAlways => line.push(b"mode always"),
    }
    match event.emulated {
        Ok(n) => {
            line.push(b"; copied ");
            line.push_u64(n as u64);
            line.push(b" bytes in user space");
        }
        Err(Failure::Kernel(e)) => {
            line.push(b"; user-space copy returned ");
            line.push_errno(e);
        }
        Err(Failure::Emulation(e)) => {
            line.push(b"; user-space copy impossible here (");
            line.push_errno(e);
            line.push(b" from a step the kernel does not take); returned ");
            match event.trigger {
                Trigger::ModeAlways => line.push(b"a cross-filesystem refusal: "),
                _ => line.push(b"the kernel's answer: "),
            }
            match event.result {
                Ok(n) => line.push_u64(n as u64),
                Err(e) => line.push_errno(e),
            }
        }
    }
    line.push_tally(&event.tally);
    if suppressed > 0 {
        line.push(b" [");
        line.push_u64(suppressed);
        line.push(b" earlier lines suppressed]");
    }
    line.push_newline();
    write_line(target, line.as_bytes());
}

fn write_line(target: LogTarget, bytes: &[u8]) {
    match target {
        LogTarget::Silent => {}
        LogTarget::Stderr => {
            let _ = sys::write(2, bytes);
        }
        LogTarget::File(path) => {
            // O_NONBLOCK: a FIFO planted at the path must not hang the program (opening one
            // without a reader fails; with a reader, the type check refuses it). Only a regular
            // file with one link is written: not a symlink (O_NOFOLLOW), FIFO, device, or a
            // hard link to some other file.
            let flags = libc::O_WRONLY
                | libc::O_APPEND
                | libc::O_CREAT
                | libc::O_CLOEXEC
                | libc::O_NOFOLLOW
                | libc::O_NOCTTY
                | libc::O_NONBLOCK;
            if let Ok(fd) = sys::open(path, flags, 0o644) {
                let plain_file = sys::fstat(fd)
                    .is_ok_and(|st| st.mode & libc::S_IFMT == libc::S_IFREG && st.nlink == 1);
                if plain_file {
                    let _ = sys::write(fd, bytes);
                }
                sys::close(fd);
            }
        }
    }
}

const LINE_MAX: usize = 1024;

/// A fixed-size line buffer; what does not fit is dropped (the newline always fits).
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    fn push_newline(&mut self) {
        self.len = self.len.min(LINE_MAX - 1);
        self.push(b"\n");
    }

    /// `fd N (/path/of/it)`, the path as /proc/self/fd shows it.
    fn push_fd(&mut self, fd: i32) {
        self.push(b"fd ");
        self.push_i64(fd.into());
        if fd < 0 {
            return;
        }
        let mut target = [0u8; 512];
        if let Ok(n) = sys::readlink(sys::ProcFdPath::new(fd).as_cstr(), &mut target) {
            self.push(b" (");
            self.push(target.get(..n).unwrap_or(&[]));
            self.push(b")");
        }
    }

    /// ` (engine splice; read R, wrote W, left H as holes)`: what really moved.
    fn push_tally(&mut self, t: &Tally) {
        self.push(b" (engine ");
        self.push_engines(t.engines);
        self.push(b"; read ");
        self.push_u64(t.read);
        self.push(b", wrote ");
        self.push_u64(t.written);
        self.push(b", left ");
        self.push_u64(t.holes);
        self.push(b" as holes)");
    }

    fn push_engines(&mut self, e: Engines) {
        let names = [
            (e.sparse, b"sparse" as &[u8]),
            (e.sendfile, b"sendfile"),
            (e.splice, b"splice"),
            (e.rw, b"rw"),
        ];
        let mut any = false;
        for (used, name) in names {
            if used {
                if any {
                    self.push(b"+");
                }
                self.push(name);
                any = true;
            }
        }
        if !any {
            self.push(b"none");
        }
    }

    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(digits.get(i..).unwrap_or(&[]));
    }

    fn push_i64(&mut self, n: i64) {
        if n < 0 {
            self.push(b"-");
        }
        self.push_u64(n.unsigned_abs());
    }

    fn push_errno(&mut self, e: Errno) {
        // The names `errnos` accepts: one table for the settings and the log.
        let name = config::parse::ERRNO_NAMES.iter().find(|&&(_, n)| n == e.0);
        match name {
            Some((name, _)) => self.push(name.as_bytes()),
            None => {
                self.push(b"errno ");
                self.push_i64(e.0.into());
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        let mut l = Line::new();
        l.push_u64(0);
        l.push(b" ");
        l.push_u64(u64::MAX);
        l.push(b" ");
        l.push_i64(-42);
        l.push(b" ");
        l.push_errno(Errno(524));
        l.push(b" ");
        l.push_errno(Errno(95));
        l.push(b" ");
        l.push_errno(Errno(1234));
        assert_eq!(
            l.as_bytes(),
            b"0 18446744073709551615 -42 ENOTSUPP EOPNOTSUPP errno 1234"
        );
    }

    #[test]
    fn overlong_lines_are_cut() {
        let mut l = Line::new();
        for _ in 0..300 {
            l.push(b"abcdef");
        }
        l.push_newline();
        assert_eq!(l.as_bytes().len(), LINE_MAX);
        assert_eq!(l.as_bytes().last(), Some(&b'\n'));
    }
}

//! One line per fallback, only when `CFRFIX_LOG` asks for it.
//!
//! The line is built in a stack buffer (no allocation, no `core::fmt`) and written with a single
//! `write(2)`, so lines from concurrent processes appending to one file do not interleave.

use crate::config::{self, LogTarget};
use crate::sys::{self, Errno};

/// What happened in one fallback, for the log line.
pub struct Fallback {
    pub fd_in: i32,
    pub fd_out: i32,
    /// The kernel's refusal (`None` in `CFRFIX_MODE=always`, where it was not asked).
    pub kernel_errno: Option<Errno>,
    pub result: Result<usize, Errno>,
}

pub fn fallback(event: &Fallback) {
    let target = config::log_target();
    if target == LogTarget::Silent {
        return;
    }
    let mut line = Line::new();
    line.push(b"cfrfix[");
    line.push_u64(sys::getpid() as u64);
    line.push(b"]: copy_file_range(fd ");
    line.push_i64(event.fd_in.into());
    line.push(b" -> fd ");
    line.push_i64(event.fd_out.into());
    line.push(b"): ");
    match event.kernel_errno {
        Some(e) => {
            line.push(b"kernel said ");
            line.push_errno(e);
        }
        None => line.push(b"mode always"),
    }
    match event.result {
        Ok(n) => {
            line.push(b"; copied ");
            line.push_u64(n as u64);
            line.push(b" bytes in user space\n");
        }
        Err(e) => {
            line.push(b"; user-space copy returned ");
            line.push_errno(e);
            line.push(b"\n");
        }
    }
    write_line(target, line.as_bytes());
}

fn write_line(target: LogTarget, bytes: &[u8]) {
    match target {
        LogTarget::Silent => {}
        LogTarget::Stderr => {
            let _ = sys::write(2, bytes);
        }
        LogTarget::File(path) => {
            let flags = libc::O_WRONLY
                | libc::O_APPEND
                | libc::O_CREAT
                | libc::O_CLOEXEC
                | libc::O_NOFOLLOW
                | libc::O_NOCTTY;
            if let Ok(fd) = sys::open(path, flags, 0o644) {
                let _ = sys::write(fd, bytes);
                sys::close(fd);
            }
        }
    }
}

/// A fixed-size line buffer; what does not fit is dropped.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 256],
            len: 0,
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
        match sys::errno_name(e) {
            Some(name) => self.push(name.as_bytes()),
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
        for _ in 0..100 {
            l.push(b"abcdef");
        }
        assert_eq!(l.as_bytes().len(), 256);
    }
}

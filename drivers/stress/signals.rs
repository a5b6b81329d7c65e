//! `signals DIR MIB ITERATIONS restart|norestart`: copies under a SIGALRM every 100 µs, with or
//! without `SA_RESTART`; every call must be a full count, a partial count that matches the
//! offsets, positions and bytes, or EINTR with nothing changed.

use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::calls::{Entry, cfr};
use crate::tools::{fail, file_size, open, pattern, position, pread_full, write_file};
use crate::usage;

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

pub(crate) fn cmd_signals(args: &[String]) {
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

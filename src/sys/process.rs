//! The calling process and thread: their ids, a signal to this thread, the file-size limit, the
//! monotonic clock, and whether the process runs in secure-execution mode.

use super::SysResult;
use core::ffi::c_int;

/// The calling thread's id: `process_vm_*` accept it as the "pid" and, unlike the process id,
/// it names a live task even after the main thread has exited.
pub fn gettid() -> c_int {
    // SAFETY: gettid takes no pointer and cannot fail.
    unsafe { sys!(libc::SYS_gettid) }.unwrap_or(0) as c_int
}

pub fn getpid() -> c_int {
    // SAFETY: getpid takes no pointer and cannot fail.
    unsafe { sys!(libc::SYS_getpid) }.unwrap_or(0) as c_int
}

/// Sends `sig` to the calling thread, as the kernel's `send_sig(sig, current, 0)` does.
pub fn raise_in_this_thread(sig: c_int) {
    // SAFETY: none of these calls takes a pointer.
    unsafe {
        let pid = sys!(libc::SYS_getpid).unwrap_or(0);
        let tid = sys!(libc::SYS_gettid).unwrap_or(0);
        let _ = sys!(libc::SYS_tgkill, pid, tid, sig);
    }
}

/// The soft `RLIMIT_FSIZE` of the calling process (`u64::MAX` is `RLIM_INFINITY`).
pub fn fsize_limit() -> SysResult<u64> {
    let mut lim = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a NULL new limit reads only; `lim` is a writable `struct rlimit64`.
    unsafe {
        sys!(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_FSIZE,
            0usize,
            &mut lim as *mut libc::rlimit64
        )
    }?;
    Ok(lim.rlim_cur)
}

/// Seconds on `CLOCK_MONOTONIC` (0 if unavailable).
pub fn monotonic_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable `struct timespec`.
    let r = unsafe {
        sys!(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut ts as *mut libc::timespec
        )
    };
    if r.is_ok() { ts.tv_sec as u64 } else { 0 }
}

/// Whether this process runs in secure-execution mode (setuid, setgid, file capabilities).
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the saved auxiliary vector.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

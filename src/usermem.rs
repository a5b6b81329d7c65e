//! Reading and writing the caller's `loff_t *` offsets without ever faulting.
//!
//! The kernel answers `EFAULT` for an unreadable offset pointer before it checks anything else,
//! and `EFAULT` after a successful copy when it cannot write the new offset back (a read-only
//! page). When the shim emulates a call that the kernel never looked at (seccomp `ENOSYS`/`EPERM`),
//! it must give the same answers, and a direct `*ptr` would crash the host on a bad pointer.
//! So the value is moved by a system call that reports `EFAULT`: `process_vm_readv`/`writev` on our
//! own process, or, where a seccomp profile forbids those, a private pipe.

use crate::sys::{self, Errno, SysResult, UserPtr};
use core::ffi::c_void;

const LEN: usize = core::mem::size_of::<i64>();

/// Reads the `loff_t` at `ptr`, or `EFAULT`.
pub fn read_offset(ptr: UserPtr) -> SysResult<i64> {
    let mut value: i64 = 0;
    let local = &mut value as *mut i64 as *mut c_void;
    match sys::process_vm_rw(false, local, ptr, LEN) {
        Ok(LEN) => Ok(value),
        Ok(_) => Err(Errno::EFAULT), // only part of it is mapped
        Err(e) if forbidden(e) => via_pipe(|[r, w]| {
            transferred(sys::write_from_user(w, ptr, LEN))?;
            let mut bytes = [0u8; LEN];
            transferred(sys::read(r, &mut bytes))?;
            Ok(i64::from_ne_bytes(bytes))
        }),
        Err(e) => Err(e),
    }
}

/// The means to write the caller's offsets back after a copy, secured before it: once data is
/// copied, the only error the kernel gives is EFAULT (the offset cannot be written), so a
/// resource the write-back needs (the pipe, where `process_vm_writev` is refused) is obtained
/// first, while a failure can still be answered as the kernel answered.
pub struct WriteBack {
    pipe: Option<[i32; 2]>,
}

impl WriteBack {
    /// For a call with an offset pointer (`needed`): checks that `process_vm_writev` is allowed
    /// (a zero-length call, which seccomp filters see like any other), or makes the pipe.
    pub fn prepare(needed: bool) -> SysResult<WriteBack> {
        let mut probe: i64 = 0;
        let local = &mut probe as *mut i64 as *mut c_void;
        let pipe = match needed && sys::process_vm_rw(true, local, UserPtr(0), 0).is_err() {
            true => Some(sys::pipe()?),
            false => None,
        };
        Ok(WriteBack { pipe })
    }

    /// Writes `value` to the `loff_t` at `ptr`, or `EFAULT` (read-only or unmapped memory).
    pub fn write(&self, ptr: UserPtr, value: i64) -> SysResult<()> {
        match self.pipe {
            Some(fds) => write_through_pipe(fds, ptr, value),
            None => write_offset(ptr, value),
        }
    }
}

impl Drop for WriteBack {
    fn drop(&mut self) {
        for fd in self.pipe.into_iter().flatten() {
            sys::close(fd);
        }
    }
}

/// Writes `value` to the `loff_t` at `ptr`, or `EFAULT` (read-only or unmapped memory).
fn write_offset(ptr: UserPtr, mut value: i64) -> SysResult<()> {
    let local = &mut value as *mut i64 as *mut c_void;
    match sys::process_vm_rw(true, local, ptr, LEN) {
        Ok(LEN) => Ok(()),
        Ok(_) => Err(Errno::EFAULT),
        Err(e) if forbidden(e) => via_pipe(|fds| write_through_pipe(fds, ptr, value)),
        Err(e) => Err(e),
    }
}

/// The pipe route: our 8 bytes into the pipe, then `read(2)` them into the caller's memory.
/// What a faulting read leaves in the pipe is drained (exactly what is left, so this never
/// blocks): the pipe serves the next offset of the same call.
fn write_through_pipe([r, w]: [i32; 2], ptr: UserPtr, value: i64) -> SysResult<()> {
    transferred(sys::write(w, &value.to_ne_bytes()))?;
    let delivered = sys::read_to_user(r, ptr, LEN);
    let taken = delivered.unwrap_or(0).min(LEN);
    if taken < LEN {
        let mut rest = [0u8; LEN];
        let _ = sys::read(r, rest.get_mut(taken..).unwrap_or(&mut []));
    }
    transferred(delivered)
}

/// `process_vm_*` failed for a reason other than the address: seccomp (ENOSYS, EPERM), a kernel
/// built without `CONFIG_CROSS_MEMORY_ATTACH`, or anything else: the pipe answers instead.
fn forbidden(e: Errno) -> bool {
    e != Errno::EFAULT
}

/// A full 8-byte transfer, or EFAULT (the pipe is ours and empty, so anything short is the
/// caller's memory ending).
fn transferred(r: SysResult<usize>) -> SysResult<()> {
    match r {
        Ok(LEN) => Ok(()),
        Ok(_) => Err(Errno::EFAULT),
        Err(e) => Err(e),
    }
}

/// Runs `f` with a fresh pipe `[read end, write end]`, closed afterwards.
fn via_pipe<T>(f: impl FnOnce([i32; 2]) -> SysResult<T>) -> SysResult<T> {
    let fds = sys::pipe()?;
    let r = f(fds);
    sys::close(fds[0]);
    sys::close(fds[1]);
    r
}

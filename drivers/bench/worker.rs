//! The worker role, `cfrfix-bench worker KIND ...`: one measurement per process. It times only
//! its own loop (a whole-file copy by copy_file_range or by a pread/pwrite loop, one-byte copies,
//! `syscall(SYS_getppid)`, fork+exec) and prints `NANOSECONDS [DEST_ALLOCATED_BYTES]`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use crate::{GIB, MIB};

/// Row 2's baseline: the "plain pread/pwrite loop" of the issue.
const RW_LOOP_BUF: usize = 128 * 1024;

pub(crate) fn worker(args: &[OsString]) -> Result<String, String> {
    let s = |i: usize| -> Result<&OsStr, String> {
        args.get(i)
            .map(OsString::as_os_str)
            .ok_or_else(|| format!("missing argument {i}"))
    };
    let n = |i: usize| -> Result<u64, String> {
        s(i)?
            .to_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("argument {i} is not a number"))
    };
    let dest = |kind: &[u8]| {
        if kind.ends_with(b"-over") {
            Dest::Overwrite
        } else {
            Dest::Fresh
        }
    };
    match s(0)?.as_bytes() {
        kind @ (b"copy" | b"copy-over") => copy_file(
            CopyLoop::CopyFileRange,
            Path::new(s(1)?),
            Path::new(s(2)?),
            dest(kind),
            n(3)? != 0,
        ),
        kind @ (b"rwloop" | b"rwloop-over") => copy_file(
            CopyLoop::PreadPwrite(match args.get(4) {
                Some(_) => n(4)? as usize,
                None => RW_LOOP_BUF,
            }),
            Path::new(s(1)?),
            Path::new(s(2)?),
            dest(kind),
            n(3)? != 0,
        ),
        b"bytes" => byte_copies(Path::new(s(1)?), Path::new(s(2)?), n(3)?, n(4)?),
        b"syscall" => syscalls(n(1)?, n(2)?),
        b"exec" => execs(s(1)?, n(2)?, args.get(3).map(OsString::as_os_str)),
        other => Err(format!(
            "unknown worker {:?}",
            String::from_utf8_lossy(other)
        )),
    }
}

#[derive(Clone, Copy)]
enum CopyLoop {
    /// What `cp` and Rust's `fs::copy` do: `copy_file_range` with the file positions, until done.
    CopyFileRange,
    /// The naive user-space copy the fallback must beat, with this buffer size (a worker
    /// argument, for trying other sizes by hand: `worker rwloop SRC DST 0 BYTES`).
    PreadPwrite(usize),
}

/// What the copy writes into (worker `copy`/`rwloop` vs `copy-over`/`rwloop-over`).
#[derive(Clone, Copy, PartialEq)]
enum Dest {
    /// A freshly created file, so every round does the same work, page allocation included
    /// (on tmpfs most of a 256 MiB copy's time: every method pays it alike).
    Fresh,
    /// An existing file of the source's size, made before the clock starts and filled with
    /// the source's bytes inverted, then opened write-only without `O_TRUNC`: the copy
    /// overwrites it from offset 0, so the copy itself is measured, not page allocation. As
    /// every byte differs before the copy, verification catches any byte left unwritten.
    Overwrite,
}

/// Copies `src` to `dst` (made as `dest` says), timing only the copy loop. Prints the time
/// and the destination's allocated bytes.
fn copy_file(
    how: CopyLoop,
    src: &Path,
    dst: &Path,
    dest: Dest,
    verify: bool,
) -> Result<String, String> {
    let input = File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let size = input.metadata().map_err(|e| e.to_string())?.len();
    match fs::remove_file(dst) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.to_string()),
        _ => {}
    }
    if dest == Dest::Overwrite {
        write_inverted(src, dst)?;
    }
    // Write-only, as cp opens its destination; never O_TRUNC, so an existing destination
    // keeps its pages.
    let output = OpenOptions::new()
        .write(true)
        .create_new(dest == Dest::Fresh)
        .open(dst)
        .map_err(|e| format!("{}: {e}", dst.display()))?;

    let start = Instant::now();
    let copied = match how {
        CopyLoop::CopyFileRange => cfr_loop(&input, &output, size),
        CopyLoop::PreadPwrite(buf) => rw_loop(&input, &output, size, buf),
    }
    .map_err(|e| format!("copy: {e}"))?;
    let ns = start.elapsed().as_nanos();

    let meta = output.metadata().map_err(|e| e.to_string())?;
    let result = if copied != size || meta.len() != size {
        Err(format!(
            "copied {copied} bytes, destination has {}, source {size}",
            meta.len()
        ))
    } else if verify {
        same_contents(src, dst).map(|()| format!("{ns} {}", meta.blocks() * 512))
    } else {
        Ok(format!("{ns} {}", meta.blocks() * 512))
    };
    // Free the memory now rather than holding up to 1 GiB of tmpfs until the next round.
    drop(output);
    let _ = fs::remove_file(dst);
    result
}

/// Creates `dst` holding every byte of `src` inverted (untimed set-up of `Dest::Overwrite`).
fn write_inverted(src: &Path, dst: &Path) -> Result<(), String> {
    let err = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
    let mut input = File::open(src).map_err(|e| err(src, e))?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(|e| err(dst, e))?;
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = read_full(&mut input, &mut buf).map_err(|e| err(src, e))?;
        if n == 0 {
            return Ok(());
        }
        for b in &mut buf[..n] {
            *b = !*b;
        }
        output.write_all(&buf[..n]).map_err(|e| err(dst, e))?;
    }
}

fn cfr_loop(input: &File, output: &File, size: u64) -> io::Result<u64> {
    let mut copied = 0u64;
    while copied < size {
        // 1 GiB per call, as Rust's fs::copy asks (the kernel caps a call at ~2 GiB anyway).
        let want = (size - copied).min(GIB) as usize;
        // SAFETY: valid descriptors; NULL offsets mean "use and advance the file positions".
        let n = unsafe {
            libc::copy_file_range(
                input.as_raw_fd(),
                std::ptr::null_mut(),
                output.as_raw_fd(),
                std::ptr::null_mut(),
                want,
                0,
            )
        };
        match n {
            n if n < 0 => return Err(io::Error::last_os_error()),
            0 => break,
            n => copied += n as u64,
        }
    }
    Ok(copied)
}

fn rw_loop(input: &File, output: &File, size: u64, buf_size: usize) -> io::Result<u64> {
    // Page-aligned, as cp's buffer is: the baseline should be a good plain loop, and an
    // unaligned buffer makes every page copied in or out straddle two pages.
    const PAGE: usize = 4096;
    let mut storage = vec![0u8; buf_size.max(1) + PAGE];
    let skip = storage.as_ptr().align_offset(PAGE);
    let buf = &mut storage[skip..skip + buf_size.max(1)];
    let mut pos = 0u64;
    while pos < size {
        let n = input.read_at(buf, pos)?;
        if n == 0 {
            break;
        }
        output.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(pos)
}

/// Byte-for-byte comparison (untimed; the driver asks for it in the first round only), so a
/// fast number can never come from a wrong copy.
fn same_contents(a: &Path, b: &Path) -> Result<(), String> {
    let mut fa = File::open(a).map_err(|e| e.to_string())?;
    let mut fb = File::open(b).map_err(|e| e.to_string())?;
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    let mut pos = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|e| e.to_string())?;
        let nb = read_full(&mut fb, &mut bb).map_err(|e| e.to_string())?;
        if na != nb || ba[..na] != bb[..nb] {
            return Err(format!("destination differs from source near offset {pos}"));
        }
        if na == 0 {
            return Ok(());
        }
        pos += na as u64;
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Row 4: `count` one-byte copies the kernel does itself, with explicit offsets. Repeated
/// `reps` times in the process (destination emptied between, untimed); the fastest repetition
/// is printed, which drops the runs a neighbour process preempted.
fn byte_copies(src: &Path, dst: &Path, count: u64, reps: u64) -> Result<String, String> {
    let input = File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .map_err(|e| format!("{}: {e}", dst.display()))?;
    let mut best = u128::MAX;
    for _ in 0..reps.max(1) {
        output.set_len(0).map_err(|e| e.to_string())?;
        let (mut off_in, mut off_out) = (0i64, 0i64);
        let start = Instant::now();
        for _ in 0..count {
            // SAFETY: valid descriptors and offset pointers.
            let n = unsafe {
                libc::copy_file_range(
                    input.as_raw_fd(),
                    &mut off_in,
                    output.as_raw_fd(),
                    &mut off_out,
                    1,
                    0,
                )
            };
            if n != 1 {
                return Err(format!(
                    "copy_file_range returned {n} at byte {off_in}: {}",
                    io::Error::last_os_error()
                ));
            }
        }
        best = best.min(start.elapsed().as_nanos());
    }
    drop(output);
    let _ = fs::remove_file(dst);
    Ok(best.to_string())
}

/// Row 5: `syscall(SYS_getppid)` through libc's symbol, which the preload interposes. Fastest
/// of `reps` batches, as for row 4.
fn syscalls(count: u64, reps: u64) -> Result<String, String> {
    let mut best = u128::MAX;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        for _ in 0..count {
            // SAFETY: getppid takes no arguments and cannot fail.
            let r = unsafe { libc::syscall(std::hint::black_box(libc::SYS_getppid)) };
            std::hint::black_box(r);
        }
        best = best.min(start.elapsed().as_nanos());
    }
    Ok(best.to_string())
}

/// Row 6: `count` times fork + execve(`program`) + wait, the child's environment being ours
/// plus `LD_PRELOAD=preload` if given. This worker itself runs without a preload, so only the
/// exec'd program's start-up differs between variants.
fn execs(program: &OsStr, count: u64, preload: Option<&OsStr>) -> Result<String, String> {
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| "NUL in argument".to_string());
    let prog = cstr(program.as_bytes())?;
    let mut env: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k != "LD_PRELOAD" {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(cstr(&kv)?);
        }
    }
    if let Some(p) = preload {
        let mut kv = b"LD_PRELOAD=".to_vec();
        kv.extend_from_slice(p.as_bytes());
        env.push(cstr(&kv)?);
    }
    let argv = [prog.as_ptr(), std::ptr::null()];
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());

    let start = Instant::now();
    for _ in 0..count {
        // SAFETY: the child only calls execve and _exit (async-signal-safe), on pointers made
        // before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
                libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err(format!("waitpid: {}", io::Error::last_os_error()));
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(format!(
                "{} failed (wait status {status:#x})",
                program.to_string_lossy()
            ));
        }
    }
    Ok(start.elapsed().as_nanos().to_string())
}

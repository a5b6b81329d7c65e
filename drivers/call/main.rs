//! `cfrfix-call`: makes `copy_file_range(2)` calls described on the command line, through
//! glibc's symbol (so a preloaded cfrfix sees them), and prints what happened. A test helper
//! for tests/engines.rs and tests/zero_and_eagain.rs: the tests build the files, run this
//! natively and under `cfrfix-inject ERRNO` with the shim, and compare.
//!
//! ```text
//! cfrfix-call copy SRC DST [KEY=VALUE...]
//! cfrfix-call churn SRC DST COUNT LEN [WARMUP]
//! ```
//!
//! `copy` opens SRC read-only and DST write-only (created if missing, never truncated), sets
//! the file positions, makes the call(s) and prints one line:
//! `ret=R errno=E calls=C pos_in=P pos_out=P off_in=V off_out=V`, where `ret` is the last
//! call's return value (or, with `repeat=until0`, the total copied before the final 0 or
//! error), `errno` is 0 unless that call failed, `pos_*` the file positions afterwards and
//! `off_*` the offset variables afterwards (`null` when NULL was passed).
//!
//! | key | values | default |
//! |---|---|---|
//! | `len` | bytes | 65536 |
//! | `off_in`, `off_out` | `null` or a number | `null` |
//! | `src_pos`, `dst_pos` | a number: `lseek(SEEK_SET)` before the first call | not set |
//! | `src_nonblock`, `dst_nonblock` | `0`/`1`: open that side with `O_NONBLOCK` | 0 |
//! | `repeat` | `once`, `until0` (call until 0 or an error, as `cp` does) | `once` |
//!
//! `churn` makes COUNT calls of LEN bytes from offset 0 to offset 0 (explicit offsets), after
//! WARMUP warm-up calls (default 1000; 0 measures from the process's start, e.g. for its
//! peak memory), and prints the process's memory and descriptor figures before and after
//! (`/proc/self/status`, `/proc/self/fd`, `/proc/self/maps`) and the elapsed time:
//! `rss_kb=A->B vsz_kb=A->B hwm_kb=A->B peak_kb=A->B fds=A->B maps=A->B secs=S`. It exits 1
//! if any call does not return LEN.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cfrfix-call copy SRC DST [len=N] [off_in=null|N] [off_out=null|N] [src_pos=N] \
         [dst_pos=N] [src_nonblock=0|1] [dst_nonblock=0|1] [repeat=once|until0]\n       \
         cfrfix-call churn SRC DST COUNT LEN [WARMUP]"
    );
    ExitCode::from(2)
}

fn open(path: &str, flags: i32) -> Result<i32, String> {
    let c = CString::new(std::path::Path::new(path).as_os_str().as_bytes())
        .map_err(|_| format!("{path}: NUL in path"))?;
    // SAFETY: a NUL-terminated path; the mode is used only with O_CREAT.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        return Err(format!("open {path}: {}", std::io::Error::last_os_error()));
    }
    Ok(fd)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// glibc's `copy_file_range` (interposed when cfrfix is preloaded); returns (ret, errno).
fn cfr(
    fd_in: i32,
    off_in: Option<&mut i64>,
    fd_out: i32,
    off_out: Option<&mut i64>,
    len: usize,
) -> (isize, i32) {
    let p_in = off_in.map_or(std::ptr::null_mut(), |p| p as *mut i64);
    let p_out = off_out.map_or(std::ptr::null_mut(), |p| p as *mut i64);
    // SAFETY: valid or NULL offset pointers to live i64s.
    let ret = unsafe { libc::copy_file_range(fd_in, p_in, fd_out, p_out, len, 0) };
    (ret, if ret < 0 { errno() } else { 0 })
}

fn number(key: &str, value: &str) -> Result<i64, String> {
    value
        .parse::<i64>()
        .map_err(|e| format!("{key}={value}: {e}"))
}

fn copy(src: &str, dst: &str, options: &[String]) -> Result<String, String> {
    let mut len: usize = 65536;
    let (mut off_in, mut off_out): (Option<i64>, Option<i64>) = (None, None);
    // Positions to set before the first call; unset, the files stay where open leaves them
    // (0), which also serves files that cannot seek.
    let (mut src_pos, mut dst_pos): (Option<i64>, Option<i64>) = (None, None);
    let (mut src_flags, mut dst_flags) = (libc::O_RDONLY, libc::O_WRONLY | libc::O_CREAT);
    let mut until_zero = false;
    for option in options {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| format!("{option}: not KEY=VALUE"))?;
        let offset = |v: &str| -> Result<Option<i64>, String> {
            if v == "null" {
                Ok(None)
            } else {
                number(key, v).map(Some)
            }
        };
        match key {
            "len" => len = value.parse().map_err(|e| format!("len={value}: {e}"))?,
            "off_in" => off_in = offset(value)?,
            "off_out" => off_out = offset(value)?,
            "src_pos" => src_pos = Some(number(key, value)?),
            "dst_pos" => dst_pos = Some(number(key, value)?),
            "src_nonblock" if value == "1" => src_flags |= libc::O_NONBLOCK,
            "dst_nonblock" if value == "1" => dst_flags |= libc::O_NONBLOCK,
            "src_nonblock" | "dst_nonblock" if value == "0" => {}
            "repeat" if value == "once" => until_zero = false,
            "repeat" if value == "until0" => until_zero = true,
            _ => return Err(format!("unknown option {option}")),
        }
    }
    let fd_in = open(src, src_flags)?;
    let fd_out = open(dst, dst_flags)?;
    for (fd, pos) in [(fd_in, src_pos), (fd_out, dst_pos)] {
        let Some(pos) = pos else { continue };
        // SAFETY: plain lseek on our own descriptor.
        if unsafe { libc::lseek(fd, pos, libc::SEEK_SET) } < 0 {
            return Err(format!("lseek: {}", std::io::Error::last_os_error()));
        }
    }
    let (mut calls, mut total) = (0u64, 0isize);
    let (mut ret, err) = loop {
        let (ret, err) = cfr(fd_in, off_in.as_mut(), fd_out, off_out.as_mut(), len);
        calls += 1;
        if ret > 0 {
            total += ret;
        }
        if !until_zero || ret <= 0 || calls >= 1_000_000 {
            break (ret, err);
        }
    };
    if until_zero && ret == 0 {
        ret = total;
    }
    // SAFETY: plain lseek on our own descriptors.
    let (pos_in, pos_out) = unsafe {
        (
            libc::lseek(fd_in, 0, libc::SEEK_CUR),
            libc::lseek(fd_out, 0, libc::SEEK_CUR),
        )
    };
    let show = |o: Option<i64>| o.map_or("null".to_string(), |v| v.to_string());
    Ok(format!(
        "ret={ret} errno={err} calls={calls} pos_in={pos_in} pos_out={pos_out} off_in={} off_out={}",
        show(off_in),
        show(off_out)
    ))
}

/// The figures `churn` compares, all from /proc/self.
struct Snapshot {
    rss_kb: u64,
    vsz_kb: u64,
    hwm_kb: u64,
    peak_kb: u64,
    fds: usize,
    maps: usize,
}

fn snapshot() -> Snapshot {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Snapshot {
        rss_kb: field("VmRSS:"),
        vsz_kb: field("VmSize:"),
        hwm_kb: field("VmHWM:"),
        peak_kb: field("VmPeak:"),
        fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
        maps: std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count()),
    }
}

fn churn(src: &str, dst: &str, count: &str, len: &str, warmup: &str) -> Result<String, String> {
    let count: u64 = count.parse().map_err(|e| format!("COUNT {count}: {e}"))?;
    let warmup: u64 = warmup
        .parse()
        .map_err(|e| format!("WARMUP {warmup}: {e}"))?;
    let len: usize = len.parse().map_err(|e| format!("LEN {len}: {e}"))?;
    let fd_in = open(src, libc::O_RDONLY)?;
    let fd_out = open(dst, libc::O_WRONLY | libc::O_CREAT)?;
    let run = |n: u64| -> Result<(), String> {
        for i in 0..n {
            let (mut a, mut b) = (0i64, 0i64);
            let (ret, err) = cfr(fd_in, Some(&mut a), fd_out, Some(&mut b), len);
            if ret != len as isize {
                return Err(format!("call {i}: ret={ret} errno={err}, expected {len}"));
            }
        }
        Ok(())
    };
    // Warm up first: the first calls fault in code, stack and libc state.
    run(warmup)?;
    let before = snapshot();
    let start = Instant::now();
    run(count)?;
    let secs = start.elapsed().as_secs_f64();
    let after = snapshot();
    Ok(format!(
        "rss_kb={}->{} vsz_kb={}->{} hwm_kb={}->{} peak_kb={}->{} fds={}->{} maps={}->{} secs={secs:.3}",
        before.rss_kb,
        after.rss_kb,
        before.vsz_kb,
        after.vsz_kb,
        before.hwm_kb,
        after.hwm_kb,
        before.peak_kb,
        after.peak_kb,
        before.fds,
        after.fds,
        before.maps,
        after.maps
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["copy", src, dst, ..] => copy(src, dst, &args[3..]),
        ["churn", src, dst, count, len] => churn(src, dst, count, len, "1000"),
        ["churn", src, dst, count, len, warmup] => churn(src, dst, count, len, warmup),
        _ => return usage(),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cfrfix-call: {e}");
            ExitCode::FAILURE
        }
    }
}

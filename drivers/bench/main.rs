//! `cfrfix-bench`: the benchmark of issue 3 (run it through `scripts/bench`, which builds first).
//!
//! One binary, two roles:
//! - without arguments (or with options) it is the *driver*: it makes the test files in a
//!   scratch directory on tmpfs, runs every measurement as a separate child process of itself
//!   (with or without `LD_PRELOAD`, `CFRFIX_*` and `cfrfix-inject`), alternating the variants
//!   of each row round by round, and prints the per-round ratios as min/median/max;
//! - `cfrfix-bench worker KIND ...` is one measurement: it times its own loop and prints the
//!   nanoseconds, so process start-up and file set-up are not in the number (except for the
//!   exec row, where start-up is the thing measured).
//!
//! Each measurement is its own process because the preload is per process, and so that every
//! variant pays the same costs (fresh address space, cold library pages) in every round.
//! Only std and libc: nothing here may pull a crate into the library's dependency tree.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Row 1/2 file: big enough that a copy takes tens of milliseconds (timer and start-up noise
/// vanish), small enough that a round of seven copies stays around a second.
const COPY_SIZE: u64 = 256 * MIB;
/// Row 3: a 1 GiB file holding `SPARSE_EXTENTS` data extents of `SPARSE_EXTENT` bytes (1 MiB).
const SPARSE_SIZE: u64 = GIB;
const SPARSE_EXTENTS: u64 = 16;
const SPARSE_EXTENT: u64 = 64 * 1024;
/// Row 2's baseline: the "plain pread/pwrite loop" of the issue.
const RW_LOOP_BUF: usize = 128 * 1024;
/// Row 4: one-byte copies per measurement.
const BYTE_COPIES: u64 = 200_000;
/// Row 5: `syscall(SYS_getppid)` calls per batch.
const SYSCALLS: u64 = 1_000_000;
/// Row 6: fork+exec per measurement.
const EXECS: u64 = 500;

/// `statfs` magic of tmpfs (linux/magic.h); rows 1 and 3 are defined on tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Set by SIGINT/SIGTERM: the driver stops after the running child (which got the signal too)
/// and removes its files.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().map(OsString::as_os_str) == Some(OsStr::new("worker")) {
        return match worker(&args[1..]) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cfrfix-bench worker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match driver(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if INTERRUPTED.load(Ordering::Relaxed) => {
            // A progress line may be open on stderr.
            eprintln!("\ncfrfix-bench: interrupted ({e})");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("cfrfix-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workers: one measurement each, printed as "NANOSECONDS [DEST_ALLOCATED_BYTES]".
// ---------------------------------------------------------------------------------------------

fn worker(args: &[OsString]) -> Result<String, String> {
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

// ---------------------------------------------------------------------------------------------
// Driver.
// ---------------------------------------------------------------------------------------------

struct Options {
    rounds: usize,
    quick: bool,
    dir: Option<PathBuf>,
    lib: PathBuf,
    inject: PathBuf,
    only: Vec<String>,
}

const USAGE: &str = "\
Usage: cfrfix-bench [--quick] [--rounds N] [--only GROUPS] [--dir DIR] [--lib SO] [--inject BIN]

Runs the issue-3 benchmark and prints ratios (min/median/max over N rounds, variants
alternated round by round). GROUPS is a comma list of: copy (rows 1-2, and 1b-2b: the
same copy over an existing destination), sparse (3), bytes (4), syscall (5), exec (6). DIR
is the scratch directory (default: a new one under /dev/shm, removed at the end); rows 1-3
are meant for tmpfs. Defaults for --lib and --inject: libcfrfix.so and cfrfix-inject next
to this binary. CFRFIX_BENCH_ROUNDS sets N.";

const GROUPS: &[&str] = &["copy", "sparse", "bytes", "syscall", "exec"];

fn parse_options(args: &[OsString]) -> Result<Options, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bin_dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut o = Options {
        rounds: 0,
        quick: false,
        dir: None,
        lib: bin_dir.join("libcfrfix.so"),
        inject: bin_dir.join("cfrfix-inject"),
        only: GROUPS.iter().map(|g| g.to_string()).collect(),
    };
    let mut rounds: Option<usize> = match std::env::var("CFRFIX_BENCH_ROUNDS") {
        Ok(v) => Some(
            v.parse()
                .map_err(|_| format!("CFRFIX_BENCH_ROUNDS={v}: not a number"))?,
        ),
        Err(_) => None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{} needs a value\n{USAGE}", a.to_string_lossy()))
        };
        match a.to_str() {
            Some("--quick") => o.quick = true,
            Some("--rounds") => {
                let v = value()?;
                rounds =
                    Some(v.to_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                        format!("--rounds {}: not a number", v.to_string_lossy())
                    })?);
            }
            Some("--dir") => o.dir = Some(PathBuf::from(value()?)),
            Some("--lib") => o.lib = PathBuf::from(value()?),
            Some("--inject") => o.inject = PathBuf::from(value()?),
            Some("--only") => {
                let v = value()?.to_string_lossy().into_owned();
                o.only = v.split(',').map(str::to_string).collect();
                if let Some(bad) = o.only.iter().find(|g| !GROUPS.contains(&g.as_str())) {
                    return Err(format!("--only: unknown group {bad:?}\n{USAGE}"));
                }
            }
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    // The default keeps a full run around three and a half minutes on a 2-core machine (the
    // copy group, twelve variants, is about a minute of it); --quick is a smoke run (does
    // every row work?), not a measurement.
    o.rounds = rounds.unwrap_or(if o.quick { 2 } else { 15 }).max(1);
    Ok(o)
}

/// How a row's goal reads, applied to the median ratio.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Shown for context; no goal.
    Info,
}

/// One way of running a measurement.
struct Variant {
    name: &'static str,
    /// Worker arguments (after `worker`).
    args: Vec<OsString>,
    preload: bool,
    /// Run under `cfrfix-inject 95`.
    inject: bool,
    env: Vec<(&'static str, &'static str)>,
    /// Operations per measurement, to show medians per operation.
    ops: u64,
}

/// A printed line: the ratio `num`/`den` of two variants of the same group, per round.
struct Ratio {
    row: &'static str,
    what: String,
    den: usize,
    num: usize,
    goal: Goal,
}

/// Allocated destination bytes of a variant vs a limit (row 3).
struct BlocksCheck {
    row: &'static str,
    what: String,
    variant: usize,
    /// Goal on the largest destination seen; `None` for context lines.
    limit: Option<u64>,
}

struct Group {
    title: String,
    variants: Vec<Variant>,
    ratios: Vec<Ratio>,
    blocks: Vec<BlocksCheck>,
    /// The verify flag's position in `args` (set in the first round only), if any.
    verify_arg: Option<usize>,
}

/// What a group's rounds produced.
struct Measured {
    /// `times[variant][round]`, nanoseconds (`None`: the variant failed that round).
    times: Vec<Vec<Option<f64>>>,
    /// Largest destination allocation per variant.
    blocks: Vec<Option<u64>>,
    errors: Vec<Option<String>>,
    /// The engines a fallback variant's log named in the warm-up round.
    engines: Vec<Option<String>>,
}

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_os_string()
}

fn driver(args: &[OsString]) -> Result<(), String> {
    let o = parse_options(args)?;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    for (what, p) in [("library", &o.lib), ("cfrfix-inject", &o.inject)] {
        if !p.is_file() {
            return Err(format!(
                "{what} not found at {} (run scripts/bench, which builds it)",
                p.display()
            ));
        }
    }
    let (dir, own_dir) = match &o.dir {
        Some(d) => (d.clone(), false),
        None => (make_temp_dir(Path::new("/dev/shm"))?, true),
    };
    let result = freeze(&o, &dir).and_then(|(lib, inject)| run_all(&o, &lib, &inject, &dir));
    if own_dir {
        let _ = fs::remove_dir_all(&dir);
    } else {
        for f in SCRATCH_FILES {
            let _ = fs::remove_file(dir.join(f));
        }
    }
    result
}

/// Copies what is measured into the scratch directory and returns the copies of the library
/// and of cfrfix-inject. Other builds may replace target/release while the benchmark runs (a
/// shared checkout: a worker spawned from a replaced binary fails, and a rebuilt library would
/// change what is measured half-way); the copies stay as they were at the start.
fn freeze(o: &Options, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let copy = |from: &Path, name: &str| -> Result<PathBuf, String> {
        let to = dir.join(name);
        fs::copy(from, &to)
            .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
        Ok(to)
    };
    // /proc/self/exe still reads this program if its file was replaced since it started.
    let exe = copy(Path::new("/proc/self/exe"), "cfrfix-bench")?;
    WORKER_EXE
        .set(exe)
        .map_err(|_| "freeze called twice".to_string())?;
    Ok((
        copy(&o.lib, "libcfrfix.so")?,
        copy(&o.inject, "cfrfix-inject")?,
    ))
}

/// The frozen copy of this program that workers run from.
static WORKER_EXE: OnceLock<PathBuf> = OnceLock::new();

/// Every file the driver or a worker may create in the scratch directory.
const SCRATCH_FILES: &[&str] = &[
    "cfrfix-bench",
    "libcfrfix.so",
    "cfrfix-inject",
    "src256",
    "dst",
    "log",
    "dense1g",
    "sparse1g",
    "bytes-src",
    "bytes-dst",
    "trivial.c",
    "trivial.so",
    "empty.c",
    "empty.so",
];

fn make_temp_dir(base: &Path) -> Result<PathBuf, String> {
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let mut template = base.join("cfrfix-bench.XXXXXX").into_os_string().into_vec();
    template.push(0);
    // SAFETY: a writable NUL-terminated template, as mkdtemp requires.
    let p = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(format!(
            "mkdtemp in {}: {}",
            base.display(),
            io::Error::last_os_error()
        ));
    }
    template.pop();
    Ok(PathBuf::from(OsString::from_vec(template)))
}

fn run_all(o: &Options, lib: &Path, inject: &Path, dir: &Path) -> Result<(), String> {
    let mut out = String::new();
    let _ = writeln!(out, "{}", machine(dir, lib));
    let _ = writeln!(
        out,
        "{} rounds after a warm-up{}; each round runs every variant of a row once, in rotated \
         order; a ratio is per round, the goal applies to its median.",
        o.rounds,
        if o.quick {
            " (--quick: smoke run, not a measurement)"
        } else {
            ""
        }
    );
    let mut notes = Vec::new();
    if Path::new("/etc/cfrfix.conf").exists() {
        notes.push(
            "/etc/cfrfix.conf exists: the library reads it at load time (the variants set \
             CFRFIX_MODE/ENGINE/SPARSE/LOG, which win over it)"
                .to_string(),
        );
    }
    let mut report = Vec::new();
    for g in &o.only {
        check_interrupt()?;
        let group = match g.as_str() {
            "copy" => copy_group(dir)?,
            "sparse" => sparse_group(dir)?,
            "bytes" => bytes_group(o, dir)?,
            "syscall" => syscall_group(o),
            "exec" => exec_group(o, dir, lib),
            _ => continue,
        };
        eprintln!("== {} ({} rounds)", group.title, o.rounds);
        let m = measure(&group, o.rounds, lib, inject, dir)?;
        let engines: Vec<String> = group
            .variants
            .iter()
            .zip(&m.engines)
            .filter_map(|(v, e)| Some(format!("{} → {}", v.name, e.as_ref()?)))
            .collect();
        if !engines.is_empty() {
            notes.push(format!(
                "{}: engine used per variant (CFRFIX_LOG in the warm-up): {}",
                group.title,
                engines.join(", ")
            ));
        }
        if g == "copy" {
            notes.push(
                "rows 1-2 copy into a new destination file each round (page allocation \
                 included, as the issue states them); rows 1b-2b copy the same file over an \
                 existing full-size destination (made untimed, opened write-only without \
                 O_TRUNC, overwritten from offset 0), so the copy itself is measured"
                    .to_string(),
            );
        }
        if g == "sparse" {
            for f in ["dense1g", "sparse1g"] {
                let _ = fs::remove_file(dir.join(f));
            }
        }
        report.push((group, m));
    }
    print_table(&mut out, &report);
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    print!("{out}");
    Ok(())
}

fn check_interrupt() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err("signal".into())
    } else {
        Ok(())
    }
}

/// The machine line the README table needs.
fn machine(dir: &Path, lib: &Path) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    // SAFETY: uname fills the struct; gnu_get_libc_version returns a static string.
    let (kernel, glibc) = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        (
            format!(
                "{} {} {}",
                CStr::from_ptr(u.sysname.as_ptr()).to_string_lossy(),
                CStr::from_ptr(u.release.as_ptr()).to_string_lossy(),
                CStr::from_ptr(u.machine.as_ptr()).to_string_lossy()
            ),
            CStr::from_ptr(libc::gnu_get_libc_version())
                .to_string_lossy()
                .into_owned(),
        )
    };
    let fs_kind = if is_tmpfs(dir) {
        "tmpfs"
    } else {
        "NOT tmpfs (rows 1-3 assume tmpfs)"
    };
    let lib_size = fs::metadata(lib).map_or(0, |m| m.len());
    format!(
        "machine: {cpu}, {cpus} CPUs; {kernel}; glibc {glibc}\n\
         scratch: {} ({fs_kind}); library: {} ({lib_size} bytes)",
        dir.display(),
        lib.display()
    )
}

fn is_tmpfs(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path and a zeroed struct for statfs to fill.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == TMPFS_MAGIC
    }
}

// --- the groups -------------------------------------------------------------------------------

/// The fallback as a program sees it when the kernel refuses: `CFRFIX_MODE=always` makes the
/// library skip the kernel's attempt, which on a kernel that refuses costs one failing syscall
/// per call (nothing against a 256 MiB copy) — the `inject` variant measures the real path
/// under `cfrfix-inject 95` once, to show the two agree.
const FALLBACK: (&str, &str) = ("CFRFIX_MODE", "always");

fn copy_group(dir: &Path) -> Result<Group, String> {
    let src = dir.join("src256");
    eprintln!("making {} ({} MiB)", src.display(), COPY_SIZE / MIB);
    write_dense(&src, COPY_SIZE)?;
    let dst = dir.join("dst");
    let copy = |worker: &str| vec![os(worker), os(&src), os(&dst), os("0")];
    let v = |name, worker: &str, preload, inject, env: Vec<(&'static str, &'static str)>| Variant {
        name,
        args: copy(worker),
        preload,
        inject,
        env,
        ops: 1,
    };
    let engine = |e| vec![FALLBACK, ("CFRFIX_ENGINE", e)];
    // The same six twice: into a new destination file each time (rows 1 and 2, as the issue
    // states them), then overwriting an existing full-size destination (rows 1b and 2b, see
    // `Dest`). Alternated in one group, so both sets see the same machine state.
    let mut variants = Vec::new();
    for (over, [kernel, auto, splice, rw, inject, rwloop]) in [
        ("", ["kernel", "auto", "splice", "rw", "inject", "rwloop"]),
        (
            "-over",
            [
                "kernel-over",
                "auto-over",
                "splice-over",
                "rw-over",
                "inject-over",
                "rwloop-over",
            ],
        ),
    ] {
        let copy = format!("copy{over}");
        variants.extend([
            v(kernel, &copy, false, false, vec![]),
            v(auto, &copy, true, false, engine("auto")),
            v(splice, &copy, true, false, engine("splice")),
            v(rw, &copy, true, false, engine("rw")),
            v(inject, &copy, true, true, vec![("CFRFIX_ENGINE", "auto")]),
            v(rwloop, &format!("rwloop{over}"), false, false, vec![]),
        ]);
    }
    const OVER: usize = 6;
    let size = format!("{} MiB tmpfs→tmpfs", COPY_SIZE / MIB);
    let r = |row, what: String, den, num, goal| Ratio {
        row,
        what,
        den,
        num,
        goal,
    };
    Ok(Group {
        title: format!("rows 1-2 and 1b-2b: copy of a page-cached {size}"),
        ratios: vec![
            r(
                "1",
                format!("fallback (auto) ÷ kernel copy, {size}"),
                0,
                1,
                Goal::AtMost(1.10),
            ),
            r(
                "1",
                "fallback (splice) ÷ kernel copy".into(),
                0,
                2,
                Goal::AtMost(1.10),
            ),
            r(
                "1",
                "fallback (rw) ÷ kernel copy".into(),
                0,
                3,
                Goal::AtMost(1.10),
            ),
            r(
                "1",
                "fallback (auto) via cfrfix-inject 95 ÷ kernel copy".into(),
                0,
                4,
                Goal::AtMost(1.10),
            ),
            r(
                "2",
                "128 KiB pread/pwrite loop ÷ fallback (auto)".into(),
                1,
                5,
                Goal::AtLeast(1.30),
            ),
            r(
                "1b",
                "existing destination overwritten: fallback (auto) ÷ kernel copy".into(),
                OVER,
                OVER + 1,
                Goal::AtMost(1.10),
            ),
            r(
                "1b",
                "existing destination: fallback (splice) ÷ kernel copy".into(),
                OVER,
                OVER + 2,
                Goal::AtMost(1.10),
            ),
            r(
                "1b",
                "existing destination: fallback (rw) ÷ kernel copy".into(),
                OVER,
                OVER + 3,
                Goal::AtMost(1.10),
            ),
            r(
                "1b",
                "existing destination: fallback (auto) via cfrfix-inject 95 ÷ kernel copy".into(),
                OVER,
                OVER + 4,
                Goal::AtMost(1.10),
            ),
            r(
                "2b",
                "existing destination: 128 KiB pread/pwrite loop ÷ fallback (auto)".into(),
                OVER + 1,
                OVER + 5,
                Goal::AtLeast(1.30),
            ),
            r(
                "1b",
                "  kernel copy, new file ÷ existing destination (page allocation)".into(),
                OVER,
                0,
                Goal::Info,
            ),
        ],
        variants,
        blocks: vec![],
        verify_arg: Some(3),
    })
}

fn sparse_group(dir: &Path) -> Result<Group, String> {
    let dense = dir.join("dense1g");
    let sparse = dir.join("sparse1g");
    eprintln!("making {} and {}", dense.display(), sparse.display());
    write_dense(&dense, SPARSE_SIZE)?;
    let src_alloc = write_sparse(&sparse)?;
    let dst = dir.join("dst");
    let copy = |src: &Path| vec![os("copy"), os(src), os(&dst), os("0")];
    let fallback = vec![FALLBACK, ("CFRFIX_ENGINE", "auto")];
    let mut sparse_off = fallback.clone();
    sparse_off.push(("CFRFIX_SPARSE", "off"));
    let v = |name, src: &Path, preload, env| Variant {
        name,
        args: copy(src),
        preload,
        inject: false,
        env,
        ops: 1,
    };
    let variants = vec![
        v("dense", &dense, true, fallback.clone()),
        v("sparse", &sparse, true, fallback),
        v("sparse-off", &sparse, true, sparse_off),
        v("kernel", &sparse, false, vec![]),
    ];
    let mib = |b: u64| b as f64 / MIB as f64;
    let data = format!(
        "1 GiB sparse file ({:.0} MiB data in {SPARSE_EXTENTS} extents)",
        mib(SPARSE_EXTENTS * SPARSE_EXTENT)
    );
    Ok(Group {
        title: format!("row 3: {data}"),
        ratios: vec![
            Ratio {
                row: "3",
                what: format!("{data}, fallback ÷ 1 GiB dense fallback copy"),
                den: 0,
                num: 1,
                goal: Goal::AtMost(0.05),
            },
            Ratio {
                row: "3",
                what: "  same with CFRFIX_SPARSE=off ÷ dense copy".into(),
                den: 0,
                num: 2,
                goal: Goal::Info,
            },
            Ratio {
                row: "3",
                what: "  kernel copy (no shim) of the sparse file ÷ dense fallback copy".into(),
                den: 0,
                num: 3,
                goal: Goal::Info,
            },
        ],
        blocks: vec![
            BlocksCheck {
                row: "3",
                what: format!(
                    "destination allocation, fallback (source: {:.2} MiB)",
                    mib(src_alloc)
                ),
                variant: 1,
                limit: Some(src_alloc + MIB),
            },
            BlocksCheck {
                row: "3",
                what: "  destination allocation, CFRFIX_SPARSE=off".into(),
                variant: 2,
                limit: None,
            },
            BlocksCheck {
                row: "3",
                what: "  destination allocation, kernel copy".into(),
                variant: 3,
                limit: None,
            },
        ],
        variants,
        verify_arg: Some(3),
    })
}

fn bytes_group(o: &Options, dir: &Path) -> Result<Group, String> {
    let src = dir.join("bytes-src");
    write_dense(&src, BYTE_COPIES)?;
    let reps = if o.quick { "1" } else { "3" };
    let args = vec![
        os("bytes"),
        os(&src),
        os(dir.join("bytes-dst")),
        os(BYTE_COPIES.to_string()),
        os(reps),
    ];
    let v = |name, preload| Variant {
        name,
        args: args.clone(),
        preload,
        inject: false,
        env: vec![],
        ops: BYTE_COPIES,
    };
    Ok(Group {
        title: format!(
            "row 4: {}k one-byte copies by the kernel",
            BYTE_COPIES / 1000
        ),
        variants: vec![v("none", false), v("shim", true)],
        ratios: vec![Ratio {
            row: "4",
            what: format!(
                "{}k one-byte kernel copies, with shim ÷ without",
                BYTE_COPIES / 1000
            ),
            den: 0,
            num: 1,
            goal: Goal::AtMost(1.03),
        }],
        blocks: vec![],
        verify_arg: None,
    })
}

fn syscall_group(o: &Options) -> Group {
    let reps = if o.quick { "1" } else { "5" };
    let args = vec![os("syscall"), os(SYSCALLS.to_string()), os(reps)];
    let v = |name, preload| Variant {
        name,
        args: args.clone(),
        preload,
        inject: false,
        env: vec![],
        ops: SYSCALLS,
    };
    Group {
        title: "row 5: syscall(SYS_getppid) loop".into(),
        variants: vec![v("none", false), v("shim", true)],
        ratios: vec![Ratio {
            row: "5",
            what: format!(
                "syscall(SYS_getppid) ×{}M, with shim ÷ without",
                SYSCALLS / 1_000_000
            ),
            den: 0,
            num: 1,
            goal: Goal::AtMost(1.05),
        }],
        blocks: vec![],
        verify_arg: None,
    }
}

fn exec_group(o: &Options, dir: &Path, lib: &Path) -> Group {
    let count = if o.quick { EXECS / 5 } else { EXECS };
    let args = |preload: Option<&Path>| {
        let mut a = vec![os("exec"), os("/bin/true"), os(count.to_string())];
        a.extend(preload.map(os));
        a
    };
    // The exec worker sets LD_PRELOAD for its children itself; it runs without one.
    let v = |name, preload: Option<&Path>| Variant {
        name,
        args: args(preload),
        preload: false,
        inject: false,
        env: vec![],
        ops: count,
    };
    let mut variants = vec![v("none", None), v("shim", Some(lib))];
    let mut ratios = vec![Ratio {
        row: "6",
        what: format!("fork+exec /bin/true ×{count}, shim preloaded ÷ none"),
        den: 0,
        num: 1,
        goal: Goal::AtMost(1.10),
    }];
    // References: what loading any preload costs, whatever its code.
    let references = [
        (
            "trivial",
            TRIVIAL_PRELOAD,
            "  trivial one-function C preload ÷ none (issue: 1.08)",
        ),
        ("empty", EMPTY_PRELOAD, "  empty C library (no code) ÷ none"),
    ];
    for (name, source, what) in references {
        match build_preload(dir, name, source) {
            Ok(so) => {
                variants.push(v(name, Some(&so)));
                ratios.push(Ratio {
                    row: "6",
                    what: what.into(),
                    den: 0,
                    num: variants.len() - 1,
                    goal: Goal::Info,
                });
            }
            Err(e) => eprintln!("no {name} C preload for reference: {e}"),
        }
    }
    if variants.len() > 2 {
        ratios.push(Ratio {
            row: "6",
            what: format!("  shim ÷ {} C preload", variants[2].name),
            den: 2,
            num: 1,
            goal: Goal::Info,
        });
    }
    Group {
        title: "row 6: fork+exec of /bin/true".into(),
        variants,
        ratios,
        blocks: vec![],
        verify_arg: None,
    }
}

/// Row 6's reference preload: the smallest interposer, one function exported as cfrfix does.
const TRIVIAL_PRELOAD: &str = "\
#include <stddef.h>
#include <sys/syscall.h>
long syscall(long number, ...);
long copy_file_range(int fd_in, long long *off_in, int fd_out, long long *off_out,
                     size_t len, unsigned flags)
{
    return syscall(SYS_copy_file_range, fd_in, off_in, fd_out, off_out, len, flags);
}
";

/// And a library with no function at all: the bare cost of one more object for the loader.
const EMPTY_PRELOAD: &str = "int cfrfix_bench_empty;\n";

/// Builds `NAME.so` from `source` with the system's C compiler ($CC, else cc) in the scratch
/// directory.
fn build_preload(dir: &Path, name: &str, source: &str) -> Result<PathBuf, String> {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("{name}.so"));
    fs::write(&c, source).map_err(|e| e.to_string())?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| os("cc"));
    let out = Command::new(&cc)
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .output()
        .map_err(|e| format!("{}: {e}", cc.to_string_lossy()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(so)
}

/// A file of `size` bytes of non-zero data (so no engine can find holes in it).
fn write_dense(path: &Path, size: u64) -> Result<(), String> {
    let mut chunk = vec![0u8; MIB as usize];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in chunk.iter_mut() {
        // xorshift: cheap bytes that are not all alike.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x as u8) | 1;
    }
    let mut f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut left = size;
    while left > 0 {
        check_interrupt()?;
        let n = left.min(MIB) as usize;
        f.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    Ok(())
}

/// Row 3's source: 1 GiB, holes everywhere but `SPARSE_EXTENTS` evenly spread data extents
/// (starting inside the file and ending with a hole, the harder case for a hole-skipping copy,
/// which must still set the final size). Returns its allocation in bytes.
fn write_sparse(path: &Path) -> Result<u64, String> {
    let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.set_len(SPARSE_SIZE).map_err(|e| e.to_string())?;
    let data = vec![0x5Au8; SPARSE_EXTENT as usize];
    let stride = SPARSE_SIZE / SPARSE_EXTENTS;
    for i in 0..SPARSE_EXTENTS {
        f.write_all_at(&data, i * stride + stride / 2)
            .map_err(|e| e.to_string())?;
    }
    Ok(f.metadata().map_err(|e| e.to_string())?.blocks() * 512)
}

// --- running ----------------------------------------------------------------------------------

fn measure(
    g: &Group,
    rounds: usize,
    lib: &Path,
    inject: &Path,
    dir: &Path,
) -> Result<Measured, String> {
    let n = g.variants.len();
    let mut m = Measured {
        times: vec![vec![None; rounds]; n],
        blocks: vec![None; n],
        errors: vec![None; n],
        engines: vec![None; n],
    };
    let log = dir.join("log");
    // Round 0 is a warm-up, not counted: on a VM the first touch of guest memory faults in
    // the host too (the first 256 MiB copy of a run took 3-4x the others), and the library
    // and the files' pages get cached. It is also the round where workers verify the copies.
    for round in 0..=rounds {
        if round == 0 {
            eprint!("  warm-up + verify:");
        } else {
            eprint!("  round {round}/{rounds}:");
        }
        // Rotating the order gives every variant every position equally often: nothing that
        // drifts within a round (frequency, a neighbour's load) favours one of them.
        for k in 0..n {
            let i = (round + k) % n;
            let v = &g.variants[i];
            if m.errors[i].is_some() {
                continue;
            }
            let mut args = v.args.clone();
            if let Some(pos) = g.verify_arg {
                args[pos] = os(if round == 0 { "1" } else { "0" });
            }
            // In the warm-up, a fallback variant logs, so the report can say which engine
            // really ran (a misspelt or ignored setting would otherwise go unnoticed).
            let log = (round == 0 && v.preload && g.verify_arg.is_some()).then_some(log.as_path());
            if let Some(l) = log {
                let _ = fs::remove_file(l);
            }
            let result = run_worker(v, &args, lib, inject, log);
            if let Some(l) = log {
                m.engines[i] = engines_logged(l);
                let _ = fs::remove_file(l);
            }
            match result {
                Ok((ns, blocks)) => {
                    eprint!(" {}={}", v.name, fmt_time(ns / v.ops as f64));
                    if round > 0 {
                        m.times[i][round - 1] = Some(ns);
                    }
                    if let Some(b) = blocks {
                        m.blocks[i] = Some(m.blocks[i].map_or(b, |old: u64| old.max(b)));
                    }
                }
                Err(e) => {
                    check_interrupt()?;
                    eprint!(" {}=FAILED", v.name);
                    m.errors[i] = Some(e);
                }
            }
        }
        eprintln!();
    }
    Ok(m)
}

/// The distinct engines named in a fallback log ("... (engine splice)"), or "none logged".
fn engines_logged(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut names: Vec<&str> = text
        .split("(engine ")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect();
    names.sort_unstable();
    names.dedup();
    Some(if names.is_empty() {
        "none logged".to_string()
    } else {
        names.join("+")
    })
}

fn run_worker(
    v: &Variant,
    args: &[OsString],
    lib: &Path,
    inject: &Path,
    log: Option<&Path>,
) -> Result<(f64, Option<u64>), String> {
    let exe = WORKER_EXE.get().ok_or("no worker executable")?;
    let mut cmd = if v.inject {
        let mut c = Command::new(inject);
        c.arg("95").arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.arg("worker").args(args);
    // Each variant sees exactly the settings it names: nothing inherited from the caller's
    // environment (a CFRFIX_MODE=off there would turn every fallback row into a kernel copy).
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.as_bytes().starts_with(b"CFRFIX_") {
            cmd.env_remove(&k);
        }
    }
    if v.preload {
        cmd.env("LD_PRELOAD", lib);
        // The defaults, spelt out so that an /etc/cfrfix.conf cannot change them; a
        // variant's own settings below override these.
        for (k, val) in [
            ("CFRFIX_MODE", "auto"),
            ("CFRFIX_ENGINE", "auto"),
            ("CFRFIX_SPARSE", "auto"),
            ("CFRFIX_LOG", "off"),
        ] {
            cmd.env(k, val);
        }
    }
    for (k, val) in &v.env {
        cmd.env(k, val);
    }
    if let Some(l) = log {
        cmd.env("CFRFIX_LOG", l);
    }
    let out = cmd.output().map_err(|e| format!("spawn: {e}"))?;
    check_interrupt()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ));
    }
    let mut fields = stdout.split_whitespace();
    let ns = fields
        .next()
        .and_then(|f| f.parse::<f64>().ok())
        .ok_or_else(|| format!("bad worker output {stdout:?}"))?;
    let blocks = fields.next().and_then(|f| f.parse::<u64>().ok());
    Ok((ns, blocks))
}

// --- report -----------------------------------------------------------------------------------

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn sorted(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    v
}

/// A time per operation, in a unit that keeps three significant digits.
fn fmt_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Pads by characters, not bytes (the table has µ, ÷, ≤).
fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

fn lpad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{}{s}", " ".repeat(width.saturating_sub(n)))
}

fn print_table(out: &mut String, report: &[(Group, Measured)]) {
    let mut rows: Vec<[String; 9]> = vec![[
        "row".into(),
        "ratio B/A".into(),
        "A (median)".into(),
        "B (median)".into(),
        "min".into(),
        "median".into(),
        "max".into(),
        "goal".into(),
        "result".into(),
    ]];
    let mut errors = Vec::new();
    for (g, m) in report {
        for r in &g.ratios {
            let (den, num) = (&g.variants[r.den], &g.variants[r.num]);
            let failed: Vec<String> = [r.den, r.num]
                .iter()
                .filter_map(|&i| {
                    m.errors[i]
                        .as_ref()
                        .map(|e| format!("{}: {}", g.variants[i].name, e))
                })
                .collect();
            let goal_text = match r.goal {
                Goal::AtMost(x) => format!("≤ {x:.2}"),
                Goal::AtLeast(x) => format!("≥ {x:.2}"),
                Goal::Info => "—".into(),
            };
            if !failed.is_empty() {
                let mut row: [String; 9] = Default::default();
                row[0] = r.row.into();
                row[1] = r.what.clone();
                row[7] = goal_text;
                row[8] = "ERROR".into();
                rows.push(row);
                for e in failed {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
                continue;
            }
            let pairs: Vec<(f64, f64)> = m.times[r.den]
                .iter()
                .zip(&m.times[r.num])
                .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
                .collect();
            let ratios = sorted(pairs.iter().map(|(a, b)| b / a));
            let a = sorted(pairs.iter().map(|p| p.0));
            let b = sorted(pairs.iter().map(|p| p.1));
            if ratios.is_empty() {
                continue;
            }
            let med = median(&ratios);
            let verdict = match r.goal {
                Goal::AtMost(x) if med <= x => "PASS",
                Goal::AtLeast(x) if med >= x => "PASS",
                Goal::Info => "",
                _ => "MISS",
            };
            rows.push([
                r.row.into(),
                r.what.clone(),
                fmt_time(median(&a) / den.ops as f64),
                fmt_time(median(&b) / num.ops as f64),
                format!("{:.3}", ratios[0]),
                format!("{med:.3}"),
                format!("{:.3}", ratios[ratios.len() - 1]),
                goal_text,
                verdict.into(),
            ]);
        }
        for c in &g.blocks {
            let Some(max) = m.blocks[c.variant] else {
                continue;
            };
            let mib = |b: u64| format!("{:.2} MiB", b as f64 / MIB as f64);
            let (goal, verdict) = match c.limit {
                Some(l) => (
                    format!("≤ {}", mib(l)),
                    if max <= l { "PASS" } else { "MISS" },
                ),
                None => ("—".into(), ""),
            };
            let mut row: [String; 9] = Default::default();
            row[0] = c.row.into();
            row[1] = c.what.clone();
            row[3] = mib(max);
            row[5] = "(largest)".into();
            row[7] = goal;
            row[8] = verdict.into();
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let _ = writeln!(
        out,
        "A and B medians are per operation (one whole-file copy, one call, one exec)."
    );
    for (k, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            // Text columns left-aligned, numbers right-aligned.
            let c = if i <= 1 || i >= 7 {
                pad(cell, widths[i])
            } else {
                lpad(cell, widths[i])
            };
            line.push_str(&c);
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if k == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * 8;
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    for e in errors {
        let _ = writeln!(out, "error: {e}");
    }
}

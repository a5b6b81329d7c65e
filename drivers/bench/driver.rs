//! The driver role: options, the scratch directory (with frozen copies of the binaries it
//! measures), the machine line, and the loop over the selected groups that measures each one
//! and prints the table and its notes. SIGINT and SIGTERM stop it cleanly.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::groups::{bytes_group, copy_group, exec_group, sparse_group, syscall_group};
use crate::report::print_table;
use crate::run::measure;

/// `statfs` magic of tmpfs (linux/magic.h); rows 1 and 3 are defined on tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Set by SIGINT/SIGTERM: the driver stops after the running child (which got the signal too)
/// and removes its files.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

pub(crate) struct Options {
    rounds: usize,
    pub(crate) quick: bool,
    dir: Option<PathBuf>,
    lib: PathBuf,
    inject: PathBuf,
    only: Vec<String>,
}

pub(crate) const USAGE: &str = "\
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

pub(crate) fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_os_string()
}

pub(crate) fn driver(args: &[OsString]) -> Result<(), String> {
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
pub(crate) static WORKER_EXE: OnceLock<PathBuf> = OnceLock::new();

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

pub(crate) fn check_interrupt() -> Result<(), String> {
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

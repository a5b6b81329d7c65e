//! Configuration, read once at load time from `/etc/cfrfix.conf` and the environment, and kept
//! in atomics.
//!
//! Hooks only ever load these atomics: no lock, no lazy initialisation, nothing that can block
//! (std's `Once` waits on a futex, and the futex call goes through `syscall()`, which is ours).
//! Before the loader has run our constructor (another library's constructor may copy files
//! first), the defaults below are in force. In secure-execution processes (setuid, setgid, file
//! capabilities) the environment is the attacker's, so it is ignored.
//!
//! The language itself is in `parse` (shared with the `cfrfix --status` helper).

// Parts of it are used only by the `cfrfix --status` helper, which includes the same file.
#[allow(dead_code)]
pub mod parse;

use crate::sys::{self, Errno};
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_char};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
pub use parse::{EngineChoice, Mode};
use parse::{LOG_PATH_MAX, LogSetting, SET_WORDS, Settings};

static MODE: AtomicU8 = AtomicU8::new(Mode::Auto as u8);

pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Always,
        2 => Mode::Off,
        _ => Mode::Auto,
    }
}

static ENGINE: AtomicU8 = AtomicU8::new(EngineChoice::Auto as u8);

pub fn engine() -> EngineChoice {
    match ENGINE.load(Ordering::Relaxed) {
        1 => EngineChoice::Splice,
        2 => EngineChoice::Rw,
        _ => EngineChoice::Auto,
    }
}

/// `CFRFIX_SPARSE=auto|off`: whether holes in the source are skipped (where that is safe).
static SPARSE: AtomicBool = AtomicBool::new(true);

pub fn sparse() -> bool {
    SPARSE.load(Ordering::Relaxed)
}

const fn atomic_words(words: [u64; SET_WORDS]) -> [AtomicU64; SET_WORDS] {
    let mut a = [const { AtomicU64::new(0) }; SET_WORDS];
    let mut i = 0;
    while i < SET_WORDS {
        a[i] = AtomicU64::new(words[i]);
        i += 1;
    }
    a
}

static FALLBACK_SET: [AtomicU64; SET_WORDS] = atomic_words(parse::DEFAULT_FALLBACK_SET);

/// Whether a kernel failure with `e` (having copied nothing) is answered by a user-space copy.
pub fn falls_back_on(e: Errno) -> bool {
    let e = e.0 as usize;
    match FALLBACK_SET.get(e / 64) {
        Some(word) => word.load(Ordering::Relaxed) & (1 << (e % 64)) != 0,
        None => false,
    }
}

/// `CFRFIX_LOG`: where fallback lines go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogTarget {
    Silent,
    Stderr,
    /// An absolute path, opened for each line (a descriptor kept open could be closed or
    /// reused by the program, and we would then write into its data).
    File(&'static CStr),
}

const LOG_SILENT: u8 = 0;
const LOG_STDERR: u8 = 1;
const LOG_FILE: u8 = 2;
static LOG_KIND: AtomicU8 = AtomicU8::new(LOG_SILENT);

/// The log path, copied out of the environment (a program may overwrite its environment block,
/// e.g. to change its process title). Written once, before `LOG_KIND` publishes it.
struct LogPathBuf(UnsafeCell<[u8; LOG_PATH_MAX]>);
// SAFETY: written only by `load` before the Release store of LOG_FILE into LOG_KIND (and never
// again: `LOADED` makes `load` run once); read only after an Acquire load sees LOG_FILE.
unsafe impl Sync for LogPathBuf {}
static LOG_PATH: LogPathBuf = LogPathBuf(UnsafeCell::new([0; LOG_PATH_MAX]));

pub fn log_target() -> LogTarget {
    match LOG_KIND.load(Ordering::Acquire) {
        LOG_STDERR => LogTarget::Stderr,
        LOG_FILE => {
            // SAFETY: LOG_FILE was stored (Release) after the path was written for good; see
            // `LogPathBuf`. The buffer holds a NUL-terminated path (checked when it was copied).
            let bytes: &'static [u8; LOG_PATH_MAX] = unsafe { &*LOG_PATH.0.get() };
            match CStr::from_bytes_until_nul(bytes) {
                Ok(path) => LogTarget::File(path),
                Err(_) => LogTarget::Silent,
            }
        }
        _ => LogTarget::Silent,
    }
}

static LOADED: AtomicBool = AtomicBool::new(false);

/// The system-wide configuration file (root-owned; see `read_config_file`).
const CONFIG_FILE: &CStr = c"/etc/cfrfix.conf";

/// Reads `/etc/cfrfix.conf`, then (outside secure execution) `CFRFIX_*` from `envp`, the
/// NULL-terminated environment the loader gives constructors; the environment wins.
///
/// # Safety
/// `envp` is NULL or points to a NULL-terminated array of NUL-terminated strings.
pub unsafe fn load(envp: *const *const c_char) {
    if LOADED.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut settings = read_config_file();
    if !envp.is_null() && !sys::secure_execution() {
        let mut entry = envp;
        loop {
            // SAFETY: within the NULL-terminated array (we stop at its NULL).
            let p = unsafe { *entry };
            if p.is_null() {
                break;
            }
            // SAFETY: each entry is a NUL-terminated string.
            let var = unsafe { CStr::from_ptr(p) }.to_bytes();
            settings.apply_environment_entry(var, &mut parse::Quiet);
            // SAFETY: `entry` was not the terminator, so the next element exists.
            entry = unsafe { entry.add(1) };
        }
    }
    publish(&settings);
}

/// The settings of `/etc/cfrfix.conf` if it is a regular file owned by root and writable by
/// nobody else (it is trusted even in setuid programs), and could be read whole; otherwise none.
fn read_config_file() -> Settings {
    // O_NONBLOCK: a FIFO planted at the path would otherwise block the open, in every process
    // the library is loaded into; opened at once, it is refused by the type check below.
    let Ok(fd) = sys::open(
        CONFIG_FILE,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK,
        0,
    ) else {
        return Settings::NONE;
    };
    let mut settings = Settings::NONE;
    let trusted = sys::fstat(fd)
        .is_ok_and(|st| parse::file_problem(st.uid, st.mode, st.size as u64).is_none());
    let parsed = trusted
        && parse::parse_config(
            |buf| sys::read(fd, buf).map_err(|e| e.0),
            &mut settings,
            &mut parse::Quiet,
        )
        .is_ok();
    sys::close(fd);
    if parsed { settings } else { Settings::NONE }
}

fn publish(settings: &Settings) {
    if let Some(m) = settings.mode {
        MODE.store(m as u8, Ordering::Relaxed);
    }
    if let Some(e) = settings.engine {
        ENGINE.store(e as u8, Ordering::Relaxed);
    }
    if let Some(sp) = settings.sparse {
        SPARSE.store(sp, Ordering::Relaxed);
    }
    if let Some(words) = settings.errnos {
        for (slot, w) in FALLBACK_SET.iter().zip(words) {
            slot.store(w, Ordering::Relaxed);
        }
    }
    match settings.log {
        None | Some(LogSetting::Silent) => {}
        Some(LogSetting::Stderr) => LOG_KIND.store(LOG_STDERR, Ordering::Release),
        Some(LogSetting::File(path)) => {
            // SAFETY: `load` runs once and LOG_FILE is not published yet, so nothing reads
            // or writes the buffer concurrently.
            let buf = unsafe { &mut *LOG_PATH.0.get() };
            let src = path.with_nul();
            let Some(dst) = buf.get_mut(..src.len()) else {
                return;
            };
            dst.copy_from_slice(src);
            LOG_KIND.store(LOG_FILE, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests;

//! Configuration, read once at load time from the environment and kept in atomics.
//!
//! Hooks only ever load these atomics: no lock, no lazy initialisation, nothing that can block
//! (std's `Once` waits on a futex, and the futex call goes through `syscall()`, which is ours).
//! Before the loader has run our constructor (another library's constructor may copy files
//! first), the defaults below are in force. In secure-execution processes (setuid, setgid, file
//! capabilities) the environment is the attacker's, so it is ignored.

use crate::sys::{self, ERRNO_NAMES, Errno};
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_char};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// `CFRFIX_MODE`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Mode {
    /// Ask the kernel first; copy in user space only when it refuses (the default).
    Auto = 0,
    /// Never ask the kernel to copy: for filesystems whose own copy is not trusted.
    Always = 1,
    /// Pure pass-through.
    Off = 2,
}

static MODE: AtomicU8 = AtomicU8::new(Mode::Auto as u8);

pub fn mode() -> Mode {
    match MODE.load(Ordering::Relaxed) {
        1 => Mode::Always,
        2 => Mode::Off,
        _ => Mode::Auto,
    }
}

/// `CFRFIX_ENGINE`: how the user-space copy moves data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum EngineChoice {
    /// `sendfile` where the destination offset is its file position, `pread`/`pwrite`
    /// otherwise and where sendfile is refused (the default).
    Auto = 0,
    /// Only `splice` through a private pipe (for measurements: no snapshot of the source).
    Splice = 1,
    /// Only `pread`/`pwrite`.
    Rw = 2,
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

/// The errnos that mean "this kernel or filesystem cannot do the copy, but a user-space copy
/// can" (see the README for why each is here).
pub const DEFAULT_FALLBACK_ERRNOS: &[i32] = &[
    libc::EOPNOTSUPP, // 95: ZFS 2.2 on Linux 6.8, NFS, and "not supported" in general
    524,              // ENOTSUPP: kernel-internal, leaks from some filesystems
    libc::EXDEV,      // 18: across filesystems, every kernel since 5.19
    libc::ENOSYS,     // 38: old kernels, WSL1, newer runc seccomp profiles
    libc::EPERM,      // 1: container seccomp profiles (the kernel's own EPERM is rechecked)
    libc::EIO,        // 5: CIFS
    libc::EINVAL,     // 22: ecryptfs, ZFS 2.0 (our own checks rediscover the kernel's EINVALs)
    libc::ENOENT,     // 2: CIFS
    libc::EACCES,     // 13: CephFS before 4.20 (a real denial repeats in the user-space copy)
    libc::EAGAIN,     // 11: older OpenZFS clone paths (only between blocking regular files)
];

/// Errnos are below 4096; the set covers the ones below 1024 (524 included).
const SET_WORDS: usize = 16;

const fn bitset(errnos: &[i32]) -> [u64; SET_WORDS] {
    let mut words = [0u64; SET_WORDS];
    let mut i = 0;
    while i < errnos.len() {
        let e = errnos[i] as usize;
        if e < SET_WORDS * 64 {
            words[e / 64] |= 1 << (e % 64);
        }
        i += 1;
    }
    words
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

static FALLBACK_SET: [AtomicU64; SET_WORDS] = atomic_words(bitset(DEFAULT_FALLBACK_ERRNOS));

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

const LOG_PATH_MAX: usize = 1024;

/// The log path, copied out of the environment (a program may overwrite its environment block,
/// e.g. to change its process title). Written once, before `LOG_KIND` publishes it.
struct LogPath(UnsafeCell<[u8; LOG_PATH_MAX]>);
// SAFETY: written only by `load` before the Release store of LOG_FILE into LOG_KIND (and never
// again: `LOADED` makes `load` run once); read only after an Acquire load sees LOG_FILE.
unsafe impl Sync for LogPath {}
static LOG_PATH: LogPath = LogPath(UnsafeCell::new([0; LOG_PATH_MAX]));

pub fn log_target() -> LogTarget {
    match LOG_KIND.load(Ordering::Acquire) {
        LOG_STDERR => LogTarget::Stderr,
        LOG_FILE => {
            // SAFETY: LOG_FILE was stored (Release) after the path was written for good; see
            // `LogPath`. The buffer holds a NUL-terminated path (checked when it was copied).
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

/// Settings gathered from the configuration file and the environment before any is published.
struct Settings {
    mode: Option<Mode>,
    engine: Option<EngineChoice>,
    sparse: Option<bool>,
    errnos: Option<[u64; SET_WORDS]>,
    log: Option<LogSetting>,
}

// Large only while the configuration is parsed, once, on the constructor's stack.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
enum LogSetting {
    Silent,
    Stderr,
    File([u8; LOG_PATH_MAX], usize),
}

/// Reads `/etc/cfrfix.conf`, then (outside secure execution) `CFRFIX_*` from `envp`, the
/// NULL-terminated environment the loader gives constructors; the environment wins.
///
/// # Safety
/// `envp` is NULL or points to a NULL-terminated array of NUL-terminated strings.
pub unsafe fn load(envp: *const *const c_char) {
    if LOADED.swap(true, Ordering::AcqRel) {
        return;
    }
    let mut settings = Settings {
        mode: None,
        engine: None,
        sparse: None,
        errnos: None,
        log: None,
    };
    read_config_file(&mut settings);
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
            if let Some(setting) = var.strip_prefix(b"CFRFIX_") {
                if let Some(eq) = setting.iter().position(|&c| c == b'=') {
                    let (key, value) = setting.split_at(eq);
                    let key_lower = ascii_lower::<16>(key);
                    settings.apply(key_lower.as_slice(), value.get(1..).unwrap_or(&[]));
                }
            }
            // SAFETY: `entry` was not the terminator, so the next element exists.
            entry = unsafe { entry.add(1) };
        }
    }
    settings.publish();
}

/// Parses `/etc/cfrfix.conf` (`key = value` lines, `#` comments) if it is a regular file owned
/// by root and writable by nobody else: it is trusted even in setuid programs.
fn read_config_file(settings: &mut Settings) {
    let Ok(fd) = sys::open(
        CONFIG_FILE,
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY,
        0,
    ) else {
        return;
    };
    let mut buf = [0u8; 4096];
    let mut len = 0;
    if let Ok(st) = sys::fstat(fd) {
        let trusted =
            st.uid == 0 && st.mode & 0o022 == 0 && st.mode & libc::S_IFMT == libc::S_IFREG;
        if trusted {
            while let Some(rest) = buf.get_mut(len..) {
                match sys::read(fd, rest) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
            }
        }
    }
    sys::close(fd);
    parse_config(buf.get(..len).unwrap_or(&[]), settings);
}

fn parse_config(text: &[u8], settings: &mut Settings) {
    for line in text.split(|&c| c == b'\n') {
        let line = line.split(|&c| c == b'#').next().unwrap_or(&[]);
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            let (key, value) = line.split_at(eq);
            let key_lower = ascii_lower::<16>(key.trim_ascii());
            settings.apply(
                key_lower.as_slice(),
                value.get(1..).unwrap_or(&[]).trim_ascii(),
            );
        }
    }
}

/// A short ASCII-lowercased copy (keys are short; a longer one matches nothing).
struct Lower<const N: usize>([u8; N], usize);
impl<const N: usize> Lower<N> {
    fn as_slice(&self) -> &[u8] {
        self.0.get(..self.1).unwrap_or(&[])
    }
}
fn ascii_lower<const N: usize>(s: &[u8]) -> Lower<N> {
    let mut out = [0u8; N];
    if s.len() > N {
        return Lower(out, 0);
    }
    for (o, c) in out.iter_mut().zip(s) {
        *o = c.to_ascii_lowercase();
    }
    Lower(out, s.len())
}

impl Settings {
    /// Applies one setting; an invalid value leaves the previous one in force.
    fn apply(&mut self, key: &[u8], value: &[u8]) {
        match key {
            b"mode" => self.mode = parse_mode(value).or(self.mode),
            b"engine" => self.engine = parse_engine(value).or(self.engine),
            b"sparse" => self.sparse = parse_sparse(value).or(self.sparse),
            b"errnos" => self.errnos = parse_errnos(value).or(self.errnos),
            b"log" => self.log = parse_log(value).or(self.log),
            _ => {}
        }
    }

    fn publish(&self) {
        if let Some(m) = self.mode {
            MODE.store(m as u8, Ordering::Relaxed);
        }
        if let Some(e) = self.engine {
            ENGINE.store(e as u8, Ordering::Relaxed);
        }
        if let Some(sp) = self.sparse {
            SPARSE.store(sp, Ordering::Relaxed);
        }
        if let Some(words) = self.errnos {
            for (slot, w) in FALLBACK_SET.iter().zip(words) {
                slot.store(w, Ordering::Relaxed);
            }
        }
        match self.log {
            None | Some(LogSetting::Silent) => {}
            Some(LogSetting::Stderr) => LOG_KIND.store(LOG_STDERR, Ordering::Release),
            Some(LogSetting::File(path, len)) => {
                // SAFETY: `load` runs once and LOG_FILE is not published yet, so nothing reads
                // or writes the buffer concurrently.
                let buf = unsafe { &mut *LOG_PATH.0.get() };
                let (Some(dst), Some(src)) = (buf.get_mut(..=len), path.get(..=len)) else {
                    return;
                };
                dst.copy_from_slice(src);
                LOG_KIND.store(LOG_FILE, Ordering::Release);
            }
        }
    }
}

pub fn parse_mode(v: &[u8]) -> Option<Mode> {
    match v {
        b"auto" | b"" => Some(Mode::Auto),
        b"always" => Some(Mode::Always),
        b"off" => Some(Mode::Off),
        _ => None,
    }
}

pub fn parse_engine(v: &[u8]) -> Option<EngineChoice> {
    match v {
        b"auto" | b"" => Some(EngineChoice::Auto),
        b"splice" => Some(EngineChoice::Splice),
        b"rw" => Some(EngineChoice::Rw),
        _ => None,
    }
}

pub fn parse_sparse(v: &[u8]) -> Option<bool> {
    match v {
        b"auto" | b"" => Some(true),
        b"off" => Some(false),
        _ => None,
    }
}

/// `stderr`, an absolute path (a relative one would follow the program's working directory),
/// or empty/`off` for silence.
fn parse_log(v: &[u8]) -> Option<LogSetting> {
    match v {
        b"" | b"off" => Some(LogSetting::Silent),
        b"stderr" => Some(LogSetting::Stderr),
        _ if v.first() == Some(&b'/') && v.len() < LOG_PATH_MAX && !v.contains(&0) => {
            let mut path = [0u8; LOG_PATH_MAX];
            path.get_mut(..v.len())?.copy_from_slice(v);
            Some(LogSetting::File(path, v.len()))
        }
        _ => None,
    }
}

/// `CFRFIX_ERRNOS`: names or numbers separated by commas, spaces or colons. `none` (or an empty
/// value) is the empty set; unknown words are skipped; a value with no valid word at all keeps
/// the defaults rather than silently disabling the fallback.
pub fn parse_errnos(v: &[u8]) -> Option<[u64; SET_WORDS]> {
    let mut words = [0u64; SET_WORDS];
    let mut any = false;
    let mut empty = true;
    for tok in v.split(|c| matches!(c, b',' | b' ' | b':' | b'\t')) {
        if tok.is_empty() {
            continue;
        }
        empty = false;
        if tok.eq_ignore_ascii_case(b"none") {
            any = true;
            continue;
        }
        if let Some(e) = errno_from_word(tok) {
            if let Some(w) = words.get_mut(e / 64) {
                *w |= 1 << (e % 64);
                any = true;
            }
        }
    }
    if any || empty { Some(words) } else { None }
}

fn errno_from_word(tok: &[u8]) -> Option<usize> {
    if tok.iter().all(u8::is_ascii_digit) {
        let mut n: usize = 0;
        for d in tok {
            n = n.checked_mul(10)?.checked_add((d - b'0') as usize)?;
        }
        return (n > 0 && n < SET_WORDS * 64).then_some(n);
    }
    ERRNO_NAMES
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(tok))
        .map(|(_, n)| *n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(words: &[u64; SET_WORDS], e: usize) -> bool {
        words[e / 64] & (1 << (e % 64)) != 0
    }

    #[test]
    fn default_set() {
        for e in [95, 524, 18, 38, 1, 5, 22, 2, 13, 11] {
            assert!(falls_back_on(Errno(e)), "{e}");
        }
        for e in [0, 9, 14, 21, 27, 28, 75, 4095, -1] {
            assert!(!falls_back_on(Errno(e)), "{e}");
        }
    }

    #[test]
    fn errno_list_parsing() {
        let w = parse_errnos(b"EXDEV, 95:enotsupp  eio").unwrap();
        assert!(has(&w, 18) && has(&w, 95) && has(&w, 524) && has(&w, 5));
        assert!(!has(&w, 38));
        let w = parse_errnos(b"ENOTSUP,bogus").unwrap();
        assert!(has(&w, 95));
        assert_eq!(parse_errnos(b"none"), Some([0; SET_WORDS]));
        assert_eq!(parse_errnos(b""), Some([0; SET_WORDS]));
        assert_eq!(parse_errnos(b"bogus,99999999999999999999"), None);
        assert_eq!(parse_errnos(b"0"), None);
    }

    #[test]
    fn config_file_parsing() {
        let mut st = Settings {
            mode: None,
            engine: None,
            sparse: None,
            errnos: None,
            log: None,
        };
        let text = b"# cfrfix\n  MODE = always # trailing comment\nengine=rw\nsparse = off\n\
                     errnos = EXDEV EIO\nlog = /var/log/cfrfix.log\nbogus = 1\nmode = nonsense\n";
        parse_config(text, &mut st);
        assert_eq!(st.mode, Some(Mode::Always));
        assert_eq!(st.engine, Some(EngineChoice::Rw));
        assert_eq!(st.sparse, Some(false));
        let w = st.errnos.unwrap();
        assert!(has(&w, 18) && has(&w, 5) && !has(&w, 95));
        match st.log {
            Some(LogSetting::File(p, n)) => assert_eq!(&p[..n], b"/var/log/cfrfix.log"),
            _ => panic!("log path not parsed"),
        }
        // A relative log path is refused, leaving the earlier setting.
        st.apply(b"log", b"relative.log");
        assert!(matches!(st.log, Some(LogSetting::File(..))));
    }

    #[test]
    fn mode_parsing() {
        assert_eq!(parse_mode(b"always"), Some(Mode::Always));
        assert_eq!(parse_mode(b"off"), Some(Mode::Off));
        assert_eq!(parse_mode(b"auto"), Some(Mode::Auto));
        assert_eq!(parse_mode(b"ALWAYS"), None);
    }
}

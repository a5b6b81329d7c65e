//! The configuration language: `/etc/cfrfix.conf` lines and `CFRFIX_*` environment entries.
//!
//! This is the one parser. The library (`src/config.rs`) runs it once at load time and ignores
//! its diagnostics; `cfrfix --status` (the `cfrfix-check` helper) includes this very file with
//! `#[path]` and prints them, so the status report can never disagree with what the library
//! does. Hence the constraints: `core` only (no std, no allocation), no panics, no reference to
//! anything outside this file but `libc` constants.
//!
//! The rules, as documented in the README:
//! - keys are case-insensitive; values are trimmed, and keywords in them (`auto`, `OFF`,
//!   `Stderr`, errno names) are case-insensitive; a log path is kept as written;
//! - a file line is `key = value` or `key: value` (the first `=` or `:` separates); a `#` at the
//!   start of a line or after whitespace starts a comment (so `log = /var/log/a#1.log` is a path);
//!   anything else on a line is reported and ignored;
//! - `errnos = none` is the empty set (no fallback at all); an empty `errnos` value is invalid;
//! - an invalid value leaves the setting as it was (the default, or the file's value when the
//!   environment's is invalid);
//! - a file is read whole, up to `CONFIG_MAX_BYTES`; a longer file (or one that cannot be read to
//!   its end) is ignored entirely rather than applied in part; a line of `LINE_MAX` bytes or
//!   more (its newline not counted) is ignored.

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

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Always => "always",
            Mode::Off => "off",
        }
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

impl EngineChoice {
    pub fn name(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Splice => "splice",
            EngineChoice::Rw => "rw",
        }
    }
}

/// Errnos are below 4096; the fallback set covers the ones below 1024 (524 included).
pub const SET_WORDS: usize = 16;

/// A set of errnos, one bit each.
pub type ErrnoSet = [u64; SET_WORDS];

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

pub const fn errno_set(errnos: &[i32]) -> ErrnoSet {
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

pub const DEFAULT_FALLBACK_SET: ErrnoSet = errno_set(DEFAULT_FALLBACK_ERRNOS);

pub fn set_contains(set: &ErrnoSet, e: usize) -> bool {
    set.get(e / 64).is_some_and(|w| w & (1 << (e % 64)) != 0)
}

/// The errno names `errnos` accepts (and the log prints). The first name of a number is its
/// canonical one. ENOTSUPP (524) is kernel-internal and has no libc name.
pub const ERRNO_NAMES: &[(&str, i32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("EINTR", 4),
    ("EIO", 5),
    ("EBADF", 9),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EXDEV", 18),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ENOTTY", 25),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("ENOSYS", 38),
    ("EOVERFLOW", 75),
    ("EOPNOTSUPP", 95),
    ("ENOTSUP", 95),
    ("EDQUOT", 122),
    ("ENOTSUPP", 524),
];

/// The longest log path kept (with its terminating NUL).
pub const LOG_PATH_MAX: usize = 1024;

/// A log file path, NUL-terminated within the buffer (`len < LOG_PATH_MAX`).
#[derive(Clone, Copy)]
pub struct LogPath {
    bytes: [u8; LOG_PATH_MAX],
    len: usize,
}

impl LogPath {
    /// The path without its NUL.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
    /// The path with its NUL.
    pub fn with_nul(&self) -> &[u8] {
        self.bytes.get(..=self.len).unwrap_or(&[])
    }
}

/// `CFRFIX_LOG`: where fallback lines go.
// Large only while the configuration is parsed, once, on the constructor's stack.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum LogSetting {
    Silent,
    Stderr,
    File(LogPath),
}

/// The five settings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    Mode,
    Errnos,
    Engine,
    Sparse,
    Log,
}

impl Key {
    pub const ALL: [Key; 5] = [Key::Mode, Key::Errnos, Key::Engine, Key::Sparse, Key::Log];

    /// The key in `/etc/cfrfix.conf`.
    pub fn name(self) -> &'static str {
        match self {
            Key::Mode => "mode",
            Key::Errnos => "errnos",
            Key::Engine => "engine",
            Key::Sparse => "sparse",
            Key::Log => "log",
        }
    }

    /// The environment variable.
    pub fn variable(self) -> &'static str {
        match self {
            Key::Mode => "CFRFIX_MODE",
            Key::Errnos => "CFRFIX_ERRNOS",
            Key::Engine => "CFRFIX_ENGINE",
            Key::Sparse => "CFRFIX_SPARSE",
            Key::Log => "CFRFIX_LOG",
        }
    }

    /// What a valid value looks like, for diagnostics.
    pub fn valid_values(self) -> &'static str {
        match self {
            Key::Mode => "auto, always or off",
            Key::Errnos => "errno names or numbers separated by commas, spaces or colons, or none",
            Key::Engine => "auto, splice or rw",
            Key::Sparse => "auto or off",
            Key::Log => "off, stderr or an absolute file path",
        }
    }

    fn from_name(name: &[u8]) -> Option<Key> {
        Key::ALL
            .into_iter()
            .find(|k| k.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Where a setting was written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin<'a> {
    /// A line of the configuration file (counting from 1).
    ConfigLine(u32),
    /// An environment entry; the variable's name as written (`CFRFIX_MODE`).
    Environment(&'a [u8]),
}

/// What the parser saw, for a reader of diagnostics (the library has none).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// The setting now has this (trimmed) value.
    Applied { key: Key, value: &'a [u8] },
    /// Not a valid value for the setting, which keeps its previous value.
    InvalidValue { key: Key, value: &'a [u8] },
    /// A word of an `errnos` list that names no errno (1..1023): skipped.
    UnknownErrno { word: &'a [u8] },
    /// A key, or the rest of a `CFRFIX_` variable's name, that is no setting: ignored.
    UnknownKey { key: &'a [u8] },
    /// A file line that is not empty, a comment, `key = value` or `key: value`: ignored.
    NotASetting { text: &'a [u8] },
    /// A file line of `LINE_MAX` bytes or more: ignored.
    LineTooLong,
}

/// Receives the parser's events.
pub trait Sink {
    fn event(&mut self, origin: Origin<'_>, event: Event<'_>);
}

/// The library's sink: it stays silent.
pub struct Quiet;

impl Sink for Quiet {
    #[inline(always)]
    fn event(&mut self, _: Origin<'_>, _: Event<'_>) {}
}

/// Settings gathered before any is published; `None`: not set here.
#[derive(Clone, Copy)]
pub struct Settings {
    pub mode: Option<Mode>,
    pub engine: Option<EngineChoice>,
    pub sparse: Option<bool>,
    pub errnos: Option<ErrnoSet>,
    pub log: Option<LogSetting>,
}

impl Settings {
    pub const NONE: Settings = Settings {
        mode: None,
        engine: None,
        sparse: None,
        errnos: None,
        log: None,
    };

    /// Applies one `key = value`; an invalid value leaves the previous one in force.
    pub fn apply<S: Sink>(&mut self, key: &[u8], value: &[u8], origin: Origin<'_>, sink: &mut S) {
        let Some(key) = Key::from_name(key) else {
            sink.event(origin, Event::UnknownKey { key });
            return;
        };
        let value = value.trim_ascii();
        let valid = match key {
            Key::Mode => parse_mode(value).map(|v| self.mode = Some(v)).is_some(),
            Key::Engine => parse_engine(value).map(|v| self.engine = Some(v)).is_some(),
            Key::Sparse => parse_sparse(value).map(|v| self.sparse = Some(v)).is_some(),
            Key::Errnos => parse_errnos(value, origin, sink)
                .map(|v| self.errnos = Some(v))
                .is_some(),
            Key::Log => parse_log(value).map(|v| self.log = Some(v)).is_some(),
        };
        let event = if valid {
            Event::Applied { key, value }
        } else {
            Event::InvalidValue { key, value }
        };
        sink.event(origin, event);
    }

    /// Applies one environment entry (`NAME=value`) if its name starts with `CFRFIX_`.
    pub fn apply_environment_entry<S: Sink>(&mut self, entry: &[u8], sink: &mut S) {
        let Some(setting) = entry.strip_prefix(b"CFRFIX_") else {
            return;
        };
        let Some(eq) = setting.iter().position(|&c| c == b'=') else {
            return;
        };
        let (key, value) = setting.split_at(eq);
        let name = entry.get(..b"CFRFIX_".len() + eq).unwrap_or(entry);
        self.apply(
            key,
            value.get(1..).unwrap_or(&[]),
            Origin::Environment(name),
            sink,
        );
    }

    /// Settings from `later` override these.
    pub fn overridden_by(&mut self, later: &Settings) {
        self.mode = later.mode.or(self.mode);
        self.engine = later.engine.or(self.engine);
        self.sparse = later.sparse.or(self.sparse);
        self.errnos = later.errnos.or(self.errnos);
        if later.log.is_some() {
            self.log = later.log;
        }
    }
}

pub fn parse_mode(v: &[u8]) -> Option<Mode> {
    [Mode::Auto, Mode::Always, Mode::Off]
        .into_iter()
        .find(|m| m.name().as_bytes().eq_ignore_ascii_case(v))
        .or(v.is_empty().then_some(Mode::Auto))
}

pub fn parse_engine(v: &[u8]) -> Option<EngineChoice> {
    [EngineChoice::Auto, EngineChoice::Splice, EngineChoice::Rw]
        .into_iter()
        .find(|e| e.name().as_bytes().eq_ignore_ascii_case(v))
        .or(v.is_empty().then_some(EngineChoice::Auto))
}

pub fn parse_sparse(v: &[u8]) -> Option<bool> {
    if v.is_empty() || v.eq_ignore_ascii_case(b"auto") {
        Some(true)
    } else if v.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

/// `stderr`, an absolute path (a relative one would follow the program's working directory),
/// or empty/`off` for silence.
pub fn parse_log(v: &[u8]) -> Option<LogSetting> {
    if v.is_empty() || v.eq_ignore_ascii_case(b"off") {
        return Some(LogSetting::Silent);
    }
    if v.eq_ignore_ascii_case(b"stderr") {
        return Some(LogSetting::Stderr);
    }
    if v.first() != Some(&b'/') || v.len() >= LOG_PATH_MAX || v.contains(&0) {
        return None;
    }
    let mut path = LogPath {
        bytes: [0; LOG_PATH_MAX],
        len: v.len(),
    };
    path.bytes.get_mut(..v.len())?.copy_from_slice(v);
    Some(LogSetting::File(path))
}

/// `errnos`: names or numbers separated by commas, spaces or colons. `none` is the empty set;
/// unknown words are skipped (and reported); a value with no valid word at all, an empty one
/// included (an unset shell variable: `CFRFIX_ERRNOS=$UNSET`), is invalid, so the previous set
/// stays rather than silently disabling the fallback.
pub fn parse_errnos<S: Sink>(v: &[u8], origin: Origin<'_>, sink: &mut S) -> Option<ErrnoSet> {
    let mut words = [0u64; SET_WORDS];
    let mut any = false;
    for tok in v.split(|c| matches!(c, b',' | b' ' | b':' | b'\t')) {
        if tok.is_empty() {
            continue;
        }
        if tok.eq_ignore_ascii_case(b"none") {
            any = true;
            continue;
        }
        match errno_from_word(tok).and_then(|e| Some((e, words.get_mut(e / 64)?))) {
            Some((e, w)) => {
                *w |= 1 << (e % 64);
                any = true;
            }
            None => sink.event(origin, Event::UnknownErrno { word: tok }),
        }
    }
    any.then_some(words)
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

/// A line without its comment: from a `#` at its start or after a blank (ASCII whitespace, as
/// values are trimmed); a `#` inside a word, as in a log path `/var/log/a#1.log`, is part of it.
pub fn without_comment(line: &[u8]) -> &[u8] {
    let mut previous_blank = true;
    for (i, &c) in line.iter().enumerate() {
        if c == b'#' && previous_blank {
            return line.get(..i).unwrap_or(line);
        }
        previous_blank = c.is_ascii_whitespace();
    }
    line
}

/// One line of the configuration file.
pub fn parse_line<S: Sink>(line: &[u8], number: u32, settings: &mut Settings, sink: &mut S) {
    let text = without_comment(line).trim_ascii();
    if text.is_empty() {
        return;
    }
    let origin = Origin::ConfigLine(number);
    match text.iter().position(|&c| c == b'=' || c == b':') {
        Some(separator) => {
            let (key, value) = text.split_at(separator);
            settings.apply(
                key.trim_ascii(),
                value.get(1..).unwrap_or(&[]),
                origin,
                sink,
            );
        }
        None => sink.event(origin, Event::NotASetting { text }),
    }
}

/// The longest configuration file read; a longer one is ignored entirely.
pub const CONFIG_MAX_BYTES: usize = 64 * 1024;

/// The read buffer, on the constructor's stack: a line must fit in it with its newline, so a
/// line of `LINE_MAX` bytes or more is ignored.
pub const LINE_MAX: usize = 4096;

/// Why the configuration file is not used at all.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileProblem {
    /// Not a regular file; the `S_IFMT` bits of its mode.
    NotRegular { file_type: u32 },
    /// Owned by someone other than root: that user could change any root process's settings.
    NotOwnedByRoot { uid: u32 },
    /// Writable by group or others; the permission bits.
    WritableByOthers { mode: u32 },
    /// Longer than `CONFIG_MAX_BYTES`.
    TooLong,
    /// A read failed before the end of the file (errno).
    ReadFailed { errno: i32 },
}

/// Whether a file with this owner and `st_mode` may be trusted: it applies even in setuid
/// programs, so only root may be able to change it.
pub fn untrusted(uid: u32, st_mode: u32) -> Option<FileProblem> {
    if st_mode & libc::S_IFMT != libc::S_IFREG {
        Some(FileProblem::NotRegular {
            file_type: st_mode & libc::S_IFMT,
        })
    } else if uid != 0 {
        Some(FileProblem::NotOwnedByRoot { uid })
    } else if st_mode & 0o022 != 0 {
        Some(FileProblem::WritableByOthers {
            mode: st_mode & 0o7777,
        })
    } else {
        None
    }
}

/// `untrusted`, or a file longer than the library reads.
pub fn file_problem(uid: u32, st_mode: u32, size: u64) -> Option<FileProblem> {
    untrusted(uid, st_mode).or((size > CONFIG_MAX_BYTES as u64).then_some(FileProblem::TooLong))
}

/// Parses a whole configuration file into `settings`, reading it through `read` (which fills
/// the buffer it is given: `Ok(0)` at the end, `Err(errno)` on failure; EINTR is retried).
/// On `Err` the caller must use nothing of `settings`: the file is ignored as a whole.
pub fn parse_config<R, S>(
    mut read: R,
    settings: &mut Settings,
    sink: &mut S,
) -> Result<(), FileProblem>
where
    R: FnMut(&mut [u8]) -> Result<usize, i32>,
    S: Sink,
{
    let mut buf = [0u8; LINE_MAX];
    let mut filled = 0usize;
    let mut total = 0usize;
    let mut line_number = 0u32;
    // Inside a line longer than the buffer (already reported), until its newline.
    let mut skipping = false;
    loop {
        let Some(free) = buf.get_mut(filled..) else {
            return Err(FileProblem::TooLong);
        };
        let n = match read(free) {
            Ok(n) => n.min(free.len()),
            Err(libc::EINTR) => continue,
            Err(errno) => return Err(FileProblem::ReadFailed { errno }),
        };
        let at_end = n == 0;
        total = total.saturating_add(n);
        if total > CONFIG_MAX_BYTES {
            return Err(FileProblem::TooLong);
        }
        filled += n;
        let data = buf.get(..filled).unwrap_or(&[]);
        // Every complete line in the buffer.
        let mut start = 0;
        while let Some(rest) = data.get(start..) {
            let Some(newline) = rest.iter().position(|&c| c == b'\n') else {
                break;
            };
            if skipping {
                skipping = false;
            } else {
                line_number = line_number.saturating_add(1);
                parse_line(
                    rest.get(..newline).unwrap_or(&[]),
                    line_number,
                    settings,
                    sink,
                );
            }
            start += newline + 1;
        }
        if at_end {
            // A last line without a newline.
            if let Some(rest) = data.get(start..).filter(|r| !r.is_empty() && !skipping) {
                line_number = line_number.saturating_add(1);
                parse_line(rest, line_number, settings, sink);
            }
            return Ok(());
        }
        if start == 0 && filled == buf.len() {
            // A full buffer and no newline: a line too long to be a setting.
            if !skipping {
                line_number = line_number.saturating_add(1);
                sink.event(Origin::ConfigLine(line_number), Event::LineTooLong);
                skipping = true;
            }
            filled = 0;
        } else if let Some(kept) = filled.checked_sub(start).filter(|_| start > 0) {
            // The incomplete last line moves to the front (by hand: `copy_within` and
            // `rotate_left` assert their bounds, and the library has no panic path).
            for i in 0..kept {
                let Some(&c) = buf.get(start + i) else {
                    break;
                };
                if let Some(slot) = buf.get_mut(i) {
                    *slot = c;
                }
            }
            filled = kept;
        }
    }
}

//! The settings a program started now would get, and where each comes from: the library's own
//! parser run over /etc/cfrfix.conf and this process's environment, in the library's order.

use crate::parse::{self, ErrnoSet, Event, FileProblem, Key, LogSetting, Origin, Settings, Sink};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;

pub const CONFIG_FILE: &str = "/etc/cfrfix.conf";

/// `CFRFIX_*` variables of the cfrfix command and this helper (tests), not of the library.
pub const TOOL_VARIABLES: &[&str] = &[
    "CFRFIX_ARTEFACT_DIR",
    "CFRFIX_CHECK_SYSFS",
    "CFRFIX_CHECK_KERNEL_RELEASE",
    "CFRFIX_CHECK_NO_TMPFILE",
];

/// Where a setting's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    ConfigLine(u32),
    Environment(String),
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Default => "default".to_string(),
            Source::ConfigLine(n) => format!("{CONFIG_FILE} line {n}"),
            Source::Environment(name) => format!("environment: {name}"),
        }
    }
}

/// What became of /etc/cfrfix.conf.
pub enum ConfigState {
    Absent,
    /// It exists but this user cannot open it (the library, in this user's programs, neither).
    Unreadable(std::io::Error),
    Ignored(FileProblem),
    Used,
}

pub struct Resolved {
    pub config: ConfigState,
    /// For a program started with this environment.
    pub settings: Settings,
    pub sources: [Source; 5],
    /// For setuid, setgid and file-capability programs (AT_SECURE): the file alone.
    pub secure_settings: Settings,
    pub secure_sources: [Source; 5],
    /// Invalid values, unknown keys, lines that are not settings, an ignored file.
    pub problems: Vec<String>,
}

fn index(key: Key) -> usize {
    Key::ALL.iter().position(|k| *k == key).unwrap_or(0)
}

/// Records where each setting was last applied, and every problem, as text.
struct Tracker {
    sources: [Source; 5],
    problems: Vec<String>,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            sources: std::array::from_fn(|_| Source::Default),
            problems: Vec::new(),
        }
    }
}

/// Text from the configuration or the environment as the user can read it back: invisible or
/// non-printable characters (a NUL, a byte-order mark, a no-break space, control characters) and
/// bytes that are not UTF-8 are written as escapes (`\0`, `\u{feff}`, `\u{a0}`, `\x1b`, `\xff`),
/// so that a problem line shows what to fix.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\0' => out.push_str("\\0"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c if invisible(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Characters that print as nothing or as a plain space: C1 controls, the no-break and other
/// Unicode spaces, zero-width and direction marks, separators, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x80..=0x9f
            | 0xa0
            | 0xad
            | 0x034f
            | 0x061c
            | 0x115f..=0x1160
            | 0x1680
            | 0x180e
            | 0x2000..=0x200f
            | 0x2028..=0x202f
            | 0x205f..=0x206f
            | 0x3000
            | 0x3164
            | 0xfe00..=0xfe0f
            | 0xfeff
            | 0xffa0
            | 0xfff0..=0xfffb
    )
}

fn text(bytes: &[u8]) -> String {
    printable(bytes)
}

impl Sink for Tracker {
    fn event(&mut self, origin: Origin<'_>, event: Event<'_>) {
        let at = match origin {
            Origin::ConfigLine(n) => format!("{CONFIG_FILE} line {n}"),
            Origin::Environment(name) => text(name),
        };
        let problem = match event {
            Event::Applied { key, .. } => {
                let earlier = &self.sources[index(key)];
                let duplicate = match (earlier, origin) {
                    (Source::ConfigLine(first), Origin::ConfigLine(_)) => Some(*first),
                    _ => None,
                };
                self.sources[index(key)] = match origin {
                    Origin::ConfigLine(n) => Source::ConfigLine(n),
                    Origin::Environment(name) => Source::Environment(text(name)),
                };
                match duplicate {
                    // The library applies both lines; the later one wins.
                    Some(first) => format!(
                        "{at}: {} is set again: this line wins, line {first}'s value is overridden",
                        key.name()
                    ),
                    None => return,
                }
            }
            Event::InvalidValue { key, value: [] } => format!(
                "{at}: empty value for {} (valid: {}): ignored",
                key.name(),
                key.valid_values()
            ),
            Event::InvalidValue { key, value } => {
                let quoted = value.len() >= 2
                    && matches!(value.first(), Some(b'"' | b'\''))
                    && value.first() == value.last();
                format!(
                    "{at}: invalid value '{}' for {} (valid: {}){}: ignored",
                    text(value),
                    key.name(),
                    key.valid_values(),
                    if quoted {
                        "; write it without quotes"
                    } else {
                        ""
                    }
                )
            }
            Event::UnknownErrno { word } => format!(
                "{at}: '{}' is not an errno name or a number from 1 to 1023: skipped",
                text(word)
            ),
            Event::UnknownKey { key } => match origin {
                Origin::ConfigLine(_) => format!(
                    "{at}: unknown key '{}' (the keys are mode, errnos, engine, sparse, log): \
                     line ignored{}",
                    text(key),
                    if key.starts_with("\u{feff}".as_bytes()) {
                        "; the file starts with a byte-order mark: save it without one"
                    } else {
                        ""
                    }
                ),
                Origin::Environment(_) if TOOL_VARIABLES.contains(&at.as_str()) => return,
                Origin::Environment(_) => format!(
                    "{at}: not a setting of the library (CFRFIX_MODE, CFRFIX_ERRNOS, \
                     CFRFIX_ENGINE, CFRFIX_SPARSE, CFRFIX_LOG): ignored"
                ),
            },
            Event::NotASetting { text: line } => {
                format!("{at}: '{}' is not 'key = value': ignored", text(line))
            }
            Event::LineTooLong => format!("{at}: {} bytes or longer: ignored", parse::LINE_MAX),
        };
        self.problems.push(problem);
    }
}

pub fn describe_file_problem(problem: FileProblem) -> String {
    match problem {
        FileProblem::NotRegular { file_type } => format!(
            "not a regular file (a {})",
            crate::system::file_type_name(file_type)
        ),
        FileProblem::NotOwnedByRoot { uid } => format!("owned by uid {uid}, not by root"),
        FileProblem::WritableByOthers { mode } => {
            format!("writable by group or others (mode {mode:04o}; chmod go-w {CONFIG_FILE})")
        }
        FileProblem::TooLong => format!(
            "longer than {} bytes, the most the library reads",
            parse::CONFIG_MAX_BYTES
        ),
        FileProblem::ReadFailed { errno } => format!(
            "could not be read to its end ({})",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}

/// Reads /etc/cfrfix.conf as the library does (trust rules, size limit, whole or nothing).
fn read_config(settings: &mut Settings, tracker: &mut Tracker) -> ConfigState {
    // Non-blocking, as the library opens it: a FIFO there must not hang the report.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(CONFIG_FILE)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ConfigState::Absent,
        Err(e) => return ConfigState::Unreadable(e),
    };
    let metadata = match file.metadata() {
        Ok(m) => m,
        Err(e) => return ConfigState::Unreadable(e),
    };
    if let Some(problem) = parse::file_problem(metadata.uid(), metadata.mode(), metadata.len()) {
        return ConfigState::Ignored(problem);
    }
    let mut reader = &file;
    let read = |buf: &mut [u8]| {
        reader
            .read(buf)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    };
    match parse::parse_config(read, settings, tracker) {
        Ok(()) => ConfigState::Used,
        Err(problem) => ConfigState::Ignored(problem),
    }
}

pub fn resolve() -> Resolved {
    let mut file_settings = Settings::NONE;
    let mut tracker = Tracker::new();
    let config = read_config(&mut file_settings, &mut tracker);
    if !matches!(config, ConfigState::Used) {
        // The library uses nothing of a file it ignores; its lines are no concern then.
        file_settings = Settings::NONE;
        tracker = Tracker::new();
    }
    match &config {
        ConfigState::Ignored(problem) => tracker.problems.push(format!(
            "{CONFIG_FILE}: ignored as a whole: {}",
            describe_file_problem(*problem)
        )),
        ConfigState::Unreadable(e) => tracker.problems.push(format!(
            "{CONFIG_FILE}: cannot be read by uid {} ({}): programs run by this user do not \
             get its settings (setuid-root programs, which read it as root, do)",
            // SAFETY: getuid has no preconditions.
            unsafe { libc::getuid() },
            crate::system::error_text(e)
        )),
        ConfigState::Absent | ConfigState::Used => {}
    }
    let secure_settings = file_settings;
    let secure_sources = tracker.sources.clone();
    let mut settings = file_settings;
    for (name, value) in std::env::vars_os() {
        let mut entry = name.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        settings.apply_environment_entry(&entry, &mut tracker);
        if let Some(problem) = misspelt_variable(name.as_bytes()) {
            tracker.problems.push(problem);
        }
    }
    Resolved {
        config,
        settings,
        sources: tracker.sources,
        secure_settings,
        secure_sources,
        problems: tracker.problems,
    }
}

/// A variable that looks like a setting but that the library does not read, because its
/// `CFRFIX_` prefix is not upper-case (`cfrfix_mode`; the rest of the name may be any case).
fn misspelt_variable(name: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = b"CFRFIX_";
    let prefix = name.get(..PREFIX.len())?;
    if prefix == PREFIX || !prefix.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = name.get(PREFIX.len()..).unwrap_or(&[]);
    let meant = Key::ALL
        .into_iter()
        .find(|k| k.name().as_bytes().eq_ignore_ascii_case(rest))
        .map_or_else(String::new, |k| format!(" (meant {}?)", k.variable()));
    Some(format!(
        "{}: not a setting: the library reads only variables named CFRFIX_...{meant}: ignored",
        text(name)
    ))
}

fn errno_name(e: usize) -> String {
    parse::ERRNO_NAMES
        .iter()
        .find(|(_, n)| *n as usize == e)
        .map_or_else(|| e.to_string(), |(name, _)| name.to_string())
}

pub fn describe_errnos(set: &ErrnoSet) -> String {
    let members: Vec<String> = (1..parse::SET_WORDS * 64)
        .filter(|&e| parse::set_contains(set, e))
        .map(errno_name)
        .collect();
    if members.is_empty() {
        "none (no fallback on any errno)".to_string()
    } else {
        members.join(" ")
    }
}

/// A setting's value as text (the default where `settings` has none).
pub fn value(settings: &Settings, key: Key) -> String {
    match key {
        Key::Mode => settings
            .mode
            .unwrap_or(parse::Mode::Auto)
            .name()
            .to_string(),
        Key::Engine => settings
            .engine
            .unwrap_or(parse::EngineChoice::Auto)
            .name()
            .to_string(),
        Key::Sparse => if settings.sparse.unwrap_or(true) {
            "auto"
        } else {
            "off"
        }
        .to_string(),
        Key::Errnos => describe_errnos(&settings.errnos.unwrap_or(parse::DEFAULT_FALLBACK_SET)),
        Key::Log => match settings.log {
            None | Some(LogSetting::Silent) => "silent".to_string(),
            Some(LogSetting::Stderr) => "stderr".to_string(),
            Some(LogSetting::File(path)) => text(path.as_bytes()),
        },
    }
}

pub fn source(sources: &[Source; 5], key: Key) -> &Source {
    &sources[index(key)]
}

//! The `cfrfix --status` report: the settings a program started now gets and where each comes
//! from, every problem the library would silently ignore, and where cfrfix is preloaded.
//!
//! ```text
//! cfrfix 0.1.0 --status
//! mode: off (environment: CFRFIX_MODE)
//!   in setuid, setgid and file-capability programs (they ignore CFRFIX_*): auto (default)
//! errnos: EPERM ENOENT EIO EAGAIN EACCES EXDEV EINVAL ENOSYS EOPNOTSUPP ENOTSUPP (default)
//! engine: auto (default)
//! sparse: off (/etc/cfrfix.conf line 4)
//! log: silent (default)
//! config file: /etc/cfrfix.conf: used
//! problem: /etc/cfrfix.conf line 7: invalid value 'Banana' for mode (valid: ...): ignored
//! LD_PRELOAD: no
//! system-wide: yes: /etc/ld.so.preload lists /usr/$LIB/libcfrfix.so
//!   x86_64 programs: get cfrfix (/usr/$LIB/libcfrfix.so = /usr/lib/x86_64-linux-gnu/libcfrfix.so: ELF 64-bit x86-64)
//! library for `cfrfix PROGRAM`: /usr/$LIB/libcfrfix.so
//!   x86_64 programs: get cfrfix (/usr/$LIB/libcfrfix.so = /usr/lib/x86_64-linux-gnu/...)
//! summary: 1 problem
//! ```
//!
//! Exit status: 0 without problems, 1 with at least one.

use crate::parse::{Key, LogSetting, Settings};
use crate::settings::{self, ConfigState, Source};
use crate::{VERSION, preload, say, system};
use std::io::Write;
use std::path::Path;

/// Where the library would log, and whether it can (None: not to a file).
fn log_file(settings: &Settings) -> Option<String> {
    match settings.log {
        Some(LogSetting::File(path)) => Some(String::from_utf8_lossy(path.as_bytes()).into_owned()),
        _ => None,
    }
}

/// The log files of ordinary and of secure-execution programs (one entry if they agree).
fn log_destinations(resolved: &settings::Resolved) -> Vec<String> {
    let mut destinations: Vec<String> = Vec::new();
    for candidate in [
        log_file(&resolved.settings),
        log_file(&resolved.secure_settings),
    ]
    .into_iter()
    .flatten()
    {
        if !destinations.contains(&candidate) {
            destinations.push(candidate);
        }
    }
    destinations
}

/// Why the library cannot log to `destination`, as a problem line; None if it can.
fn log_destination_problem(destination: &str) -> Option<String> {
    system::log_destination_problem(Path::new(destination))
        .map(|problem| format!("log destination {problem}: the library will log nothing there"))
}

/// What the cfrfix command prints before it runs PROGRAM: every settings problem the library
/// will silently work around, and a mode of `off` unless the user gave `--mode off`.
pub fn warnings(mode_from_option: bool) {
    let resolved = settings::resolve();
    let mut lines = resolved.problems.clone();
    lines.extend(
        log_destinations(&resolved)
            .iter()
            .filter_map(|d| log_destination_problem(d)),
    );
    let problems = lines.len();
    let off = resolved.settings.mode == Some(crate::parse::Mode::Off);
    if off && !mode_from_option {
        lines.push(format!(
            "mode is off ({}): PROGRAM runs with cfrfix switched off",
            settings::source(&resolved.sources, Key::Mode).describe()
        ));
    }
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(err, "cfrfix: warning: {line}");
    }
    if problems > 0 {
        let _ = writeln!(err, "cfrfix: warning: details: cfrfix --status");
    }
}

pub fn run(library: Option<&Path>) -> u8 {
    let resolved = settings::resolve();
    let mut problems = resolved.problems.clone();
    say!("cfrfix {VERSION} --status: the settings a program started now gets");
    for key in Key::ALL {
        let source = settings::source(&resolved.sources, key);
        say!(
            "{}: {} ({})",
            key.name(),
            settings::value(&resolved.settings, key),
            source.describe()
        );
        let secure_source = settings::source(&resolved.secure_sources, key);
        let secure_value = settings::value(&resolved.secure_settings, key);
        if matches!(source, Source::Environment(_))
            && (secure_value != settings::value(&resolved.settings, key) || secure_source != source)
        {
            say!(
                "  in setuid, setgid and file-capability programs (they ignore CFRFIX_*): {} ({})",
                secure_value,
                secure_source.describe()
            );
        }
    }
    match &resolved.config {
        ConfigState::Absent => say!("config file: {}: none", settings::CONFIG_FILE),
        ConfigState::Used => say!("config file: {}: used", settings::CONFIG_FILE),
        ConfigState::Ignored(_) | ConfigState::Unreadable(_) => {
            say!(
                "config file: {}: NOT used (see below)",
                settings::CONFIG_FILE
            )
        }
    }

    for destination in log_destinations(&resolved) {
        match log_destination_problem(&destination) {
            None => say!("log destination: {destination}: can be written"),
            Some(problem) => problems.push(problem),
        }
    }
    if matches!(resolved.settings.log, Some(LogSetting::Stderr)) {
        say!(
            "log destination: stderr: each program's descriptor 2 (a daemon's may be a pipe \
             nobody reads: use a file system-wide)"
        );
    }

    for problem in &problems {
        say!("problem: {problem}");
    }

    match preload::ld_preload_entries().as_slice() {
        [] => say!("LD_PRELOAD: no"),
        entries => say!("LD_PRELOAD: yes ({})", entries.join(" ")),
    }
    match preload::system_wide_entries() {
        Err(why) => say!("system-wide: no ({}: {why})", preload::PRELOAD_FILE),
        Ok(entries) if entries.is_empty() => say!(
            "system-wide: no ({} lists no cfrfix library)",
            preload::PRELOAD_FILE
        ),
        Ok(entries) => {
            for entry in entries {
                say!("system-wide: yes: {} lists {entry}", preload::PRELOAD_FILE);
                let (lines, any_missing) = preload::per_abi(&entry);
                for line in lines {
                    say!("{line}");
                }
                if any_missing {
                    let problem = format!(
                        "{entry} in {} does not load into every ABI this machine runs",
                        preload::PRELOAD_FILE
                    );
                    say!("problem: {problem}");
                    problems.push(problem);
                }
            }
        }
    }
    if let Some(library) = library {
        // An entry with `$LIB` names one build per ABI; a 32-bit build that is not there is
        // not a settings problem (64-bit programs get cfrfix), so it is shown, not counted.
        let entry = library.display().to_string();
        say!("library for `cfrfix PROGRAM`: {entry}");
        for line in preload::per_abi(&entry).0 {
            say!("{line}");
        }
    }
    match problems.len() {
        0 => say!("summary: no problems"),
        1 => say!("summary: 1 problem"),
        n => say!("summary: {n} problems"),
    }
    u8::from(!problems.is_empty())
}

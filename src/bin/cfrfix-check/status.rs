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

use crate::parse::{DEFAULT_FALLBACK_SET, Key, LogSetting, Mode, SET_WORDS, Settings};
use crate::settings::{self, ConfigState, Source};
use crate::{VERSION, logdest, preload, say};
use std::io::Write;
use std::path::Path;

/// The log file of `settings`, as the library would open it (None: not a file).
fn log_file(settings: &Settings) -> Option<Vec<u8>> {
    match settings.log {
        Some(LogSetting::File(path)) => Some(path.as_bytes().to_vec()),
        _ => None,
    }
}

/// The log files of ordinary and of secure-execution programs (one entry if they agree).
fn log_destinations(resolved: &settings::Resolved) -> Vec<Vec<u8>> {
    let mut destinations: Vec<Vec<u8>> = Vec::new();
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
fn log_destination_problem(destination: &[u8]) -> Option<String> {
    logdest::file_problem(destination).map(|problem| {
        format!(
            "log destination {}: {problem}: the library will log nothing there",
            settings::printable(destination)
        )
    })
}

/// Why the settings switch cfrfix off, in effect, for a program started now: a mode of `off`
/// (unless the user gave `--mode off`), or an empty errno set in mode `auto` (the kernel is
/// asked, and no refusal is answered with a copy).
fn switched_off(resolved: &settings::Resolved, mode_from_option: bool) -> Option<String> {
    let mode = resolved.settings.mode.unwrap_or(Mode::Auto);
    let errnos = resolved.settings.errnos.unwrap_or(DEFAULT_FALLBACK_SET);
    let source = |key| settings::source(&resolved.sources, key).describe();
    match mode {
        Mode::Off if !mode_from_option => Some(format!(
            "mode is off ({}): PROGRAM runs with cfrfix switched off",
            source(Key::Mode)
        )),
        Mode::Auto if errnos == [0; SET_WORDS] => Some(format!(
            "errnos is none ({}): in mode auto cfrfix then never copies, so PROGRAM runs with \
             cfrfix switched off in effect",
            source(Key::Errnos)
        )),
        _ => None,
    }
}

/// What the cfrfix command prints before it runs PROGRAM: every settings problem the library
/// will silently work around, and settings that switch cfrfix off unless the user gave
/// `--mode off`.
pub fn warnings(mode_from_option: bool) {
    let resolved = settings::resolve();
    let mut lines = resolved.problems.clone();
    lines.extend(
        log_destinations(&resolved)
            .iter()
            .filter_map(|d| log_destination_problem(d)),
    );
    let problems = lines.len();
    lines.extend(switched_off(&resolved, mode_from_option));
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
        if !matches!(source, Source::Environment(_)) {
            continue;
        }
        if let ConfigState::Unreadable(_) = resolved.config {
            // Setuid-root programs read the file as root: what they get is in it.
            say!(
                "  in setuid, setgid and file-capability programs (they ignore CFRFIX_*): \
                 unknown here: setuid-root programs read {} as root, and uid {} cannot (run \
                 cfrfix --status as root)",
                settings::CONFIG_FILE,
                // SAFETY: getuid has no preconditions.
                unsafe { libc::getuid() }
            );
        } else if secure_value != settings::value(&resolved.settings, key)
            || secure_source != source
        {
            say!(
                "  in setuid, setgid and file-capability programs (they ignore CFRFIX_*): {} ({})",
                secure_value,
                secure_source.describe()
            );
        }
    }
    if let Some(warning) = switched_off(&resolved, false) {
        say!(
            "warning: {}",
            warning.replace("PROGRAM runs", "programs run")
        );
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
            None => say!(
                "log destination: {}: can be written",
                settings::printable(&destination)
            ),
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

    let ld_preload = preload::ld_preload_entries();
    if ld_preload.is_empty() {
        say!("LD_PRELOAD: no");
    }
    for entry in ld_preload {
        // Programs started from this environment inherit it: each ABI's get it or not.
        let report = preload::per_abi(&entry);
        let native = if report.native_problem.is_some() {
            "listed but NOT loaded"
        } else {
            "yes"
        };
        say!("LD_PRELOAD: {native} ({entry})");
        for line in &report.lines {
            say!("{line}");
        }
        if report.any_missing {
            let problem =
                format!("{entry} in LD_PRELOAD does not load into every ABI this machine runs");
            say!("problem: {problem}");
            problems.push(problem);
        }
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
                let report = preload::per_abi(&entry);
                for line in &report.lines {
                    say!("{line}");
                }
                if report.any_missing {
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
        // An entry with `$LIB` names one build per ABI. Another ABI's build that is not there
        // is not a settings problem (this ABI's programs get cfrfix; `cfrfix PROGRAM` refuses a
        // program of that ABI), so it is shown, not counted; a library that does not load into
        // this tool's own ABI makes every `cfrfix PROGRAM` refuse, and is counted.
        let entry = library.display().to_string();
        say!("library for `cfrfix PROGRAM`: {entry}");
        let report = preload::per_abi(&entry);
        for line in &report.lines {
            say!("{line}");
        }
        if let Some(why) = report.native_problem {
            let problem = format!(
                "the library for `cfrfix PROGRAM`, {entry}, does NOT load into {} programs \
                 ({why}): cfrfix PROGRAM starts no program (exit 125)",
                crate::abis::NATIVE
            );
            say!("problem: {problem}");
            problems.push(problem);
        }
    }
    match problems.len() {
        0 => say!("summary: no problems"),
        1 => say!("summary: 1 problem"),
        n => say!("summary: {n} problems"),
    }
    u8::from(!problems.is_empty())
}

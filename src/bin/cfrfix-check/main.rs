//! `cfrfix-check`: the diagnosis helper behind `cfrfix --check`, `cfrfix --status` and the
//! `--log` check of the `cfrfix` command, which is its interface (see `cfrfix --help` and
//! docs/cfrfix.1 for the output and the exit codes).
//!
//! ```text
//! cfrfix-check --check LIBRARY SRC_DIR DST_DIR    the --check report
//! cfrfix-check --status [LIBRARY]                 the --status report
//! cfrfix-check --log-destination VALUE            would the library log as CFRFIX_LOG=VALUE
//!                                                 asks? (exit 0, or 1 with the reason)
//! cfrfix-check --program [--enosys] [--off] ENTRY PROGRAM
//!                                                 the LD_PRELOAD for PROGRAM, or why the library
//!                                                 would not be in effect in it (exit 1)
//! cfrfix-check --warnings [--mode-from-option]    settings problems, as `cfrfix: warning:`
//!                                                 lines on stderr (before PROGRAM runs)
//! cfrfix-check --abis [ENTRY]                     the ABIs this machine runs, their `$LIB`,
//!                                                 and whether ENTRY serves each (abis.rs)
//! ```
//!
//! The settings are read with the library's own parser (`src/config/parse.rs`, included below),
//! so what this tool reports is what the library does.
//!
//! Packaged, it is linked statically (so the package needs no newer glibc than the library), and
//! a static program cannot preload anything: the half of --check that runs through cfrfix is
//! `cfrfix-check-copy`, a minimal dynamically linked program next to this one.
//!
//! Test-only environment (docs/deployment.md): `CFRFIX_CHECK_SYSFS` replaces `/sys` when the
//! OpenZFS module's version is read, and `CFRFIX_CHECK_KERNEL_RELEASE` replaces the running
//! kernel's release, so that the OpenZFS verdict can be tested on a machine without ZFS.

mod abis;
mod check;
mod copy;
mod logdest;
#[path = "../../config/parse.rs"]
#[allow(dead_code)]
mod parse;
mod preload;
mod program;
mod settings;
mod status;
mod system;
mod zfs;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit codes of `--check` (also documented in `cfrfix --help` and the man page).
pub const EXIT_WORKS: u8 = 0;
pub const EXIT_DOES_NOT_WORK: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CANNOT_TEST: u8 = 3;

const USAGE: &str = "\
Usage: cfrfix-check --check LIBRARY SRC_DIR DST_DIR
       cfrfix-check --status [LIBRARY]
       cfrfix-check --log-destination DEST
       cfrfix-check --warnings [--mode-from-option]
       cfrfix-check --program [--enosys] [--off] ENTRY PROGRAM
       cfrfix-check --abis [ENTRY]
(the cfrfix command's helper: run `cfrfix --help`)";

/// Prints a line of the report. A reader that went away (`cfrfix --check | head`) ends the
/// process quietly, as SIGPIPE ends `cat`: every test file is already unlinked by then.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::emit(format_args!($($arg)*))
    };
}

pub fn emit(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(141);
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("cfrfix-check: {message}\n{USAGE}");
    ExitCode::from(EXIT_USAGE)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let strings: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().unwrap_or("\u{fffd}"))
        .collect();
    match strings.as_slice() {
        ["--check", _, _, _] => ExitCode::from(check::run(
            &PathBuf::from(&args[1]),
            &PathBuf::from(&args[2]),
            &PathBuf::from(&args[3]),
        )),
        ["--status"] => ExitCode::from(status::run(None)),
        ["--status", _] => ExitCode::from(status::run(Some(&PathBuf::from(&args[1])))),
        ["--log-destination", _] => match logdest::value_problem(args[1].as_bytes()) {
            None => ExitCode::SUCCESS,
            Some(problem) => {
                eprintln!("{problem}");
                ExitCode::from(1)
            }
        },
        ["--program", rest @ ..] => {
            let enosys = rest.contains(&"--enosys");
            let off = rest.contains(&"--off");
            let operands: Vec<&OsString> = args[1..]
                .iter()
                .filter(|a| !matches!(a.to_str(), Some("--enosys" | "--off")))
                .collect();
            match operands.as_slice() {
                [entry, program] => match entry.to_str() {
                    Some(entry) => {
                        ExitCode::from(program::run(entry, &PathBuf::from(program), enosys, off))
                    }
                    None => usage_error("--program: the library entry is not UTF-8"),
                },
                _ => usage_error("--program [--enosys] [--off] ENTRY PROGRAM"),
            }
        }
        ["--warnings"] => {
            status::warnings(false);
            ExitCode::SUCCESS
        }
        ["--warnings", "--mode-from-option"] => {
            status::warnings(true);
            ExitCode::SUCCESS
        }
        ["--abis"] => {
            abis::print_table(None);
            ExitCode::SUCCESS
        }
        ["--abis", entry] => {
            abis::print_table(Some(entry));
            ExitCode::SUCCESS
        }
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => usage_error("unexpected arguments"),
    }
}

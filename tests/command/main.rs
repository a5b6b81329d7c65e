//! The `cfrfix` command running a program (issue 10): the preload it sets up, its options and
//! how they compose, the shell's exit codes, logging that works when asked, warnings about
//! settings the library would ignore, and never running PROGRAM without the fix.
//!
//! - `preload`: what goes into `LD_PRELOAD`, and the settings passed on;
//! - `log`: `--log` destinations, and those refused before PROGRAM starts;
//! - `enosys`: `--enosys`, alone and with the other options;
//! - `usage`: the shell's exit codes, warnings, `--version`, `--help`, bad usage;
//! - `build`: a checkout's build, and a checkout or installation without a library.

#[path = "../common/mod.rs"]
mod common;

mod build;
mod enosys;
mod log;
mod preload;
mod usage;

use common::command::{PYTHON_COPY, artefact_dir, python3, run, script};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const EOPNOTSUPP: i32 = 95;
const ENOSYS: i32 = 38;

/// `cfrfix-inject ERRNO [scripts/cfrfix ARGS...] python3 PYTHON_COPY SRC DST`.
fn injected_copy(errno: &str, cfrfix_args: Option<&[&str]>, dir: &Path) -> Output {
    let python = python3().expect("python3 checked by the caller");
    let mut command = Command::new(INJECT);
    command
        .env_remove("LD_PRELOAD")
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir())
        .arg(errno);
    if let Some(args) = cfrfix_args {
        command.arg(script("cfrfix")).args(args);
    }
    let _ = fs::remove_file(dir.join("dst"));
    run(command
        .args([python.as_str(), "-c", PYTHON_COPY])
        .arg(dir.join("src"))
        .arg(dir.join("dst")))
}

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

mod driver;
mod groups;
mod report;
mod run;
mod worker;

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use driver::{INTERRUPTED, USAGE, driver};
use worker::worker;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

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

//! Running the differential driver (`cfrfix-probe`, a build for any target) over a case list,
//! natively or under injection, with or without the preloaded library, directly or under an
//! emulator; and comparing its result lines with the kernel's.
#![allow(dead_code)]

pub mod cases;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, ScratchDir};

/// The three ways programs reach copy_file_range: glibc's symbol, the variadic `syscall()`
/// (libuv), `dlsym(RTLD_DEFAULT)` (Java NIO).
pub const ENTRY_POINTS: [&str; 3] = ["libc", "syscall", "dlsym"];
/// How many mismatching cases a failure prints in full.
const MISMATCHES_SHOWN: usize = 20;

/// How one probe process is started.
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    /// The probe binary.
    pub probe: &'a Path,
    /// An emulator command the probe runs under (`qemu-aarch64 -L SYSROOT`); the preload then
    /// reaches the guest through `-E`, so that the emulator itself is not given it.
    pub emulator: Option<&'a [String]>,
    /// Under `cfrfix-inject ERRNO` (the 64-bit tool: its filter covers every ABI).
    pub inject: Option<u32>,
    /// The library to preload into the probe.
    pub preload: Option<&'a Path>,
    /// `CFRFIX_*` settings for the probe (every other one is removed).
    pub env: &'a [(&'a str, &'a str)],
    /// A hung probe (an engine looping on a pipe) must fail the test, not stall CI.
    pub timeout: Duration,
}

impl<'a> Launch<'a> {
    /// The probe alone: the kernel's answers.
    pub fn native(probe: &'a Path) -> Launch<'a> {
        Launch {
            probe,
            emulator: None,
            inject: None,
            preload: None,
            env: &[],
            timeout: Duration::from_secs(60),
        }
    }

    pub fn emulated(self, emulator: &'a [String]) -> Launch<'a> {
        Launch {
            emulator: Some(emulator),
            timeout: Duration::from_secs(900),
            ..self
        }
    }

    pub fn injected(self, errno: u32) -> Launch<'a> {
        Launch {
            inject: Some(errno),
            ..self
        }
    }

    pub fn preloaded(self, library: &'a Path) -> Launch<'a> {
        Launch {
            preload: Some(library),
            ..self
        }
    }

    pub fn with_env(self, env: &'a [(&'a str, &'a str)]) -> Launch<'a> {
        Launch { env, ..self }
    }

    fn command(&self, scratch: &Path) -> Command {
        let mut argv: Vec<String> = Vec::new();
        if let Some(errno) = self.inject {
            argv.push(env!("CARGO_BIN_EXE_cfrfix-inject").into());
            argv.push(errno.to_string());
        }
        match (self.emulator, self.preload) {
            (Some(emulator), preload) => {
                argv.extend(emulator.iter().cloned());
                if let Some(library) = preload {
                    argv.push("-E".into());
                    argv.push(format!("LD_PRELOAD={}", library.display()));
                }
            }
            // Through env(1): a 32-bit library in the environment of the 64-bit injector
            // would make its loader complain.
            (None, Some(library)) => {
                argv.push("env".into());
                argv.push(format!("LD_PRELOAD={}", library.display()));
            }
            (None, None) => {}
        }
        argv.push(self.probe.display().to_string());
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .arg(scratch)
            .env_remove("LD_PRELOAD");
        // Only what a test asks for: a CFRFIX_* setting inherited from the shell running
        // `cargo test` would silently change what is being compared.
        for key in [
            "CFRFIX_ENGINE",
            "CFRFIX_SPARSE",
            "CFRFIX_MODE",
            "CFRFIX_ERRNOS",
            "CFRFIX_LOG",
        ] {
            command.env_remove(key);
        }
        command.envs(self.env.iter().copied());
        command
    }
}

pub struct ProbeRun {
    pub lines: Vec<String>,
    /// Exit status and stderr, for explaining missing lines.
    pub failure: Option<String>,
}

/// Runs `cases` (each prefixed with `entry=ENTRY`) through one probe process.
pub fn run(launch: &Launch<'_>, entry: &str, cases: &[String]) -> ProbeRun {
    let scratch = ScratchDir::tmpfs("differential");
    let mut command = launch.command(scratch.path());
    let input: String = cases
        .iter()
        .map(|case| format!("entry={entry} {case}\n"))
        .collect();
    // A probe that dies early shows up as missing lines below.
    let output = common::output_within(&mut command, launch.timeout, Some(input))
        .expect("spawn cfrfix-probe")
        .unwrap_or_else(|| {
            panic!(
                "{} ({entry}, {} cases) still running after {:?}, killed",
                launch.probe.display(),
                cases.len(),
                launch.timeout
            )
        });
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let failure = (!output.status.success() || lines.len() != cases.len()).then(|| {
        format!(
            "probe {}, {} of {} result lines; stderr: {}",
            output.status,
            lines.len(),
            cases.len(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    });
    ProbeRun { lines, failure }
}

/// `key=value` fields of two result lines that differ, e.g. `errno: 22 → 0`.
pub fn field_differences(native: &str, shim: &str) -> String {
    let shim_fields: Vec<&str> = shim.split_whitespace().collect();
    native
        .split_whitespace()
        .enumerate()
        .filter(|(i, field)| shim_fields.get(*i) != Some(field))
        .map(|(i, field)| {
            let (key, native_value) = field.split_once('=').unwrap_or((field, ""));
            let shim_value = shim_fields
                .get(i)
                .map(|f| f.split_once('=').map_or(*f, |(_, v)| v))
                .unwrap_or("<missing>");
            format!("{key}: {native_value} → {shim_value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collects the cases whose result lines differ from the kernel's, over several runs, into one
/// readable report.
#[derive(Default)]
pub struct Comparison {
    mismatches: usize,
    shown: usize,
    report: String,
}

impl Comparison {
    /// Compares one run (labelled, e.g. `errno 95, entry libc`) with the native lines.
    pub fn add(
        &mut self,
        label: &str,
        entry: &str,
        cases: &[String],
        native: &[String],
        run: &ProbeRun,
    ) {
        let differing: Vec<usize> = (0..cases.len())
            .filter(|&i| run.lines.get(i) != native.get(i))
            .collect();
        if differing.is_empty() {
            return;
        }
        self.mismatches += differing.len();
        self.report += &format!(
            "\n=== {label}: {} of {} cases differ{}\n",
            differing.len(),
            cases.len(),
            run.failure
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        );
        for &i in differing
            .iter()
            .take(MISMATCHES_SHOWN.saturating_sub(self.shown))
        {
            let native_line = native.get(i).map_or("<none>", String::as_str);
            let shim_line = run
                .lines
                .get(i)
                .map_or("<no result: probe died>", String::as_str);
            self.report += &format!(
                "case #{i}: entry={entry} {}\n  native: {native_line}\n  shim:   {shim_line}\n  differs: {}\n",
                cases[i],
                field_differences(native_line, shim_line)
            );
            self.shown += 1;
        }
    }

    /// Panics with the report if any case differed.
    pub fn assert_identical(&self, what: &str) {
        assert!(
            self.mismatches == 0,
            "{what} differs from the kernel in {} case runs (first {} shown):{}",
            self.mismatches,
            self.shown,
            self.report
        );
    }
}

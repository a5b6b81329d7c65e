//! Running a group: an untimed warm-up round (which also verifies the copies and records the
//! engine each fallback variant logged), then every variant once per round in rotated order,
//! each as a fresh worker process with exactly the environment it names.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use crate::driver::{WORKER_EXE, check_interrupt, os};
use crate::groups::{Group, Variant};
use crate::report::fmt_time;

/// What a group's rounds produced.
pub(crate) struct Measured {
    /// `times[variant][round]`, nanoseconds (`None`: the variant failed that round).
    pub(crate) times: Vec<Vec<Option<f64>>>,
    /// Largest destination allocation per variant.
    pub(crate) blocks: Vec<Option<u64>>,
    pub(crate) errors: Vec<Option<String>>,
    /// The engines a fallback variant's log named in the warm-up round.
    pub(crate) engines: Vec<Option<String>>,
}

pub(crate) fn measure(
    g: &Group,
    rounds: usize,
    lib: &Path,
    inject: &Path,
    dir: &Path,
) -> Result<Measured, String> {
    let n = g.variants.len();
    let mut m = Measured {
        times: vec![vec![None; rounds]; n],
        blocks: vec![None; n],
        errors: vec![None; n],
        engines: vec![None; n],
    };
    let log = dir.join("log");
    // Round 0 is a warm-up, not counted: on a VM the first touch of guest memory faults in
    // the host too (the first 256 MiB copy of a run took 3-4x the others), and the library
    // and the files' pages get cached. It is also the round where workers verify the copies.
    for round in 0..=rounds {
        if round == 0 {
            eprint!("  warm-up + verify:");
        } else {
            eprint!("  round {round}/{rounds}:");
        }
        // Rotating the order gives every variant every position equally often: nothing that
        // drifts within a round (frequency, a neighbour's load) favours one of them.
        for k in 0..n {
            let i = (round + k) % n;
            let v = &g.variants[i];
            if m.errors[i].is_some() {
                continue;
            }
            let mut args = v.args.clone();
            if let Some(pos) = g.verify_arg {
                args[pos] = os(if round == 0 { "1" } else { "0" });
            }
            // In the warm-up, a fallback variant logs, so the report can say which engine
            // really ran (a misspelt or ignored setting would otherwise go unnoticed).
            let log = (round == 0 && v.preload && g.verify_arg.is_some()).then_some(log.as_path());
            if let Some(l) = log {
                let _ = fs::remove_file(l);
            }
            let result = run_worker(v, &args, lib, inject, log);
            if let Some(l) = log {
                m.engines[i] = engines_logged(l);
                let _ = fs::remove_file(l);
            }
            match result {
                Ok((ns, blocks)) => {
                    eprint!(" {}={}", v.name, fmt_time(ns / v.ops as f64));
                    if round > 0 {
                        m.times[i][round - 1] = Some(ns);
                    }
                    if let Some(b) = blocks {
                        m.blocks[i] = Some(m.blocks[i].map_or(b, |old: u64| old.max(b)));
                    }
                }
                Err(e) => {
                    check_interrupt()?;
                    eprint!(" {}=FAILED", v.name);
                    m.errors[i] = Some(e);
                }
            }
        }
        eprintln!();
    }
    Ok(m)
}

/// The distinct engines named in a fallback log ("... (engine splice)"), or "none logged".
fn engines_logged(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut names: Vec<&str> = text
        .split("(engine ")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect();
    names.sort_unstable();
    names.dedup();
    Some(if names.is_empty() {
        "none logged".to_string()
    } else {
        names.join("+")
    })
}

fn run_worker(
    v: &Variant,
    args: &[OsString],
    lib: &Path,
    inject: &Path,
    log: Option<&Path>,
) -> Result<(f64, Option<u64>), String> {
    let exe = WORKER_EXE.get().ok_or("no worker executable")?;
    let mut cmd = if v.inject {
        let mut c = Command::new(inject);
        c.arg("95").arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.arg("worker").args(args);
    // Each variant sees exactly the settings it names: nothing inherited from the caller's
    // environment (a CFRFIX_MODE=off there would turn every fallback row into a kernel copy).
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.as_bytes().starts_with(b"CFRFIX_") {
            cmd.env_remove(&k);
        }
    }
    if v.preload {
        cmd.env("LD_PRELOAD", lib);
        // The defaults, spelt out so that an /etc/cfrfix.conf cannot change them; a
        // variant's own settings below override these.
        for (k, val) in [
            ("CFRFIX_MODE", "auto"),
            ("CFRFIX_ENGINE", "auto"),
            ("CFRFIX_SPARSE", "auto"),
            ("CFRFIX_LOG", "off"),
        ] {
            cmd.env(k, val);
        }
    }
    for (k, val) in &v.env {
        cmd.env(k, val);
    }
    if let Some(l) = log {
        cmd.env("CFRFIX_LOG", l);
    }
    let out = cmd.output().map_err(|e| format!("spawn: {e}"))?;
    check_interrupt()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        ));
    }
    let mut fields = stdout.split_whitespace();
    let ns = fields
        .next()
        .and_then(|f| f.parse::<f64>().ok())
        .ok_or_else(|| format!("bad worker output {stdout:?}"))?;
    let blocks = fields.next().and_then(|f| f.parse::<u64>().ok());
    Ok((ns, blocks))
}

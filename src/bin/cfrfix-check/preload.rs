//! Where cfrfix is preloaded: this environment's `LD_PRELOAD`, and `/etc/ld.so.preload` for
//! each ABI this machine can run.
//!
//! ld.so reads /etc/ld.so.preload in every process, of every ABI, and expands `$LIB` and
//! `$PLATFORM` in it per ABI. A library of the wrong ELF class or machine, or a missing file, is
//! skipped with an `ERROR: ld.so: ... cannot be preloaded ... ignored.` line on the program's
//! stderr: such programs run without cfrfix (docs/deployment.md, "Multilib").

use crate::abis::{self, Present, Serves};
use std::path::Path;

pub const PRELOAD_FILE: &str = "/etc/ld.so.preload";

pub fn is_cfrfix(entry: &str) -> bool {
    Path::new(entry)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("libcfrfix"))
}

/// ld.so's separators in LD_PRELOAD and /etc/ld.so.preload.
pub fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split([' ', ':', '\t', '\n']).filter(|e| !e.is_empty())
}

/// The cfrfix entries of this environment's LD_PRELOAD.
pub fn ld_preload_entries() -> Vec<String> {
    let value = std::env::var("LD_PRELOAD").unwrap_or_default();
    entries(&value)
        .filter(|e| is_cfrfix(e))
        .map(str::to_string)
        .collect()
}

/// The cfrfix entries of /etc/ld.so.preload; Err if the file is absent or unreadable.
pub fn system_wide_entries() -> Result<Vec<String>, String> {
    match std::fs::read_to_string(PRELOAD_FILE) {
        Ok(text) => Ok(entries(&text)
            .filter(|e| is_cfrfix(e))
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("the file does not exist".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the programs of each ABI this machine runs load `entry`.
pub struct PerAbi {
    /// One line per ABI: `  x86_64 programs: get cfrfix (...)`.
    pub lines: Vec<String>,
    /// Some ABI's programs do not get it.
    pub any_missing: bool,
    /// Why the programs of this tool's own ABI (which runs its test program) do not get it.
    pub native_problem: Option<String>,
}

/// For each ABI this machine runs: whether its programs load `entry`. A file of the right ELF
/// class and machine is also test-loaded into a program of its ABI (`Present::loads`): a
/// truncated library has a valid header.
pub fn per_abi(entry: &str) -> PerAbi {
    per_abi_probed(entry, |abi, path| abi.loads(path))
}

/// `per_abi`, with `loads` to test-load a library of the right ELF class and machine.
fn per_abi_probed(entry: &str, loads: impl Fn(&Present, &str) -> Result<(), String>) -> PerAbi {
    let mut report = PerAbi {
        lines: Vec::new(),
        any_missing: false,
        native_problem: None,
    };
    for abi in abis::present() {
        let path = abi.expand(entry);
        let shown = if path == entry {
            path.clone()
        } else {
            format!("{entry} = {path}")
        };
        // What the loader does with a file that is not of the ABI: skips it, saying so; with
        // one of the ABI that does not load (a truncated file): whatever that does.
        const SKIPPED: &str = "each prints \"ERROR: ld.so: object ... cannot be preloaded\" on \
                               stderr and runs without it";
        const BROKEN: &str = "each fails to start or runs without it";
        let outcome = match abi.serves(Path::new(&path)) {
            Serves::Yes(kind) => match loads(abi, &path) {
                Ok(()) => Ok(kind),
                Err(why) => Err((format!("{kind}, but does not load: {why}"), BROKEN)),
            },
            Serves::No(why) => Err((why, SKIPPED)),
        };
        match outcome {
            Ok(kind) => report.lines.push(format!(
                "  {} programs: get cfrfix ({shown}: {kind})",
                abi.abi.name
            )),
            Err((why, consequence)) => {
                report.any_missing = true;
                if abi.native() {
                    report.native_problem = Some(why.clone());
                }
                report.lines.push(format!(
                    "  {} programs: do NOT get cfrfix ({shown}: {why}); {consequence}",
                    abi.abi.name
                ));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_ld_so() {
        let text = "/a/libm.so.6 /usr/$LIB/libcfrfix.so:/b/x.so\n\t/c/libcfrfix-old.so\n";
        let found: Vec<&str> = entries(text).filter(|e| is_cfrfix(e)).collect();
        assert_eq!(found, ["/usr/$LIB/libcfrfix.so", "/c/libcfrfix-old.so"]);
    }

    #[test]
    fn this_machine_runs_its_own_abi() {
        let native = abis::NATIVE;
        let exe = std::env::current_exe().unwrap();
        let PerAbi {
            lines,
            any_missing: missing,
            ..
        } = per_abi_probed(exe.to_str().unwrap(), |_, _| Ok(()));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("  {native} programs: get cfrfix"))),
            "{lines:?}"
        );
        // Another ABI, if this machine has one (the i386 loader of libc6-i386), must not.
        assert_eq!(missing, lines.len() > 1, "{lines:?}");
        // A native file that does not load is named, and counted for the native ABI.
        let report = per_abi_probed(exe.to_str().unwrap(), |abi, _| {
            if abi.native() {
                Err("file too short".into())
            } else {
                Ok(())
            }
        });
        assert!(report.any_missing);
        assert!(
            report
                .native_problem
                .as_deref()
                .is_some_and(|why| why.ends_with(", but does not load: file too short")),
            "{:?}",
            report.native_problem
        );
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.starts_with(&format!("  {native} programs: do NOT"))
                    && l.contains("but does not load: file too short")),
            "{:?}",
            report.lines
        );
    }
}

//! Where cfrfix is preloaded: this environment's `LD_PRELOAD`, and `/etc/ld.so.preload` for
//! each ABI this machine can run.
//!
//! ld.so reads /etc/ld.so.preload in every process, of every ABI, and expands `$LIB` and
//! `$PLATFORM` in it per ABI. A library of the wrong ELF class or machine, or a missing file, is
//! skipped with an `ERROR: ld.so: ... cannot be preloaded ... ignored.` line on the program's
//! stderr: such programs run without cfrfix (docs/deployment.md, "Multilib").

use crate::abis::{self, Serves};
use std::path::Path;

pub const PRELOAD_FILE: &str = "/etc/ld.so.preload";

fn is_cfrfix(entry: &str) -> bool {
    Path::new(entry)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("libcfrfix"))
}

/// ld.so's separators in LD_PRELOAD and /etc/ld.so.preload.
fn entries(text: &str) -> impl Iterator<Item = &str> {
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

/// For each ABI this machine runs: whether its programs load `entry`, as lines, and whether
/// any ABI does not.
pub fn per_abi(entry: &str) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut any_missing = false;
    for abi in abis::present() {
        let path = abi.expand(entry);
        let shown = if path == entry {
            path.clone()
        } else {
            format!("{entry} = {path}")
        };
        match abi.serves(Path::new(&path)) {
            Serves::Yes(kind) => lines.push(format!(
                "  {} programs: get cfrfix ({shown}: {kind})",
                abi.abi.name
            )),
            Serves::No(why) => {
                any_missing = true;
                lines.push(format!(
                    "  {} programs: do NOT get cfrfix ({shown}: {why}); each prints \"ERROR: \
                     ld.so: object ... cannot be preloaded\" on stderr and runs without it",
                    abi.abi.name
                ));
            }
        }
    }
    (lines, any_missing)
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
        let (lines, missing) = per_abi(exe.to_str().unwrap());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("  {native} programs: get cfrfix"))),
            "{lines:?}"
        );
        // Another ABI, if this machine has one (the i386 loader of libc6-i386), must not.
        assert_eq!(missing, lines.len() > 1, "{lines:?}");
    }
}

//! Row 6: fork+exec of `/bin/true` with the shim preloaded and without, and two C preloads built
//! on the spot (one function, no code at all) as references for what loading any preload costs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Goal, Group, Ratio, Variant};
use crate::driver::{Options, os};

/// Row 6: fork+exec per measurement.
const EXECS: u64 = 500;

pub(crate) fn exec_group(o: &Options, dir: &Path, lib: &Path) -> Group {
    let count = if o.quick { EXECS / 5 } else { EXECS };
    let args = |preload: Option<&Path>| {
        let mut a = vec![os("exec"), os("/bin/true"), os(count.to_string())];
        a.extend(preload.map(os));
        a
    };
    // The exec worker sets LD_PRELOAD for its children itself; it runs without one.
    let v = |name, preload: Option<&Path>| Variant {
        name,
        args: args(preload),
        preload: false,
        inject: false,
        env: vec![],
        ops: count,
    };
    let mut variants = vec![v("none", None), v("shim", Some(lib))];
    let mut ratios = vec![Ratio {
        row: "6",
        what: format!("fork+exec /bin/true ×{count}, shim preloaded ÷ none"),
        den: 0,
        num: 1,
        goal: Goal::AtMost(1.10),
    }];
    // References: what loading any preload costs, whatever its code.
    let references = [
        (
            "trivial",
            TRIVIAL_PRELOAD,
            "  trivial one-function C preload ÷ none (issue: 1.08)",
        ),
        ("empty", EMPTY_PRELOAD, "  empty C library (no code) ÷ none"),
    ];
    for (name, source, what) in references {
        match build_preload(dir, name, source) {
            Ok(so) => {
                variants.push(v(name, Some(&so)));
                ratios.push(Ratio {
                    row: "6",
                    what: what.into(),
                    den: 0,
                    num: variants.len() - 1,
                    goal: Goal::Info,
                });
            }
            Err(e) => eprintln!("no {name} C preload for reference: {e}"),
        }
    }
    if variants.len() > 2 {
        ratios.push(Ratio {
            row: "6",
            what: format!("  shim ÷ {} C preload", variants[2].name),
            den: 2,
            num: 1,
            goal: Goal::Info,
        });
    }
    Group {
        title: "row 6: fork+exec of /bin/true".into(),
        variants,
        ratios,
        blocks: vec![],
        verify_arg: None,
    }
}

/// Row 6's reference preload: the smallest interposer, one function exported as cfrfix does.
const TRIVIAL_PRELOAD: &str = "\
#include <stddef.h>
#include <sys/syscall.h>
long syscall(long number, ...);
long copy_file_range(int fd_in, long long *off_in, int fd_out, long long *off_out,
                     size_t len, unsigned flags)
{
    return syscall(SYS_copy_file_range, fd_in, off_in, fd_out, off_out, len, flags);
}
";

/// And a library with no function at all: the bare cost of one more object for the loader.
const EMPTY_PRELOAD: &str = "int cfrfix_bench_empty;\n";

/// Builds `NAME.so` from `source` with the system's C compiler ($CC, else cc) in the scratch
/// directory.
fn build_preload(dir: &Path, name: &str, source: &str) -> Result<PathBuf, String> {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("{name}.so"));
    fs::write(&c, source).map_err(|e| e.to_string())?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| os("cc"));
    let out = Command::new(&cc)
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .output()
        .map_err(|e| format!("{}: {e}", cc.to_string_lossy()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(so)
}

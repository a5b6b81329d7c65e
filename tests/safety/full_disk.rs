//! Full disk and limits: ENOSPC on a 1 MiB tmpfs, RLIMIT_FSIZE and EDQUOT mid-copy, per-call
//! transcripts equal to the kernel's.

use super::{ENOSYS, STRESS, Setup, command, figure, run};
use crate::common::{ScratchDir, clean, describe, have_command, is_root, skip, text};
use std::path::Path;
use std::process::Command;

/// `program args` inside a private mount namespace with a fresh tmpfs of `options` on `dir`.
fn on_small_tmpfs(dir: &Path, options: &str, inner: Command) -> Command {
    let mut c = clean("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o \"$1\" cfrfix-safety \"$0\" && shift && exec \"$@\"")
        .arg(dir)
        .arg(options)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

fn limits_transcript(dir: &Path, setup: Setup, envs: &[(&str, &str)]) -> String {
    let d = dir.to_str().expect("utf-8");
    let inner = command(setup, envs, STRESS, &["limits", d]);
    let output = run(&mut on_small_tmpfs(dir, "size=1m", inner));
    assert!(
        output.status.success(),
        "limits under {setup:?} {envs:?}: {}",
        describe(&output)
    );
    text(&output.stdout)
}

#[test]
fn enospc_and_rlimit_fsize_mid_copy_match_the_kernel() {
    if !is_root() || !have_command("unshare") {
        return skip("needs root and unshare(1) for a private 1 MiB tmpfs");
    }
    let dir = ScratchDir::tmpfs("safety-limits");
    let native = limits_transcript(dir.path(), Setup::Native, &[]);
    // The scenario must really stop part way: a partial count, then ENOSPC; the RLIMIT_FSIZE
    // clamp, then EFBIG with SIGXFSZ.
    for needle in ["enospc:b:1 ", "errno=28", "errno=27", "xfsz=1"] {
        assert!(
            native.contains(needle),
            "native transcript lacks {needle}:\n{native}"
        );
    }
    let partial = native
        .lines()
        .filter(|l| {
            l.starts_with("enospc")
                && !l.contains("ret=153600")
                && !l.contains("ret=-1")
                && !l.contains("ret=0 ")
        })
        .count();
    let mut runs = 0;
    for engine in ["auto", "splice", "rw"] {
        for sparse in ["auto", "off"] {
            for entry in ["libc", "syscall"] {
                let envs = [
                    ("CFRFIX_ENGINE", engine),
                    ("CFRFIX_SPARSE", sparse),
                    ("STRESS_ENTRY", entry),
                ];
                let shim = limits_transcript(
                    dir.path(),
                    Setup::Shim {
                        errno: ENOSYS,
                        deny_vm: None,
                    },
                    &envs,
                );
                assert_eq!(
                    shim, native,
                    "engine {engine}, sparse {sparse}, entry {entry}: shim transcript differs"
                );
                runs += 1;
            }
        }
    }
    let calls = native.lines().count();
    figure(&format!(
        "limits: {calls} calls per transcript ({partial} partial counts at ENOSPC/EOF, ENOSPC and \
         EFBIG+SIGXFSZ after them), identical to the kernel under {runs} shim configurations"
    ));
}

#[test]
fn edquot_on_a_tmpfs_with_quota() {
    if !is_root() || !have_command("unshare") {
        return skip("needs root and unshare(1)");
    }
    let dir = ScratchDir::tmpfs("safety-quota");
    let probe = run(&mut on_small_tmpfs(
        dir.path(),
        "size=8m,usrquota,usrquota_block_hardlimit=1m",
        clean("true"),
    ));
    if !probe.status.success() {
        return skip(&format!(
            "tmpfs quota unavailable (kernel without CONFIG_TMPFS_QUOTA, before 6.6): {}",
            text(&probe.stderr).trim()
        ));
    }
    // Same scenario as ENOSPC, as `nobody` (root is exempt from quotas): EDQUOT where the
    // 1 MiB filesystem said ENOSPC.
    let d = dir.path().to_str().expect("utf-8");
    let transcript = |setup: Setup| {
        let inner = command(setup, &[], STRESS, &["limits", d]);
        let mut c = clean("sh");
        c.args([
            "-c",
            "chmod 1777 \"$0\" && exec setpriv --reuid=65534 --regid=65534 --clear-groups \"$@\"",
        ])
        .arg(d)
        .arg(inner.get_program())
        .args(inner.get_args());
        let output = run(&mut on_small_tmpfs(
            dir.path(),
            "size=8m,usrquota,usrquota_block_hardlimit=1m",
            c,
        ));
        assert!(output.status.success(), "{setup:?}: {}", describe(&output));
        text(&output.stdout)
    };
    let native = transcript(Setup::Native);
    assert!(
        native.contains("errno=122"),
        "no EDQUOT natively:\n{native}"
    );
    let shim = transcript(Setup::Shim {
        errno: ENOSYS,
        deny_vm: None,
    });
    assert_eq!(shim, native);
    figure("EDQUOT: shim transcript identical to the kernel's");
}

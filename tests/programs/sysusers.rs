//! systemd-sysusers backs up each database (/etc/group -> /etc/group- first) with
//! copy_bytes(), i.e. glibc's copy_file_range().

use crate::common::ScratchDir;
use crate::{
    Setup, assert_bytes_eq, assert_fallback_logged, fresh_dir, pattern, require_program, run,
    stderr_excerpt, tested_errnos,
};
use std::ffi::OsString;
use std::fs;
use std::path::Path;

const SYSUSERS_CONFIG: &str =
    "g cfrgroup 4242\nu cfruser 4343:4242 \"cfrfix test user\" /var/lib/cfruser\n";
const SYSUSERS_DATABASES: [&str; 4] = ["passwd", "group", "shadow", "gshadow"];

/// The original /etc/group: multi-MiB of valid, varied entries.
fn large_group_file() -> Vec<u8> {
    let noise = pattern(3, 40_000 * 8);
    let mut text = String::from("root:x:0:\n");
    for (i, chunk) in noise.chunks(8).enumerate() {
        let members: Vec<String> = chunk[1..]
            .iter()
            .take(usize::from(chunk[0] % 8))
            .map(|b| format!("user{b:02x}{i:x}"))
            .collect();
        text.push_str(&format!(
            "grp{i:06}:x:{}:{}\n",
            100_000 + i,
            members.join(",")
        ));
    }
    text.into_bytes()
}

/// A sysroot with etc/group large, etc/passwd small and odd-sized, etc/gshadow empty,
/// and a sysusers.d entry adding one group and one user.
fn make_sysusers_root(root: &Path, group: &[u8]) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/lib/sysusers.d")).unwrap();
    fs::write(root.join("etc/group"), group).unwrap();
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
    )
    .unwrap();
    fs::write(root.join("etc/gshadow"), "").unwrap();
    fs::write(
        root.join("usr/lib/sysusers.d/cfrfix-test.conf"),
        SYSUSERS_CONFIG,
    )
    .unwrap();
}

/// The databases and their backups after a run, in a fixed order.
fn sysusers_result(root: &Path) -> Vec<(String, Vec<u8>)> {
    SYSUSERS_DATABASES
        .iter()
        .flat_map(|db| [db.to_string(), format!("{db}-")])
        .map(|name| {
            let bytes = fs::read(root.join("etc").join(&name))
                .unwrap_or_else(|e| panic!("read etc/{name}: {e}"));
            (name, bytes)
        })
        .collect()
}

#[test]
fn systemd_sysusers_backup() {
    let Some(sysusers) = require_program("systemd-sysusers") else {
        return;
    };
    let scratch = ScratchDir::tmpfs("sysusers");
    let group = large_group_file();
    // Fixes the password-change day written to shadow, so runs compare equal.
    let env = [("SOURCE_DATE_EPOCH", "86400")];
    let run_in = |name: &str, setup: Setup| {
        let root = fresh_dir(scratch.path(), name);
        make_sysusers_root(&root, &group);
        let args = vec![OsString::from("--root"), root.clone().into_os_string()];
        let out = run(&sysusers, &args, setup, scratch.path(), &env);
        (root, out)
    };

    // The reference result, from a run where nothing fails.
    let (root, out) = run_in("plain", Setup::PLAIN);
    assert!(out.status.success(), "sysusers, plain: {}", out.stderr);
    let expected = sysusers_result(&root);
    let file = |name: &str| &expected.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(
        file("group-"),
        &group,
        "plain run: etc/group- is not the original etc/group"
    );
    assert_eq!(file("group"), &[&group[..], b"cfrgroup:x:4242:\n"].concat());
    assert!(
        String::from_utf8_lossy(file("passwd")).contains("\ncfruser:x:4343:4242:cfrfix test user:")
    );
    assert!(file("gshadow-").is_empty());

    // (a) Without cfrfix. systemd 252.38 falls back on EINVAL, ENOSYS, EXDEV, EBADF
    // and (backported from PR #32341) EOPNOTSUPP; everything else is fatal.
    let fails_without_cfrfix = [524, 1, 5];
    for (errno, name) in tested_errnos() {
        let setup = Setup::injected(errno);
        let (_, out) = run_in(&format!("without-{name}"), setup);
        let context = format!("systemd-sysusers, {}", setup.describe());
        if fails_without_cfrfix.contains(&errno) {
            assert!(
                !out.status.success(),
                "{context}: expected failure, it succeeded"
            );
            assert!(
                out.stderr.contains("Failed to backup"),
                "{context}: failed, but not in the backup: {}",
                stderr_excerpt(&out.stderr)
            );
        } else {
            assert!(
                out.status.success(),
                "{context}: expected its own fallback to work: {}",
                out.stderr
            );
        }
    }

    // (b) With cfrfix: same result as the reference run, byte for byte.
    for (errno, name) in tested_errnos() {
        let log = scratch.path().join(format!("with-{name}.log"));
        let setup = Setup {
            inject_errno: Some(errno),
            cfrfix_log: Some(&log),
        };
        let context = format!("systemd-sysusers, {}", setup.describe());
        let (root, out) = run_in(&format!("with-{name}"), setup);
        assert!(
            out.status.success(),
            "{context}: failed: {}",
            stderr_excerpt(&out.stderr)
        );
        for ((file, want), (_, got)) in expected.iter().zip(sysusers_result(&root)) {
            assert_bytes_eq(&got, want, &format!("{context}: etc/{file}"));
        }
        assert_fallback_logged(&log, errno, &context);
    }
}

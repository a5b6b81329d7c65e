//! Secure execution and quiet fds: a setuid program ignores `CFRFIX_*` but keeps the fallback;
//! nothing is written to fds 1 and 2 by default.

use super::{
    ENOSYS, FALLBACK, Setup, assert_same_file, compile, figure, run, stress, write_pattern,
};
use crate::common::{self, PrivateEtc, ScratchDir, describe, have_command, is_root, skip, text};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn setuid_program_ignores_cfrfix_environment_but_keeps_the_fallback() {
    if !is_root() || !have_command("unshare") || !have_command("setpriv") {
        return skip("needs root, unshare(1) and setpriv(1)");
    }
    // On the root filesystem: /dev/shm may be mounted nosuid.
    let bin = ScratchDir::rootfs("safety-setuid-bin");
    let Some(program) = compile(&bin.path().join("setuid_copy"), &["setuid_copy.c"], &[]) else {
        return;
    };
    let setuid = bin.path().join("setuid_copy_suid");
    fs::copy(&program, &setuid).expect("copy program");
    fs::set_permissions(&setuid, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = ScratchDir::rootfs("safety-setuid-data");
    fs::set_permissions(data.path(), fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    let src = data.path().join("src");
    let content = write_pattern(&src, 300_000, 7);
    let env_log = data.path().join("env.log");
    let conf_log = bin.path().join("conf.log");

    let etc = PrivateEtc::copy("safety-setuid-etc");
    let _ = fs::remove_file(etc.file("cfrfix.conf"));
    fs::write(
        etc.file("ld.so.preload"),
        format!("{}\n", common::cdylib().display()),
    )
    .expect("ld.so.preload");
    let conf = etc.file("cfrfix.conf");
    fs::write(&conf, format!("log = {}\n", conf_log.display())).expect("cfrfix.conf");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).expect("chmod");

    let env_log_s = env_log.to_str().expect("utf-8");
    let hostile = [("CFRFIX_LOG", env_log_s), ("CFRFIX_MODE", "off")];
    let as_nobody = |program: &Path, dst: &str, envs: &[(&str, &str)]| {
        let setpriv = Path::new("setpriv");
        let mut args = vec!["--reuid=65534", "--regid=65534", "--clear-groups", "env"];
        let pairs: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.extend(pairs.iter().map(String::as_str));
        let program = program.to_str().expect("utf-8");
        let src = src.to_str().expect("utf-8");
        args.extend([program, src, dst]);
        let output = run(&mut etc.command(setpriv, &args));
        assert!(output.status.success(), "{}", describe(&output));
        text(&output.stdout)
    };

    // The setuid program: AT_SECURE, so CFRFIX_MODE=off and CFRFIX_LOG are the attacker's and
    // ignored; the root-owned /etc/cfrfix.conf still applies (its log file is written).
    let dst = data.path().join("dst");
    let out = as_nobody(&setuid, dst.to_str().expect("utf-8"), &hostile);
    assert_eq!(out, "secure=1 ruid=65534 euid=0\ncopied 300000\n");
    assert_same_file(&dst, &content);
    assert!(!env_log.exists(), "the setuid program honoured CFRFIX_LOG");
    let logged = fs::read_to_string(&conf_log).expect("the root-owned config's log file");
    assert!(logged.contains("kernel said EOPNOTSUPP"), "{logged}");

    // Control: the same program without the setuid bit honours the same environment, so the
    // assertions above can fail.
    let dst2 = data.path().join("dst2");
    let out = as_nobody(&program, dst2.to_str().expect("utf-8"), &hostile);
    assert_eq!(out, "secure=0 ruid=65534 euid=65534\nerrno 95\n");
    let out = as_nobody(&program, dst2.to_str().expect("utf-8"), &hostile[..1]);
    assert_eq!(out, "secure=0 ruid=65534 euid=65534\ncopied 300000\n");
    assert!(
        env_log.exists(),
        "CFRFIX_LOG not honoured outside secure execution"
    );

    // The log file is opened with O_NOFOLLOW: a symlink planted at the path is not followed,
    // even by root.
    let victim = bin.path().join("victim");
    fs::write(&victim, "precious\n").expect("victim");
    let link = data.path().join("link.log");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let link_s = link.to_str().expect("utf-8");
    let dst3 = data.path().join("dst3");
    let output = run(etc
        .command(
            &program,
            &[src.to_str().expect("utf-8"), dst3.to_str().expect("utf-8")],
        )
        .env("CFRFIX_LOG", link_s));
    assert_eq!(
        text(&output.stdout),
        "secure=0 ruid=0 euid=0\ncopied 300000\n"
    );
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    figure(
        "secure execution: setuid copy as nobody used the fallback, ignored CFRFIX_LOG/CFRFIX_MODE, honoured root-owned cfrfix.conf; log path symlink not followed",
    );
}

#[test]
fn nothing_is_written_to_stdout_or_stderr_by_default() {
    let dir = ScratchDir::tmpfs("safety-quiet");
    let src = dir.path().join("src");
    let content = write_pattern(&src, 2_000_000, 9);
    let (s, d) = (
        src.to_str().expect("utf-8").to_string(),
        dir.path().join("dst").to_str().expect("utf-8").to_string(),
    );
    // The same program's output natively and with every copy a fallback: byte for byte.
    let native = stress(Setup::Native, &[], &["copy", &s, &d]);
    let fallback = stress(FALLBACK, &[], &["copy", &s, &d]);
    assert!(native.status.success() && fallback.status.success());
    assert_eq!(text(&native.stdout), "copied 2000000\n");
    assert_eq!(fallback.stdout, native.stdout);
    assert!(
        native.stderr.is_empty() && fallback.stderr.is_empty(),
        "{}",
        describe(&fallback)
    );
    assert_same_file(Path::new(&d), &content);

    // A daemon that closed 1 and 2 and reused the numbers for data files: fallbacks that
    // succeed and fail (EINVAL, EBADF, EFAULT) write nothing into them.
    let daemon_dir = ScratchDir::tmpfs("safety-daemon");
    let dd = daemon_dir.path().to_str().expect("utf-8");
    for setup in [
        FALLBACK,
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: Some(ENOSYS),
        },
    ] {
        let output = stress(setup, &[], &["daemon", dd]);
        let result = fs::read_to_string(daemon_dir.path().join("result")).unwrap_or_default();
        assert!(
            output.status.success() && result.contains(" clean"),
            "{setup:?}: {result}\n{}",
            describe(&output)
        );
        assert_eq!(
            fs::metadata(daemon_dir.path().join("data1"))
                .expect("data1")
                .len(),
            0
        );
        assert_eq!(
            fs::metadata(daemon_dir.path().join("data2"))
                .expect("data2")
                .len(),
            0
        );
    }
    figure(
        "quiet: stdout/stderr identical with and without fallbacks; 15 fallback calls with fds 1/2 reused wrote nothing there",
    );
}

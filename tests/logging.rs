//! The fallback log (`CFRFIX_LOG`): one line per fallback naming both files, the errno, the
//! bytes and the engine, and a per-process rate limit so a hot loop cannot fill a disk.

mod common;

use std::process::Command;

use common::ScratchDir;

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");

/// Runs a python3 program under `cfrfix-inject 95` with the shim, logging to `log`.
/// `None` (after printing SKIPPED) when python3 is absent.
fn python_under_fallback(script: &str, dir: &ScratchDir, log: &std::path::Path) -> Option<()> {
    if !common::have_command("python3") {
        common::skip("python3 not installed");
        return None;
    }
    let out = Command::new(INJECT)
        .args(["95", "python3", "-c", script])
        .current_dir(dir.path())
        .env("LD_PRELOAD", common::cdylib())
        .env("CFRFIX_LOG", log)
        .env_remove("CFRFIX_MODE")
        .env_remove("CFRFIX_ERRNOS")
        .output()
        .expect("run python3 under cfrfix-inject");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

#[test]
fn a_line_names_files_errno_bytes_and_engine() {
    let dir = ScratchDir::tmpfs("log-line");
    let log = dir.path().join("cfrfix.log");
    let script = r#"
import os
open('src', 'wb').write(b'x' * 12345)
i = os.open('src', os.O_RDONLY)
o = os.open('dst', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
assert os.copy_file_range(i, o, 1 << 20) == 12345
print(i, o)
"#;
    if python_under_fallback(script, &dir, &log).is_none() {
        return;
    }
    let text = std::fs::read_to_string(&log).expect("log file written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one fallback, one line: {text}");
    let src = dir.path().join("src");
    let dst = dir.path().join("dst");
    let expected_tail = format!(
        " ({}) -> fd 4 ({})): kernel said EOPNOTSUPP; copied 12345 bytes in user space \
         (engine sendfile; read 12345, wrote 12345, left 0 as holes)",
        src.display(),
        dst.display()
    );
    assert!(
        lines[0].starts_with("cfrfix[") && lines[0].contains("]: copy_file_range(fd 3"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(&expected_tail), "{}", lines[0]);
}

#[test]
fn a_hot_loop_is_rate_limited_and_the_suppressed_lines_are_counted() {
    let dir = ScratchDir::tmpfs("log-rate");
    let log = dir.path().join("cfrfix.log");
    // 200 fallbacks as fast as possible, then one more after the budget's second has passed.
    let script = r#"
import os, time
open('src', 'wb').write(b'0123456789')
i = os.open('src', os.O_RDONLY)
o = os.open('dst', os.O_WRONLY | os.O_CREAT)
start = time.monotonic()
for _ in range(200):
    assert os.copy_file_range(i, o, 10, 0, 0) == 10
print(time.monotonic() - start)
time.sleep(1.1)
assert os.copy_file_range(i, o, 10, 0, 0) == 10
"#;
    if python_under_fallback(script, &dir, &log).is_none() {
        return;
    }
    let text = std::fs::read_to_string(&log).expect("log file written");
    let lines: Vec<&str> = text.lines().collect();
    // 20 a second: the loop may straddle one second boundary, so at most 40 lines for it.
    assert!(
        lines.len() >= 21 && lines.len() <= 41,
        "{} lines for 201 fallbacks",
        lines.len()
    );
    // A line after dropped ones says how many; logged + dropped accounts for every call.
    let suppressed_on = |line: &str| -> usize {
        line.split(" [")
            .nth(1)
            .and_then(|s| s.strip_suffix(" earlier lines suppressed]"))
            .map_or(0, |n| n.parse().expect("a count"))
    };
    let suppressed: usize = lines.iter().map(|l| suppressed_on(l)).sum();
    assert_eq!(lines.len() + suppressed, 201, "{text}");
    assert!(lines.iter().all(|l| l.contains("copied 10 bytes")));
}

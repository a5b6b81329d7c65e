//! valgrind memcheck over every engine, sparse off and the pipe path: no errors, no leaks.

use super::{ENOSYS, STRESS, Setup, command, figure, run_within};
use crate::common::{ScratchDir, describe, have_command, skip, text};
use std::fs;
use std::time::Duration;

#[test]
fn valgrind_memcheck_over_every_engine() {
    if !have_command("valgrind") {
        return skip("valgrind not installed (.ci/run installs it)");
    }
    let configs: [(&str, &str, &str, Option<u16>); 5] = [
        ("auto", "auto", "engine sendfile", None),
        ("splice", "auto", "engine splice", None),
        ("rw", "auto", "engine rw", None),
        ("auto", "off", "engine sendfile", None),
        ("rw", "off", "engine rw", Some(ENOSYS)),
    ];
    let handles: Vec<_> = configs
        .into_iter()
        .map(|(engine, sparse, expect_engine, deny_vm)| {
            std::thread::spawn(move || {
                let dir = ScratchDir::tmpfs("safety-valgrind");
                let log = dir.path().join("cfrfix.log");
                let log_s = log.to_str().expect("utf-8").to_string();
                let work = dir.path().join("work");
                fs::create_dir(&work).expect("mkdir");
                let work_s = work.to_str().expect("utf-8");
                let envs = [
                    ("CFRFIX_ENGINE", engine),
                    ("CFRFIX_SPARSE", sparse),
                    ("CFRFIX_LOG", log_s.as_str()),
                ];
                let setup = Setup::Shim {
                    errno: ENOSYS,
                    deny_vm,
                };
                let output = run_within(
                    &mut command(
                        setup,
                        &envs,
                        "valgrind",
                        &[
                            "--error-exitcode=99",
                            "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect",
                            STRESS,
                            "workload",
                            work_s,
                        ],
                    ),
                    Duration::from_secs(120),
                    None,
                );
                let stderr = text(&output.stderr);
                let name = format!("engine={engine} sparse={sparse} deny_vm={deny_vm:?}");
                assert!(
                    output.status.success() && text(&output.stdout).starts_with("workload ok"),
                    "{name}: {}",
                    describe(&output)
                );
                assert!(
                    stderr.contains("ERROR SUMMARY: 0 errors"),
                    "{name}: {stderr}"
                );
                let logged = fs::read_to_string(&log).unwrap_or_default();
                assert!(
                    logged.contains(expect_engine),
                    "{name}: the log shows no {expect_engine}:\n{logged}"
                );
                let leaks: Vec<String> = stderr
                    .lines()
                    .filter(|l| {
                        l.contains("definitely lost")
                            || l.contains("indirectly lost")
                            || l.contains("All heap blocks were freed")
                            || l.contains("ERROR SUMMARY")
                    })
                    .map(|l| l.split("== ").nth(1).unwrap_or(l).trim().to_string())
                    .collect();
                format!(
                    "{name}: {} | {}",
                    text(&output.stdout).trim(),
                    leaks.join("; ")
                )
            })
        })
        .collect();
    for h in handles {
        match h.join() {
            Ok(line) => figure(&format!("valgrind {line}")),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}

//! The aarch64 library under qemu-aarch64: the differential suite's cases through the aarch64
//! probe, natively vs preloaded, in mode `always` (every call emulated) and in mode `auto` with
//! the kernel's refusal injected. qemu-user refuses a guest's seccomp filter, but `cfrfix-inject`
//! filters the emulator itself, whose copy_file_range is the host's: the guest sees the errno.
//! And a natural EXDEV (tmpfs → the root filesystem) in a C program built for aarch64.
//!
//! qemu itself deviates from the kernel where offset pointers are bad: it checks them before
//! the descriptors (EFAULT before EBADF), does not write back a variable on a read-only page,
//! and writes a variable that straddles into a read-only page all or nothing — both for the
//! kernel's copy and for the library's own write-back, which goes through the emulated read(2).
//! So: where qemu's own answer differs from the host kernel's (allowed only for those pointer
//! cases), the library must give the host kernel's answer in mode `always`; under injection
//! qemu's own answer is also right, because qemu answers an unreadable pointer itself, before
//! the (refusing) kernel is asked, and the library never sees a refusal. Straddling variables
//! are left out.

use std::path::Path;
use std::sync::OnceLock;

use crate::common::{Rng, ScratchDir, describe, text};
use crate::probe::cases::cases;
use crate::probe::{self, ENTRY_POINTS, Launch, ProbeRun, field_differences};
use crate::targets::{self, AARCH64, Build};

const INJECTED_ERRNOS: [u32; 6] = [95, 524, 18, 38, 1, 5];
const MISMATCHES_SHOWN: usize = 20;

/// The cases compared under qemu: all but those whose offset variable straddles into a
/// read-only page.
fn emulated_cases() -> &'static [String] {
    static CASES: OnceLock<Vec<String>> = OnceLock::new();
    CASES.get_or_init(|| {
        cases()
            .iter()
            .filter(|c| !c.contains("splitro:"))
            .cloned()
            .collect()
    })
}

fn has_bad_pointer(case: &str) -> bool {
    ["off_in=", "off_out="].iter().any(|key| {
        case.split_whitespace().any(|field| {
            field.strip_prefix(key).is_some_and(|v| {
                v.starts_with("ro:") || matches!(v, "fault" | "splitfault" | "lowaddr")
            })
        })
    })
}

/// What the library must answer for each case: qemu's native answer, or the host kernel's where
/// the emulator deviates from it (`lines`); `guest_lines` are qemu's own answers.
struct Expected {
    lines: Vec<String>,
    guest_lines: Vec<String>,
    /// How many cases take the host kernel's answer.
    emulator_deviations: usize,
}

fn expected(build: &Build, emulator: &[String]) -> &'static Expected {
    static EXPECTED: OnceLock<Expected> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let probe = build.probe();
        let guest = probe::run(&Launch::native(&probe).emulated(emulator), "libc", emulated_cases());
        assert!(guest.failure.is_none(), "native aarch64 run: {:?}", guest.failure);
        let host_probe = Path::new(env!("CARGO_BIN_EXE_cfrfix-probe"));
        let host = probe::run(&Launch::native(host_probe), "libc", emulated_cases());
        assert!(host.failure.is_none(), "native x86_64 run: {:?}", host.failure);
        let mut emulator_deviations = 0;
        let lines = (0..emulated_cases().len())
            .map(|i| {
                let (case, guest_line, host_line) = (&emulated_cases()[i], &guest.lines[i], &host.lines[i]);
                if guest_line == host_line {
                    return guest_line.clone();
                }
                assert!(
                    has_bad_pointer(case),
                    "qemu differs from the kernel in a case without a bad pointer: {case}\n  qemu:   {guest_line}\n  kernel: {host_line}"
                );
                emulator_deviations += 1;
                host_line.clone()
            })
            .collect();
        Expected {
            lines,
            guest_lines: guest.lines,
            emulator_deviations,
        }
    })
}

fn aarch64_setup(test: &str) -> Option<(Build, Vec<String>)> {
    let build = targets::build(AARCH64, test)?;
    let emulator = targets::aarch64_emulator(test)?;
    Some((build, emulator))
}

/// Panics with a report of the cases where `runs` differ from the expected answers.
/// With `emulator_may_answer`, qemu's own answer is accepted where it deviates from the kernel's.
fn assert_matches(
    expected: &Expected,
    runs: &[(String, &str, ProbeRun)],
    emulator_may_answer: bool,
) {
    let mut report = String::new();
    let (mut mismatches, mut shown) = (0, 0);
    for (label, entry, run) in runs {
        for (i, want) in expected.lines.iter().enumerate() {
            let got = run
                .lines
                .get(i)
                .map_or("<no result: probe died>", String::as_str);
            let emulator_answered = emulator_may_answer && expected.guest_lines[i] == got;
            if got == want || emulator_answered {
                continue;
            }
            mismatches += 1;
            if shown < MISMATCHES_SHOWN {
                shown += 1;
                report += &format!(
                    "{label}: case #{i}: entry={entry} {}\n  kernel: {want}\n  shim:   {got}\n  differs: {}\n",
                    emulated_cases()[i],
                    field_differences(want, got)
                );
            }
        }
        if let Some(failure) = &run.failure {
            report += &format!("{label}: {failure}\n");
        }
    }
    assert!(
        mismatches == 0,
        "the aarch64 library differs in {mismatches} case runs (first {shown} shown):\n{report}"
    );
}

#[test]
fn aarch64_shim_matches_kernel_in_mode_always() {
    let Some((build, emulator)) = aarch64_setup("aarch64_shim_matches_kernel_in_mode_always")
    else {
        return;
    };
    let expected = expected(&build, &emulator);
    println!(
        "FIGURES: aarch64: {} cases ({} with a straddling offset variable left out; {} take the host kernel's answer where qemu deviates), each through {} entry points, in mode always (4 engine settings) and under {} injected errnos",
        emulated_cases().len(),
        cases().len() - emulated_cases().len(),
        expected.emulator_deviations,
        ENTRY_POINTS.len(),
        INJECTED_ERRNOS.len()
    );
    // The comparison must stay meaningful: the emulator's own deviations are few.
    assert!(expected.emulator_deviations < emulated_cases().len() / 10);
    let (probe, library) = (build.probe(), build.library());
    let mut runs: Vec<(String, &str, ProbeRun)> = Vec::new();
    // The default engines, then each engine forced, as tests/differential.rs does.
    let settings: [&[(&str, &str)]; 4] = [
        &[("CFRFIX_MODE", "always")],
        &[("CFRFIX_MODE", "always"), ("CFRFIX_SPARSE", "off")],
        &[("CFRFIX_MODE", "always"), ("CFRFIX_ENGINE", "splice")],
        &[
            ("CFRFIX_MODE", "always"),
            ("CFRFIX_ENGINE", "rw"),
            ("CFRFIX_SPARSE", "off"),
        ],
    ];
    for env in settings {
        for entry in ENTRY_POINTS {
            let launch = Launch::native(&probe)
                .emulated(&emulator)
                .preloaded(&library)
                .with_env(env);
            let run = probe::run(&launch, entry, emulated_cases());
            runs.push((format!("{env:?}, entry {entry}"), entry, run));
        }
    }
    assert_matches(expected, &runs, false);
}

#[test]
fn aarch64_shim_matches_kernel_under_injection_through_the_emulator() {
    let Some((build, emulator)) =
        aarch64_setup("aarch64_shim_matches_kernel_under_injection_through_the_emulator")
    else {
        return;
    };
    let expected = expected(&build, &emulator);
    let (probe, library) = (build.probe(), build.library());
    // The filter on the emulator reaches the guest: without the library, the errno comes back.
    let plain = probe::run(
        &Launch::native(&probe).emulated(&emulator).injected(95),
        "libc",
        &["src_size=4096 len=4096".into()],
    );
    assert!(
        plain
            .lines
            .first()
            .is_some_and(|l| l.starts_with("ret=-1 errno=95 ")),
        "{:?}",
        plain.lines
    );
    let mut runs = Vec::new();
    for errno in INJECTED_ERRNOS {
        for entry in ENTRY_POINTS {
            let launch = Launch::native(&probe)
                .emulated(&emulator)
                .injected(errno)
                .preloaded(&library);
            runs.push((
                format!("errno {errno}, entry {entry}"),
                entry,
                probe::run(&launch, entry, emulated_cases()),
            ));
        }
    }
    assert_matches(expected, &runs, true);
}

#[test]
fn aarch64_natural_exdev_is_copied_by_the_library() {
    let test = "aarch64_natural_exdev_is_copied_by_the_library";
    let Some((build, emulator)) = aarch64_setup(test) else {
        return;
    };
    let bin = ScratchDir::tmpfs("abi-aarch64-bin");
    let Some(program) = targets::compile_c(
        test,
        bin.path(),
        "abi_copy",
        "abi_copy",
        "aarch64-linux-gnu-gcc",
        &[],
    ) else {
        return;
    };
    let rootfs = ScratchDir::rootfs("abi-aarch64-exdev");
    let source = bin.path().join("source");
    let mut rng = Rng(0xa64);
    let content: Vec<u8> = (0..2 * 1024 * 1024 + 99)
        .map(|_| rng.next() as u8)
        .collect();
    std::fs::write(&source, &content).expect("write source");
    let destination = rootfs.path().join("copy");
    let library = build.library();
    for entry in ["libc", "syscall"] {
        for preload in [None, Some(&library)] {
            let _ = std::fs::remove_file(&destination);
            let mut command = crate::common::clean(&emulator[0]);
            command.args(&emulator[1..]);
            if let Some(library) = preload {
                command
                    .arg("-E")
                    .arg(format!("LD_PRELOAD={}", library.display()));
            }
            command
                .arg(&program)
                .arg(entry)
                .arg(&source)
                .arg(&destination)
                .arg("1048576");
            let out = crate::common::output_within(
                &mut command,
                std::time::Duration::from_secs(120),
                None,
            )
            .expect("start qemu")
            .expect("qemu hung");
            let stdout = text(&out.stdout);
            match preload {
                None => assert!(
                    stdout.starts_with("ret=-1 errno=18 total=0 "),
                    "{entry}, plain: {}",
                    describe(&out)
                ),
                Some(_) => {
                    assert_eq!(
                        stdout,
                        format!("ret=0 errno=0 total={} calls=4\n", content.len()),
                        "{entry}: {}",
                        describe(&out)
                    );
                    assert!(
                        std::fs::read(&destination).expect("read copy") == content,
                        "{entry}: bytes differ"
                    );
                }
            }
        }
    }
}

//! Bad offset pointers (unmapped, partly mapped, page zero, read-only), with process_vm_* allowed
//! and denied (the pipe path), compared case by case with the kernel through `cfrfix-probe`.

use super::{ENOSYS, EPERM, Setup, assert_same_results, figure, probe_lines};

/// Unmapped, partly mapped, page-zero and read-only offset pointers, alone and combined with
/// every other check, through all three entry points.
fn bad_pointer_cases() -> Vec<String> {
    let kinds = [
        "fault",
        "splitfault",
        "lowaddr",
        "ro:0",
        "ro:10",
        "splitro:10",
        "splitro:0xfffffff0",
        "null",
        "5",
    ];
    let mut cases = Vec::new();
    for entry in ["libc", "syscall", "dlsym"] {
        for off_in in kinds {
            for off_out in kinds.iter().chain(&["alias"]) {
                for len in [0, 100, 70_000] {
                    cases.push(format!(
                        "entry={entry} src_size=100000 dst_size=50 src_pos=3 dst_pos=4 off_in={off_in} off_out={off_out} len={len} seed=1"
                    ));
                }
            }
            // The pointer checks come after EBADF and before the flags, EISDIR, EINVAL, EFBIG.
            for extra in [
                "src=minus1",
                "dst=closed",
                "flags=1",
                "src=dir",
                "dst=pipe",
                "dst_mode=append",
                "fsize=0",
            ] {
                cases.push(format!(
                    "entry={entry} src_size=1000 off_in={off_in} off_out=fault len=10 {extra}"
                ));
                cases.push(format!(
                    "entry={entry} src_size=1000 off_in={off_in} off_out=ro:7 len=10 {extra}"
                ));
            }
        }
    }
    cases
}

#[test]
fn bad_offset_pointers_match_the_kernel_even_where_it_never_looked() {
    let cases = bad_pointer_cases();
    let native = probe_lines(Setup::Native, &cases);
    // The kernel's "copied, then EFAULT on write-back" must be among the answers, or this test
    // would not test it: a read-only off_out with bytes in the destination afterwards.
    let copied_then_efault = native
        .iter()
        .zip(&cases)
        .filter(|(l, c)| {
            c.contains("off_out=ro:")
                && l.starts_with("ret=-1 errno=14 ")
                && !l.contains(" dst=50:")
        })
        .count();
    assert!(
        copied_then_efault > 20,
        "only {copied_then_efault} copied-then-EFAULT cases"
    );
    let efault = native.iter().filter(|l| l.contains(" errno=14 ")).count();
    let mut runs = 0;
    for setup in [
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: None,
        },
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: Some(ENOSYS),
        },
        Setup::Shim {
            errno: EPERM,
            deny_vm: Some(EPERM),
        },
    ] {
        let shim = probe_lines(setup, &cases);
        assert_same_results(&format!("{setup:?}"), &cases, &native, &shim);
        runs += 1;
    }
    figure(&format!(
        "bad pointers: {} cases x {runs} shim setups (process_vm_* allowed; denied with ENOSYS; \
         denied with EPERM = pipe path), {efault} EFAULT answers, {copied_then_efault} copied-then-EFAULT",
        cases.len()
    ));
}

/// Found by the fuzz (a regression test now): a destination inode made append-only (`chattr +a`)
/// after it was opened for writing, and a source ending in a hole. The kernel writes the hole
/// as zeros; the sparse engine skipped it and then failed to extend the destination with
/// ftruncate, which append-only inodes refuse (EPERM): a short count, then EPERM.
#[test]
fn append_only_destination_with_a_sparse_source_matches_the_kernel() {
    let mut cases = Vec::new();
    for entry in ["libc", "syscall"] {
        for extra in [
            "",
            "off_in=0 off_out=0",
            "dst_size=200 off_in=200 off_out=200",
        ] {
            cases.push(format!(
                "entry={entry} src_size=100 src_trunc=100000 len=100000 dst_attr=appendonly {extra}"
            ));
        }
    }
    let native = probe_lines(Setup::Native, &cases);
    let shim = probe_lines(
        Setup::Shim {
            errno: ENOSYS,
            deny_vm: None,
        },
        &cases,
    );
    assert_same_results("append-only destination", &cases, &native, &shim);
}

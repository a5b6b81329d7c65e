//! A bounded differential fuzz over the whole argument space, the kernel's answers against the
//! shim's (seed and count printed; `CFRFIX_FUZZ_SEED` and `CFRFIX_FUZZ_CASES` change them).

use super::{ENOSYS, EOPNOTSUPP, EPERM, Setup, assert_same_results, figure, probe_lines};
use crate::common::Rng;
use std::sync::OnceLock;

const FUZZ_DEFAULT_SEED: u64 = 0x5afe_cf12_0000_0001;
const FUZZ_DEFAULT_CASES: usize = 5000;

fn fuzz_params() -> (u64, usize) {
    let seed = match std::env::var("CFRFIX_FUZZ_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        Some(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
            .expect("CFRFIX_FUZZ_SEED: a number, 0x-hex or 'random'"),
        None => FUZZ_DEFAULT_SEED,
    };
    let cases = std::env::var("CFRFIX_FUZZ_CASES")
        .ok()
        .map(|s| s.parse().expect("CFRFIX_FUZZ_CASES: a number"))
        .unwrap_or(FUZZ_DEFAULT_CASES);
    (seed, cases)
}

/// An offset argument for a file of `size` bytes.
fn fuzz_offset(rng: &mut Rng, size: u64, is_out: bool) -> String {
    let near = |rng: &mut Rng| rng.below(size + 2000);
    match rng.below(100) {
        0..=34 => "null".into(),
        35..=69 => near(rng).to_string(),
        70..=79 => rng
            .pick(&[
                "-1",
                "-4096",
                "0x7ffff000",
                "0x7ffffffffffffffe",
                "0x7fffffffffffffff",
                "0x8000000000000000",
                "0xffffffffffffff9c",
                "1099511627776",
            ])
            .to_string(),
        80..=85 => format!("ro:{}", near(rng)),
        86..=88 => format!("splitro:{}", near(rng)),
        89..=91 => "fault".into(),
        92..=93 => "splitfault".into(),
        94..=95 => "lowaddr".into(),
        _ if is_out => "alias".into(),
        _ => near(rng).to_string(),
    }
}

fn fuzz_case(rng: &mut Rng) -> String {
    let mut fields: Vec<String> = Vec::new();
    let mut add = |s: String| fields.push(s);
    add(format!("entry={}", rng.pick(&["libc", "syscall", "dlsym"])));
    let src_size = match rng.below(4) {
        0 => rng.below(100),
        1 => rng.below(10_000),
        2 => rng.below(100_000),
        _ => rng.below(300_000),
    };
    add(format!("src_size={src_size} seed={}", rng.next()));
    if rng.chance(10) {
        // A sparse tail (bounded: the kernel would fill holes in with real zero pages) or a
        // truncation below the data.
        let trunc = if rng.chance(70) {
            src_size + rng.below(4 << 20)
        } else {
            rng.below(src_size + 1)
        };
        add(format!("src_trunc={trunc}"));
    }
    if rng.chance(12) {
        add(format!(
            "src={}",
            rng.pick(&["dir", "pipe", "devnull", "minus1", "closed"])
        ));
    }
    if rng.chance(12) {
        add(format!(
            "src_mode={}",
            rng.pick(&["wo", "rw", "append", "rwappend", "path"])
        ));
    }
    if rng.chance(30) {
        add(format!("src_pos={}", rng.below(src_size + 1000)));
    }
    match rng.below(100) {
        0..=9 => add(format!(
            "dst={} src_mode=rw",
            rng.pick(&["samefd", "samepath", "hardlink"])
        )),
        10..=17 => add(format!(
            "dst={}",
            rng.pick(&["dir", "pipe", "devnull", "minus1", "closed"])
        )),
        _ => {
            add(format!("dst_size={}", rng.below(2 * src_size + 10)));
            if rng.chance(8) {
                add(format!("dst_trunc={}", rng.below(1 << 22)));
            }
        }
    }
    if rng.chance(15) {
        add(format!(
            "dst_mode={}",
            rng.pick(&["rw", "ro", "append", "rwappend", "path"])
        ));
    }
    if rng.chance(30) {
        add(format!("dst_pos={}", rng.below(src_size + 1000)));
    }
    let mut off_in = fuzz_offset(rng, src_size, false);
    let off_out = fuzz_offset(rng, src_size, true);
    if off_out == "alias" && off_in == "null" {
        // Aliasing needs an off_in pointer to alias.
        off_in = rng.below(src_size + 2000).to_string();
    }
    add(format!("off_in={off_in} off_out={off_out}"));
    let len = match rng.below(10) {
        0 => *rng.pick(&[
            0u64,
            1,
            4096,
            0x7fff_f000,
            0x7fff_f001,
            0xffff_ffff,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ]),
        1 => rng.below(100),
        2..=6 => rng.below(src_size + 5000),
        _ => rng.below(400_000),
    };
    add(format!("len={len}"));
    if rng.chance(5) {
        add(format!(
            "flags={}",
            rng.pick(&["1", "2", "0x80000000", "0xffffffff"])
        ));
    }
    if rng.chance(8) {
        add(format!("fsize={}", rng.below(src_size + 2000)));
    }
    if rng.chance(3) {
        add(format!(
            "dst_attr={}",
            rng.pick(&["immutable", "appendonly"])
        ));
    }
    if rng.chance(2) {
        add("src_attr=immutable".into());
    }
    fields.join(" ")
}

struct Fuzz {
    seed: u64,
    cases: Vec<String>,
    native: Vec<String>,
}

/// The generated cases and the kernel's answers, shared by the fuzz tests.
fn fuzz() -> &'static Fuzz {
    static FUZZ: OnceLock<Fuzz> = OnceLock::new();
    FUZZ.get_or_init(|| {
        let (seed, count) = fuzz_params();
        let mut rng = Rng(seed);
        let cases: Vec<String> = (0..count).map(|_| fuzz_case(&mut rng)).collect();
        let native = probe_lines(Setup::Native, &cases);
        if let Some(i) = native.iter().position(|l| l.starts_with("error=")) {
            panic!(
                "fuzz case #{i} does not parse: {} → {}",
                cases[i], native[i]
            );
        }
        Fuzz {
            seed,
            cases,
            native,
        }
    })
}

fn fuzz_against(setup: Setup) {
    let f = fuzz();
    let shim = probe_lines(setup, &f.cases);
    let copied = f
        .native
        .iter()
        .filter(|l| !l.starts_with("ret=-1 ") && !l.starts_with("ret=0 "))
        .count();
    let failed = f.native.iter().filter(|l| l.starts_with("ret=-1 ")).count();
    let mut errnos: Vec<&str> = f
        .native
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|e| *e != "errno=0")
        .collect();
    errnos.sort_unstable();
    errnos.dedup();
    figure(&format!(
        "fuzz seed={:#x} cases={} under {setup:?}: {copied} copied data, {failed} failed ({}) \
         (CFRFIX_FUZZ_SEED=... CFRFIX_FUZZ_CASES=... to change)",
        f.seed,
        f.cases.len(),
        errnos.join(" ")
    ));
    assert_same_results(
        &format!("fuzz seed {:#x} under {setup:?}", f.seed),
        &f.cases,
        &f.native,
        &shim,
    );
    // A generator that produced only early failures would prove little (about a quarter of
    // the cases copy data; any seed stays well above a sixth).
    assert!(
        copied * 6 >= f.cases.len(),
        "only {copied} cases copied data"
    );
}

#[test]
fn fuzz_shim_matches_kernel_under_enosys() {
    fuzz_against(Setup::Shim {
        errno: ENOSYS,
        deny_vm: None,
    });
}

#[test]
fn fuzz_shim_matches_kernel_with_process_vm_denied() {
    // The seccomp profile of a container that forbids process_vm_*: offsets go through a pipe.
    fuzz_against(Setup::Shim {
        errno: ENOSYS,
        deny_vm: Some(ENOSYS),
    });
}

#[test]
fn fuzz_shim_matches_kernel_under_eopnotsupp_with_process_vm_eperm() {
    fuzz_against(Setup::Shim {
        errno: EOPNOTSUPP,
        deny_vm: Some(EPERM),
    });
}

//! A source that is truncated, rewritten, grown, shrunk or punched while a fallback copy runs
//! yields only bytes the source held at some moment during the call: never invented zeros.
//!
//! Deterministic, not lucky: `cfrfix-step` (drivers/step) stops the copying thread inside its
//! Nth system call (seccomp user notification), changes the source, and lets it go on. Every
//! case is run once to count the copy's system calls, then once for each step.
//!
//! Every engine a default setting can choose runs here. The opt-in `CFRFIX_ENGINE=splice` does
//! not: its pipe holds page references between two system calls, and this test found that a
//! source truncated in between has the tail of its last page zeroed under it (README).

use crate::calls::pattern;
use crate::common::ScratchDir;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

const STEP: &str = env!("CARGO_BIN_EXE_cfrfix-step");
const LEN: usize = 2_500_000;

/// The source's original content: dense (non-zero bytes) or sparse (extents between holes,
/// which `st_blocks` shows, so the copy reads it with the sparse walk).
fn write_source(path: &Path, sparse: bool) -> Vec<u8> {
    let _ = fs::remove_file(path);
    if !sparse {
        let bytes = pattern(50, LEN);
        fs::write(path, &bytes).expect("dense source");
        return bytes;
    }
    let mut bytes = vec![0u8; LEN];
    let f = fs::File::create(path).expect("sparse source");
    for (i, (at, len)) in [(100_000, 300_000), (1_200_000, 5000), (2_000_000, 400_000)]
        .into_iter()
        .enumerate()
    {
        let data = pattern(51 + i as u64, len);
        f.write_all_at(&data, at as u64).expect("extent");
        bytes[at..at + len].copy_from_slice(&data);
    }
    f.set_len(LEN as u64).expect("size");
    bytes
}

/// One race: the actions (as `cfrfix-step` takes them, with `{k}` for the step) and the
/// contents the source holds at some moment.
struct Race {
    name: &'static str,
    actions: Vec<String>,
    held: Vec<Vec<u8>>,
}

fn races(dir: &Path, original: &[u8]) -> Vec<Race> {
    let other = pattern(60, LEN);
    let more = pattern(61, 700_000);
    let b = dir.join("B");
    let c = dir.join("C");
    fs::write(&b, &other).expect("B");
    fs::write(&c, &more).expect("C");
    let (b, c) = (b.display().to_string(), c.display().to_string());
    let mut punched = original.to_vec();
    punched[300_000..1_800_000].fill(0);
    let grown = [original, &more[..]].concat();
    vec![
        Race {
            name: "rewrite (momentarily empty)",
            actions: vec!["truncate=0@{k}".into(), format!("replace={b}@{{k1}}")],
            held: vec![original.to_vec(), other.clone()],
        },
        Race {
            name: "truncate to empty",
            actions: vec!["truncate=0@{k}".into()],
            held: vec![original.to_vec()],
        },
        Race {
            name: "shrink",
            actions: vec!["truncate=1234567@{k}".into()],
            held: vec![original.to_vec()],
        },
        Race {
            name: "grow",
            actions: vec![format!("append={c}@{{k}}")],
            held: vec![grown],
        },
        Race {
            name: "overwrite in place",
            actions: vec![format!("replace={b}@{{k}}")],
            held: vec![original.to_vec(), other],
        },
        Race {
            name: "punch a hole",
            actions: vec!["punch=300000:1500000@{k}".into()],
            held: vec![original.to_vec(), punched],
        },
    ]
}

/// `cfrfix-step`'s result line, split into its fields.
fn step(src: &Path, dst: &Path, options: &[String], env: &[(&str, &str)]) -> (i64, i64, u64) {
    let mut cmd = crate::common::clean(STEP);
    cmd.arg(src).arg(dst).args(options);
    cmd.env("LD_PRELOAD", crate::common::cdylib())
        .envs(env.iter().copied());
    let out = crate::common::output_within(&mut cmd, std::time::Duration::from_secs(30), None)
        .expect("run cfrfix-step")
        .expect("cfrfix-step hung");
    let line = crate::common::text(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        crate::common::describe(&out)
    );
    let field = |key: &str| -> i64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    (field("errno="), field("total="), field("steps=") as u64)
}

/// Each byte of the copy is one the source held at that offset at some moment.
fn assert_held(what: &str, copy: &[u8], total: i64, held: &[Vec<u8>]) {
    assert_eq!(
        copy.len() as i64,
        total,
        "{what}: destination size vs bytes reported"
    );
    for (i, &byte) in copy.iter().enumerate() {
        if !held.iter().any(|h| h.get(i) == Some(&byte)) {
            panic!(
                "{what}: byte {i} is {byte:#04x}, which the source never held there (held: {:?})",
                held.iter().map(|h| h.get(i)).collect::<Vec<_>>()
            );
        }
    }
}

/// One way to run the copy: `cfrfix-step`'s first options, and the environment.
type Setting = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Every race at every step of each setting's copy, for each source kind, in `dir`.
fn sweep(dir: &Path, sparse_kinds: &[bool], settings: &[Setting]) -> usize {
    let src = dir.join("S");
    let dst = dir.join("D");
    let mut runs = 0;
    for &sparse in sparse_kinds {
        let original = write_source(&src, sparse);
        for race in races(dir, &original) {
            for &(first, via, env) in settings {
                let base = vec![first.to_string(), via.to_string()];
                write_source(&src, sparse);
                let (errno, total, steps) = step(&src, &dst, &base, env);
                assert_eq!((errno, total), (0, LEN as i64), "undisturbed copy");
                assert!(
                    steps > 5,
                    "only {steps} system calls seen: is the shim loaded?"
                );
                for k in 1..=steps + 1 {
                    write_source(&src, sparse);
                    let mut options = base.clone();
                    options.extend(race.actions.iter().map(|a| {
                        a.replace("{k}", &k.to_string())
                            .replace("{k1}", &(k + 1).to_string())
                    }));
                    let (errno, total, _) = step(&src, &dst, &options, env);
                    let what = format!(
                        "{} source in {}, {} at step {k}/{steps}, {first} {via} {env:?}",
                        if sparse { "sparse" } else { "dense" },
                        dir.display(),
                        race.name
                    );
                    assert_eq!(errno, 0, "{what}: the copy failed");
                    assert_held(&what, &fs::read(&dst).expect("copy"), total, &race.held);
                    runs += 1;
                }
            }
        }
    }
    runs
}

/// On tmpfs: both source kinds, every default engine, both entry points, injected and mode
/// `always`.
#[test]
fn a_source_changed_mid_copy_yields_only_bytes_it_held() {
    let dir = ScratchDir::tmpfs("data-first-races");
    let settings: [Setting; 8] = [
        ("inject=95", "via=libc", &[]),
        ("inject=18", "via=libc", &[("CFRFIX_ENGINE", "auto")]),
        ("inject=95", "via=libc", &[("CFRFIX_ENGINE", "rw")]),
        ("inject=95", "via=libc", &[("CFRFIX_SPARSE", "off")]),
        ("inject=95", "via=syscall", &[]),
        (
            "inject=524",
            "via=libc",
            &[("CFRFIX_ENGINE", "rw"), ("CFRFIX_SPARSE", "off")],
        ),
        ("len=1000000", "via=libc", &[("CFRFIX_MODE", "always")]),
        (
            "len=1000000",
            "via=syscall",
            &[("CFRFIX_MODE", "always"), ("CFRFIX_ENGINE", "rw")],
        ),
    ];
    let runs = sweep(dir.path(), &[false, true], &settings);
    eprintln!("FIGURES: {runs} races on tmpfs, each a byte-for-byte check");
}

/// On ext4, where FIEMAP marks the sparse source's allocated extents: those are copied densely
/// (sendfile or pread/pwrite), the rest read and checked; the races must not get through
/// between the map and the reads.
#[test]
fn a_source_changed_mid_copy_on_ext4_yields_only_bytes_it_held() {
    let dir = ScratchDir::rootfs("data-first-races");
    let settings: [Setting; 3] = [
        ("inject=95", "via=libc", &[]),
        ("inject=95", "via=libc", &[("CFRFIX_ENGINE", "rw")]),
        ("len=1000000", "via=syscall", &[("CFRFIX_MODE", "always")]),
    ];
    let runs = sweep(dir.path(), &[true], &settings);
    eprintln!(
        "FIGURES: {runs} races on {}, each a byte-for-byte check",
        dir.path().display()
    );
}

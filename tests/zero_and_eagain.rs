//! Issue 6: when the kernel "succeeds" wrongly (returns 0 with data to copy), leaks EAGAIN,
//! or has hole maps that cannot be trusted.
//!
//! `cfrfix-inject 0` makes every native copy_file_range return 0 (`SECCOMP_RET_ERRNO` with
//! data 0 is a successful return of 0: the bug of overlayfs 5.6–5.10, CIFS 4.15, procfs/sysfs
//! 5.3–5.18, reproduced on any kernel). `cfrfix-inject 11` makes it fail with EAGAIN.

mod calls;
mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calls::{NATIVE, Setup, assert_same_bytes, blocks_and_size};
use common::ScratchDir;

const PROBE: &str = env!("CARGO_BIN_EXE_cfrfix-probe");

/// Runs probe `cases` (one per line, see drivers/probe/main.rs) under `setup`; one result
/// line per case.
fn probe(setup: Setup<'_>, cases: &[String]) -> Vec<String> {
    let dir = ScratchDir::tmpfs("zero-probe");
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let args = [OsString::from(dir.path())];
    let out = calls::run_program(PROBE, setup, &args, &input, Duration::from_secs(60));
    let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    assert!(
        out.success && lines.len() == cases.len(),
        "probe under {setup:?}: {} of {} lines, stderr: {}",
        lines.len(),
        cases.len(),
        out.stderr
    );
    lines
}

fn ret_of(line: &str) -> i64 {
    line.strip_prefix("ret=")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ret= in {line:?}"))
}

/// The decision table: a regular source of `size` bytes read at `pos` (through `off_in` or
/// the file position), for lengths 0 and up, through glibc's symbol and `syscall()`.
fn decision_table() -> Vec<(u64, u64, u64, String)> {
    let mut rows = Vec::new();
    for size in [1u64, 5000, 100_000] {
        let mut positions = vec![0, size / 2, size - 1, size, size + 1, size + 10_000];
        positions.dedup();
        for pos in positions {
            for len in [0u64, 1, 4096, 1 << 20] {
                for how in ["off_in", "src_pos"] {
                    for entry in ["libc", "syscall"] {
                        rows.push((
                            size,
                            pos,
                            len,
                            format!(
                                "entry={entry} src_size={size} dst_size=100 {how}={pos} len={len} seed={size}"
                            ),
                        ));
                    }
                }
            }
        }
    }
    rows
}

/// (a) pos < size → the shim redoes the copy; pos == size, pos > size → genuine EOF, 0 stays;
/// len 0 → 0. Under an injected 0 the shim's results equal the kernel's real ones, while
/// without the shim every call "succeeds" with nothing copied.
#[test]
fn zero_return_decision_table() {
    let rows = decision_table();
    let cases: Vec<String> = rows.iter().map(|r| r.3.clone()).collect();
    let native = probe(NATIVE, &cases);
    let shim = probe(Setup::shim_under(0), &cases);
    let bare = probe(
        Setup {
            inject: Some(0),
            shim: false,
            env: &[],
        },
        &cases,
    );
    let (mut redone, mut eof) = (0, 0);
    for (i, (size, pos, len, case)) in rows.iter().enumerate() {
        // The table's premise, from the real kernel: data is copied exactly when the read
        // position is inside the file and the length is not 0.
        let should_copy = pos < size && *len > 0;
        assert_eq!(
            ret_of(&native[i]) > 0,
            should_copy,
            "native: {case} → {}",
            native[i]
        );
        assert_eq!(shim[i], native[i], "shim under injected 0: {case}");
        // The bug is real: without the shim, an empty "successful" copy.
        assert!(
            bare[i].starts_with("ret=0 errno=0 "),
            "no shim: {case} → {}",
            bare[i]
        );
        if should_copy {
            assert_ne!(bare[i], native[i], "no shim: {case}");
            redone += 1;
        } else if *len > 0 {
            eof += 1;
        }
    }
    assert!(
        redone >= 50 && eof >= 50,
        "{redone} redone, {eof} genuine EOF cases"
    );
}

/// The log names the trigger, and only the redone calls appear in it (a genuine EOF is not a
/// fallback). Seven calls, below the log's limit of 20 lines per second.
#[test]
fn zero_return_is_logged_only_when_redone() {
    let dir = ScratchDir::tmpfs("zero-log");
    let log = dir.path().join("log");
    let log_setting = log.display().to_string();
    let env = [("CFRFIX_LOG", log_setting.as_str())];
    let cases: Vec<String> = [
        "src_size=5000 off_in=0 len=100",        // redone: 100 bytes
        "src_size=5000 src_pos=4999 len=100",    // redone: 1 byte
        "src_size=5000 off_in=4000 len=1048576", // redone: 1000 bytes
        "src_size=5000 off_in=5000 len=100",     // EOF
        "src_size=5000 src_pos=6000 len=100",    // past EOF
        "src_size=0 len=100",                    // empty regular file
        "src_size=5000 off_in=0 len=0",          // nothing asked
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    let lines = probe(
        Setup {
            inject: Some(0),
            shim: true,
            env: &env,
        },
        &cases,
    );
    let rets: Vec<i64> = lines.iter().map(|l| ret_of(l)).collect();
    assert_eq!(rets, [100, 1, 1000, 0, 0, 0, 0], "{lines:#?}");
    let text = fs::read_to_string(&log).unwrap_or_default();
    let logged: Vec<&str> = text.lines().collect();
    assert_eq!(logged.len(), 3, "log: {text}");
    for (line, n) in logged.iter().zip([100, 1, 1000]) {
        assert!(
            line.contains("kernel returned 0 with data to copy")
                && line.contains(&format!("; copied {n} bytes in user space")),
            "log line: {line}"
        );
    }
}

/// A process whose /proc/PID/cmdline is long (several pages) and fixed while it lives.
struct FixedProcess(Child);

impl FixedProcess {
    fn start() -> FixedProcess {
        let args: Vec<String> = (0..4u8)
            .map(|i| {
                // Printable, no NUL: 3000 bytes each, 12 KB in all.
                calls::pattern(u64::from(i) + 40, 3000)
                    .iter()
                    .map(|b| char::from(b'a' + b % 26))
                    .collect()
            })
            .collect();
        let child = Command::new("sh")
            .arg("-c")
            .arg("read line")
            .arg("cfrfix-fixed-cmdline")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sh");
        let process = FixedProcess(child);
        // spawn() returns once the exec has replaced the child's memory, which is before the
        // kernel records where the new arguments are: until then cmdline reads as empty.
        let path = process.cmdline();
        let mut expected = b"sh\0-c\0read line\0cfrfix-fixed-cmdline\0".to_vec();
        for arg in &args {
            expected.extend_from_slice(arg.as_bytes());
            expected.push(0);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read(&path).ok().as_ref() != Some(&expected) {
            assert!(
                Instant::now() < deadline,
                "{}: never showed the arguments",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        process
    }

    fn cmdline(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/cmdline", self.0.id()))
    }
}

impl Drop for FixedProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Copies `src` (a /proc file) into a new file under each setup and option set; checks the
/// bytes against what `read(2)` gives (what `cat` prints), the result line and the log.
fn copy_pseudo_file(src: &Path) {
    let content = fs::read(src).expect("read pseudo-file");
    assert!(!content.is_empty(), "{} is empty", src.display());
    let (_, stat_size) = blocks_and_size(src);
    assert_eq!(
        stat_size,
        0,
        "{}: the case needs a size-0 pseudo-file",
        src.display()
    );
    let n = content.len();
    let dir = ScratchDir::tmpfs("zero-proc");
    let log = dir.path().join("log");
    let log_setting = log.display().to_string();
    let env = [("CFRFIX_LOG", log_setting.as_str())];
    // (options, expected result line prefix, expected destination)
    let mut shifted = vec![0u8; 5];
    shifted.extend_from_slice(&content[10..]);
    let option_sets: [(&str, String, Vec<u8>); 3] = [
        (
            "len=4096 repeat=until0",
            format!(
                "ret={n} errno=0 calls={} pos_in={n} pos_out={n} ",
                n.div_ceil(4096) + 1
            ),
            content.clone(),
        ),
        (
            "len=1048576",
            format!("ret={n} errno=0 calls=1 pos_in={n} pos_out={n} "),
            content.clone(),
        ),
        (
            "off_in=10 off_out=5 len=1048576",
            format!(
                "ret={} errno=0 calls=1 pos_in=0 pos_out=0 off_in={n} off_out={}",
                n - 10,
                n - 5
            ),
            shifted,
        ),
    ];

    // Without the shim, on this kernel: the natural answer, and the injected 0.
    let dst = dir.path().join("dst");
    let natural = calls::copy(NATIVE, src, &dst, "len=1048576");
    eprintln!("{} -> tmpfs, kernel alone: {natural}", src.display());
    // Linux 5.19 and later refuse cross-filesystem copies (EXDEV); 5.3-5.18 returned 0.
    let kernel_says_exdev = natural.starts_with("ret=-1 errno=18 ");
    assert!(
        kernel_says_exdev || natural.starts_with("ret=0 errno=0 "),
        "kernel copied a pseudo-file itself? {natural}"
    );
    let bare = Setup {
        inject: Some(0),
        shim: false,
        env: &[],
    };
    let _ = fs::remove_file(&dst);
    let injected = calls::copy(bare, src, &dst, "len=1048576");
    assert!(injected.starts_with("ret=0 errno=0 "), "{injected}");
    assert_eq!(
        fs::read(&dst).expect("read").len(),
        0,
        "empty copy without the shim"
    );

    let shim_natural = Setup {
        inject: None,
        shim: true,
        env: &env,
    };
    let shim_zero = Setup {
        inject: Some(0),
        shim: true,
        env: &env,
    };
    let natural_trigger = if kernel_says_exdev {
        "kernel said EXDEV"
    } else {
        "kernel returned 0 with data to copy"
    };
    for (setup, trigger) in [
        (shim_natural, natural_trigger),
        (shim_zero, "kernel returned 0 with data to copy"),
    ] {
        for (options, expected_line, expected) in &option_sets {
            let _ = fs::remove_file(&dst);
            let _ = fs::remove_file(&log);
            let what = format!("{} {options} under {setup:?}", src.display());
            let line = calls::copy(setup, src, &dst, options);
            assert!(line.starts_with(expected_line.as_str()), "{what}: {line}");
            assert_same_bytes(&what, expected, &fs::read(&dst).expect("read"));
            let text = fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.lines().next().is_some_and(|l| l.contains(trigger)),
                "{what}: log {text:?}"
            );
        }
    }
}

/// (b) /proc/PID/cmdline of a fixed process (12 KB, several pages, stat size 0).
#[test]
fn proc_cmdline_is_copied_whole() {
    let process = FixedProcess::start();
    copy_pseudo_file(&process.cmdline());
}

/// (b) /proc/version: small and fixed for the machine's uptime.
#[test]
fn proc_version_is_copied_whole() {
    copy_pseudo_file(Path::new("/proc/version"));
}

/// (c) EAGAIN between two regular files opened blocking is a refusal (older OpenZFS clone
/// paths); with O_NONBLOCK on either side, or a non-regular side, it is returned unchanged.
#[test]
fn eagain_falls_back_only_between_blocking_regular_files() {
    let dir = ScratchDir::tmpfs("eagain");
    let src = dir.path().join("src");
    let data = calls::pattern(11, 100_000);
    fs::write(&src, &data).expect("write source");
    let dst = dir.path().join("dst");
    let log = dir.path().join("log");
    let log_setting = log.display().to_string();
    let env = [("CFRFIX_LOG", log_setting.as_str())];
    let shim = Setup {
        inject: Some(11),
        shim: true,
        env: &env,
    };
    let bare = Setup {
        inject: Some(11),
        shim: false,
        env: &[],
    };

    // Without the shim the program sees EAGAIN (and Ruby would retry forever).
    let line = calls::copy(bare, &src, &dst, "len=1048576");
    assert!(line.starts_with("ret=-1 errno=11 "), "{line}");

    let _ = fs::remove_file(&dst);
    let line = calls::copy(shim, &src, &dst, "len=1048576");
    assert!(
        line.starts_with("ret=100000 errno=0 calls=1 pos_in=100000 pos_out=100000 "),
        "{line}"
    );
    assert_same_bytes("EAGAIN fallback", &data, &fs::read(&dst).expect("read"));
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("kernel said EAGAIN; copied 100000 bytes in user space"),
        "log: {text:?}"
    );

    for options in [
        "src_nonblock=1",
        "dst_nonblock=1",
        "src_nonblock=1 dst_nonblock=1",
    ] {
        let _ = fs::remove_file(&dst);
        let _ = fs::remove_file(&log);
        let line = calls::copy(shim, &src, &dst, &format!("len=1048576 {options}"));
        assert!(
            line.starts_with("ret=-1 errno=11 calls=1 pos_in=0 pos_out=0 "),
            "{options}: {line}"
        );
        assert_eq!(fs::read(&dst).expect("read").len(), 0, "{options}: copied");
        assert!(!log.exists(), "{options}: logged a fallback");
    }
    // A non-regular destination: the kernel would say EINVAL, but EAGAIN is not ours to
    // reinterpret there.
    let line = calls::copy(shim, &src, Path::new("/dev/null"), "len=1048576");
    assert!(line.starts_with("ret=-1 errno=11 "), "/dev/null: {line}");
}

/// (d) `CFRFIX_SPARSE=off` also governs the zero-return redo: a sparse source redone after an
/// injected 0 keeps its holes in `auto` and is written out densely with `off`, with the same
/// bytes. (tests/engines.rs checks `off` under every engine after errno refusals.)
#[test]
fn sparse_switch_applies_to_the_zero_return_redo() {
    let dir = ScratchDir::tmpfs("zero-sparse");
    let src = dir.path().join("src");
    let file = fs::File::create(&src).expect("create");
    let data = calls::pattern(3, 10_000);
    file.write_all_at(&data, 4 << 20).expect("write");
    file.set_len(8 << 20).expect("size");
    drop(file);
    let expected = fs::read(&src).expect("read");
    let dst = dir.path().join("dst");
    let mut blocks = Vec::new();
    for sparse in ["auto", "off"] {
        let env = [("CFRFIX_SPARSE", sparse)];
        let setup = Setup {
            inject: Some(0),
            shim: true,
            env: &env,
        };
        let _ = fs::remove_file(&dst);
        let line = calls::copy(setup, &src, &dst, "len=67108864");
        assert!(line.starts_with("ret=8388608 errno=0 "), "{sparse}: {line}");
        assert_same_bytes(sparse, &expected, &fs::read(&dst).expect("read"));
        blocks.push(blocks_and_size(&dst).0);
    }
    eprintln!("8 MiB with 10 KB of data, redone after an injected 0: blocks auto/off = {blocks:?}");
    assert!(
        blocks[0] <= 64,
        "auto: {} blocks, holes not kept",
        blocks[0]
    );
    assert!(
        blocks[1] >= (8 << 20) / 512,
        "off: {} blocks, not dense",
        blocks[1]
    );
}

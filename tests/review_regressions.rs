//! Regression tests for the five defects found in review (commit "Fix five defects found in
//! review"), each driving the reviewer's C reproducer (tests/c) under `cfrfix-inject 18` (the
//! kernel refuses copy_file_range with EXDEV) with the shim preloaded, on tmpfs:
//!
//! - two threads copying disjoint ranges of a sparse-tailed source into one file lost data;
//! - a process that closed fds 0-2 got the shim's pipe ends on those numbers, so its signal
//!   handler's writes to fd 2 went into the splice pipe (hang, corrupt copy, SIGPIPE);
//! - after the main thread's pthread_exit, copies with offset pointers failed with ESRCH;
//! - the sparse reopen broke the program's own write lease, after a 45 s stall;
//! - `CFRFIX_LOG` naming a FIFO hung the program; a hard-linked log file was written.
//!
//! Every process runs with a deadline: a hang fails the test instead of stalling CI.

mod common;

use common::{ScratchDir, clean, describe, output_within, text};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// EXDEV: what the kernel answers for a cross-filesystem copy.
const EXDEV: &str = "18";
const LIMIT: Duration = Duration::from_secs(30);

/// Compiles `tests/c/<name>.c` into `dir` with `common::compile_c` (None, after SKIPPED,
/// without a C compiler).
fn compile(dir: &Path, name: &str) -> Option<PathBuf> {
    let source = Path::new(MANIFEST_DIR).join(format!("tests/c/{name}.c"));
    common::compile_c(dir, name, &[source.as_os_str()], &[])
}

/// Runs `command`; fails the test if it is still running after `LIMIT` (killed: hung).
fn run(command: &mut Command) -> Output {
    match output_within(command, LIMIT, None) {
        Ok(Some(output)) => output,
        Ok(None) => panic!("{command:?} did not finish within {LIMIT:?}: hung"),
        Err(e) => panic!("cannot run {command:?}: {e}"),
    }
}

/// `program args` natively, without LD_PRELOAD or CFRFIX_* settings.
fn native(program: &Path, args: &[&Path]) -> Command {
    let mut c = clean(program);
    c.args(args);
    c
}

/// `cfrfix-inject 18 env LD_PRELOAD=<shim> ENVS... program args`.
fn shimmed(envs: &[(&str, &str)], program: &Path, args: &[&Path]) -> Command {
    let mut c = clean(INJECT);
    c.arg(EXDEV)
        .arg("env")
        .arg(format!("LD_PRELOAD={}", common::cdylib().display()));
    c.args(envs.iter().map(|(k, v)| format!("{k}={v}")));
    c.arg(program).args(args);
    c
}

/// Runs to a successful exit and returns stdout; panics with the whole output otherwise.
fn stdout_of(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?}: {}",
        describe(&output)
    );
    text(&output.stdout)
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn assert_same_file(path: &Path, expected: &[u8]) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(got.len(), expected.len(), "{}: size", path.display());
    if let Some(i) = got.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("{}: first differing byte at {i}", path.display());
    }
}

/// Defect 1: the sparse engine covered a trailing hole with ftruncate to a stale size, so when
/// thread A's range ended in a hole and thread B wrote past it, A's ftruncate cut B's data off
/// (both calls still reported full counts). Before the fix ~70% of iterations failed with the
/// splice engine, so even 100 iterations would catch it; 400 per engine take well under a second.
#[test]
fn concurrent_copies_into_one_file_keep_both_ranges() {
    let scratch = ScratchDir::tmpfs("rr-race");
    let Some(prog) = compile(scratch.path(), "concurrent_sparse_tail") else {
        return;
    };
    let (src, dst) = (scratch.path().join("src"), scratch.path().join("dst"));
    let iterations = "400";
    for engine in ["auto", "splice", "rw"] {
        let mut c = shimmed(&[("CFRFIX_ENGINE", engine)], &prog, &[&src, &dst]);
        c.arg(iterations);
        let out = stdout_of(&mut c);
        assert_eq!(
            out.lines().last(),
            Some(format!("bad=0/{iterations}").as_str()),
            "engine {engine}: copies lost data:\n{out}"
        );
    }
    // The same program natively, as a check of the check.
    let mut c = native(&prog, &[&src, &dst]);
    c.arg("20");
    assert_eq!(stdout_of(&mut c).trim(), "bad=0/20");
}

/// Defect 2: with fds 0-2 closed, the shim's pipe ends took those numbers, and a SIGALRM handler
/// writing "XX" to fd 2 every 200 µs wrote into the splice pipe: a hang, a corrupt copy or
/// death by SIGPIPE. Now every write to fd 2 must fail (EBADF), the copy must be exact, and fds
/// 0-2 must still be closed afterwards.
#[test]
fn closed_stdio_is_not_reused_by_the_shim() {
    let scratch = ScratchDir::tmpfs("rr-stdio");
    let Some(prog) = compile(scratch.path(), "closed_stdio_copy") else {
        return;
    };
    let (src, dst) = (scratch.path().join("src"), scratch.path().join("dst"));
    let data = pattern(16 << 20, 7);
    fs::write(&src, &data).expect("write source");
    let expected = format!("ret=0 errno=0 total={} stray=0 stdio_open=0", data.len());
    // 1 GiB per call (the program's loop ends on 0) and 100,000 bytes per call.
    for chunk in ["1073741824", "100000"] {
        let mut c = native(&prog, &[&src, &dst]);
        c.arg(chunk);
        assert_eq!(stdout_of(&mut c).trim(), expected, "native, chunk {chunk}");
        for engine in ["auto", "splice", "rw"] {
            let _ = fs::remove_file(&dst);
            let mut c = shimmed(&[("CFRFIX_ENGINE", engine)], &prog, &[&src, &dst]);
            c.arg(chunk);
            let out = stdout_of(&mut c);
            assert_eq!(out.trim(), expected, "engine {engine}, chunk {chunk}");
            assert_same_file(&dst, &data);
        }
    }
}

/// Defect 3: process_vm_readv/writev addressed the process id, i.e. the main thread; after its
/// pthread_exit a worker's copy with offset pointers failed with ESRCH. Now the shim's results,
/// offsets and file positions must equal the kernel's own.
#[test]
fn offsets_work_after_main_thread_exited() {
    let scratch = ScratchDir::tmpfs("rr-zombie-leader");
    let Some(prog) = compile(scratch.path(), "main_thread_exited") else {
        return;
    };
    let (src, dst) = (scratch.path().join("src"), scratch.path().join("dst"));
    let data = pattern(300_000, 3);
    fs::write(&src, &data).expect("write source");
    let kernel = stdout_of(&mut native(&prog, &[&src, &dst]));
    assert_eq!(
        kernel,
        "offsets: ret=300000 errno=0 off_in=300000 off_out=300000\n\
         null: ret=300000 errno=0 pos_in=300000 pos_out=300000\n",
        "the kernel's own answer changed"
    );
    assert_same_file(&dst, &data);
    for engine in ["auto", "splice", "rw"] {
        let _ = fs::remove_file(&dst);
        let out = stdout_of(&mut shimmed(
            &[("CFRFIX_ENGINE", engine)],
            &prog,
            &[&src, &dst],
        ));
        assert_eq!(out, kernel, "engine {engine}: differs from the kernel");
        assert_same_file(&dst, &data);
    }
}

/// Defect 4: the sparse engine's read-only reopen of the source broke the program's own write
/// lease (and waited the 45 s lease-break time first). Now the copy is immediate, the lease is
/// still held and no SIGIO arrived; the source is sparse so that the sparse engine runs.
#[test]
fn own_lease_is_kept_and_copy_does_not_stall() {
    let scratch = ScratchDir::tmpfs("rr-lease");
    let Some(prog) = compile(scratch.path(), "own_write_lease") else {
        return;
    };
    let (src, dst) = (scratch.path().join("src"), scratch.path().join("dst"));
    // 64 KiB data, 192 KiB hole, 64 KiB data, 128 KiB trailing hole.
    let mut data = pattern(448 << 10, 11);
    data[64 << 10..256 << 10].fill(0);
    data[320 << 10..].fill(0);
    let file = fs::File::create(&src).expect("create source");
    file.set_len(data.len() as u64).expect("size source");
    use std::os::unix::fs::FileExt;
    file.write_all_at(&data[..64 << 10], 0).expect("write");
    file.write_all_at(&data[256 << 10..320 << 10], 256 << 10)
        .expect("write");
    drop(file);
    for (mode, lease) in [("w", 1), ("r", 0)] {
        let mut c = native(&prog, &[&src, &dst]);
        c.arg(mode);
        let kernel = stdout_of(&mut c);
        let expected = |out: &str| {
            let fields: Vec<&str> = out.split_whitespace().collect();
            assert_eq!(fields.len(), 4, "unexpected output: {out}");
            assert_eq!(fields[0], format!("ret={}", data.len()), "{out}");
            let ms: u64 = fields[1]
                .strip_prefix("ms=")
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| panic!("no ms= in {out}"));
            assert!(ms < 5000, "the copy stalled for {ms} ms: {out}");
            assert_eq!(fields[2], "broken=0", "the lease was broken: {out}");
            assert_eq!(fields[3], format!("lease={lease}"), "lease lost: {out}");
        };
        expected(&kernel);
        for engine in ["auto", "splice", "rw"] {
            let _ = fs::remove_file(&dst);
            let mut c = shimmed(&[("CFRFIX_ENGINE", engine)], &prog, &[&src, &dst]);
            c.arg(mode);
            let started = Instant::now();
            let out = stdout_of(&mut c);
            assert!(started.elapsed() < Duration::from_secs(5), "stalled: {out}");
            expected(&out);
            assert_same_file(&dst, &data);
        }
    }
}

/// Defect 5: the log file was opened blocking and without checks: a FIFO at the `CFRFIX_LOG`
/// path hung every falling-back process (no reader), and a hard link there redirected the
/// writes. Now the FIFO run finishes (rc 0, exact copy) and the hard-linked file stays empty;
/// a plain file at the same kind of path does get the line (the setting reaches the library).
#[test]
fn log_fifo_does_not_hang_and_hard_link_is_not_written() {
    let scratch = ScratchDir::tmpfs("rr-log");
    let Some(prog) = compile(scratch.path(), "copy_all") else {
        return;
    };
    let dir = scratch.path();
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    let data = pattern(3 << 20, 5);
    fs::write(&src, &data).expect("write source");
    let expected = format!("ret=0 errno=0 total={}", data.len());
    let copy_logging_to = |log: &Path| {
        let _ = fs::remove_file(&dst);
        let log = log.to_str().expect("UTF-8 path");
        let mut c = shimmed(&[("CFRFIX_LOG", log)], &prog, &[&src, &dst]);
        let started = Instant::now();
        let output = run(&mut c);
        assert_eq!(
            output.status.code(),
            Some(0),
            "log {log}: {}",
            describe(&output)
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "log {log}: slow"
        );
        assert_eq!(text(&output.stdout).trim(), expected, "log {log}");
        assert_same_file(&dst, &data);
    };

    // Control: a regular file with one link is written.
    let plain = dir.join("plain.log");
    fs::write(&plain, "").expect("create log");
    copy_logging_to(&plain);
    let logged = fs::read_to_string(&plain).expect("read log");
    assert!(
        !logged.is_empty(),
        "CFRFIX_LOG did not reach the library: nothing logged"
    );

    // A FIFO without a reader: the program must not hang in open(2).
    let fifo = dir.join("fifo.log");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    copy_logging_to(&fifo);

    // A hard link: the file has two links and must not be written.
    let target = dir.join("linked.log");
    fs::write(&target, "").expect("create log");
    let link = dir.join("link.log");
    fs::hard_link(&target, &link).expect("hard link");
    copy_logging_to(&link);
    assert_eq!(
        fs::read(&target).expect("read log").len(),
        0,
        "hard-linked log written"
    );
}

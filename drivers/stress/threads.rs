//! `threads DIR THREADS ROUNDS`: copying threads on one source (also used by `fork`), through
//! both entry points, with offsets and with file positions, while as many threads contend on a
//! std `Mutex` (futex through the shim's `syscall()`); every destination is verified.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::calls::{Entry, copy_all};
use crate::tools::{fail, holds, open, pattern, write_file};
use crate::usage;

/// What the copying threads of `threads` and `fork` did.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) copies: AtomicUsize,
    pub(crate) calls: AtomicUsize,
    bytes: AtomicU64,
}

/// One copying thread: `rounds` copies of `src` into `dst`, varying entry, chunk and offsets.
fn copier(
    index: usize,
    rounds: usize,
    src: &Path,
    dst: &Path,
    expected: &[u8],
    tally: &Tally,
) -> Result<(), String> {
    let fd_in = open(src, libc::O_RDONLY);
    let fd_out = open(dst, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC);
    let mut scratch = vec![0u8; 1 << 20];
    let chunks = [expected.len(), 1 << 20, 65_536 + 17, 4096, 300_001];
    for round in 0..rounds {
        // SAFETY: ftruncate takes no pointer.
        unsafe { libc::ftruncate(fd_out, 0) };
        let entry = if (index + round) % 2 == 0 {
            Entry::Libc
        } else {
            Entry::Syscall
        };
        let explicit = (index + round / 2) % 2 == 0;
        let chunk = chunks[(index * 7 + round) % chunks.len()];
        let calls = copy_all(entry, fd_in, fd_out, expected.len(), chunk, explicit)
            .map_err(|e| format!("thread {index} round {round}: {e}"))?;
        holds(fd_out, expected, &mut scratch)
            .map_err(|e| format!("thread {index} round {round}: {}: {e}", dst.display()))?;
        tally.copies.fetch_add(1, Ordering::Relaxed);
        tally.calls.fetch_add(calls, Ordering::Relaxed);
        tally
            .bytes
            .fetch_add(expected.len() as u64, Ordering::Relaxed);
    }
    // SAFETY: closing descriptors this thread opened.
    unsafe {
        libc::close(fd_in);
        libc::close(fd_out);
    }
    Ok(())
}

pub(crate) fn spawn_copiers(
    dir: &Path,
    count: usize,
    rounds: usize,
    src: &Path,
    expected: &Arc<Vec<u8>>,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<Result<(), String>>> {
    (0..count)
        .map(|i| {
            let (src, dst) = (src.to_path_buf(), dir.join(format!("dst.{i}")));
            let (expected, tally) = (Arc::clone(expected), Arc::clone(tally));
            std::thread::spawn(move || copier(i, rounds, &src, &dst, &expected, &tally))
        })
        .collect()
}

pub(crate) fn join_all(handles: Vec<std::thread::JoinHandle<Result<(), String>>>) {
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail(e),
            Err(_) => fail("a thread panicked"),
        }
    }
}

pub(crate) fn cmd_threads(args: &[String]) {
    let [dir, threads, rounds] = args else {
        usage()
    };
    let dir = PathBuf::from(dir);
    let threads: usize = threads.parse().unwrap_or_else(|_| usage());
    let rounds: usize = rounds.parse().unwrap_or_else(|_| usage());
    let src = dir.join("src");
    let expected = Arc::new(pattern(3 * (1 << 20) + 123, 1));
    write_file(&src, &expected);
    let tally = Arc::new(Tally::default());

    // Contention on a std Mutex: std's futex wait/wake go through `syscall()`, the shim's export.
    let counter = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let lockers: Vec<_> = (0..threads)
        .map(|_| {
            let (counter, stop) = (Arc::clone(&counter), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) || ops < 10_000 {
                    let mut c = counter.lock().unwrap_or_else(|p| p.into_inner());
                    *c += 1;
                    drop(c);
                    ops += 1;
                }
                ops
            })
        })
        .collect();

    join_all(spawn_copiers(
        &dir, threads, rounds, &src, &expected, &tally,
    ));
    stop.store(true, Ordering::Relaxed);
    let ops: u64 = lockers.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let total = *counter.lock().unwrap_or_else(|p| p.into_inner());
    if total != ops {
        fail(format!(
            "mutex counter {total}, but {ops} increments were made"
        ));
    }
    println!(
        "threads={threads} rounds={rounds} copies={} calls={} bytes={} mutex_threads={threads} mutex_ops={ops}",
        tally.copies.load(Ordering::Relaxed),
        tally.calls.load(Ordering::Relaxed),
        tally.bytes.load(Ordering::Relaxed),
    );
}

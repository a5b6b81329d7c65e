//! `workload DIR`: a small, varied set of copies for valgrind (every entry point, dense and
//! sparse sources, errors), then a check that fallbacks leak no mapping and no descriptor.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::calls::{Entry, bad_pages, cfr, copy_all, raw_cfr};
use crate::tools::{fail, holds, open, pattern, write_file};
use crate::usage;

fn count_entries(path: &str) -> usize {
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn count_lines(path: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub(crate) fn cmd_workload(args: &[String]) {
    let [dir] = args else { usage() };
    let dir = PathBuf::from(dir);
    let dense = pattern(300_000, 6);
    let src = dir.join("src");
    write_file(&src, &dense);
    // A sparse source: data, a hole, data, a hole at the end.
    let sparse_path = dir.join("sparse");
    let mut sparse = vec![0u8; 1 << 20];
    sparse[..10_000].copy_from_slice(&dense[..10_000]);
    sparse[512 << 10..(512 << 10) + 10_000].copy_from_slice(&dense[10_000..20_000]);
    {
        let f = std::fs::File::create(&sparse_path).unwrap_or_else(|e| fail(e));
        let fd = f.as_raw_fd();
        // SAFETY: writing our own buffers at explicit offsets; ftruncate takes no pointer.
        unsafe {
            libc::pwrite(fd, sparse.as_ptr().cast(), 10_000, 0);
            libc::pwrite(fd, sparse[512 << 10..].as_ptr().cast(), 10_000, 512 << 10);
            libc::ftruncate(fd, sparse.len() as i64);
        }
    }
    let mut scratch = vec![0u8; 1 << 16];
    let mut calls = 0;
    let (_none, ro) = bad_pages();
    for (i, entry) in [Entry::Libc, Entry::Syscall, Entry::Dlsym]
        .into_iter()
        .enumerate()
    {
        for (source, content) in [(&src, &dense), (&sparse_path, &sparse)] {
            let fd_in = open(source, libc::O_RDONLY);
            let dst = dir.join(format!("dst.{i}"));
            let fd_out = open(&dst, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC);
            for explicit in [true, false] {
                // SAFETY: ftruncate takes no pointer.
                unsafe { libc::ftruncate(fd_out, 0) };
                calls += copy_all(entry, fd_in, fd_out, content.len(), 200_000, explicit)
                    .unwrap_or_else(|e| fail(e));
                if let Err(e) = holds(fd_out, content, &mut scratch) {
                    fail(format!("{entry:?} {}: {e}", source.display()));
                }
            }
            // At EOF: 0. Errors: EINVAL (flags), EBADF, copied-then-EFAULT (read-only off_out).
            let (mut oi, mut oo) = (content.len() as i64, 0i64);
            let r = cfr(entry, fd_in, Some(&mut oi), fd_out, Some(&mut oo), 100, 0);
            let bad_flags = cfr(entry, fd_in, None, fd_out, None, 100, 1);
            let bad_fd = cfr(entry, -1, None, fd_out, None, 100, 0);
            let mut zero = 0i64;
            let write_back = raw_cfr(entry, fd_in, &mut zero, fd_out, ro, 100, 0);
            calls += 4;
            if r != (0, 0)
                || bad_flags != (-1, libc::EINVAL)
                || bad_fd != (-1, libc::EBADF)
                || write_back != (-1, libc::EFAULT)
            {
                fail(format!(
                    "{entry:?}: eof {r:?}, flags {bad_flags:?}, fd {bad_fd:?}, ro off_out {write_back:?}"
                ));
            }
            // SAFETY: closing our own descriptors.
            unsafe {
                libc::close(fd_in);
                libc::close(fd_out);
            }
        }
    }
    // Leaks that valgrind cannot see: the shim's mmap buffers and pipes.
    let (fds_before, maps_before) = (
        count_entries("/proc/self/fd"),
        count_lines("/proc/self/maps"),
    );
    let fd_in = open(&src, libc::O_RDONLY);
    let fd_out = open(
        &dir.join("leak"),
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    );
    for round in 0..30 {
        let entry = if round % 2 == 0 {
            Entry::Libc
        } else {
            Entry::Syscall
        };
        calls += copy_all(entry, fd_in, fd_out, dense.len(), 100_000, round % 3 == 0)
            .unwrap_or_else(|e| fail(e));
    }
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(fd_in);
        libc::close(fd_out);
    }
    let (fds_after, maps_after) = (
        count_entries("/proc/self/fd"),
        count_lines("/proc/self/maps"),
    );
    if fds_after != fds_before || maps_after != maps_before {
        fail(format!(
            "fallbacks leaked: fds {fds_before} -> {fds_after}, mappings {maps_before} -> {maps_after}"
        ));
    }
    println!("workload ok calls={calls} fds={fds_after} maps={maps_after}");
}

//! `cfrfix-probe BASE_DIR`: the differential driver for copy_file_range(2).
//!
//! It reads one case per line from stdin, builds that case's fixture in a fresh subdirectory of
//! `BASE_DIR`, makes exactly ONE copy_file_range call through the entry point the case names, and
//! prints one result line on stdout (flushed, so a crash still leaves the earlier lines). Run it
//! once natively and once under `LD_PRELOAD=libcfrfix.so` with an injected errno: the result
//! lines must be identical.
//!
//! The probe itself never calls copy_file_range outside the probed call (no `std::fs::copy`,
//! no `std::io::copy`): fixtures are built with write(2), results read with pread(2).
//!
//! # Case format
//!
//! A line is whitespace-separated `key=value` pairs; every key is optional and a repeated key
//! overrides the earlier one. Empty lines and
//! lines starting with `#` are skipped without output. Numbers are decimal (optionally
//! negative) or `0x` hexadecimal; offsets accept any value in `-2^63 .. 2^64` and are taken
//! modulo 2^64, so `0xfffffffffffffffb` and `-5` are the same offset.
//!
//! | key | values | default | meaning |
//! |---|---|---|---|
//! | `entry` | `libc` `syscall` `dlsym` | `libc` | glibc symbol `copy_file_range`; variadic `syscall(SYS_copy_file_range, …)` with int fds as libuv passes them; a pointer from `dlsym(RTLD_DEFAULT, …)` as Java NIO does |
//! | `src` | `file` `dir` `pipe` `devnull` `minus1` `closed` | `file` | kind of `fd_in`: `pipe` is a pipe's read end holding `min(src_size, 64 KiB)` bytes; `minus1` is fd −1; `closed` is a just-closed descriptor number |
//! | `src_size` | bytes | 0 | content written to the source (seeded PRNG bytes) |
//! | `src_trunc` | bytes | none | then `ftruncate` the source to this size (a large value makes a sparse file) |
//! | `src_mode` | `ro` `wo` `rw` `append` `rwappend` `path` | `ro` | open mode of `fd_in` (`path` = `O_PATH`); also used for `devnull` |
//! | `src_pos` | bytes | 0 | `lseek(fd_in, src_pos, SEEK_SET)` before the call |
//! | `src_lfs`, `dst_lfs` | `yes` `no` | `yes` | open that file with `O_LARGEFILE`; `no` opens it as a 32-bit program built without `_FILE_OFFSET_BITS=64` does (the kernel adds it for 64-bit programs) |
//! | `src_grow` | bytes | none | after opening the source, set its size to this through another descriptor (a file past 2 GiB under a descriptor opened without `O_LARGEFILE`) |
//! | `dst` | `file` `dir` `pipe` `devnull` `minus1` `closed` `samefd` `samepath` `hardlink` | `file` | kind of `fd_out`: `samefd` passes `fd_in` again; `samepath` opens the source's path a second time; `hardlink` opens a hard link to the source; `pipe` is a pipe's write end (its read end stays open) |
//! | `dst_size` | bytes | 0 | pre-existing destination content (`file` only) |
//! | `dst_trunc` | bytes | none | then `ftruncate` the destination (`file` only) |
//! | `dst_mode` | as `src_mode` | `wo` | open mode of `fd_out` (ignored for `samefd`) |
//! | `dst_pos` | bytes | 0 | `lseek(fd_out, dst_pos, SEEK_SET)` (ignored for `samefd`) |
//! | `src_attr`, `dst_attr` | `none` `immutable` `appendonly` | `none` | inode flag (`chattr +i` / `+a`) set on that file after its descriptors are open, cleared before cleanup |
//! | `off_in` | `null`, a number, `ro:N`, `splitro:N`, `fault`, `splitfault`, `lowaddr` | `null` | the `off_in` argument: NULL; a pointer to a writable `loff_t` holding N; a pointer to N on a read-only page; N stored across the end of a writable page into a read-only one (readable, write-back fails); a pointer into a `PROT_NONE` page; a `loff_t` whose first 4 bytes are readable and the rest `PROT_NONE`; the address 16 (page zero, never mapped) |
//! | `off_out` | as `off_in`, plus `alias` | `null` | `alias` passes the same pointer as `off_in` |
//! | `len` | number (`size_t`) | 0 | the `len` argument |
//! | `flags` | number (`unsigned int`) | 0 | the `flags` argument |
//! | `fsize` | `none` or bytes | `none` | RLIMIT_FSIZE soft limit for the duration of the call only |
//! | `seed` | number | 0 | seeds the content PRNG (the destination uses a different stream) |
//!
//! Descriptors whose lseek position was requested but is not seekable (pipes, `O_PATH`, bad
//! fds) are simply left as they are.
//!
//! # Result format
//!
//! `ret=R errno=E pos_in=P pos_out=P off_in=V off_out=V dst=D src=S mtime=M xfsz=N`
//!
//! - `errno` is 0 whenever `ret >= 0`;
//! - `pos_*` is `lseek(fd, 0, SEEK_CUR)` after the call, `-` when that fails;
//! - `off_*` is the value of the offset variable after the call: `null` for a NULL pointer,
//!   `-` for an unreadable pointer;
//! - `dst`/`src` are `SIZE:HASH` of the whole file (64-bit FNV-1a in hex, holes hashed as the
//!   zero bytes they read as), `pipe:LEN:HASH` for what is left in a pipe, `-` otherwise;
//! - `mtime` is `changed` or `same`: whether the call changed the destination file's mtime or
//!   ctime (its mtime is set to one second past the epoch before the call, so an update is
//!   visible whatever the filesystem's timestamp granularity); `-` when the destination is
//!   not a file;
//! - `xfsz` counts SIGXFSZ deliveries during the call (a handler catches them).
//!
//! A malformed case line prints `error=...` instead and the probe carries on.

mod case;
mod fixture;
mod offsets;
mod report;
mod run;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use case::parse_case;
use run::Prober;

fn main() {
    let Some(base) = std::env::args_os().nth(1) else {
        eprintln!("usage: cfrfix-probe BASE_DIR < cases");
        std::process::exit(2);
    };
    let prober = Prober::new(PathBuf::from(base));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut index = 0usize;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("read stdin");
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let result = match parse_case(text) {
            Ok(case) => prober.run(index, &case),
            Err(message) => format!("error={}", message.replace(char::is_whitespace, "_")),
        };
        writeln!(out, "{result}").expect("write result");
        out.flush().expect("flush result");
        index += 1;
    }
}

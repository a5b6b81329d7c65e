//! `limits DIR`: on a small filesystem, runs into ENOSPC and then RLIMIT_FSIZE (EFBIG with
//! SIGXFSZ), checks each call's count against the offsets, the size and the bytes, and prints
//! one transcript line per call, so that native and shim transcripts can be compared.

use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::calls::{Entry, cfr};
use crate::tools::{fail, file_size, open, pattern, position, pread_full, write_file};
use crate::usage;

static XFSZ: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_xfsz(_: c_int) {
    XFSZ.fetch_add(1, Ordering::Relaxed);
}

/// One call and its transcript line; checks that the offsets moved by exactly the count, that
/// the destination's size agrees, and that the bytes reported are the source's.
#[allow(clippy::too_many_arguments)]
fn limits_call(
    tag: &str,
    entry: Entry,
    fd_in: c_int,
    fd_out: c_int,
    offs: Option<(&mut i64, &mut i64)>,
    len: usize,
    expected: &[u8],
    out: &mut Vec<String>,
) -> isize {
    let explicit = offs.is_some();
    let (before_in, before_out, r, e, after_in, after_out);
    let size_before = file_size(fd_out);
    let xfsz_before = XFSZ.load(Ordering::Relaxed);
    match offs {
        Some((oi, oo)) => {
            (before_in, before_out) = (*oi, *oo);
            (r, e) = cfr(entry, fd_in, Some(&mut *oi), fd_out, Some(&mut *oo), len, 0);
            (after_in, after_out) = (*oi, *oo);
        }
        None => {
            (before_in, before_out) = (position(fd_in), position(fd_out));
            (r, e) = cfr(entry, fd_in, None, fd_out, None, len, 0);
            (after_in, after_out) = (position(fd_in), position(fd_out));
        }
    }
    let size = file_size(fd_out);
    let xfsz = XFSZ.load(Ordering::Relaxed) - xfsz_before;
    out.push(format!(
        "{tag} {} len={len} ret={r} errno={e} in={after_in} out={after_out} size={size} xfsz={xfsz}",
        if explicit { "offsets" } else { "positions" }
    ));
    let n = r.max(0) as i64;
    if after_in != before_in + n || after_out != before_out + n {
        fail(format!(
            "{tag}: returned {r} but offsets moved {before_in}->{after_in}, {before_out}->{after_out}"
        ));
    }
    if size != size_before.max(before_out + n) {
        fail(format!(
            "{tag}: returned {r} from {before_out} but the size went {size_before} -> {size}"
        ));
    }
    if n > 0 {
        let mut got = vec![0u8; n as usize];
        let read = pread_full(fd_out, &mut got, before_out);
        let from = before_in as usize;
        if read != n as usize || got[..] != expected[from..from + n as usize] {
            fail(format!(
                "{tag}: the {n} bytes reported are not the source's"
            ));
        }
    }
    r
}

pub(crate) fn cmd_limits(args: &[String]) {
    let [dir] = args else { usage() };
    let dir = PathBuf::from(dir);
    let entry = match std::env::var("STRESS_ENTRY").as_deref() {
        Ok("syscall") => Entry::Syscall,
        _ => Entry::Libc,
    };
    // SAFETY: installing a handler that only bumps an atomic.
    unsafe { libc::signal(libc::SIGXFSZ, on_xfsz as extern "C" fn(c_int) as usize) };
    let expected = pattern(400 << 10, 4);
    let src = dir.join("src");
    write_file(&src, &expected);
    let fd_in = open(&src, libc::O_RDONLY);
    let mut out = Vec::new();

    // ENOSPC: `a` fits (400 KiB of the 1 MiB filesystem), `b` fills it part way (a partial
    // count), and the next call fails with nothing changed. Then `a` is removed and `c` starts at
    // unaligned offsets, so that the space runs out in the middle of a source page.
    let plan: [(&str, Option<(i64, i64)>); 4] = [
        ("a", Some((0, 0))),
        ("b", None),
        ("c", Some((1000, 3000))),
        ("d", Some((0, 0))),
    ];
    for (name, offsets) in plan {
        if name == "c" {
            let _ = std::fs::remove_file(dir.join("a"));
        }
        let fd_out = open(&dir.join(name), libc::O_RDWR | libc::O_CREAT);
        let (mut oi, mut oo) = offsets.unwrap_or((0, 0));
        for call in 0..6 {
            let offs = offsets.is_some().then_some((&mut oi, &mut oo));
            let r = limits_call(
                &format!("enospc:{name}:{call}"),
                entry,
                fd_in,
                fd_out,
                offs,
                150 << 10,
                &expected,
                &mut out,
            );
            if r <= 0 {
                break;
            }
        }
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd_out) };
    }
    // Free space again, then RLIMIT_FSIZE: the count is clamped to the limit (no signal), and the
    // next call at the limit is EFBIG with SIGXFSZ; the offsets stay where the bytes ended.
    for name in ["b", "c", "d"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let limit = libc::rlimit {
        rlim_cur: 300_001,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `limit` is a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) };
    for (name, explicit) in [("f", true), ("g", false)] {
        let fd_out = open(&dir.join(name), libc::O_RDWR | libc::O_CREAT);
        let (mut oi, mut oo) = (1000i64, 1000i64);
        if !explicit {
            // SAFETY: lseek takes no pointer.
            unsafe {
                libc::lseek(fd_in, 1000, libc::SEEK_SET);
                libc::lseek(fd_out, 1000, libc::SEEK_SET);
            }
        }
        for call in 0..6 {
            let offs = explicit.then_some((&mut oi, &mut oo));
            let r = limits_call(
                &format!("fsize:{name}:{call}"),
                entry,
                fd_in,
                fd_out,
                offs,
                128 << 10,
                &expected,
                &mut out,
            );
            if r < 0 {
                break;
            }
        }
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(fd_out) };
    }
    for line in out {
        println!("{line}");
    }
}

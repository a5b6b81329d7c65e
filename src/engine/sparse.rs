//! Keeping sparse files sparse: holes in the source (`SEEK_DATA`/`SEEK_HOLE`) are skipped where
//! the destination range lies past the destination's end of file, since a skipped range there
//! reads back as zeros once the file's size covers it. A hole that maps onto existing destination
//! data is copied like data, so no stale byte survives.
//!
//! Data first: a skipped hole counts as copied only once the destination's size covers it, by a
//! later write or by the final `ftruncate`; if neither happens, it is not reported.

use super::{Mover, Progress, Run};
use crate::checks::Copy;
use crate::sys::{self, Errno};

pub fn copy(mover: &mut Mover, job: &Copy) -> Progress {
    // SEEK_DATA/SEEK_HOLE move the file position they are asked on: ask a private description.
    let Ok(probe) = sys::reopen_read_only(mover.fd_in) else {
        return mover.run(Run::whole(job));
    };
    let progress = copy_with_probe(mover, job, probe);
    sys::close(probe);
    progress
}

/// The hole walk; `probe` is a private descriptor of the source, used only for `lseek`.
fn copy_with_probe(mover: &mut Mover, job: &Copy, probe: i32) -> Progress {
    let fd_out = mover.fd_out;
    let end_in = job.pos_in.wrapping_add(job.count as i64);
    // Destination positions at or past this hold no data yet (read at the checks).
    let dst_eof = job.size_out;

    let mut done: usize = 0; // in place, and inside the destination's size
    let mut pending: usize = 0; // skipped hole bytes right after `done`, not yet covered
    let mut cur = job.pos_in;

    // Copies `[cur, cur + len)` densely; `Err(why)` when it stopped early (an error, or `None`
    // when the source ended).
    let dense = |mover: &mut Mover, cur: i64, len: usize, done: &mut usize, pending: &mut usize| {
        let offset = cur.wrapping_sub(job.pos_in);
        let p = mover.run(Run {
            pos_in: cur,
            pos_out: job.pos_out.wrapping_add(offset),
            count: len,
        });
        if p.copied > 0 {
            *done += *pending + p.copied;
            *pending = 0;
        }
        if p.copied < len || p.error.is_some() {
            return Err(p.error);
        }
        Ok(())
    };

    while cur < end_in {
        let data = match sys::lseek(probe, cur, libc::SEEK_DATA) {
            Ok(d) => d.min(end_in),
            Err(Errno::ENXIO) => end_in, // no data from here to EOF
            Err(_) => cur,               // no hole support: all data
        };
        if data > cur {
            // A hole: skip what lies past the destination's end, copy the rest as zeros.
            let out_start = job.pos_out.wrapping_add(cur.wrapping_sub(job.pos_in));
            let covered = (dst_eof.saturating_sub(out_start)).clamp(0, data - cur) as usize;
            if covered > 0 {
                if let Err(e) = dense(mover, cur, covered, &mut done, &mut pending) {
                    return Progress {
                        copied: done,
                        error: e,
                    };
                }
            }
            pending += (data - cur) as usize - covered;
            cur = data;
            if cur >= end_in {
                break;
            }
        }
        let hole = match sys::lseek(probe, cur, libc::SEEK_HOLE) {
            Ok(h) if h > cur => h.min(end_in),
            _ => end_in,
        };
        if let Err(e) = dense(mover, cur, (hole - cur) as usize, &mut done, &mut pending) {
            return Progress {
                copied: done,
                error: e,
            };
        }
        cur = hole;
    }

    if pending > 0 {
        // The source ends in a hole: extend the destination to cover it, never shrinking it.
        // Where the size cannot be set (an inode made append-only after it was opened refuses
        // ftruncate but not writes), write the hole's zeros like data, as the kernel would.
        let target = job.pos_out.wrapping_add((done + pending) as i64);
        let size_now = sys::fstat(fd_out).map(|st| st.size).unwrap_or(0);
        if size_now < target && sys::ftruncate(fd_out, target).is_err() {
            let hole_start = job.pos_in.wrapping_add(done as i64);
            let hole_len = pending;
            pending = 0;
            if let Err(e) = dense(mover, hole_start, hole_len, &mut done, &mut pending) {
                return Progress {
                    copied: done,
                    error: e,
                };
            }
        }
        done += pending;
    }
    Progress {
        copied: done,
        error: None,
    }
}

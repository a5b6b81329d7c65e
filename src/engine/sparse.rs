//! Keeping sparse files sparse: holes in the source (`SEEK_DATA`/`SEEK_HOLE`) are skipped where
//! the destination range lies past the destination's end of file, since a skipped range there
//! reads back as zeros once the file's size covers it. A hole that maps onto existing destination
//! data is copied like data, so no stale byte survives.
//!
//! Data first: a skipped hole counts as copied only once the destination's size covers it, by a
//! later write or by writing the hole's last byte; if neither happens, it is not reported.

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
    let mut end_in = job.pos_in.wrapping_add(job.count as i64);
    let mut walk = Walk {
        mover,
        job,
        done: 0,
        pending: 0,
    };
    let mut cur = job.pos_in;
    while cur < end_in {
        let data = match sys::lseek(probe, cur, libc::SEEK_DATA) {
            Ok(d) => d.min(end_in),
            Err(Errno::ENXIO) => {
                // No data from here to the end of file, which may have moved in since the
                // checks (a concurrent truncate): the hole ends there, not at the range's end.
                let eof = sys::fstat(probe).map_or(end_in, |st| st.size);
                end_in = end_in.min(eof.max(cur));
                end_in
            }
            Err(_) => cur, // no hole support: all data
        };
        if data > cur {
            // A hole: copy as zeros the part over existing destination data, skip the rest.
            let out_start = job.pos_out.wrapping_add(cur.wrapping_sub(job.pos_in));
            // (max/min, not clamp: clamp panics when its bounds are out of order.)
            let over_data = job
                .size_out
                .saturating_sub(out_start)
                .max(0)
                .min(data - cur) as usize;
            if over_data > 0 {
                if let Err(e) = walk.write(over_data) {
                    return walk.stopped(e);
                }
            }
            walk.pending += (data - cur) as usize - over_data;
            cur = data;
        }
        // The range may end here: after a hole, or because the source shrank to `cur`.
        if cur >= end_in {
            break;
        }
        let hole = match sys::lseek(probe, cur, libc::SEEK_HOLE) {
            Ok(h) if h > cur => h.min(end_in),
            _ => end_in,
        };
        if let Err(e) = walk.write((hole - cur) as usize) {
            return walk.stopped(e);
        }
        cur = hole;
    }
    walk.finish()
}

/// The walk's account: `done` bytes from the start are in place inside the destination's
/// size; the `pending` bytes after them are a skipped hole its size does not cover yet.
struct Walk<'a> {
    mover: &'a mut Mover,
    job: &'a Copy,
    done: usize,
    pending: usize,
}

/// Why a run stopped early: an error, or `None` when the source ended.
type Stop = Option<Errno>;

impl Walk<'_> {
    /// Copies the `len` source bytes after the pending hole, densely. Writing them past the
    /// hole also makes the destination's size cover the hole.
    fn write(&mut self, len: usize) -> Result<(), Stop> {
        let p = self.run(self.done + self.pending, len);
        if p.copied > 0 {
            self.done += self.pending + p.copied;
            self.pending = 0;
        } else if self.pending > 0 && p.error.is_some() {
            // Nothing could be written past the hole (e.g. EFBIG: the destination's maximum
            // size lies inside the hole): the kernel writes the hole's zeros as far as they go,
            // and so does this.
            return Err(self.write_pending().err().unwrap_or(p.error));
        }
        if p.copied < len || p.error.is_some() {
            return Err(p.error);
        }
        Ok(())
    }

    /// Writes the pending hole's zeros (read from the source's hole) like data.
    fn write_pending(&mut self) -> Result<(), Stop> {
        let len = core::mem::take(&mut self.pending);
        let p = self.run(self.done, len);
        self.done += p.copied;
        if p.copied < len || p.error.is_some() {
            return Err(p.error);
        }
        Ok(())
    }

    /// Moves `len` bytes starting `offset` bytes into the job.
    fn run(&mut self, offset: usize, len: usize) -> Progress {
        self.mover.run(Run {
            pos_in: self.job.pos_in.wrapping_add(offset as i64),
            pos_out: self.job.pos_out.wrapping_add(offset as i64),
            count: len,
        })
    }

    fn stopped(&self, e: Stop) -> Progress {
        Progress {
            copied: self.done,
            error: e,
        }
    }

    /// The source ends in a hole: make the destination's size cover it by writing the hole's
    /// last byte, a zero, as the kernel would. (Not `ftruncate`: the size it sets may already
    /// be stale, and shrinking would cut off what another writer just put past it. A one-byte
    /// write inside the call's own range can only grow the file.) Where even that fails, the
    /// hole's zeros are written like data, as far as they go.
    fn finish(mut self) -> Progress {
        if self.pending > 0 {
            let last = self
                .job
                .pos_out
                .wrapping_add((self.done + self.pending) as i64 - 1);
            if sys::pwrite(self.mover.fd_out, &[0], last) == Ok(1) {
                self.done += core::mem::take(&mut self.pending);
            } else if let Err(e) = self.write_pending() {
                return self.stopped(e);
            }
        }
        self.stopped(None)
    }
}

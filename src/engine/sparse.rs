//! Keeping sparse files sparse without trusting a hole map: the source is read, and a page of
//! the destination is left as a hole only when the bytes read for it in this call were all
//! zeros. A hole map (FIEMAP) only says where to look: its allocated extents are copied as they
//! are, everything else is read and checked. A map that lies (OpenZFS 2.2's SEEK_HOLE, a FUSE
//! server) can cost allocation, never data.
//!
//! Holes are left only past the destination's end of file: over existing destination data the
//! kernel's copy writes zeros, and so does this. A page left as a hole counts as copied only
//! once the destination's size covers it, by a later write or by writing the hole's last byte;
//! if neither happens, it is not reported.

use super::extents::{ExtentMap, Region};
use super::rw::{positioned_io_failure, write_all};
use super::{Mover, Progress, Run};
use crate::checks::{Copy, Failure};
use crate::sys;

pub fn copy(mover: &mut Mover, job: &Copy) -> Progress {
    mover.tally.engines.sparse = true;
    let mut walk = Walk {
        mover,
        job,
        done: 0,
        pending: 0,
    };
    match walk.copy() {
        Ok(()) => walk.finish(),
        Err(stop) => walk.stopped(stop),
    }
}

/// Why the walk stopped early: an error, or `None` when the source ended.
type Stop = Option<Failure>;

/// The walk's account: `done` bytes from the start are in place inside the destination's size;
/// the `pending` bytes after them read as zeros and were left as a hole its size does not
/// cover yet.
struct Walk<'a> {
    mover: &'a mut Mover,
    job: &'a Copy,
    done: usize,
    pending: usize,
}

impl Walk<'_> {
    fn copy(&mut self) -> Result<(), Stop> {
        let job = self.job;
        // Over the destination's existing data, every byte is written.
        let over_data = job.size_out.saturating_sub(job.pos_out).max(0) as u64;
        let over_data = over_data.min(job.count as u64) as usize;
        self.dense(over_data)?;
        let end = job.pos_in.wrapping_add(job.count as i64);
        let mut map = ExtentMap::new(self.mover.fd_in);
        while self.offset() < job.count {
            let pos = job.pos_in.wrapping_add(self.offset() as i64);
            match map.region(pos, end) {
                Region::Allocated(len) => self.dense(len)?,
                Region::Unknown(len) => self.scan(len)?,
            }
        }
        Ok(())
    }

    /// How far into the job the walk has looked: bytes in place and bytes left as a hole.
    fn offset(&self) -> usize {
        self.done + self.pending
    }

    /// Moves the next `len` bytes densely with the call's engine. Writing them past a pending
    /// hole also makes the destination's size cover the hole.
    fn dense(&mut self, len: usize) -> Result<(), Stop> {
        let p = self.mover.run(Run::within(self.job, self.offset(), len));
        if p.copied > 0 {
            self.cover_pending(p.copied);
        } else if let Some(e) = p.error {
            self.unwritable_past_pending(e)?;
        }
        if p.copied < len || p.error.is_some() {
            return Err(p.error);
        }
        Ok(())
    }

    /// Reads the next `len` bytes and writes them, except destination pages that read as
    /// all zeros, which are left as a hole.
    fn scan(&mut self, len: usize) -> Result<(), Stop> {
        self.with_buffer(|walk, buf| walk.scan_through(len, buf))
    }

    fn scan_through(&mut self, len: usize, buf: &mut [u8]) -> Result<(), Stop> {
        let page = sys::page_size();
        let end = self.offset() + len;
        let (fd_in, fd_out) = (self.mover.fd_in, self.mover.fd_out);
        while self.offset() < end {
            let at = self.offset();
            let want = (end - at).min(buf.len());
            let Some(chunk) = buf.get_mut(..want) else {
                return Err(None);
            };
            let pos_in = self.job.pos_in.wrapping_add(at as i64);
            let n = match sys::pread(fd_in, chunk, pos_in) {
                Ok(0) => return Err(None), // end of file: the source shrank
                Ok(n) => n.min(want),
                Err(e) => return Err(Some(positioned_io_failure(e))),
            };
            self.mover.tally.read += n as u64;
            // Destination pages: a hole can only be made of whole pages of the destination.
            let pos_out = self.job.pos_out.wrapping_add(at as i64) as u64;
            let mut i = 0;
            while i < n {
                let zero = page_is_zero(chunk, i, pos_out, page);
                let mut j = next_page(i, pos_out, page).min(n);
                while j < n && page_is_zero(chunk, j, pos_out, page) == zero {
                    j = next_page(j, pos_out, page).min(n);
                }
                if zero {
                    self.pending += j - i;
                } else {
                    let bytes = chunk.get(i..j).unwrap_or(&[]);
                    let out = self.job.pos_out.wrapping_add((at + i) as i64);
                    let written = write_all(fd_out, bytes, out);
                    let w = written.unwrap_or_else(|(w, _)| w);
                    self.mover.tally.written += w as u64;
                    if w > 0 {
                        self.cover_pending(w);
                    }
                    if let Err((_, e)) = written {
                        if w == 0 && self.pending > 0 {
                            // The chunk's bytes are no longer needed: its buffer holds the zeros.
                            return Err(self.write_pending_zeros(buf).err().unwrap_or(Some(e)));
                        }
                        return Err(Some(e));
                    }
                }
                i = j;
            }
        }
        Ok(())
    }

    /// Runs `f` with the call's buffer, lent out of the mover for the time.
    fn with_buffer(
        &mut self,
        f: impl FnOnce(&mut Self, &mut [u8]) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        let mut buf = self.mover.take_buffer().map_err(Some)?;
        let result = f(self, buf.as_mut_slice());
        self.mover.buf = Some(buf);
        result
    }

    /// `written` bytes landed after the pending hole: the hole is covered by the size now.
    fn cover_pending(&mut self, written: usize) {
        self.mover.tally.holes += self.pending as u64;
        self.done += self.pending + written;
        self.pending = 0;
    }

    /// Nothing could be written past the pending hole (e.g. EFBIG: the destination's maximum
    /// size lies inside the hole): the kernel writes the hole's zeros as far as they go, and so
    /// does this. Returns the error that stops the walk.
    fn unwritable_past_pending(&mut self, e: Failure) -> Result<(), Stop> {
        if self.pending == 0 {
            return Ok(());
        }
        let zeros_written = self.with_buffer(|walk, buf| walk.write_pending_zeros(buf));
        Err(zeros_written.err().unwrap_or(Some(e)))
    }

    /// Writes the pending hole's zeros (read from the source in this call) like data, from
    /// `buf`, whose contents it overwrites.
    fn write_pending_zeros(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        while self.pending > 0 {
            let len = self.pending.min(buf.len());
            let Some(zeros) = buf.get_mut(..len) else {
                return Err(None);
            };
            zeros.fill(0);
            let out = self.job.pos_out.wrapping_add(self.done as i64);
            let written = write_all(self.mover.fd_out, zeros, out);
            let w = written.unwrap_or_else(|(w, _)| w);
            self.mover.tally.written += w as u64;
            self.done += w;
            self.pending -= w;
            written.map_err(|(_, e)| Some(e))?;
        }
        Ok(())
    }

    fn stopped(&self, stop: Stop) -> Progress {
        Progress {
            copied: self.done,
            error: stop,
        }
    }

    /// The range ends in zeros left as a hole: make the destination's size cover it by writing
    /// the hole's last byte, a zero read from the source, as the kernel's copy would write it.
    /// (Not `ftruncate`: the size it sets may already be stale, and shrinking would cut off what
    /// another writer just put past it. A one-byte write inside the call's own range can only
    /// grow the file.) Where even that fails, the zeros are written like data, as far as they
    /// go.
    fn finish(mut self) -> Progress {
        if self.pending > 0 {
            let last = self.job.pos_out.wrapping_add(self.offset() as i64 - 1);
            if sys::pwrite(self.mover.fd_out, &[0], last) == Ok(1) {
                self.mover.tally.written += 1;
                self.mover.tally.holes += self.pending as u64 - 1;
                self.done += core::mem::take(&mut self.pending);
            } else if let Err(stop) = self.with_buffer(|walk, buf| walk.write_pending_zeros(buf)) {
                return self.stopped(stop);
            }
        }
        self.stopped(None)
    }
}

/// The offset in `chunk` where the destination page after the one holding byte `i` starts;
/// `chunk` begins at destination position `pos_out`.
fn next_page(i: usize, pos_out: u64, page: usize) -> usize {
    let page = page as u64;
    let at = pos_out.wrapping_add(i as u64);
    i + (page - at % page) as usize
}

/// Whether the destination page holding byte `i` of `chunk` (as far as `chunk` reaches) reads
/// as zeros.
fn page_is_zero(chunk: &[u8], i: usize, pos_out: u64, page: usize) -> bool {
    let end = next_page(i, pos_out, page).min(chunk.len());
    chunk.get(i..end).is_some_and(all_zero)
}

/// Data pages usually show a non-zero byte at once; zero pages are checked whole, in a fold
/// the compiler turns into wide vector operations.
fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().take(16).all(|&b| b == 0) && bytes.iter().fold(0u8, |acc, &b| acc | b) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_destination() {
        // A chunk written at destination position 4000: its first page ends after 96 bytes.
        assert_eq!(next_page(0, 4000, 4096), 96);
        assert_eq!(next_page(96, 4000, 4096), 96 + 4096);
        assert_eq!(next_page(0, 8192, 4096), 4096);
        let mut chunk = vec![0u8; 96 + 4096 + 10];
        assert!(page_is_zero(&chunk, 0, 4000, 4096));
        chunk[95] = 1;
        assert!(!page_is_zero(&chunk, 0, 4000, 4096));
        assert!(page_is_zero(&chunk, 96, 4000, 4096));
        chunk[96 + 4096 + 9] = 7; // the last, partial page
        assert!(!page_is_zero(&chunk, 96 + 4096, 4000, 4096));
    }

    #[test]
    fn zero_check() {
        assert!(all_zero(&[]));
        assert!(all_zero(&[0; 5000]));
        let mut v = vec![0u8; 5000];
        v[4999] = 1;
        assert!(!all_zero(&v));
        v[4999] = 0;
        v[3] = 0x80;
        assert!(!all_zero(&v));
    }
}

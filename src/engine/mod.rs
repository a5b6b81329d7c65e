//! Copy engines: move bytes from one position to another with explicit offsets, never touching
//! either file position, and report exactly how many bytes the destination now holds.
//!
//! `copy` is the one place that picks the strategy:
//! - **dense**: every byte is moved by an engine: `sendfile`, the kernel's own splice copy in
//!   one system call, where the destination offset is its file position (NULL `off_out`, as cp,
//!   Python, Java, systemd and libuv call it); `rw`, `pread`/`pwrite` through a private mapping,
//!   everywhere else and wherever sendfile is refused; or, only when asked for, `splice` through
//!   a private pipe. Each reads the source at the moment it writes: a pipe of ours would hold
//!   page references across two system calls instead (see `sendfile.rs`);
//! - **sparse** (`sparse.rs`): where the source may have holes and the destination range lies
//!   past the destination's end of file on a filesystem whose size is authoritative, the source
//!   is read, and only pages that *read* as zeros are left as holes. A hole map is a hint about
//!   where to look, never a reason to skip: nothing is skipped that was not read.
//!
//! Bytes read but not written are never counted.

mod extents;
mod rw;
mod sendfile;
mod sparse;
mod splice;

use crate::checks::{Copy, Failure};
use crate::config::{self, EngineChoice};
use crate::sys::{self, Errno, MappedBuf};

/// How far a copy got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes now in place at the destination, from its start position on.
    pub copied: usize,
    /// Why it stopped short, if an error did that (`None`: done, or the source ended early).
    pub error: Option<Failure>,
}

impl Progress {
    fn done(copied: usize) -> Progress {
        Progress {
            copied,
            error: None,
        }
    }

    fn stopped(copied: usize, error: Failure) -> Progress {
        Progress {
            copied,
            error: Some(error),
        }
    }
}

/// What one call did, for the log: bytes read from the source, bytes written to the
/// destination, bytes left as holes (read as zeros, not written), and the engines that ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub read: u64,
    pub written: u64,
    pub holes: u64,
    pub engines: Engines,
}

/// The engines that moved data in one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Engines {
    pub sendfile: bool,
    pub splice: bool,
    pub rw: bool,
    /// The sparse walk's own reads (`pread` and a zero check).
    pub sparse: bool,
}

/// One contiguous run: `count` bytes from `pos_in` to `pos_out`.
#[derive(Clone, Copy, Debug)]
struct Run {
    pos_in: i64,
    pos_out: i64,
    count: usize,
}

impl Run {
    /// The whole of a checked copy.
    fn whole(job: &Copy) -> Run {
        Run {
            pos_in: job.pos_in,
            pos_out: job.pos_out,
            count: job.count,
        }
    }

    /// The part of `job` from `offset` bytes into it, `count` long.
    fn within(job: &Copy, offset: usize, count: usize) -> Run {
        Run {
            pos_in: job.pos_in.wrapping_add(offset as i64),
            pos_out: job.pos_out.wrapping_add(offset as i64),
            count,
        }
    }
}

/// Copies `job` from `fd_in` to `fd_out`.
pub fn copy(fd_in: i32, fd_out: i32, job: &Copy) -> (Progress, Tally) {
    let mut mover = Mover::new(fd_in, fd_out, job);
    let progress = if leaves_holes(fd_out, job) {
        sparse::copy(&mut mover, job)
    } else {
        mover.run(Run::whole(job))
    };
    // sendfile moved the file position; with bytes copied the call sets it at the end, without
    // any it must be where it was.
    if mover.tally.engines.sendfile && progress.copied == 0 {
        let _ = sys::lseek(fd_out, job.pos_out, libc::SEEK_SET);
    }
    (progress, mover.tally)
}

/// Whether the copy may leave holes: asked for (`CFRFIX_SPARSE=auto`), the source may have
/// holes (`st_blocks` does not account for its whole size: a hint, so everything is still read),
/// part of the range lies past the destination's end of file (holes over existing data would
/// leave stale bytes), and the destination's size is authoritative.
fn leaves_holes(fd_out: i32, job: &Copy) -> bool {
    config::sparse()
        && job.size_known
        && job.src_unallocated > 0
        && job.reaches_past_dst_eof()
        && size_is_authoritative(fd_out)
}

/// Local filesystems, whose size for a descriptor is the file's size. On network and FUSE
/// filesystems (NFS, CIFS, 9p, Ceph, FUSE) the size is cached or remote: another client may
/// have written where a skipped range would leave a hole, so every byte is written there.
const AUTHORITATIVE_SIZE_FS: &[i64] = &[
    0x0102_1994, // TMPFS_MAGIC
    0xef53,      // EXT2/3/4_SUPER_MAGIC
    0x5846_5342, // XFS_SUPER_MAGIC
    0x9123_683e, // BTRFS_SUPER_MAGIC
    0x2fc1_2fc1, // ZFS_SUPER_MAGIC
    0xf2f5_2010, // F2FS_SUPER_MAGIC
    0xca45_1a4e, // BCACHEFS_SUPER_MAGIC
];

fn size_is_authoritative(fd: i32) -> bool {
    sys::fs_magic(fd).is_ok_and(|m| AUTHORITATIVE_SIZE_FS.contains(&m))
}

/// Moves data runs for one call, holding the engines' resources (a pipe, a buffer) until the
/// call returns, and counting what it did.
struct Mover {
    fd_in: i32,
    fd_out: i32,
    choice: EngineChoice,
    /// The engine for the next dense run.
    dense: Dense,
    /// The pipe of a splice that ended cleanly, kept for the next run of this call.
    pipe: Option<splice::Pipe>,
    /// The `pread`/`pwrite` buffer, mapped on first use, unmapped when the call returns.
    buf: Option<MappedBuf>,
    /// The size to map for `buf`: the call's count, at most `MAX_BUFFER`.
    buf_len: usize,
    tally: Tally,
}

/// The engines that move a run densely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dense {
    Sendfile,
    Splice,
    Rw,
}

/// The most memory one call maps for its buffer.
const MAX_BUFFER: usize = 1 << 20;

impl Mover {
    fn new(fd_in: i32, fd_out: i32, job: &Copy) -> Mover {
        let choice = config::engine();
        // Pseudo-files (size unknown) are read to their end with pread.
        let dense = match choice {
            _ if !job.size_known => Dense::Rw,
            EngineChoice::Rw => Dense::Rw,
            EngineChoice::Splice => Dense::Splice,
            EngineChoice::Auto if job.out_at_file_position => Dense::Sendfile,
            EngineChoice::Auto => Dense::Rw,
        };
        Mover {
            fd_in,
            fd_out,
            choice,
            dense,
            pipe: None,
            buf: None,
            buf_len: job.count.min(MAX_BUFFER).next_multiple_of(sys::page_size()),
            tally: Tally::default(),
        }
    }

    /// Moves `run` densely.
    fn run(&mut self, run: Run) -> Progress {
        // Nothing to move (a walk whose source shrank to its position): no pipe, no buffer
        // (a zero-length mapping would fail with EINVAL and turn into the call's error).
        if run.count == 0 {
            return Progress::done(0);
        }
        if self.dense == Dense::Rw {
            return self.rw_run(run);
        }
        let p = match self.dense {
            Dense::Sendfile => self.sendfile_run(run),
            _ => self.splice_run(run),
        };
        // Stopped by an error (a filesystem without splice support, a seccomp profile,
        // sendfile's limit of the smaller filesystem's maximum size on the source position):
        // the rest of the run with pread/pwrite, unless splice was forced. A real I/O error
        // shows again there; a pending signal is reported as is, as the kernel would.
        let stopped = matches!(p.error, Some(e) if e != Failure::Kernel(Errno::EINTR));
        if !stopped || self.choice == EngineChoice::Splice {
            return p;
        }
        self.dense = Dense::Rw;
        let rest = Run {
            pos_in: run.pos_in.wrapping_add(p.copied as i64),
            pos_out: run.pos_out.wrapping_add(p.copied as i64),
            count: run.count - p.copied,
        };
        let q = self.rw_run(rest);
        Progress {
            copied: p.copied + q.copied,
            error: q.error,
        }
    }

    fn rw_run(&mut self, run: Run) -> Progress {
        let mut buf = match self.take_buffer() {
            Ok(buf) => buf,
            Err(e) => return Progress::stopped(0, e),
        };
        self.tally.engines.rw = true;
        let (p, read) = rw::copy(self.fd_in, self.fd_out, run, buf.as_mut_slice());
        self.buf = Some(buf);
        self.count(read, p.copied);
        p
    }

    fn sendfile_run(&mut self, run: Run) -> Progress {
        // sendfile writes at the file position: where the run starts (after holes the sparse
        // walk left, it is not there yet).
        if let Err(e) = sys::lseek(self.fd_out, run.pos_out, libc::SEEK_SET) {
            return Progress::stopped(0, Failure::Emulation(e));
        }
        self.tally.engines.sendfile = true;
        let (p, read) = sendfile::copy(self.fd_in, self.fd_out, run);
        self.count(read, p.copied);
        p
    }

    fn splice_run(&mut self, run: Run) -> Progress {
        let pipe = match self.pipe.take() {
            Some(pipe) => pipe,
            None => match splice::Pipe::new(run.count) {
                Ok(pipe) => pipe,
                // No pipe: a resource of the emulation's own, not an answer of the kernel's.
                Err(e) => return Progress::stopped(0, Failure::Emulation(e)),
            },
        };
        self.tally.engines.splice = true;
        let (p, read) = splice::copy(&pipe, self.fd_in, self.fd_out, run);
        self.count(read, p.copied);
        // After an error bytes may be left in the pipe: it is dropped (closed), never reused.
        if p.error.is_none() {
            self.pipe = Some(pipe);
        }
        p
    }

    /// The call's buffer (mapped on first use), lent out until it is put back into `buf`.
    fn take_buffer(&mut self) -> Result<MappedBuf, Failure> {
        match self.buf.take() {
            Some(b) => Ok(b),
            // No memory for it: a resource of the emulation's own, not the kernel's answer.
            None => MappedBuf::new(self.buf_len).map_err(Failure::Emulation),
        }
    }

    fn count(&mut self, read: usize, written: usize) {
        self.tally.read += read as u64;
        self.tally.written += written as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_run_moves_nothing_and_fails_nothing() {
        let job = Copy {
            pos_in: 0,
            pos_out: 0,
            count: 1,
            size_out: 0,
            size_known: true,
            src_unallocated: 0,
            out_at_file_position: true,
        };
        // Descriptors that would fail any real system call: an empty run must not make one.
        let mut mover = Mover::new(-1, -1, &job);
        for dense in [Dense::Sendfile, Dense::Splice, Dense::Rw] {
            mover.dense = dense;
            let empty = Run {
                pos_in: 0,
                pos_out: 0,
                count: 0,
            };
            assert_eq!(mover.run(empty), Progress::done(0));
        }
        assert_eq!(mover.tally, Tally::default());
    }
}

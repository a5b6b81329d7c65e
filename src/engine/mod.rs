//! Copy engines: move bytes from one position to another with explicit offsets, never touching
//! either file position, and report exactly how many bytes the destination now holds.
//!
//! `copy` is the one place that picks the strategy: walk the source's data and holes (when the
//! destination range lies past its end of file, so skipping leaves no stale bytes), and move each
//! data run with an engine: `splice` through a private pipe (no copy through user space), or
//! `rw`, `pread`/`pwrite` through a private mapping (works everywhere). Bytes read but not
//! written are never counted.

mod rw;
mod sparse;
mod splice;

use crate::checks::Copy;
use crate::config::{self, EngineChoice};
use crate::sys::Errno;

/// How far a copy got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes now in place at the destination, from its start position on.
    pub copied: usize,
    /// Why it stopped short, if an error did that (`None`: done, or the source ended early).
    pub error: Option<Errno>,
}

impl Progress {
    fn stopped(copied: usize, e: Errno) -> Progress {
        Progress {
            copied,
            error: Some(e),
        }
    }
}

/// Which engine moved the data (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineUsed {
    None,
    Splice,
    Rw,
}

impl EngineUsed {
    pub fn name(self) -> &'static str {
        match self {
            EngineUsed::None => "none",
            EngineUsed::Splice => "splice",
            EngineUsed::Rw => "rw",
        }
    }
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
}

/// Copies `job` from `fd_in` to `fd_out`.
pub fn copy(fd_in: i32, fd_out: i32, job: &Copy) -> (Progress, EngineUsed) {
    let mut mover = Mover::new(fd_in, fd_out, job);
    let progress = if config::sparse() && job.size_known && job.reaches_past_dst_eof() {
        sparse::copy(&mut mover, job)
    } else {
        mover.run(Run::whole(job))
    };
    (progress, mover.used)
}

/// Moves data runs for one call, holding the engines' resources (a pipe, a buffer) until the
/// call returns.
struct Mover {
    fd_in: i32,
    fd_out: i32,
    choice: EngineChoice,
    /// The pipe of a splice that ended cleanly, kept for the next run of this call.
    pipe: Option<splice::Pipe>,
    /// Splice is not tried: forced off, refused earlier in this call, or a source of unknown
    /// size (pseudo-files are read to their end with `read`).
    splice_off: bool,
    used: EngineUsed,
}

impl Mover {
    fn new(fd_in: i32, fd_out: i32, job: &Copy) -> Mover {
        let choice = config::engine();
        Mover {
            fd_in,
            fd_out,
            choice,
            pipe: None,
            splice_off: choice == EngineChoice::Rw || !job.size_known,
            used: EngineUsed::None,
        }
    }

    fn run(&mut self, run: Run) -> Progress {
        // Nothing to move (a hole walk whose source shrank to its position): no pipe, no
        // buffer (a zero-length mapping would fail with EINVAL and turn into the call's error).
        if run.count == 0 {
            return Progress {
                copied: 0,
                error: None,
            };
        }
        if !self.splice_off {
            let p = self.splice_run(run);
            // Splice refused before moving anything (a filesystem without splice support, a
            // seccomp profile): the same run with pread/pwrite, unless the engine was forced.
            // A pending signal is reported as is, as the kernel would.
            let retry = p.copied == 0
                && matches!(p.error, Some(e) if e != Errno::EINTR)
                && self.choice == EngineChoice::Auto;
            if !retry {
                return p;
            }
            self.splice_off = true;
        }
        self.used = EngineUsed::Rw;
        rw::copy(self.fd_in, self.fd_out, run)
    }

    fn splice_run(&mut self, run: Run) -> Progress {
        let pipe = match self.pipe.take() {
            Some(pipe) => pipe,
            None => match splice::Pipe::new(run.count) {
                Ok(pipe) => pipe,
                Err(e) => return Progress::stopped(0, e),
            },
        };
        self.used = EngineUsed::Splice;
        let p = splice::copy(&pipe, self.fd_in, self.fd_out, run);
        // After an error bytes may be left in the pipe: it is dropped (closed), never reused.
        if p.error.is_none() {
            self.pipe = Some(pipe);
        }
        p
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
        };
        // Descriptors that would fail any real system call: an empty run must not make one.
        let mut mover = Mover::new(-1, -1, &job);
        for splice_off in [false, true] {
            mover.splice_off = splice_off;
            let empty = Run {
                pos_in: 0,
                pos_out: 0,
                count: 0,
            };
            assert_eq!(
                mover.run(empty),
                Progress {
                    copied: 0,
                    error: None
                }
            );
        }
        assert_eq!(mover.used, EngineUsed::None);
    }
}

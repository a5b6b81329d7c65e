//! Building a case's fixture: the source and destination descriptors (files with seeded content,
//! directories, pipes, `/dev/null`, −1, closed numbers, second opens and hard links), their
//! positions and inode flags, and the small descriptor helpers the other modules share. Files
//! are written with write(2), never with copy_file_range.

use std::ffi::{CString, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::case::{Case, FdKind};
use crate::report::{file_digest, pipe_digest};

/// Pipes start with 16 pages of capacity; filling a source pipe beyond that would block.
const PIPE_FILL_MAX: usize = 65536;

// <linux/fs.h> flags, not in the libc crate. FS_IOC_SETFLAGS (`_IOW('f', 2, long)`, so its
// number differs between 32- and 64-bit programs) takes a pointer to an int of these bits.
pub(crate) const FS_IMMUTABLE_FL: c_int = 0x10;
pub(crate) const FS_APPEND_FL: c_int = 0x20;

/// splitmix64: a tiny, well-mixed PRNG so fixture content is reproducible from the seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = SplitMix64(seed);
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

pub(crate) fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

/// Opens with `O_LARGEFILE` (as a 64-bit program or a 32-bit one built with
/// `_FILE_OFFSET_BITS=64` does), so that positions and sizes past 2 GiB work in a 32-bit probe.
pub(crate) fn open_raw(path: &Path, flags: c_int) -> c_int {
    open_fixture(path, flags, true)
}

/// `largefile: false` opens as a 32-bit program built without `_FILE_OFFSET_BITS=64` does:
/// the kernel then limits writes to 2 GiB − 1 and refuses to open a larger file (EOVERFLOW). A
/// 64-bit kernel entry adds `O_LARGEFILE` by itself, so this changes nothing in a 64-bit probe.
pub(crate) fn open_fixture(path: &Path, flags: c_int, largefile: bool) -> c_int {
    let path_c = c_path(path);
    let flags = flags | libc::O_CLOEXEC | if largefile { libc::O_LARGEFILE } else { 0 };
    // SAFETY: path_c is a valid NUL-terminated string that outlives the call. libc's `open` is
    // glibc's plain `open`, which adds no O_LARGEFILE of its own on a 32-bit target.
    let fd = unsafe { libc::open(path_c.as_ptr(), flags, 0o644) };
    assert!(fd >= 0, "open {} failed: errno {}", path.display(), errno());
    fd
}

pub(crate) fn close_fd(fd: c_int) {
    // SAFETY: closing a descriptor this probe opened and no longer uses.
    unsafe { libc::close(fd) };
}

fn seek_to(fd: c_int, pos: i64) {
    if pos != 0 {
        // SAFETY: as above; failure (unseekable fd) is deliberately ignored, see the doc.
        unsafe { libc::lseek64(fd, pos, libc::SEEK_SET) };
    }
}

/// Sets the inode flags (`chattr`) of the file at `path` to exactly `flags`; a no-op for
/// fixtures that are not files.
pub(crate) fn set_inode_flags(path: Option<&Path>, flags: c_int) {
    let Some(path) = path else { return };
    let fd = open_raw(path, libc::O_RDONLY | libc::O_NONBLOCK);
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags as *const c_int) };
    assert_eq!(
        rc,
        0,
        "FS_IOC_SETFLAGS {flags:#x} on {}: errno {}",
        path.display(),
        errno()
    );
    close_fd(fd);
}

/// Sets the mtime of the file at `path` to one second past the epoch (a no-op for fixtures that
/// are not files). A call that updates the file's times then visibly changes them, however
/// coarse the filesystem's clock: ZFS on Linux 6.12 stamps with the jiffy clock, so a write
/// within the same few milliseconds as the fixture's creation would otherwise look like none.
pub(crate) fn backdate_mtime(path: Option<&Path>) {
    let Some(path) = path else { return };
    let path_c = c_path(path);
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a NUL-terminated path and a pointer to two timespecs, both alive for the call.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, path_c.as_ptr(), times.as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}: errno {}", path.display(), errno());
}

fn write_file(path: &Path, content: &[u8], truncate_to: Option<u64>) {
    std::fs::write(path, content).expect("write fixture");
    if let Some(size) = truncate_to {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(size))
            .expect("truncate fixture");
    }
}

/// Extends (or shortens) the file at `path` to `size`, through a descriptor of its own.
fn grow_file(path: &Path, size: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(size))
        .expect("grow fixture");
}

/// A descriptor of the fixture plus what is needed to describe it afterwards.
pub(crate) struct FixtureFd {
    pub(crate) fd: c_int,
    /// The file whose size and hash are reported.
    pub(crate) path: Option<PathBuf>,
    /// A pipe's other end: the read end is drained for the report, both are closed after.
    pipe_other_end: Option<c_int>,
    /// Whether `fd` is ours to close (not for -1, a closed number, or `samefd`).
    owned: bool,
}

impl FixtureFd {
    fn plain(fd: c_int) -> FixtureFd {
        FixtureFd {
            fd,
            path: None,
            pipe_other_end: None,
            owned: true,
        }
    }

    fn unowned(fd: c_int) -> FixtureFd {
        FixtureFd {
            owned: false,
            ..FixtureFd::plain(fd)
        }
    }

    fn file(fd: c_int, path: PathBuf) -> FixtureFd {
        FixtureFd {
            path: Some(path),
            ..FixtureFd::plain(fd)
        }
    }

    pub(crate) fn digest(&self, is_source: bool) -> String {
        if let Some(path) = &self.path {
            return file_digest(path);
        }
        match self.pipe_other_end {
            // The source pipe's read end is `fd`; the destination's read end is the other one.
            Some(other) => pipe_digest(if is_source { self.fd } else { other }),
            None => "-".into(),
        }
    }

    pub(crate) fn close(self) {
        if self.owned {
            close_fd(self.fd);
        }
        if let Some(other) = self.pipe_other_end {
            close_fd(other);
        }
    }
}

fn make_pipe(fill: &[u8], is_source: bool) -> FixtureFd {
    let mut ends = [0 as c_int; 2];
    // SAFETY: ends is a writable array of two ints.
    assert_eq!(
        unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
        0
    );
    let [read_end, write_end] = ends;
    if !fill.is_empty() {
        // SAFETY: fill is readable; it is at most PIPE_FILL_MAX bytes, so this cannot block.
        let wrote = unsafe { libc::write(write_end, fill.as_ptr().cast(), fill.len()) };
        assert_eq!(wrote as usize, fill.len(), "fill pipe");
    }
    let (fd, other) = if is_source {
        (read_end, write_end)
    } else {
        (write_end, read_end)
    };
    FixtureFd {
        pipe_other_end: Some(other),
        ..FixtureFd::plain(fd)
    }
}

fn open_kind(kind: FdKind, mode: c_int, dir: &Path, name: &str) -> FixtureFd {
    match kind {
        FdKind::Dir => {
            let path = dir.join(name);
            std::fs::create_dir(&path).expect("mkdir fixture");
            FixtureFd::plain(open_raw(&path, libc::O_RDONLY | libc::O_DIRECTORY))
        }
        FdKind::DevNull => FixtureFd::plain(open_raw(Path::new("/dev/null"), mode)),
        FdKind::Minus1 => FixtureFd::unowned(-1),
        _ => unreachable!("handled by the caller"),
    }
}

pub(crate) fn build_source(case: &Case, dir: &Path) -> FixtureFd {
    let content = SplitMix64::bytes(case.seed, case.src_size);
    let fixture = match case.src {
        FdKind::File => {
            let path = dir.join("src");
            write_file(&path, &content, case.src_trunc);
            let fd = open_fixture(&path, case.src_mode, case.src_largefile);
            // Grown only now: a descriptor without O_LARGEFILE cannot be opened on a file
            // past 2 GiB, but the file can grow under it.
            if let Some(size) = case.src_grow {
                grow_file(&path, size);
            }
            FixtureFd::file(fd, path)
        }
        FdKind::Pipe => make_pipe(&content[..content.len().min(PIPE_FILL_MAX)], true),
        FdKind::Closed => FixtureFd::unowned(-1), // numbered later, once every fd is open
        kind => open_kind(kind, case.src_mode, dir, "srcdir"),
    };
    seek_to(fixture.fd, case.src_pos);
    fixture
}

pub(crate) fn build_destination(case: &Case, dir: &Path, source: &FixtureFd) -> FixtureFd {
    let fixture = match case.dst {
        FdKind::File => {
            let path = dir.join("dst");
            let content = SplitMix64::bytes(!case.seed, case.dst_size);
            write_file(&path, &content, case.dst_trunc);
            FixtureFd::file(open_fixture(&path, case.dst_mode, case.dst_largefile), path)
        }
        FdKind::SameFd => {
            // Reports the shared file once more; `run` re-points `fd` if the source's number
            // is only chosen later (`src=closed`).
            return FixtureFd {
                path: source.path.clone(),
                ..FixtureFd::unowned(source.fd)
            };
        }
        FdKind::SamePath | FdKind::HardLink => {
            let source_path = dir.join("src");
            if case.src != FdKind::File {
                write_file(&source_path, &[], None);
            }
            let path = if case.dst == FdKind::HardLink {
                let link = dir.join("link");
                std::fs::hard_link(&source_path, &link).expect("hard link");
                link
            } else {
                source_path
            };
            FixtureFd::file(open_raw(&path, case.dst_mode), path)
        }
        FdKind::Pipe => make_pipe(&[], false),
        FdKind::Closed => FixtureFd::unowned(-1),
        kind => open_kind(kind, case.dst_mode, dir, "dstdir"),
    };
    seek_to(fixture.fd, case.dst_pos);
    fixture
}

/// A descriptor number that is certainly closed at the time of the call: the lowest free one
/// right after every fixture descriptor has been opened.
pub(crate) fn closed_descriptor_number() -> c_int {
    let fd = open_raw(Path::new("/dev/null"), libc::O_RDONLY);
    close_fd(fd);
    fd
}

//! What the result line says about a descriptor after the call: its file position, a
//! `SIZE:HASH` digest of a file (holes hashed without reading them) or of what is left in a
//! pipe, and the file's change times.

use std::ffi::c_int;
use std::path::Path;

use crate::fixture::{close_fd, errno, open_raw};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a, fed in pieces. A hole of `n` zero bytes is folded in without reading it:
/// each zero byte only multiplies by the prime, so `n` of them multiply by `prime^n`.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Fnv1a {
        Fnv1a(FNV_OFFSET_BASIS)
    }

    fn bytes(&mut self, data: &[u8]) {
        for &byte in data {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }

    fn zeros(&mut self, mut count: u64) {
        let mut power = FNV_PRIME;
        let mut factor = 1u64;
        while count > 0 {
            if count & 1 == 1 {
                factor = factor.wrapping_mul(power);
            }
            power = power.wrapping_mul(power);
            count >>= 1;
        }
        self.0 = self.0.wrapping_mul(factor);
    }
}

/// Position of `fd` (`-` when it has none, e.g. pipes, `O_PATH`, bad descriptors).
pub(crate) fn position(fd: c_int) -> String {
    // SAFETY: lseek on an arbitrary descriptor number has no memory effects.
    let pos = unsafe { libc::lseek64(fd, 0, libc::SEEK_CUR) };
    if pos < 0 { "-".into() } else { pos.to_string() }
}

/// Files up to this size are hashed by reading them whole. Only larger ones ask SEEK_DATA and
/// SEEK_HOLE, which on ZFS wait for a transaction-group sync when the file has unsynced changes
/// (zfs_dmu_offset_next_sync=1, the default): about 0.1 s each in scripts/zfs-vm's emulated VM.
const READ_WHOLE_MAX: u64 = 16 << 20;

/// `SIZE:HASH` of the file at `path`, read through a fresh descriptor so the fixture
/// descriptors' positions stay untouched. Holes of large files are skipped with
/// SEEK_DATA/SEEK_HOLE so sparse files near 2^63 bytes hash in microseconds.
pub(crate) fn file_digest(path: &Path) -> String {
    let fd = open_raw(path, libc::O_RDONLY);
    // SAFETY: an all-zero stat64 is a valid value; fstat64 overwrites it.
    let mut stat: libc::stat64 = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open and stat is a valid, writable stat64 buffer.
    assert_eq!(unsafe { libc::fstat64(fd, &mut stat) }, 0, "fstat64");
    let size = stat.st_size as u64;
    let mut hash = Fnv1a::new();
    let mut buffer = vec![0u8; 1 << 16];
    // The next data (SEEK_DATA) or hole (SEEK_HOLE) at or after `pos`, at most `size`.
    let seek = |pos: u64, whence: c_int| -> u64 {
        if size <= READ_WHOLE_MAX {
            return if whence == libc::SEEK_DATA { pos } else { size };
        }
        // SAFETY: lseek has no memory effects.
        let found = unsafe { libc::lseek64(fd, pos as i64, whence) };
        if found < 0 {
            size
        } else {
            (found as u64).min(size)
        }
    };
    let mut pos = 0u64;
    while pos < size {
        let data = seek(pos, libc::SEEK_DATA);
        hash.zeros(data - pos);
        pos = data;
        if pos >= size {
            break;
        }
        let hole = seek(pos, libc::SEEK_HOLE);
        while pos < hole {
            let want = ((hole - pos) as usize).min(buffer.len());
            // SAFETY: buffer has at least `want` writable bytes.
            let got = unsafe { libc::pread64(fd, buffer.as_mut_ptr().cast(), want, pos as i64) };
            assert!(
                got > 0,
                "pread {} at {pos}: errno {}",
                path.display(),
                errno()
            );
            hash.bytes(&buffer[..got as usize]);
            pos += got as u64;
        }
    }
    close_fd(fd);
    format!("{size}:{:016x}", hash.0)
}

/// Drains what is buffered in a pipe's read end: `pipe:LEN:HASH`.
pub(crate) fn pipe_digest(read_end: c_int) -> String {
    // SAFETY: fcntl on our own pipe descriptor; non-blocking so an empty pipe ends the loop.
    unsafe { libc::fcntl(read_end, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut hash = Fnv1a::new();
    let mut total = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        // SAFETY: buffer is writable for its full length.
        let got = unsafe { libc::read(read_end, buffer.as_mut_ptr().cast(), buffer.len()) };
        if got <= 0 {
            break;
        }
        hash.bytes(&buffer[..got as usize]);
        total += got as usize;
    }
    format!("pipe:{total}:{:016x}", hash.0)
}

/// mtime and ctime of the file at `path`, to the nanosecond.
pub(crate) fn change_times(path: &Path) -> [i64; 4] {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("stat fixture");
    [
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ]
}

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
//!   ctime (tmpfs has multigrain timestamps, so the fstat before the call guarantees that an
//!   update is visible); `-` when the destination is not a file;
//! - `xfsz` counts SIGXFSZ deliveries during the call (a handler catches them).
//!
//! A malformed case line prints `error=...` instead and the probe carries on.

use std::ffi::{CString, c_int, c_uint, c_void};
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Pipes start with 16 pages of capacity; filling a source pipe beyond that would block.
const PIPE_FILL_MAX: usize = 65536;

/// The address `lowaddr` stands for: inside page zero, which `vm.mmap_min_addr` keeps unmapped.
const LOW_ADDRESS: usize = 16;

// <linux/fs.h>, not in the libc crate. The ioctls take a pointer to an int of FS_*_FL bits.
const FS_IOC_SETFLAGS: libc::Ioctl = 0x4008_6602; // _IOW('f', 2, long)
const FS_IMMUTABLE_FL: c_int = 0x10;
const FS_APPEND_FL: c_int = 0x20;

static SIGXFSZ_DELIVERIES: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_sigxfsz(_signal: c_int) {
    SIGXFSZ_DELIVERIES.fetch_add(1, Ordering::Relaxed);
}

type CopyFileRangeFn = unsafe extern "C" fn(
    c_int,
    *mut libc::loff_t,
    c_int,
    *mut libc::loff_t,
    libc::size_t,
    c_uint,
) -> libc::ssize_t;

#[derive(Clone, Copy, PartialEq)]
enum Entry {
    Libc,
    Syscall,
    Dlsym,
}

#[derive(Clone, Copy, PartialEq)]
enum FdKind {
    File,
    Dir,
    Pipe,
    DevNull,
    Minus1,
    Closed,
    /// Destination only: the source descriptor itself.
    SameFd,
    /// Destination only: a second open of the source path.
    SamePath,
    /// Destination only: a hard link to the source.
    HardLink,
}

#[derive(Clone, Copy)]
enum OffsetArg {
    Null,
    Writable(i64),
    ReadOnly(i64),
    /// Readable, but its last 4 bytes lie on a read-only page.
    SplitReadOnly(i64),
    ProtNone,
    /// First 4 bytes readable, last 4 on a `PROT_NONE` page.
    SplitProtNone,
    LowAddress,
    /// `off_out` only: the very pointer passed as `off_in`.
    AliasOfIn,
}

struct Case {
    entry: Entry,
    src: FdKind,
    src_size: usize,
    src_trunc: Option<u64>,
    src_mode: c_int,
    src_pos: i64,
    dst: FdKind,
    dst_size: usize,
    dst_trunc: Option<u64>,
    dst_mode: c_int,
    dst_pos: i64,
    src_attr: c_int,
    dst_attr: c_int,
    off_in: OffsetArg,
    off_out: OffsetArg,
    len: u64,
    flags: u32,
    fsize: Option<u64>,
    seed: u64,
}

impl Default for Case {
    fn default() -> Case {
        Case {
            entry: Entry::Libc,
            src: FdKind::File,
            src_size: 0,
            src_trunc: None,
            src_mode: libc::O_RDONLY,
            src_pos: 0,
            dst: FdKind::File,
            dst_size: 0,
            dst_trunc: None,
            dst_mode: libc::O_WRONLY,
            dst_pos: 0,
            src_attr: 0,
            dst_attr: 0,
            off_in: OffsetArg::Null,
            off_out: OffsetArg::Null,
            len: 0,
            flags: 0,
            fsize: None,
            seed: 0,
        }
    }
}

/// Parses a number in `-2^63 .. 2^64` (decimal or `0x` hex) into its 64 bits.
fn parse_bits(text: &str) -> Result<u64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse::<u64>(),
    }
    .map_err(|e| format!("bad number {text:?}: {e}"))?;
    if negative {
        if magnitude > 1u64 << 63 {
            return Err(format!("{text} is below -2^63"));
        }
        Ok(magnitude.wrapping_neg())
    } else {
        Ok(magnitude)
    }
}

fn parse_size(text: &str) -> Result<usize, String> {
    let bits = parse_bits(text)?;
    usize::try_from(bits).map_err(|_| format!("size {text} too large"))
}

fn parse_mode(text: &str) -> Result<c_int, String> {
    Ok(match text {
        "ro" => libc::O_RDONLY,
        "wo" => libc::O_WRONLY,
        "rw" => libc::O_RDWR,
        "append" => libc::O_WRONLY | libc::O_APPEND,
        "rwappend" => libc::O_RDWR | libc::O_APPEND,
        "path" => libc::O_PATH,
        _ => return Err(format!("unknown mode {text:?}")),
    })
}

fn parse_attr(text: &str) -> Result<c_int, String> {
    Ok(match text {
        "none" => 0,
        "immutable" => FS_IMMUTABLE_FL,
        "appendonly" => FS_APPEND_FL,
        _ => return Err(format!("unknown attribute {text:?}")),
    })
}

fn parse_kind(text: &str, destination: bool) -> Result<FdKind, String> {
    let kind = match text {
        "file" => FdKind::File,
        "dir" => FdKind::Dir,
        "pipe" => FdKind::Pipe,
        "devnull" => FdKind::DevNull,
        "minus1" => FdKind::Minus1,
        "closed" => FdKind::Closed,
        "samefd" if destination => FdKind::SameFd,
        "samepath" if destination => FdKind::SamePath,
        "hardlink" if destination => FdKind::HardLink,
        _ => return Err(format!("unknown fd kind {text:?}")),
    };
    Ok(kind)
}

fn parse_offset(text: &str, is_off_out: bool) -> Result<OffsetArg, String> {
    Ok(match text {
        "null" => OffsetArg::Null,
        "fault" => OffsetArg::ProtNone,
        "splitfault" => OffsetArg::SplitProtNone,
        "lowaddr" => OffsetArg::LowAddress,
        "alias" if is_off_out => OffsetArg::AliasOfIn,
        _ => {
            if let Some(value) = text.strip_prefix("ro:") {
                OffsetArg::ReadOnly(parse_bits(value)? as i64)
            } else if let Some(value) = text.strip_prefix("splitro:") {
                OffsetArg::SplitReadOnly(parse_bits(value)? as i64)
            } else {
                OffsetArg::Writable(parse_bits(text)? as i64)
            }
        }
    })
}

fn parse_case(line: &str) -> Result<Case, String> {
    let mut case = Case::default();
    for pair in line.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        match key {
            "entry" => {
                case.entry = match value {
                    "libc" => Entry::Libc,
                    "syscall" => Entry::Syscall,
                    "dlsym" => Entry::Dlsym,
                    _ => return Err(format!("unknown entry {value:?}")),
                }
            }
            "src" => case.src = parse_kind(value, false)?,
            "src_size" => case.src_size = parse_size(value)?,
            "src_trunc" => case.src_trunc = Some(parse_bits(value)?),
            "src_mode" => case.src_mode = parse_mode(value)?,
            "src_pos" => case.src_pos = parse_bits(value)? as i64,
            "dst" => case.dst = parse_kind(value, true)?,
            "dst_size" => case.dst_size = parse_size(value)?,
            "dst_trunc" => case.dst_trunc = Some(parse_bits(value)?),
            "dst_mode" => case.dst_mode = parse_mode(value)?,
            "dst_pos" => case.dst_pos = parse_bits(value)? as i64,
            "src_attr" => case.src_attr = parse_attr(value)?,
            "dst_attr" => case.dst_attr = parse_attr(value)?,
            "off_in" => case.off_in = parse_offset(value, false)?,
            "off_out" => case.off_out = parse_offset(value, true)?,
            "len" => case.len = parse_bits(value)?,
            "flags" => {
                case.flags = u32::try_from(parse_bits(value)?)
                    .map_err(|_| format!("flags {value} exceed 32 bits"))?
            }
            "fsize" => {
                case.fsize = match value {
                    "none" => None,
                    _ => Some(parse_bits(value)?),
                }
            }
            "seed" => case.seed = parse_bits(value)?,
            _ => return Err(format!("unknown key {key:?}")),
        }
    }
    if matches!(case.off_out, OffsetArg::AliasOfIn) && matches!(case.off_in, OffsetArg::Null) {
        return Err("off_out=alias needs a non-null off_in".into());
    }
    Ok(case)
}

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

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

fn open_raw(path: &Path, flags: c_int) -> c_int {
    let path_c = c_path(path);
    // SAFETY: path_c is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path_c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    assert!(fd >= 0, "open {} failed: errno {}", path.display(), errno());
    fd
}

fn close_fd(fd: c_int) {
    // SAFETY: closing a descriptor this probe opened and no longer uses.
    unsafe { libc::close(fd) };
}

/// Position of `fd` (`-` when it has none, e.g. pipes, `O_PATH`, bad descriptors).
fn position(fd: c_int) -> String {
    // SAFETY: lseek on an arbitrary descriptor number has no memory effects.
    let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    if pos < 0 { "-".into() } else { pos.to_string() }
}

fn seek_to(fd: c_int, pos: i64) {
    if pos != 0 {
        // SAFETY: as above; failure (unseekable fd) is deliberately ignored, see the doc.
        unsafe { libc::lseek(fd, pos, libc::SEEK_SET) };
    }
}

/// `SIZE:HASH` of the file at `path`, read through a fresh descriptor so the fixture
/// descriptors' positions stay untouched. Holes are skipped with SEEK_DATA/SEEK_HOLE so sparse
/// files near 2^63 bytes hash in microseconds.
fn file_digest(path: &Path) -> String {
    let fd = open_raw(path, libc::O_RDONLY);
    // SAFETY: an all-zero stat is a valid value; fstat overwrites it.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open and stat is a valid, writable stat buffer.
    assert_eq!(unsafe { libc::fstat(fd, &mut stat) }, 0, "fstat");
    let size = stat.st_size as u64;
    let mut hash = Fnv1a::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut pos = 0u64;
    while pos < size {
        // SAFETY: lseek has no memory effects.
        let data = unsafe { libc::lseek(fd, pos as i64, libc::SEEK_DATA) };
        let data = if data < 0 { size } else { data as u64 };
        hash.zeros(data - pos);
        pos = data;
        if pos >= size {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, pos as i64, libc::SEEK_HOLE) };
        let hole = if hole < 0 {
            size
        } else {
            (hole as u64).min(size)
        };
        while pos < hole {
            let want = ((hole - pos) as usize).min(buffer.len());
            // SAFETY: buffer has at least `want` writable bytes.
            let got = unsafe { libc::pread(fd, buffer.as_mut_ptr().cast(), want, pos as i64) };
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
fn pipe_digest(read_end: c_int) -> String {
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

/// Sets the inode flags (`chattr`) of the file at `path` to exactly `flags`; a no-op for
/// fixtures that are not files.
fn set_inode_flags(path: Option<&Path>, flags: c_int) {
    let Some(path) = path else { return };
    let fd = open_raw(path, libc::O_RDONLY | libc::O_NONBLOCK);
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(fd, FS_IOC_SETFLAGS, &flags as *const c_int) };
    assert_eq!(
        rc,
        0,
        "FS_IOC_SETFLAGS {flags:#x} on {}: errno {}",
        path.display(),
        errno()
    );
    close_fd(fd);
}

/// mtime and ctime of the file at `path`, to the nanosecond.
fn change_times(path: &Path) -> [i64; 4] {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).expect("stat fixture");
    [
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ]
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

/// Pages for the offset variables: one group of three per argument (`off_in` = group 0,
/// `off_out` = group 1), each read-write, then read-only (after the values are stored), then
/// `PROT_NONE` (kept reserved so nothing else is ever mapped there). The split variables
/// straddle the boundary after the first or the second page of their group.
struct OffsetPages {
    base: *mut u8,
    page_size: usize,
}

const PAGES_PER_GROUP: usize = 3;
const READ_WRITE_PAGE: usize = 0;
const READ_ONLY_PAGE: usize = 1;
const PROT_NONE_PAGE: usize = 2;

impl OffsetPages {
    fn new() -> OffsetPages {
        // SAFETY: sysconf has no memory effects.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a fresh anonymous private mapping; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGES_PER_GROUP * page_size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap offset pages");
        let pages = OffsetPages {
            base: base.cast(),
            page_size,
        };
        for group in 0..2 {
            pages.protect(group, PROT_NONE_PAGE, libc::PROT_NONE);
        }
        pages
    }

    fn protect(&self, group: usize, page: usize, protection: c_int) {
        // SAFETY: group < 2 and page < PAGES_PER_GROUP: the page lies inside our mapping.
        let rc = unsafe {
            libc::mprotect(
                self.base
                    .add((group * PAGES_PER_GROUP + page) * self.page_size)
                    .cast::<c_void>(),
                self.page_size,
                protection,
            )
        };
        assert_eq!(rc, 0, "mprotect");
    }

    /// The start of `page` in `group`, or with `straddle` the address 4 bytes before its end,
    /// so that a `loff_t` there runs into the next page.
    fn slot(&self, group: usize, page: usize, straddle: bool) -> *mut libc::loff_t {
        let mut offset = (group * PAGES_PER_GROUP + page) * self.page_size;
        if straddle {
            offset += self.page_size - 4;
        }
        // SAFETY: offset + 8 stays inside the 2 * PAGES_PER_GROUP pages of the mapping.
        unsafe { self.base.add(offset).cast() }
    }

    /// Stores the values and returns the `(off_in, off_out)` arguments for a case.
    fn arguments(&self, case: &Case) -> (*mut libc::loff_t, *mut libc::loff_t) {
        let pointer = |spec: OffsetArg, group: usize| -> *mut libc::loff_t {
            let (page, straddle, value) = match spec {
                OffsetArg::Null | OffsetArg::AliasOfIn => return std::ptr::null_mut(),
                OffsetArg::LowAddress => return LOW_ADDRESS as *mut libc::loff_t,
                OffsetArg::ProtNone => return self.slot(group, PROT_NONE_PAGE, false),
                OffsetArg::SplitProtNone => return self.slot(group, READ_ONLY_PAGE, true),
                OffsetArg::Writable(value) => (READ_WRITE_PAGE, false, value),
                OffsetArg::ReadOnly(value) => (READ_ONLY_PAGE, false, value),
                OffsetArg::SplitReadOnly(value) => (READ_WRITE_PAGE, true, value),
            };
            let slot = self.slot(group, page, straddle);
            self.protect(group, READ_ONLY_PAGE, libc::PROT_READ | libc::PROT_WRITE);
            // SAFETY: the slot's 8 bytes lie on the group's first two pages, both read-write
            // right now. Split slots are only 4-byte aligned, hence write_unaligned.
            unsafe { slot.write_unaligned(value) };
            self.protect(group, READ_ONLY_PAGE, libc::PROT_READ);
            slot
        };
        let off_in = pointer(case.off_in, 0);
        let off_out = match case.off_out {
            OffsetArg::AliasOfIn => off_in,
            spec => pointer(spec, 1),
        };
        (off_in, off_out)
    }
}

/// The value an offset argument holds after the call (`spec` is what `pointer` was made from;
/// for an alias, the `off_in` spec).
fn offset_after(spec: OffsetArg, pointer: *mut libc::loff_t) -> String {
    match spec {
        OffsetArg::Null => "null".into(),
        OffsetArg::ProtNone | OffsetArg::SplitProtNone | OffsetArg::LowAddress => "-".into(),
        // SAFETY: these pointers point at 8 readable bytes of the offset pages.
        OffsetArg::Writable(_) | OffsetArg::ReadOnly(_) | OffsetArg::SplitReadOnly(_) => unsafe {
            pointer.read_unaligned().to_string()
        },
        OffsetArg::AliasOfIn => unreachable!("resolved to the off_in spec by the caller"),
    }
}

/// A descriptor of the fixture plus what is needed to describe it afterwards.
struct FixtureFd {
    fd: c_int,
    /// The file whose size and hash are reported.
    path: Option<PathBuf>,
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

    fn digest(&self, is_source: bool) -> String {
        if let Some(path) = &self.path {
            return file_digest(path);
        }
        match self.pipe_other_end {
            // The source pipe's read end is `fd`; the destination's read end is the other one.
            Some(other) => pipe_digest(if is_source { self.fd } else { other }),
            None => "-".into(),
        }
    }

    fn close(self) {
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

fn build_source(case: &Case, dir: &Path) -> FixtureFd {
    let content = SplitMix64::bytes(case.seed, case.src_size);
    let fixture = match case.src {
        FdKind::File => {
            let path = dir.join("src");
            write_file(&path, &content, case.src_trunc);
            FixtureFd::file(open_raw(&path, case.src_mode), path)
        }
        FdKind::Pipe => make_pipe(&content[..content.len().min(PIPE_FILL_MAX)], true),
        FdKind::Closed => FixtureFd::unowned(-1), // numbered later, once every fd is open
        kind => open_kind(kind, case.src_mode, dir, "srcdir"),
    };
    seek_to(fixture.fd, case.src_pos);
    fixture
}

fn build_destination(case: &Case, dir: &Path, source: &FixtureFd) -> FixtureFd {
    let fixture = match case.dst {
        FdKind::File => {
            let path = dir.join("dst");
            let content = SplitMix64::bytes(!case.seed, case.dst_size);
            write_file(&path, &content, case.dst_trunc);
            FixtureFd::file(open_raw(&path, case.dst_mode), path)
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
fn closed_descriptor_number() -> c_int {
    let fd = open_raw(Path::new("/dev/null"), libc::O_RDONLY);
    close_fd(fd);
    fd
}

struct Prober {
    base: PathBuf,
    offsets: OffsetPages,
    dlsym_copy_file_range: CopyFileRangeFn,
    original_fsize: libc::rlimit,
}

impl Prober {
    fn new(base: PathBuf) -> Prober {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name; the result is checked.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"copy_file_range".as_ptr()) };
        assert!(!symbol.is_null(), "dlsym(copy_file_range) found nothing");
        // SAFETY: the symbol is glibc's (or the preload's) copy_file_range, which has exactly
        // this C signature.
        let dlsym_copy_file_range =
            unsafe { std::mem::transmute::<*mut c_void, CopyFileRangeFn>(symbol) };

        // SAFETY: a zeroed sigaction is valid; the handler only touches an atomic, which is
        // async-signal-safe. Catching SIGXFSZ keeps the process alive and lets us count it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = count_sigxfsz as extern "C" fn(c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGXFSZ, &action, std::ptr::null_mut()),
                0
            );
        }

        let mut original_fsize = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: original_fsize is a valid, writable rlimit.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut original_fsize) },
            0
        );
        Prober {
            base,
            offsets: OffsetPages::new(),
            dlsym_copy_file_range,
            original_fsize,
        }
    }

    fn set_fsize(&self, limit: &libc::rlimit) {
        // SAFETY: limit is a valid rlimit; lowering only the soft limit needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, limit) }, 0);
    }

    /// Makes the one copy_file_range call through `entry`; returns `(ret, errno)`.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        entry: Entry,
        fd_in: c_int,
        off_in: *mut libc::loff_t,
        fd_out: c_int,
        off_out: *mut libc::loff_t,
        len: usize,
        flags: c_uint,
    ) -> (i64, c_int) {
        // SAFETY: errno is thread-local; clearing it makes a stale value impossible to report.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: all three are the copy_file_range ABI. The offset pointers are either valid
        // or deliberately invalid; the kernel (or the shim) must report EFAULT for those.
        let ret = unsafe {
            match entry {
                Entry::Libc => libc::copy_file_range(fd_in, off_in, fd_out, off_out, len, flags),
                // Ints stay ints, as libuv passes them to the variadic syscall().
                Entry::Syscall => libc::syscall(
                    libc::SYS_copy_file_range,
                    fd_in,
                    off_in,
                    fd_out,
                    off_out,
                    len,
                    flags,
                ) as libc::ssize_t,
                Entry::Dlsym => {
                    (self.dlsym_copy_file_range)(fd_in, off_in, fd_out, off_out, len, flags)
                }
            }
        };
        let error = if ret < 0 { errno() } else { 0 };
        (ret as i64, error)
    }

    fn run(&self, index: usize, case: &Case) -> String {
        let dir = self.base.join(format!("c{index}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("case dir");

        let mut source = build_source(case, &dir);
        let mut destination = build_destination(case, &dir, &source);
        if case.src == FdKind::Closed || case.dst == FdKind::Closed {
            let closed = closed_descriptor_number();
            if case.src == FdKind::Closed {
                source.fd = closed;
            }
            if case.dst == FdKind::Closed {
                destination.fd = closed;
            }
            if case.dst == FdKind::SameFd {
                destination.fd = source.fd;
            }
        }
        // Only now: an immutable file could not have been opened for writing.
        if case.src_attr != 0 {
            set_inode_flags(source.path.as_deref(), case.src_attr);
        }
        if case.dst_attr != 0 {
            set_inode_flags(destination.path.as_deref(), case.dst_attr);
        }
        let (off_in, off_out) = self.offsets.arguments(case);
        let off_out_spec = match case.off_out {
            OffsetArg::AliasOfIn => case.off_in,
            spec => spec,
        };
        let times_before = destination.path.as_deref().map(change_times);

        SIGXFSZ_DELIVERIES.store(0, Ordering::Relaxed);
        if let Some(limit) = case.fsize {
            self.set_fsize(&libc::rlimit {
                rlim_cur: limit,
                rlim_max: self.original_fsize.rlim_max,
            });
        }
        let (ret, error) = self.call(
            case.entry,
            source.fd,
            off_in,
            destination.fd,
            off_out,
            case.len as usize,
            case.flags,
        );
        if case.fsize.is_some() {
            self.set_fsize(&self.original_fsize);
        }
        let sigxfsz = SIGXFSZ_DELIVERIES.load(Ordering::Relaxed);
        let mtime = match (&times_before, destination.path.as_deref()) {
            (Some(before), Some(path)) if *before == change_times(path) => "same",
            (Some(_), Some(_)) => "changed",
            _ => "-",
        };

        let line = format!(
            "ret={ret} errno={error} pos_in={} pos_out={} off_in={} off_out={} dst={} src={} mtime={mtime} xfsz={sigxfsz}",
            position(source.fd),
            position(destination.fd),
            offset_after(case.off_in, off_in),
            offset_after(off_out_spec, off_out),
            destination.digest(false),
            source.digest(true),
        );
        // Immutable files and their directory could not be removed otherwise.
        if case.src_attr != 0 || case.dst_attr != 0 {
            set_inode_flags(source.path.as_deref(), 0);
            set_inode_flags(destination.path.as_deref(), 0);
        }
        destination.close();
        source.close();
        let _ = std::fs::remove_dir_all(&dir);
        line
    }
}

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

//! Data first on ZFS: copies through the library of sources that ZFS treats specially.
//!
//! scripts/zfs-vm runs this file inside its VM against directories on a real OpenZFS pool
//! (`CFRFIX_TEST_DIR`), with `zfs_dmu_offset_next_sync` 1 and 0, on a dataset with compression
//! and one without, and `zfs_txg_timeout` raised so that a just-written file stays dirty until a
//! test syncs the pool. `cargo test` runs the same tests on tmpfs, where the ZFS-only parts
//! (the dirty-data precondition, `zpool sync`) do not apply.
//!
//! Sources: dirty (written, not synced), written through a shared mapping and not yet flushed
//! (into a new file, and into holes of a synced file: the OpenZFS #15933 pattern), sparse at
//! record granularity (1 MiB of data at unaligned offsets in a large file), and compressible
//! zeros (written zero bytes, which ZFS with compression stores as holes). Each is copied into
//! a new file through the library, with the kernel's copy_file_range failing (injected 95) and
//! with `CFRFIX_MODE=always`. Every copy must be byte-identical; after a pool sync, a copy
//! allocates at most the source's allocation + 1 MiB, and the copy of a source that was synced
//! (so fully allocated where it holds data) at least the source's allocation - 1 MiB.
//!
//! `check_*` (ignored by `cargo test`; needs the pool): `cfrfix --check` on ZFS names the
//! running module's version and gives a verdict for it and the kernel.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Rng, ScratchDir};

const INJECT: &str = env!("CARGO_BIN_EXE_cfrfix-inject");
const CALL: &str = env!("CARGO_BIN_EXE_cfrfix-call");
/// statfs(2) f_type of ZFS (ZFS_SUPER_MAGIC).
const ZFS_SUPER_MAGIC: i64 = 0x2fc1_2fc1;
const MIB: u64 = 1 << 20;
/// A copy under emulation (TCG) reads a few hundred MiB; this is for a hang.
const COPY_TIMEOUT: Duration = Duration::from_secs(300);
/// How much allocation may differ from what the rules allow (metadata, indirect blocks).
const ALLOCATION_SLACK: u64 = MIB;

// ---------------------------------------------------------------------------------------
// The directory under test, and what ZFS adds to it.

fn is_zfs(path: &Path) -> bool {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: an all-zero statfs is a valid value; statfs fills it in.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a pointer to a live statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut buf) };
    assert_eq!(rc, 0, "statfs {}", path.display());
    buf.f_type as i64 == ZFS_SUPER_MAGIC
}

/// Writes everything dirty to disk. On ZFS that takes a transaction-group sync (`zpool sync`):
/// `syncfs` only commits the intent log, and `st_blocks` counts synced blocks only.
fn sync_to_disk(dir: &Path) {
    if is_zfs(dir) {
        let out = Command::new("zpool")
            .arg("sync")
            .output()
            .expect("run zpool sync (scripts/zfs-vm puts zpool on PATH)");
        assert!(
            out.status.success(),
            "zpool sync: {}",
            common::describe(&out)
        );
    } else {
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
    }
}

fn allocated(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").blocks() * 512
}

/// A ZFS module parameter, for the record (`-` when not on ZFS).
fn zfs_parameter(name: &str) -> String {
    fs::read_to_string(format!("/sys/module/zfs/parameters/{name}"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "-".into())
}

/// Asserts that `path`, just written with `len` incompressible bytes, is still dirty on ZFS: its
/// data is not counted in `st_blocks` until a transaction group syncs it. Without this, a test
/// of dirty data could silently test synced data (zfs_txg_timeout elapsed).
fn assert_still_dirty(dir: &Path, path: &Path, len: u64) {
    if !is_zfs(dir) {
        return;
    }
    let blocks = allocated(path);
    assert!(
        blocks < len / 4,
        "{}: {blocks} bytes allocated of {len} just written: already synced, so this would not \
         test a dirty source (scripts/zfs-vm raises zfs_txg_timeout for these tests)",
        path.display()
    );
}

// ---------------------------------------------------------------------------------------
// Copying through the library.

#[derive(Clone, Copy, Debug)]
enum Via {
    /// copy_file_range fails with this errno (seccomp); the library copies.
    Injected(i32),
    /// `CFRFIX_MODE=always`: the library never asks the kernel.
    ModeAlways,
}

const VIAS: [Via; 2] = [Via::Injected(95), Via::ModeAlways];

/// Copies all of `src` into the new file `dst` through the library (glibc's symbol, in a loop
/// until 0 as `cp` does) and checks that the library did it: the call count, and its log.
fn library_copy(via: Via, src: &Path, dst: &Path) {
    let log = dst.with_extension("log");
    let mut command = match via {
        Via::Injected(errno) => {
            let mut c = common::clean(INJECT);
            c.arg(errno.to_string()).arg("--").arg(CALL);
            c
        }
        Via::ModeAlways => {
            let mut c = common::clean(CALL);
            c.env("CFRFIX_MODE", "always");
            c
        }
    };
    command
        .arg("copy")
        .arg(src)
        .arg(dst)
        .args(["len=1073741824", "repeat=until0"])
        .env("LD_PRELOAD", common::cdylib())
        .env("CFRFIX_LOG", &log);
    let context = format!("{via:?}: {} -> {}", src.display(), dst.display());
    let out = common::output_within(&mut command, COPY_TIMEOUT, None)
        .unwrap_or_else(|e| panic!("{context}: cannot run cfrfix-call: {e}"))
        .unwrap_or_else(|| panic!("{context}: still copying after {COPY_TIMEOUT:?}"));
    let line = common::text(&out.stdout);
    let size = fs::metadata(src).expect("stat source").len();
    assert!(
        out.status.success() && line.starts_with(&format!("ret={size} errno=0 ")),
        "{context}: expected ret={size}: {}",
        common::describe(&out)
    );
    let logged = fs::read_to_string(&log).unwrap_or_default();
    let trigger = match via {
        Via::Injected(95) => "EOPNOTSUPP",
        Via::Injected(_) => "kernel said",
        Via::ModeAlways => "mode always",
    };
    assert!(
        size == 0 || logged.contains(trigger),
        "{context}: the library did not log a fallback ({trigger:?}); log: {logged:?}"
    );
    let _ = fs::remove_file(&log);
}

/// Byte-for-byte equality of two files, read in 1 MiB pieces; on a difference, panics with
/// the first differing offset.
fn assert_same_bytes(expected: &Path, actual: &Path, context: &str) {
    let (a, b) = (
        fs::File::open(expected).expect("open"),
        fs::File::open(actual).expect("open"),
    );
    let (len_a, len_b) = (a.metadata().unwrap().len(), b.metadata().unwrap().len());
    assert_eq!(len_a, len_b, "{context}: sizes differ");
    let mut buf_a = vec![0u8; MIB as usize];
    let mut buf_b = vec![0u8; MIB as usize];
    let mut offset = 0u64;
    while offset < len_a {
        let n = (len_a - offset).min(MIB) as usize;
        a.read_exact_at(&mut buf_a[..n], offset).expect("read");
        b.read_exact_at(&mut buf_b[..n], offset).expect("read");
        if buf_a[..n] != buf_b[..n] {
            let at = (0..n).find(|&i| buf_a[i] != buf_b[i]).unwrap_or(0);
            panic!(
                "{context}: first difference at offset {} (expected {:#04x}, got {:#04x})",
                offset + at as u64,
                buf_a[at],
                buf_b[at]
            );
        }
        offset += n as u64;
    }
}

/// Deterministic, incompressible bytes.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One line for the log of a scripts/zfs-vm run: what was measured, and under which settings.
fn figures(what: &str, src: &Path, dst: &Path) {
    println!(
        "FIGURES: {what}: source {} bytes, {} allocated; copy {} allocated \
         (zfs_dmu_offset_next_sync={})",
        fs::metadata(src).map(|m| m.len()).unwrap_or(0),
        allocated(src),
        allocated(dst),
        zfs_parameter("zfs_dmu_offset_next_sync"),
    );
}

// ---------------------------------------------------------------------------------------
// Dirty sources.

#[test]
fn dirty_source_is_copied_exactly() {
    let scratch = ScratchDir::tmpfs("zfs-dirty");
    let len = 3 * MIB as usize + 12_345;
    for (i, via) in VIAS.iter().enumerate() {
        let src = scratch.path().join(format!("src-{i}"));
        fs::write(&src, pattern(i as u64 + 1, len)).expect("write source");
        assert_still_dirty(scratch.path(), &src, len as u64);
        let dst = scratch.path().join(format!("dst-{i}"));
        library_copy(*via, &src, &dst);
        assert_same_bytes(&src, &dst, &format!("dirty source, {via:?}"));
    }
}

// ---------------------------------------------------------------------------------------
// Sources written through a shared mapping and not flushed (no msync): the data is in the
// page cache only; ZFS has not seen it in its own buffers yet.

/// A shared, writable mapping of a whole file, unmapped when dropped.
struct SharedMapping {
    addr: *mut u8,
    len: usize,
}

impl SharedMapping {
    fn new(file: &fs::File, len: usize) -> SharedMapping {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of `len` bytes of an open file; the kernel picks the
        // address; failure is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED, "mmap");
        SharedMapping {
            addr: addr.cast(),
            len,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, alive until drop, and
        // only reached through this exclusive borrow.
        unsafe { std::slice::from_raw_parts_mut(self.addr, self.len) }
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in new(), which nothing uses any more.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// Writes pieces of pattern into the mapping: at the start, inside, across a 128 KiB record
/// boundary, and the last byte; returns the whole expected content.
fn scribble(mapping: &mut SharedMapping, seed: u64) -> Vec<u8> {
    let bytes = mapping.bytes();
    let len = bytes.len();
    for (offset, size) in [
        (0, 4096),
        (MIB as usize + 100, 10_000),
        (3 * 131_072 - 50, 100),
        (len - 1, 1),
    ] {
        bytes[offset..offset + size].copy_from_slice(&pattern(seed + offset as u64, size));
    }
    bytes.to_vec()
}

fn check_mapped_source(synced_holes_first: bool) {
    let scratch = ScratchDir::tmpfs("zfs-mmap");
    let len = 6 * MIB as usize;
    for (i, via) in VIAS.iter().enumerate() {
        let src = scratch.path().join(format!("src-{i}"));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&src)
            .expect("create source");
        file.set_len(len as u64).expect("truncate");
        if synced_holes_first {
            // On disk: one big hole. The mapping then fills parts of it.
            sync_to_disk(scratch.path());
        }
        let mut mapping = SharedMapping::new(&file, len);
        let expected = scribble(&mut mapping, 10 + i as u64);
        let dst = scratch.path().join(format!("dst-{i}"));
        library_copy(*via, &src, &dst);
        let copied = fs::read(&dst).expect("read copy");
        drop(mapping);
        let context = format!(
            "mmap-written source ({}), {via:?}",
            if synced_holes_first {
                "into holes of a synced file"
            } else {
                "new file"
            }
        );
        assert!(
            copied == expected,
            "{context}: the copy differs from the mapping, first at offset {:?}",
            copied.iter().zip(&expected).position(|(a, b)| a != b)
        );
    }
}

#[test]
fn mmap_written_source_is_copied_exactly() {
    check_mapped_source(false);
}

#[test]
fn mmap_written_holes_of_a_synced_file_are_copied_exactly() {
    check_mapped_source(true);
}

// ---------------------------------------------------------------------------------------
// Sparse sources, at ZFS's record granularity (128 KiB): 1 MiB of data in a large file.

const SPARSE_SIZE: u64 = 128 * MIB;

/// 8 runs of 128 KiB of data at unaligned offsets (each straddles two records).
fn make_record_sparse_source(path: &Path, seed: u64) {
    let file = fs::File::create(path).expect("create sparse source");
    file.set_len(SPARSE_SIZE).expect("truncate");
    for k in 0..8u64 {
        let offset = k * (SPARSE_SIZE / 8) + 4097 * (k + 1);
        file.write_all_at(&pattern(seed + k, 131_072), offset)
            .expect("write data run");
    }
}

fn check_sparse_source(synced: bool) {
    let scratch = ScratchDir::tmpfs("zfs-sparse");
    for (i, via) in VIAS.iter().enumerate() {
        let src = scratch.path().join(format!("src-{i}"));
        make_record_sparse_source(&src, 100 + i as u64);
        if synced {
            sync_to_disk(scratch.path());
        } else {
            assert_still_dirty(scratch.path(), &src, MIB);
        }
        let dst = scratch.path().join(format!("dst-{i}"));
        library_copy(*via, &src, &dst);
        let context = format!(
            "record-sparse source ({}), {via:?}",
            if synced { "synced" } else { "dirty" }
        );
        assert_same_bytes(&src, &dst, &context);
        sync_to_disk(scratch.path());
        figures(&context, &src, &dst);
        let (source, copy) = (allocated(&src), allocated(&dst));
        assert!(
            source <= 4 * MIB,
            "{context}: the source itself allocates {source} bytes (expected about 1 MiB)"
        );
        assert!(
            copy <= source + ALLOCATION_SLACK,
            "{context}: the copy allocates {copy} bytes, the source {source}: holes were filled"
        );
        let _ = fs::remove_file(&dst);
    }
}

#[test]
fn dirty_sparse_source_is_copied_exactly_and_stays_sparse() {
    check_sparse_source(false);
}

#[test]
fn synced_sparse_source_is_copied_exactly_and_stays_sparse() {
    check_sparse_source(true);
}

// ---------------------------------------------------------------------------------------
// Allocated sources: written zero bytes (ZFS with compression keeps them as holes; without,
// and on tmpfs, they are allocated) and incompressible data.
//
// Synced, such a source's copy keeps its allocation: no more (holes stay holes) and no less
// (allocated zeros stay allocated). Dirty, a source on ZFS has no allocation yet (`st_blocks`
// counts synced blocks only), so the library sees a file that may have holes, reads it, and
// leaves its zero pages as holes: the copy may then allocate less than the source will once
// synced (never more), and its bytes are the same.

fn check_allocation(tag: &str, content: &[u8], synced: bool) {
    let scratch = ScratchDir::tmpfs(tag);
    for (i, via) in VIAS.iter().enumerate() {
        let src = scratch.path().join(format!("src-{i}"));
        fs::write(&src, content).expect("write source");
        if synced {
            sync_to_disk(scratch.path());
        }
        let dst = scratch.path().join(format!("dst-{i}"));
        library_copy(*via, &src, &dst);
        let context = format!(
            "{tag} ({}), {via:?}",
            if synced { "synced" } else { "dirty" }
        );
        assert_same_bytes(&src, &dst, &context);
        sync_to_disk(scratch.path());
        figures(&context, &src, &dst);
        let (source, copy) = (allocated(&src), allocated(&dst));
        assert!(
            copy <= source + ALLOCATION_SLACK,
            "{context}: the copy allocates {copy} bytes, more than the source's {source}"
        );
        assert!(
            !synced || copy + ALLOCATION_SLACK >= source,
            "{context}: the copy allocates {copy} bytes, less than the source's {source}"
        );
    }
}

/// 16 MiB of zero bytes with 64 KiB of data in the middle.
fn zeros_with_some_data() -> Vec<u8> {
    let mut content = vec![0u8; 16 * MIB as usize];
    content[5 * MIB as usize..5 * MIB as usize + 65_536].copy_from_slice(&pattern(7, 65_536));
    content
}

#[test]
fn written_zeros_synced_keep_the_source_allocation() {
    check_allocation("zfs-zeros-synced", &zeros_with_some_data(), true);
}

#[test]
fn written_zeros_dirty_are_copied_exactly_and_never_allocate_more() {
    check_allocation("zfs-zeros-dirty", &zeros_with_some_data(), false);
}

#[test]
fn fully_allocated_source_stays_allocated() {
    let content = pattern(8, 8 * MIB as usize);
    check_allocation("zfs-dense-synced", &content, true);
    // Incompressible data has no zero page to leave out, synced or not.
    let scratch = ScratchDir::tmpfs("zfs-dense-dirty");
    let (src, dst) = (scratch.path().join("src"), scratch.path().join("dst"));
    fs::write(&src, &content).expect("write source");
    assert_still_dirty(scratch.path(), &src, content.len() as u64);
    library_copy(Via::Injected(95), &src, &dst);
    assert_same_bytes(&src, &dst, "dense dirty source");
    sync_to_disk(scratch.path());
    figures("dense dirty source", &src, &dst);
    assert!(
        allocated(&dst) + ALLOCATION_SLACK >= allocated(&src),
        "dense dirty source: the copy allocates {}, the source {}",
        allocated(&dst),
        allocated(&src)
    );
}

// ---------------------------------------------------------------------------------------
// `cfrfix --check` on the pool.

fn scratch_on_zfs(tag: &str) -> ScratchDir {
    let scratch = ScratchDir::tmpfs(tag);
    assert!(
        is_zfs(scratch.path()),
        "{} is not on ZFS: run this through scripts/zfs-vm (CFRFIX_TEST_DIR on a pool)",
        scratch.path().display()
    );
    scratch
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `MAJOR.MINOR.PATCH` numbers at the start of a version or kernel release string.
fn leading_numbers(text: &str) -> Vec<u32> {
    text.trim()
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect()
}

#[test]
#[ignore = "needs a ZFS pool: scripts/zfs-vm runs it"]
fn check_on_zfs_reports_the_module_version_and_a_verdict() {
    let scratch = scratch_on_zfs("zfs-check");
    let version = fs::read_to_string("/sys/module/zfs/version").expect("read the module version");
    let version = version.trim();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").expect("read the kernel release");
    let out = common::clean(repo_path("scripts/cfrfix"))
        .arg("--check")
        .arg(scratch.path())
        .output()
        .expect("run cfrfix --check");
    let report = common::text(&out.stdout);
    println!(
        "cfrfix --check {} (module {version}, kernel {}):\n{report}",
        scratch.path().display(),
        kernel.trim()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "cfrfix --check on ZFS: {}",
        common::describe(&out)
    );
    let has_line = |prefix: &str| report.lines().any(|l| l.starts_with(prefix));
    let dir = scratch.path().display();
    assert!(
        has_line(&format!("source: {dir} (zfs)")),
        "the source is not named as ZFS:\n{report}"
    );
    assert!(
        has_line(&format!("OpenZFS module: {version}")),
        "the report does not name the module version {version:?} from /sys/module/zfs/version:\n{report}"
    );
    assert!(
        has_line(&format!("kernel: {}", kernel.trim())),
        "no kernel line:\n{report}"
    );
    // The verdict for this pair: OpenZFS 2.2.4 and later, and 2.3, are known-good on any kernel.
    let zfs = leading_numbers(version);
    let (kernel_major, kernel_minor) = match leading_numbers(&kernel)[..] {
        [major, minor, ..] => (major, minor),
        _ => panic!("kernel release {kernel:?}"),
    };
    let verdict = if zfs >= vec![2, 2, 4] {
        format!(
            "verdict: not known-bad: no known copy_file_range or hole-reporting bug in OpenZFS {}.{}.{} on Linux {kernel_major}.{kernel_minor}",
            zfs[0],
            zfs[1],
            zfs.get(2).copied().unwrap_or(0)
        )
    } else {
        "verdict: known-bad: ".to_string()
    };
    assert!(
        has_line(&verdict),
        "expected a line starting {verdict:?}:\n{report}"
    );
    assert!(has_line("upgrade: "), "no upgrade line:\n{report}");
    assert!(
        has_line("through cfrfix: copied "),
        "the copy through cfrfix:\n{report}"
    );
}

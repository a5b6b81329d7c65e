//! Where the source's allocated extents are, as far as its filesystem says without a second
//! open: `FS_IOC_FIEMAP` on the program's own descriptor moves no file position and no watcher
//! sees it. A hint, nothing more: allocated extents are copied as they are (zeros included, so a
//! preallocated region stays allocated, as the kernel's copy keeps it); everything else is read,
//! and only what reads as zeros may be left as a hole. A wrong map costs allocation, never data.

use crate::sys::{self, FIEMAP_BATCH, FIEMAP_EXTENT_LAST, FiemapExtent};

/// Local filesystems that answer FIEMAP. Others are not asked: tmpfs and ZFS have no FIEMAP,
/// and on FUSE the ioctl would reach the server, a request the kernel's copy does not make.
const FIEMAP_FS: &[i64] = &[
    0xef53,      // EXT2/3/4_SUPER_MAGIC
    0x5846_5342, // XFS_SUPER_MAGIC
    0x9123_683e, // BTRFS_SUPER_MAGIC
    0xf2f5_2010, // F2FS_SUPER_MAGIC
    0xca45_1a4e, // BCACHEFS_SUPER_MAGIC
];

/// A stretch of the source, as the map describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Allocated: copy as it is.
    Allocated(usize),
    /// A hole, or the map cannot say: read it, and leave what reads as zeros as a hole.
    Unknown(usize),
}

pub struct ExtentMap {
    fd: i32,
    /// The filesystem has no usable FIEMAP: every region is `Unknown`.
    unsupported: bool,
    batch: [FiemapExtent; FIEMAP_BATCH],
    mapped: usize,
    /// The range the batch was asked for, and whether it lists every extent in it.
    asked: (u64, u64),
    complete: bool,
}

impl ExtentMap {
    pub fn new(fd: i32) -> ExtentMap {
        ExtentMap {
            fd,
            unsupported: !sys::fs_magic(fd).is_ok_and(|m| FIEMAP_FS.contains(&m)),
            batch: [FiemapExtent::default(); FIEMAP_BATCH],
            mapped: 0,
            asked: (0, 0),
            complete: false,
        }
    }

    /// The region that starts at `pos`, ending at or before `end` (`pos < end`; both
    /// non-negative, as the kernel's checks guarantee). Never empty.
    pub fn region(&mut self, pos: i64, end: i64) -> Region {
        let (pos, end) = (pos as u64, end as u64);
        let whole = (end - pos) as usize;
        if self.unsupported {
            return Region::Unknown(whole);
        }
        if !(self.asked.0..self.asked.1).contains(&pos) || !self.complete && self.beyond(pos) {
            self.ask(pos, end);
            if self.unsupported {
                return Region::Unknown(whole);
            }
        }
        // (max/min, not clamp: clamp asserts its bounds, a panic path in the library.)
        let upto = |limit: u64| (limit.max(pos + 1).min(end) - pos) as usize;
        match self.extents().find(|e| extent_end(e) > pos) {
            Some(e) if e.logical <= pos => Region::Allocated(upto(extent_end(e))),
            Some(e) => Region::Unknown(upto(e.logical)),
            None => Region::Unknown(upto(self.asked.1)),
        }
    }

    fn extents(&self) -> impl Iterator<Item = &FiemapExtent> {
        self.batch.iter().take(self.mapped).filter(|e| e.length > 0)
    }

    /// Whether `pos` lies past every extent of an incomplete batch (the next ones are unknown).
    fn beyond(&self, pos: u64) -> bool {
        self.extents().all(|e| extent_end(e) <= pos)
    }

    fn ask(&mut self, pos: u64, end: u64) {
        match sys::fiemap(self.fd, pos, end - pos, &mut self.batch) {
            Ok(n) => {
                self.mapped = n;
                self.asked = (pos, end);
                let last = self.batch.get(n.wrapping_sub(1));
                self.complete =
                    n < FIEMAP_BATCH || last.is_some_and(|e| e.flags & FIEMAP_EXTENT_LAST != 0);
            }
            Err(_) => self.unsupported = true,
        }
    }
}

fn extent_end(e: &FiemapExtent) -> u64 {
    e.logical.saturating_add(e.length)
}

//! The `off_in`/`off_out` arguments: pages that are read-write, read-only and `PROT_NONE`,
//! where each offset variable is stored (whole, or straddling two pages) before the call, and
//! the value read back from it afterwards.

use std::ffi::{c_int, c_void};

use crate::case::{Case, OffsetArg};

/// The address `lowaddr` stands for: inside page zero, which `vm.mmap_min_addr` keeps unmapped.
const LOW_ADDRESS: usize = 16;

/// Pages for the offset variables: one group of three per argument (`off_in` = group 0,
/// `off_out` = group 1), each read-write, then read-only (after the values are stored), then
/// `PROT_NONE` (kept reserved so nothing else is ever mapped there). The split variables
/// straddle the boundary after the first or the second page of their group.
pub(crate) struct OffsetPages {
    base: *mut u8,
    page_size: usize,
}

const PAGES_PER_GROUP: usize = 3;
const READ_WRITE_PAGE: usize = 0;
const READ_ONLY_PAGE: usize = 1;
const PROT_NONE_PAGE: usize = 2;

impl OffsetPages {
    pub(crate) fn new() -> OffsetPages {
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
    pub(crate) fn arguments(&self, case: &Case) -> (*mut libc::loff_t, *mut libc::loff_t) {
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
pub(crate) fn offset_after(spec: OffsetArg, pointer: *mut libc::loff_t) -> String {
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

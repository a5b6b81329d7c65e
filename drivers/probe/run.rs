//! Running one case: the `Prober` builds the fixture, makes exactly one copy_file_range call
//! through the entry point the case names (glibc's symbol, `syscall()`, or a `dlsym` pointer),
//! with RLIMIT_FSIZE and a SIGXFSZ counter around it, and formats the result line.

use std::ffi::{c_int, c_uint, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::case::{Case, Entry, FdKind, OffsetArg};
use crate::fixture::{
    backdate_mtime, build_destination, build_source, closed_descriptor_number, errno,
    set_inode_flags,
};
use crate::offsets::{OffsetPages, offset_after};
use crate::report::{change_times, position};

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

pub(crate) struct Prober {
    base: PathBuf,
    offsets: OffsetPages,
    dlsym_copy_file_range: CopyFileRangeFn,
    original_fsize: libc::rlimit64,
}

impl Prober {
    pub(crate) fn new(base: PathBuf) -> Prober {
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

        let mut original_fsize = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: original_fsize is a valid, writable rlimit.
        assert_eq!(
            unsafe { libc::getrlimit64(libc::RLIMIT_FSIZE, &mut original_fsize) },
            0
        );
        Prober {
            base,
            offsets: OffsetPages::new(),
            dlsym_copy_file_range,
            original_fsize,
        }
    }

    /// 64-bit limits on every target (a 32-bit `rlimit` cannot hold the cases' large ones).
    fn set_fsize(&self, limit: &libc::rlimit64) {
        // SAFETY: limit is a valid rlimit64; lowering only the soft limit needs no privilege.
        assert_eq!(unsafe { libc::setrlimit64(libc::RLIMIT_FSIZE, limit) }, 0);
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

    pub(crate) fn run(&self, index: usize, case: &Case) -> String {
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
        // Before the flags: an immutable file's times cannot be set.
        backdate_mtime(destination.path.as_deref());
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
            self.set_fsize(&libc::rlimit64 {
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

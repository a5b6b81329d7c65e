//! Facts about this machine: filesystems, the kernel, the OpenZFS module.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const ZFS_SUPER_MAGIC: i64 = 0x2fc1_2fc1;

/// `statfs(2)` magic numbers of common filesystems, for when /proc/self/mountinfo has no answer.
const MAGIC_NAMES: &[(i64, &str)] = &[
    (0x0102_1994, "tmpfs"),
    (0xef53, "ext2/ext3/ext4"),
    (0x5846_5342, "xfs"),
    (0x9123_683e, "btrfs"),
    (ZFS_SUPER_MAGIC, "zfs"),
    (0x6969, "nfs"),
    (0xff53_4d42, "cifs"),
    (0xfe53_4d42, "smb2"),
    (0x794c_7630, "overlay"),
    (0x6573_5546, "fuse"),
    (0x00c3_6400, "ceph"),
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0xf15f, "ecryptfs"),
];

fn statfs_magic(path: &Path) -> Option<i64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero is a valid statfs (plain integers); statfs writes only into it and
    // reads the NUL-terminated path.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        // The magic numbers are 32-bit; f_type is 64 bits wide on 64-bit ABIs, 32 on i386.
        (libc::statfs(c_path.as_ptr(), &mut buf) == 0).then_some(i64::from(buf.f_type as u32))
    }
}

/// The type of the filesystem holding `path`, as the kernel names it in /proc/self/mountinfo
/// (`ext4`, `tmpfs`, `zfs`, `fuse.sshfs`); the superblock magic when that has no answer.
pub fn filesystem_name(path: &Path) -> String {
    if let Some(name) = mountinfo_type(path) {
        return name;
    }
    match statfs_magic(path) {
        Some(magic) => MAGIC_NAMES.iter().find(|(m, _)| *m == magic).map_or_else(
            || format!("filesystem magic {magic:#x}"),
            |(_, n)| n.to_string(),
        ),
        None => "unknown filesystem".to_string(),
    }
}

/// The mount whose device is `path`'s and whose mount point is the longest prefix of it.
fn mountinfo_type(path: &Path) -> Option<String> {
    let dev = std::fs::metadata(path).ok()?.dev();
    let wanted = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let canonical = std::fs::canonicalize(path).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(device), Some(mount_point)) = (fields.get(2), fields.get(4)) else {
            continue;
        };
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let Some(fstype) = fields.get(dash + 1) else {
            continue;
        };
        let mount_point = unescape_mountinfo(mount_point);
        if *device != wanted || !canonical.starts_with(&mount_point) {
            continue;
        }
        let depth = mount_point.as_os_str().len();
        if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, fstype.to_string()));
        }
    }
    best.map(|(_, name)| name)
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| b == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .map(|d| d.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0')));
        match octal.and_then(|v| u8::try_from(v).ok()) {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

pub fn is_zfs(path: &Path) -> bool {
    statfs_magic(path) == Some(ZFS_SUPER_MAGIC)
}

/// The running kernel's release (`uname -r`), or the test-only `CFRFIX_CHECK_KERNEL_RELEASE`.
pub fn kernel_release() -> String {
    if let Some(release) = std::env::var_os("CFRFIX_CHECK_KERNEL_RELEASE") {
        return release.to_string_lossy().into_owned();
    }
    // SAFETY: all-zero is a valid utsname; uname fills it with NUL-terminated strings.
    unsafe {
        let mut names: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut names) != 0 {
            return "unknown".to_string();
        }
        std::ffi::CStr::from_ptr(names.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Where the running OpenZFS module's version is: `/sys/module/zfs/version`, below the
/// test-only `CFRFIX_CHECK_SYSFS` instead of `/sys` when that is set.
pub fn zfs_version_file() -> PathBuf {
    let sysfs = std::env::var_os("CFRFIX_CHECK_SYSFS").unwrap_or_else(|| "/sys".into());
    Path::new(&sysfs).join("module/zfs/version")
}

/// `a directory`, `a FIFO`, ... for the `S_IFMT` bits of a mode.
pub fn file_type_name(file_type: u32) -> &'static str {
    match file_type & libc::S_IFMT {
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "FIFO",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFSOCK => "socket",
        libc::S_IFLNK => "symbolic link",
        libc::S_IFREG => "regular file",
        _ => "special file",
    }
}

/// An I/O error without std's " (os error N)" suffix: `Permission denied`.
pub fn error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" (os error ") {
        Some((description, _)) => description.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape_mountinfo("/mnt/with\\040space"),
            PathBuf::from("/mnt/with space")
        );
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mountinfo("/end\\"), PathBuf::from("/end\\"));
    }
}

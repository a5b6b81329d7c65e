//! Whether the library would write its log where it is told to: the value is read with the
//! library's own parser (`parse::Settings::apply`, which trims it and keeps at most
//! `LOG_PATH_MAX - 1` bytes of an absolute path), and the exact path it produces is held to the
//! library's own rules for opening it (src/log.rs): the last component is never followed if it
//! is a symbolic link (`O_NOFOLLOW`), only a regular file with one link is written, and a
//! missing file is created (`O_CREAT`) in its directory.

use crate::parse::{self, Key, LogSetting, Origin, Settings};
use crate::settings::printable;
use crate::system::error_text;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The longest file name when the filesystem does not say (Linux's NAME_MAX).
const NAME_MAX: usize = 255;

/// Why the library would log nothing for the value `value` of `CFRFIX_LOG` (as the cfrfix
/// command's `--log` sets it), or None if it logs: to stderr, nowhere as asked (`off`), or to
/// the file it names.
pub fn value_problem(value: &[u8]) -> Option<String> {
    let mut settings = Settings::NONE;
    settings.apply(
        Key::Log.name().as_bytes(),
        value,
        Origin::Environment(Key::Log.variable().as_bytes()),
        &mut parse::Quiet,
    );
    let shown = printable(value);
    match settings.log {
        None => Some(invalid(value)),
        Some(LogSetting::Silent | LogSetting::Stderr) => None,
        Some(LogSetting::File(path)) => {
            let path = path.as_bytes();
            let trimmed = if path == value {
                String::new()
            } else {
                format!(" (the library trims it to '{}')", printable(path))
            };
            file_problem(path).map(|why| format!("'{shown}'{trimmed}: {why}"))
        }
    }
}

/// Why the library refuses the value as a whole.
fn invalid(value: &[u8]) -> String {
    let trimmed = value.trim_ascii();
    let shown = printable(value);
    if !trimmed.starts_with(b"/") {
        format!(
            "'{shown}': neither stderr, off nor an absolute path (the library would resolve a \
             relative one in each program's working directory, so it refuses it)"
        )
    } else if trimmed.len() >= parse::LOG_PATH_MAX {
        format!(
            "'{}...': {} bytes long; the library keeps log paths of at most {} bytes",
            printable(trimmed.get(..40).unwrap_or(trimmed)),
            trimmed.len(),
            parse::LOG_PATH_MAX - 1
        )
    } else {
        format!("'{shown}': not a path the library accepts")
    }
}

fn uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

fn can_access(path: &Path, mode: libc::c_int) -> Result<(), std::io::Error> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: access reads the NUL-terminated path only.
    if unsafe { libc::access(c_path.as_ptr(), mode) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The longest file name in directory `dir` (`pathconf`), or NAME_MAX.
fn name_max(dir: &Path) -> usize {
    let Ok(c_dir) = CString::new(dir.as_os_str().as_bytes()) else {
        return NAME_MAX;
    };
    // SAFETY: pathconf reads the NUL-terminated path only.
    let n = unsafe { libc::pathconf(c_dir.as_ptr(), libc::_PC_NAME_MAX) };
    usize::try_from(n).unwrap_or(NAME_MAX)
}

/// Why the library cannot write its log at `path` (absolute, as the parser produced it) in a
/// process of this user, or None if it can.
pub fn file_problem(path: &[u8]) -> Option<String> {
    // The last component, which the library opens with O_CREAT | O_NOFOLLOW.
    let name = path.rsplit(|&c| c == b'/').next().unwrap_or(&[]);
    if name.is_empty() {
        return Some("ends with '/': names a directory, not a file".to_string());
    }
    if name == b"." || name == b".." {
        return Some(format!(
            "ends with '/{}': names a directory, not a file",
            printable(name)
        ));
    }
    let path = Path::new(OsStr::from_bytes(path));
    let parent = path.parent().unwrap_or(Path::new("/"));
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => existing_file_problem(path, &metadata),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::metadata(parent) {
            Ok(m) if m.is_dir() => {
                if name.len() > name_max(parent) {
                    return Some(format!(
                        "its file name is {} bytes long, longer than {} allows ({})",
                        name.len(),
                        parent.display(),
                        name_max(parent)
                    ));
                }
                can_access(parent, libc::W_OK | libc::X_OK).err().map(|e| {
                    format!(
                        "does not exist, and uid {} cannot create it in {} ({})",
                        uid(),
                        parent.display(),
                        error_text(&e)
                    )
                })
            }
            Ok(_) => Some(format!("{} is not a directory", parent.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some(format!("the directory {} does not exist", parent.display()))
            }
            Err(e) => Some(error_text(&e)),
        },
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => Some(format!(
            "its file name is {} bytes long, longer than the filesystem allows ({})",
            name.len(),
            error_text(&e)
        )),
        Err(e) => Some(error_text(&e)),
    }
}

fn existing_file_problem(path: &Path, metadata: &std::fs::Metadata) -> Option<String> {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Some(
            "a symbolic link, which the library never follows (for standard error, use \
             'stderr')"
                .to_string(),
        );
    }
    if !file_type.is_file() {
        let what = if file_type.is_fifo() {
            "a FIFO"
        } else if metadata.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Some(format!("{what}; the library writes only to a regular file"));
    }
    if metadata.nlink() > 1 {
        return Some(format!(
            "has {} hard links; the library writes only to a file with one link",
            metadata.nlink()
        ));
    }
    can_access(path, libc::W_OK)
        .err()
        .map(|e| format!("cannot be written by uid {} ({})", uid(), error_text(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_s_parser_decides() {
        assert_eq!(value_problem(b"stderr"), None);
        assert_eq!(value_problem(b" STDERR "), None);
        assert_eq!(value_problem(b"off"), None);
        assert!(
            value_problem(b"relative.log")
                .unwrap()
                .contains("neither stderr, off nor an absolute path")
        );
        let long = format!("/tmp/{}", "d/".repeat(600));
        assert!(
            value_problem(long.as_bytes())
                .unwrap()
                .contains("the library keeps log paths of at most 1023 bytes")
        );
        // The path the library would open is the trimmed one.
        let problem = value_problem(b"/dev/stderr ").unwrap();
        assert!(
            problem.contains("trims it to '/dev/stderr'") && problem.contains("symbolic link"),
            "{problem}"
        );
    }

    #[test]
    fn paths_the_library_would_not_write() {
        for (path, why) in [
            (&b"/tmp/x.log/"[..], "ends with '/'"),
            (b"/tmp/x.log/.", "ends with '/.'"),
            (b"/tmp/..", "ends with '/..'"),
            (b"/nonexistent-dir-cfrfix/x.log", "does not exist"),
            (b"/", "ends with '/'"),
            (b"/proc/.", "ends with '/.'"),
            (b"/proc", "a directory"),
            (b"/dev/stderr", "symbolic link"),
        ] {
            let problem = file_problem(path);
            assert!(
                problem.as_deref().is_some_and(|p| p.contains(why)),
                "{}: {problem:?}",
                String::from_utf8_lossy(path)
            );
        }
        let long_name = format!("/tmp/{}", "n".repeat(300));
        assert!(
            file_problem(long_name.as_bytes())
                .unwrap()
                .contains("300 bytes long")
        );
    }
}

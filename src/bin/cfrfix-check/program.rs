//! `cfrfix PROGRAM`: whether the library will be in effect in PROGRAM, decided before PROGRAM
//! starts, and the LD_PRELOAD it gets (`cfrfix-check --program`, the cfrfix command's last step).
//!
//! PROGRAM is followed through `#!` lines (and `#!/usr/bin/env NAME`) to the ELF program the
//! kernel will really run. The library cannot be in effect there, and PROGRAM is refused, when
//! that program
//! - has no ELF interpreter (static, static-pie) or is a Go program: they make their system
//!   calls themselves, and no preload reaches them (`--enosys` is the documented way: they then
//!   copy by themselves);
//! - runs in secure-execution mode (setuid or setgid to someone else, file capabilities for a
//!   user other than root, outside a `nosuid` mount): the loader ignores LD_PRELOAD entries that
//!   contain a '/' there, so only `/etc/ld.so.preload` reaches it (if it lists a library of its
//!   ABI, it is run);
//! - is of an ABI for which no cfrfix library in the LD_PRELOAD serves: the cfrfix entry names
//!   each ABI's build with `$LIB`, expanded as that ABI's loader will (abis.rs), so a 32-bit
//!   program is served where `$LIB` leads to an i686 build and refused where it does not (the
//!   user's own entries count too, in order);
//! - would get a library that exists but does not load (truncated, damaged, unreadable): it is
//!   test-loaded into a program of that ABI first (`abis::Present::loads`);
//! - names its own loader (PT_INTERP: Nix, Guix, a side-installed glibc) and that loader finds
//!   no library of its ABI where it expands `$LIB`, or does not say what its `$LIB` is: the
//!   entry is judged, and test-loaded, as that loader reads it.
//!
//! The LD_PRELOAD: the cfrfix entry first, then the environment's entries in their order, less
//! those that name the same file as the cfrfix entry does for some ABI (one library loaded
//! twice would only print nothing new): the user's other builds (an i686 `libcfrfix.so`) stay.

use crate::abis::{self, Present, Serves};
use crate::preload::{self, is_cfrfix};
use elf::inspect;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

mod elf;

/// The kernel follows at most this many `#!` interpreters (BINPRM_MAX_RECURSION).
const MAX_INTERPRETERS: usize = 4;
/// The kernel reads this much of a file to find its `#!` line (BINPRM_BUF_SIZE).
const HEAD_BYTES: usize = 256;

/// What PROGRAM turned out to be.
struct Program {
    /// What the user named (resolved by the shell).
    named: PathBuf,
    /// The file the kernel runs in the end (PROGRAM itself, or its last interpreter).
    runs: PathBuf,
}

impl Program {
    /// `X` or `X runs Y, which`, to start a sentence about the program that runs.
    fn subject(&self) -> String {
        if self.runs == self.named {
            self.named.display().to_string()
        } else {
            format!(
                "{} runs {}, which",
                self.named.display(),
                self.runs.display()
            )
        }
    }
}

/// The verdict for PROGRAM: Ok, or why the library would not be in effect in it.
type Verdict = Result<(), String>;

/// `cfrfix-check --program ENTRY PROGRAM` (with `--enosys`, `--off`): prints the LD_PRELOAD
/// value for PROGRAM and returns 0, or prints why PROGRAM would run without the library and
/// returns 1. With `--off` (the user's `--mode off`) it never refuses: PROGRAM gets the library
/// only where it would be in effect, else the LD_PRELOAD as it was.
pub fn run(entry: &str, program: &Path, enosys: bool, off: bool) -> u8 {
    let existing = std::env::var("LD_PRELOAD").unwrap_or_default();
    let entries = compose(entry, &existing);
    match judge(program, &entries, enosys) {
        Ok(()) => {
            crate::say!("{}", entries.join(":"));
            0
        }
        Err(_) if off => {
            crate::say!("{existing}");
            0
        }
        Err(why) => {
            crate::say!("{why}");
            1
        }
    }
}

/// `entry` first, then `existing`'s entries in order, less other names for the files `entry`
/// names (for each ABI this machine runs, and as written).
fn compose(entry: &str, existing: &str) -> Vec<String> {
    let ours: Vec<(u64, u64)> = abis::present()
        .iter()
        .map(|abi| abi.expand(entry))
        .chain(std::iter::once(entry.to_string()))
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let mut entries = vec![entry.to_string()];
    for other in preload::entries(existing) {
        let same_file = std::fs::metadata(other).is_ok_and(|m| ours.contains(&(m.dev(), m.ino())));
        if other != entry && !same_file && !entries.iter().any(|e| e == other) {
            entries.push(other.to_string());
        }
    }
    entries
}

fn judge(named: &Path, entries: &[String], enosys: bool) -> Verdict {
    let (program, head) = match follow(named) {
        Ok(found) => found,
        Err(_) if enosys => return Ok(()),
        Err(why) => return Err(why),
    };
    let elf = match inspect(&program.runs, &head) {
        Ok(Some(elf)) => elf,
        // A text file without `#!`: the shell runs it itself, and its commands get the library.
        Ok(None) if !is_binary(&head) => return Ok(()),
        Ok(None) if enosys => return Ok(()),
        Ok(None) => {
            return Err(format!(
                "{} is neither an ELF program nor a script: cannot tell whether the library \
                 reaches it (with --enosys, whatever runs copies by itself)",
                program.subject()
            ));
        }
        Err(why) => return Err(why),
    };
    let raw_system_calls = if !elf.dynamic {
        Some("is statically linked: no preload reaches it")
    } else if elf.go {
        Some("is a Go program: it makes its system calls itself, and no preload reaches them")
    } else {
        None
    };
    if let Some(what) = raw_system_calls {
        if enosys {
            return Ok(());
        }
        return Err(format!(
            "{} {what}; run it with cfrfix --enosys (its copy_file_range then fails with ENOSYS \
             and it copies by itself)",
            program.subject()
        ));
    }
    // An ABI this machine does not run: exec fails by itself, the shell's way.
    let Some(abi) = abis::of_kind(elf.class, elf.machine) else {
        return Ok(());
    };
    // The program's own loader, if it names another than its ABI's: `$LIB` is that loader's.
    let own;
    let abi = match elf.interpreter.as_deref().map(|i| (i, i.exists())) {
        // exec fails by itself (ENOENT), the shell's way.
        Some((_, false)) => return Ok(()),
        Some((interpreter, true)) => match abi.started_by(interpreter) {
            Ok(None) => abi,
            Ok(Some(other)) => {
                own = other;
                &own
            }
            Err(why) => {
                let why = format!(
                    "{} is started by its own loader {}, not {}'s {}, which {why}: cannot tell \
                     whether it finds the library at {}",
                    program.subject(),
                    interpreter.display(),
                    abi.abi.name,
                    abi.abi.loader(),
                    entries.first().map_or("", String::as_str)
                );
                if enosys {
                    eprintln!("cfrfix: warning: {why}; it gets ENOSYS and copies by itself");
                    return Ok(());
                }
                return Err(why);
            }
        },
        None => abi,
    };
    if !enosys {
        if let Some(how) = secure_execution(&program.runs) {
            return reached_system_wide(&program, abi, &how);
        }
    }
    let Some(library) = entries
        .iter()
        .find(|e| is_cfrfix(e) && serves(abi, e).is_ok())
    else {
        if enosys {
            eprintln!(
                "cfrfix: warning: {} is an {} program and no cfrfix library for {} is \
                 preloaded: it gets ENOSYS and copies by itself",
                program.subject(),
                abi.abi.name,
                abi.abi.name
            );
            return Ok(());
        }
        let ours = entries.first().map_or("", String::as_str);
        let expanded = abi.expand(ours);
        let what = serves(abi, ours).err().unwrap_or_default();
        // A file that is there but is no library at all is damaged, not another ABI's build.
        if Path::new(&expanded).exists() && !what.starts_with("ELF ") {
            return Err(format!(
                "the library {expanded} does not load into {} ({what})",
                abi.programs()
            ));
        }
        let shown = if expanded == ours {
            format!("{ours}: {what}")
        } else {
            format!("{ours} is {expanded}: {what}")
        };
        if let Some(loader) = &abi.own_loader {
            return Err(format!(
                "{} is started by its own loader {}, whose $LIB is {}: it finds no cfrfix \
                 library for {} ({shown}); put cfrfix's {} library at {expanded}, or name one \
                 in LD_PRELOAD",
                program.subject(),
                loader.path.display(),
                abi.lib,
                abi.abi.name,
                abi.abi.name
            ));
        }
        return Err(format!(
            "{} is an {} program and no cfrfix library for {} is preloaded ({shown}); {}",
            program.subject(),
            abi.abi.name,
            abi.abi.name,
            how_to_build(abi)
        ));
    };
    abi.loads(&abi.expand(library)).map_err(|why| {
        format!(
            "the library {library} does not load into {} ({why})",
            abi.programs()
        )
    })
}

/// Whether `entry`, as the loader of `abi` expands it, is a library of that ABI: Err says what
/// is there instead.
fn serves(abi: &Present, entry: &str) -> Result<(), String> {
    match abi.serves(Path::new(&abi.expand(entry))) {
        Serves::Yes(_) => Ok(()),
        Serves::No(why) => Err(why),
    }
}

/// How to get a build for an ABI.
fn how_to_build(abi: &Present) -> String {
    match abi.abi.triple {
        Some(triple) => format!(
            "build it with scripts/build-targets {triple} in a checkout (the cfrfix command \
             finds it through $LIB), or install cfrfix's {} library",
            abi.abi.name
        ),
        None => format!("cfrfix has no {} build", abi.abi.name),
    }
}

/// A secure-execution program: Ok only if `/etc/ld.so.preload` brings the library of its ABI.
fn reached_system_wide(program: &Program, abi: &Present, how: &str) -> Verdict {
    let listed = preload::system_wide_entries().unwrap_or_default();
    let serving = listed.iter().find(|e| serves(abi, e).is_ok());
    match serving {
        Some(entry) => {
            if std::env::vars_os().any(|(name, _)| name.as_bytes().starts_with(b"CFRFIX_")) {
                eprintln!(
                    "cfrfix: warning: {} {how}: it gets cfrfix from {} ({entry}) with the \
                     settings of /etc/cfrfix.conf alone (CFRFIX_*, --log and --mode do not \
                     apply to it)",
                    program.subject(),
                    preload::PRELOAD_FILE
                );
            }
            Ok(())
        }
        None => Err(format!(
            "{} {how}: in such a program the loader ignores LD_PRELOAD entries that contain a \
             '/', so cfrfix cannot reach it this way; use system-wide mode ({}, see \
             docs/deployment.md), or --enosys, which runs it without its privileges",
            program.subject(),
            preload::PRELOAD_FILE
        )),
    }
}

/// The file the kernel will run for `named`, through `#!` lines, and its first bytes.
fn follow(named: &Path) -> Result<(Program, Vec<u8>), String> {
    let mut runs = named.to_path_buf();
    for _ in 0..=MAX_INTERPRETERS {
        let head = read_head(&runs).map_err(|e| {
            format!(
                "cannot read {} ({}): cannot tell whether the library reaches it (a static or \
                 setuid program would run without it); make it readable, or use --enosys",
                runs.display(),
                crate::system::error_text(&e)
            )
        })?;
        let Some((interpreter, argument)) = shebang(&head) else {
            let program = Program {
                named: named.to_path_buf(),
                runs,
            };
            return Ok((program, head));
        };
        runs = env_command(&interpreter, argument.as_deref()).unwrap_or(interpreter);
    }
    Err(format!(
        "{}: more than {MAX_INTERPRETERS} levels of #! interpreters (the kernel refuses it)",
        named.display()
    ))
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    File::open(path)?
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The interpreter and its optional argument of a `#!` line, as the kernel splits it: the
/// interpreter up to the first blank, the rest of the line (trimmed) as one argument.
fn shebang(head: &[u8]) -> Option<(PathBuf, Option<Vec<u8>>)> {
    let line = head.strip_prefix(b"#!")?;
    let line = line
        .split(|&c| c == b'\n')
        .next()
        .unwrap_or(&[])
        .trim_ascii();
    let blank = |c: &u8| matches!(c, b' ' | b'\t');
    let end = line.iter().position(blank).unwrap_or(line.len());
    let (interpreter, rest) = line.split_at(end);
    if interpreter.is_empty() {
        return None;
    }
    let argument = rest.trim_ascii();
    let argument = (!argument.is_empty()).then(|| argument.to_vec());
    Some((
        PathBuf::from(std::ffi::OsStr::from_bytes(interpreter)),
        argument,
    ))
}

/// For `#!/usr/bin/env [-S] [options] [NAME=VALUE...] COMMAND`: the command env runs, found in
/// PATH as env finds it. None for any other interpreter, or a command env would not find.
fn env_command(interpreter: &Path, argument: Option<&[u8]>) -> Option<PathBuf> {
    if interpreter.file_name()? != "env" {
        return None;
    }
    let argument = std::str::from_utf8(argument?).ok()?;
    // Without -S the kernel's single argument is one word for env.
    let words: Vec<&str> = match argument.strip_prefix("-S") {
        Some(split) => split.split_whitespace().collect(),
        None => vec![argument],
    };
    let mut words = words.into_iter();
    let command = loop {
        let word = words.next()?;
        match word {
            "-u" | "--unset" | "-C" | "--chdir" => {
                words.next()?;
            }
            "--" => break words.next()?,
            w if w.starts_with('-') || w.contains('=') => {}
            w => break w,
        }
    };
    if command.contains('/') {
        return Some(PathBuf::from(command));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file() && executable(candidate))
}

fn executable(path: &Path) -> bool {
    CString::new(path.as_os_str().as_bytes()).is_ok_and(|c_path| {
        // SAFETY: access reads the NUL-terminated path only.
        unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
    })
}

/// bash runs a file without `#!` that exec refuses as a shell script, unless its first line
/// holds a NUL byte (`check_binary_file`).
fn is_binary(head: &[u8]) -> bool {
    head.split(|&c| c == b'\n')
        .next()
        .is_some_and(|line| line.contains(&0))
}

/// How `path` would run in secure-execution mode (AT_SECURE), if it would: the kernel sets it
/// when exec changes the effective user or group away from the real one, or grants file
/// capabilities to a user other than root; a `nosuid` mount grants neither.
fn secure_execution(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero is a valid statvfs; statvfs writes only into it and reads the path.
    let nosuid = unsafe {
        let mut fs: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c_path.as_ptr(), &mut fs) == 0 && fs.f_flag & libc::ST_NOSUID != 0
    };
    if nosuid {
        return None;
    }
    // SAFETY: these four have no preconditions.
    let (uid, gid, euid, egid) = unsafe {
        (
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
        )
    };
    let mode = metadata.mode();
    let new_euid = if mode & libc::S_ISUID != 0 {
        metadata.uid()
    } else {
        euid
    };
    // S_ISGID without group execute marks mandatory locking, not setgid.
    let new_egid = if mode & libc::S_ISGID != 0 && mode & libc::S_IXGRP != 0 {
        metadata.gid()
    } else {
        egid
    };
    if new_euid != uid {
        return Some(format!("is setuid (it would run as uid {new_euid})"));
    }
    if new_egid != gid {
        return Some(format!("is setgid (it would run as gid {new_egid})"));
    }
    // SAFETY: getxattr with a NULL buffer and size 0 only asks for the value's size.
    let capabilities = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    } >= 0;
    (capabilities && uid != 0).then(|| "has file capabilities".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_as_the_kernel_splits_them() {
        let (interpreter, argument) = shebang(b"#! /bin/sh -e -x \nrest").unwrap();
        assert_eq!(interpreter, Path::new("/bin/sh"));
        assert_eq!(argument.as_deref(), Some(&b"-e -x"[..]));
        let (interpreter, argument) = shebang(b"#!/usr/bin/python3\n").unwrap();
        assert_eq!(interpreter, Path::new("/usr/bin/python3"));
        assert_eq!(argument, None);
        assert!(shebang(b"#!\n").is_none());
        assert!(shebang(b"\x7fELF").is_none());
    }

    #[test]
    fn env_finds_its_command() {
        let sh = env_command(Path::new("/usr/bin/env"), Some(b"sh")).unwrap();
        assert!(sh.ends_with("sh") && sh.is_absolute(), "{}", sh.display());
        let split = env_command(Path::new("/usr/bin/env"), Some(b"-S -u HOME A=b sh -e"));
        assert_eq!(split, Some(sh));
        assert_eq!(
            env_command(Path::new("/usr/bin/env"), Some(b"-S /opt/x -y")),
            Some(PathBuf::from("/opt/x"))
        );
        assert_eq!(env_command(Path::new("/bin/sh"), Some(b"sh")), None);
        assert_eq!(
            env_command(Path::new("/usr/bin/env"), Some(b"no-such-command-cfrfix")),
            None
        );
    }

    #[test]
    fn this_test_program_is_dynamic_and_not_go() {
        let exe = std::env::current_exe().unwrap();
        let head = read_head(&exe).unwrap();
        let elf = inspect(&exe, &head).unwrap().unwrap();
        assert!(elf.dynamic && !elf.go);
        assert!(abis::of_kind(elf.class, elf.machine).is_some_and(Present::native));
    }

    #[test]
    fn duplicates_of_the_entry_are_dropped_and_the_rest_kept_in_order() {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let other = "/nonexistent-cfrfix/i686/libcfrfix.so";
        let composed = compose(exe, &format!("{other} {exe}:/x/libm.so.6 {other}"));
        assert_eq!(composed, [exe, other, "/x/libm.so.6"]);
    }
}

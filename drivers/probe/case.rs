//! One case line, parsed: which entry point, which descriptors, which offset arguments, length,
//! flags and limits (the keys of the case format in `main.rs`). Parsing only; nothing is opened
//! here.

use std::ffi::c_int;

use crate::fixture::{FS_APPEND_FL, FS_IMMUTABLE_FL};

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Entry {
    Libc,
    Syscall,
    Dlsym,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum FdKind {
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
pub(crate) enum OffsetArg {
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

pub(crate) struct Case {
    pub(crate) entry: Entry,
    pub(crate) src: FdKind,
    pub(crate) src_size: usize,
    pub(crate) src_trunc: Option<u64>,
    pub(crate) src_mode: c_int,
    pub(crate) src_pos: i64,
    /// `O_LARGEFILE` on the source descriptor (only a 32-bit probe can open without it).
    pub(crate) src_largefile: bool,
    /// Size the source grows to after it was opened.
    pub(crate) src_grow: Option<u64>,
    pub(crate) dst: FdKind,
    pub(crate) dst_size: usize,
    pub(crate) dst_trunc: Option<u64>,
    pub(crate) dst_mode: c_int,
    pub(crate) dst_pos: i64,
    pub(crate) dst_largefile: bool,
    pub(crate) src_attr: c_int,
    pub(crate) dst_attr: c_int,
    pub(crate) off_in: OffsetArg,
    pub(crate) off_out: OffsetArg,
    pub(crate) len: u64,
    pub(crate) flags: u32,
    pub(crate) fsize: Option<u64>,
    pub(crate) seed: u64,
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
            src_largefile: true,
            src_grow: None,
            dst: FdKind::File,
            dst_size: 0,
            dst_trunc: None,
            dst_mode: libc::O_WRONLY,
            dst_pos: 0,
            dst_largefile: true,
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

fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, not {text:?}")),
    }
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

pub(crate) fn parse_case(line: &str) -> Result<Case, String> {
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
            "src_lfs" => case.src_largefile = parse_yes_no(value)?,
            "src_grow" => case.src_grow = Some(parse_bits(value)?),
            "dst" => case.dst = parse_kind(value, true)?,
            "dst_size" => case.dst_size = parse_size(value)?,
            "dst_trunc" => case.dst_trunc = Some(parse_bits(value)?),
            "dst_mode" => case.dst_mode = parse_mode(value)?,
            "dst_pos" => case.dst_pos = parse_bits(value)? as i64,
            "dst_lfs" => case.dst_largefile = parse_yes_no(value)?,
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

//! What `cfrfix PROGRAM` needs of an ELF program: its class and machine (its ABI), its loader
//! (PT_INTERP: none for a static program) and whether the Go toolchain built it.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
/// The longest PT_INTERP path read (PATH_MAX).
const PATH_BYTES_MAX: u64 = 4096;
/// The largest note segment read when looking for the Go toolchain's notes.
const NOTE_BYTES_MAX: u64 = 64 * 1024;

/// An ELF program's ABI and how it makes its system calls.
pub struct Elf {
    pub class: u8,
    pub machine: u16,
    /// Has a PT_INTERP: started by the dynamic loader, which does the preloading.
    pub dynamic: bool,
    /// That loader (PT_INTERP's path), if it could be read.
    pub interpreter: Option<PathBuf>,
    /// Built by the Go toolchain (a `Go` note): raw system calls, whatever the linking.
    pub go: bool,
}

/// The ELF facts of `path` (whose first bytes are `head`); None if it is not ELF.
pub fn inspect(path: &Path, head: &[u8]) -> Result<Option<Elf>, String> {
    if !head.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let unreadable = |what: &str| format!("{}: {what}", path.display());
    let file = File::open(path).map_err(|e| unreadable(&crate::system::error_text(&e)))?;
    let reader = ElfReader {
        file,
        class64: head.get(4) == Some(&2),
        big_endian: head.get(5) == Some(&2),
    };
    let header = reader
        .bytes(0, 64)
        .ok_or_else(|| unreadable("a truncated ELF header"))?;
    let machine = reader.u16(&header, 18);
    let (phoff, phentsize, phnum) = if reader.class64 {
        (
            reader.u64(&header, 0x20),
            reader.u16(&header, 0x36),
            reader.u16(&header, 0x38),
        )
    } else {
        (
            u64::from(reader.u32(&header, 0x1c)),
            reader.u16(&header, 0x2a),
            reader.u16(&header, 0x2c),
        )
    };
    let mut elf = Elf {
        class: head.get(4).copied().unwrap_or(0),
        machine,
        dynamic: false,
        interpreter: None,
        go: false,
    };
    for index in 0..u64::from(phnum) {
        let at = phoff.saturating_add(index * u64::from(phentsize));
        let Some(ph) = reader.bytes(at, usize::from(phentsize)) else {
            return Err(unreadable("a truncated program header table"));
        };
        let (offset, size) = if reader.class64 {
            (reader.u64(&ph, 8), reader.u64(&ph, 32))
        } else {
            (
                u64::from(reader.u32(&ph, 4)),
                u64::from(reader.u32(&ph, 16)),
            )
        };
        match reader.u32(&ph, 0) {
            PT_INTERP => {
                elf.dynamic = true;
                elf.interpreter = reader
                    .bytes(offset, size.min(PATH_BYTES_MAX) as usize)
                    .map(|path| {
                        let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                        PathBuf::from(std::ffi::OsStr::from_bytes(&path[..end]))
                    })
                    .filter(|path| !path.as_os_str().is_empty());
            }
            PT_NOTE if size <= NOTE_BYTES_MAX => {
                let notes = reader.bytes(offset, size as usize).unwrap_or_default();
                elf.go |= reader.has_go_note(&notes);
            }
            _ => {}
        }
    }
    Ok(Some(elf))
}

/// Reads an ELF file's fields in its own class and byte order.
struct ElfReader {
    file: File,
    class64: bool,
    big_endian: bool,
}

impl ElfReader {
    fn bytes(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(buf)
    }

    fn field<const N: usize>(&self, bytes: &[u8], at: usize) -> [u8; N] {
        let mut field = [0; N];
        if let Some(src) = bytes.get(at..at + N) {
            field.copy_from_slice(src);
        }
        if self.big_endian {
            field.reverse();
        }
        field
    }

    fn u16(&self, bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(self.field(bytes, at))
    }

    fn u32(&self, bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(self.field(bytes, at))
    }

    fn u64(&self, bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(self.field(bytes, at))
    }

    /// Whether a note segment holds a note of owner "Go" (the Go linker's build ID and
    /// package notes).
    fn has_go_note(&self, notes: &[u8]) -> bool {
        let align4 = |n: usize| n.div_ceil(4) * 4;
        let mut at = 0;
        while at + 12 <= notes.len() {
            let name_size = self.u32(notes, at) as usize;
            let desc_size = self.u32(notes, at + 4) as usize;
            let name = notes.get(at + 12..at + 12 + name_size).unwrap_or_default();
            if name == b"Go\0" {
                return true;
            }
            at += 12 + align4(name_size) + align4(desc_size);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_notes_are_found() {
        let reader = ElfReader {
            file: File::open(std::env::current_exe().unwrap()).unwrap(),
            class64: true,
            big_endian: false,
        };
        let mut notes = Vec::new();
        for (name, desc) in [(&b"GNU\0"[..], &[1u8; 16][..]), (b"Go\0", &[2u8; 40])] {
            notes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&4u32.to_le_bytes());
            notes.extend_from_slice(name);
            notes.resize(notes.len().div_ceil(4) * 4, 0);
            notes.extend_from_slice(desc);
        }
        assert!(reader.has_go_note(&notes));
        assert!(!reader.has_go_note(&notes[..36]));
    }
}

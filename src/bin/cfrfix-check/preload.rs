//! Where cfrfix is preloaded: this environment's `LD_PRELOAD`, and `/etc/ld.so.preload` for
//! each ABI this machine can run.
//!
//! ld.so reads /etc/ld.so.preload in every process, of every ABI, and expands `$LIB` and
//! `$PLATFORM` in it per ABI. A library of the wrong ELF class or machine, or a missing file, is
//! skipped with an `ERROR: ld.so: ... cannot be preloaded ... ignored.` line on the program's
//! stderr: such programs run without cfrfix (docs/deployment.md, "Multilib").

use std::io::Read;
use std::path::Path;

pub const PRELOAD_FILE: &str = "/etc/ld.so.preload";

/// An ABI: its loader (present if the machine can run such programs), its ELF class and
/// machine, the directories its `$LIB` can be (Debian's multiarch one first), and `$PLATFORM`.
struct Abi {
    name: &'static str,
    loader: &'static str,
    class: u8,
    machine: u16,
    lib_dirs: &'static [&'static str],
    platform: &'static str,
}

const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

const ABIS: &[Abi] = &[
    Abi {
        name: "x86_64",
        loader: "/lib64/ld-linux-x86-64.so.2",
        class: ELFCLASS64,
        machine: EM_X86_64,
        lib_dirs: &["lib/x86_64-linux-gnu", "lib64"],
        platform: "x86_64",
    },
    Abi {
        name: "i386",
        loader: "/lib/ld-linux.so.2",
        class: ELFCLASS32,
        machine: EM_386,
        lib_dirs: &["lib/i386-linux-gnu", "lib32", "lib"],
        platform: "i686",
    },
    Abi {
        name: "x32",
        loader: "/libx32/ld-linux-x32.so.2",
        class: ELFCLASS32,
        machine: EM_X86_64,
        lib_dirs: &["lib/x86_64-linux-gnux32", "libx32"],
        platform: "x86_64",
    },
    Abi {
        name: "aarch64",
        loader: "/lib/ld-linux-aarch64.so.1",
        class: ELFCLASS64,
        machine: EM_AARCH64,
        lib_dirs: &["lib/aarch64-linux-gnu", "lib64", "lib"],
        platform: "aarch64",
    },
    Abi {
        name: "armhf",
        loader: "/lib/ld-linux-armhf.so.3",
        class: ELFCLASS32,
        machine: EM_ARM,
        lib_dirs: &["lib/arm-linux-gnueabihf", "lib"],
        platform: "v7l",
    },
];

/// ELF class and machine of a file, or why it has none.
fn elf_kind(path: &Path) -> Result<(u8, u16), String> {
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "missing".to_string(),
            std::io::ErrorKind::UnexpectedEof => "not an ELF file".to_string(),
            _ => e.to_string(),
        })?;
    if header[..4] != *b"\x7fELF" {
        return Err("not an ELF file".to_string());
    }
    // e_machine, in the file's byte order (EI_DATA: 1 little, 2 big).
    let machine = if header[5] == 2 {
        u16::from_be_bytes([header[18], header[19]])
    } else {
        u16::from_le_bytes([header[18], header[19]])
    };
    Ok((header[4], machine))
}

fn describe_kind((class, machine): (u8, u16)) -> String {
    let bits = match class {
        ELFCLASS32 => "32-bit",
        ELFCLASS64 => "64-bit",
        _ => "unknown-class",
    };
    let arch = match machine {
        EM_386 => "i386",
        EM_ARM => "ARM",
        EM_X86_64 => "x86-64",
        EM_AARCH64 => "AArch64",
        _ => "other machine",
    };
    format!("ELF {bits} {arch}")
}

impl Abi {
    fn present(&self) -> bool {
        elf_kind(Path::new(self.loader)) == Ok((self.class, self.machine))
    }

    /// `$LIB` for this ABI: the directory that holds its libc.so.6 (that is how glibc's build
    /// sets it).
    fn lib(&self) -> &'static str {
        self.lib_dirs
            .iter()
            .find(|dir| {
                ["/", "/usr/"].iter().any(|root| {
                    elf_kind(&Path::new(root).join(dir).join("libc.so.6"))
                        == Ok((self.class, self.machine))
                })
            })
            .copied()
            .unwrap_or(self.lib_dirs[0])
    }

    fn expand(&self, entry: &str) -> String {
        entry
            .replace("${LIB}", self.lib())
            .replace("$LIB", self.lib())
            .replace("${PLATFORM}", self.platform)
            .replace("$PLATFORM", self.platform)
    }
}

fn is_cfrfix(entry: &str) -> bool {
    Path::new(entry)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("libcfrfix"))
}

/// ld.so's separators in LD_PRELOAD and /etc/ld.so.preload.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split([' ', ':', '\t', '\n']).filter(|e| !e.is_empty())
}

/// The cfrfix entries of this environment's LD_PRELOAD.
pub fn ld_preload_entries() -> Vec<String> {
    let value = std::env::var("LD_PRELOAD").unwrap_or_default();
    entries(&value)
        .filter(|e| is_cfrfix(e))
        .map(str::to_string)
        .collect()
}

/// The cfrfix entries of /etc/ld.so.preload; Err if the file is absent or unreadable.
pub fn system_wide_entries() -> Result<Vec<String>, String> {
    match std::fs::read_to_string(PRELOAD_FILE) {
        Ok(text) => Ok(entries(&text)
            .filter(|e| is_cfrfix(e))
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("the file does not exist".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The ABI of programs of ELF class `class` and machine `machine`, if this machine runs it.
pub fn abi_of(class: u8, machine: u16) -> Option<ProgramAbi> {
    present_abis()
        .into_iter()
        .find(|abi| (abi.abi.class, abi.abi.machine) == (class, machine))
}

/// The ABIs this machine runs.
pub fn present_abis() -> Vec<ProgramAbi> {
    ABIS.iter()
        .filter(|abi| abi.present())
        .map(ProgramAbi::new)
        .collect()
}

impl ProgramAbi {
    fn new(abi: &'static Abi) -> ProgramAbi {
        let lib = abi.lib();
        let libc = ["/", "/usr/"]
            .iter()
            .map(|root| Path::new(root).join(lib).join("libc.so.6"))
            .find(|path| elf_kind(path) == Ok((abi.class, abi.machine)));
        ProgramAbi {
            abi,
            native: abi.name == NATIVE,
            libc,
        }
    }
}

/// An ABI this machine runs, as `cfrfix PROGRAM` needs it: how its loader reads an LD_PRELOAD
/// entry, and a program of it to test-load a library into (its C library, which runs as a
/// program and prints its version).
pub struct ProgramAbi {
    abi: &'static Abi,
    pub native: bool,
    pub libc: Option<std::path::PathBuf>,
}

impl ProgramAbi {
    pub fn name(&self) -> &'static str {
        self.abi.name
    }

    pub fn expand(&self, entry: &str) -> String {
        self.abi.expand(entry)
    }

    /// Whether the file at `path` is a library of this ABI: Err says what it is instead.
    pub fn serves(&self, path: &Path) -> Result<(), String> {
        match elf_kind(path) {
            Ok(kind) if kind == (self.abi.class, self.abi.machine) => Ok(()),
            Ok(kind) => Err(describe_kind(kind)),
            Err(why) => Err(why),
        }
    }
}

/// The ABI this program was built for.
const NATIVE: &str = if cfg!(target_arch = "x86_64") {
    "x86_64"
} else if cfg!(target_arch = "x86") {
    "i386"
} else {
    "aarch64"
};

/// Whether the programs of each ABI this machine runs load `entry`.
pub struct PerAbi {
    /// One line per ABI: `  x86_64 programs: get cfrfix (...)`.
    pub lines: Vec<String>,
    /// Some ABI's programs do not get it.
    pub any_missing: bool,
    /// The programs of this tool's own ABI (which runs its test program) do not get it.
    pub native_missing: bool,
}

/// For each ABI this machine runs: whether its programs load `entry`. A file of the right ELF
/// class and machine is, for this tool's own ABI, also test-loaded (`copy::library_loads`): a
/// truncated library has a valid header.
pub fn per_abi(entry: &str) -> PerAbi {
    per_abi_probed(entry, |path| crate::copy::library_loads(path).map(drop))
}

/// `per_abi`, with `loads` to test-load a library of the native ABI.
fn per_abi_probed(entry: &str, loads: impl Fn(&str) -> Result<(), String>) -> PerAbi {
    let mut report = PerAbi {
        lines: Vec::new(),
        any_missing: false,
        native_missing: false,
    };
    for abi in ABIS.iter().filter(|abi| abi.present()) {
        let path = abi.expand(entry);
        let shown = if path == entry {
            path.clone()
        } else {
            format!("{entry} = {path}")
        };
        let native = abi.name == NATIVE;
        let outcome = match elf_kind(Path::new(&path)) {
            Ok(kind) if kind == (abi.class, abi.machine) && native => match loads(&path) {
                Ok(()) => Ok(kind),
                Err(why) => Err(format!("{}, but does not load: {why}", describe_kind(kind))),
            },
            Ok(kind) if kind == (abi.class, abi.machine) => Ok(kind),
            Ok(kind) => Err(describe_kind(kind)),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(kind) => report.lines.push(format!(
                "  {} programs: get cfrfix ({shown}: {})",
                abi.name,
                describe_kind(kind)
            )),
            Err(why) => {
                report.any_missing = true;
                report.native_missing |= native;
                report.lines.push(format!(
                    "  {} programs: do NOT get cfrfix ({shown}: {why}); each prints \"ERROR: \
                     ld.so: object ... cannot be preloaded\" on stderr and runs without it",
                    abi.name
                ));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_ld_so() {
        let text = "/a/libm.so.6 /usr/$LIB/libcfrfix.so:/b/x.so\n\t/c/libcfrfix-old.so\n";
        let found: Vec<&str> = entries(text).filter(|e| is_cfrfix(e)).collect();
        assert_eq!(found, ["/usr/$LIB/libcfrfix.so", "/c/libcfrfix-old.so"]);
    }

    #[test]
    fn this_machine_runs_its_own_abi() {
        let native = if cfg!(target_arch = "x86_64") {
            "x86_64"
        } else if cfg!(target_arch = "x86") {
            "i386"
        } else {
            "aarch64"
        };
        assert!(ABIS.iter().any(|abi| abi.name == native && abi.present()));
        let exe = std::env::current_exe().unwrap();
        let PerAbi {
            lines,
            any_missing: missing,
            ..
        } = per_abi_probed(exe.to_str().unwrap(), |_| Ok(()));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("  {native} programs: get cfrfix"))),
            "{lines:?}"
        );
        // Another ABI, if this machine has one (the i386 loader of libc6-i386), must not.
        assert_eq!(missing, lines.len() > 1, "{lines:?}");
        // A native file that does not load is named, and counted for the native ABI.
        let report = per_abi_probed(exe.to_str().unwrap(), |_| Err("file too short".into()));
        assert!(report.native_missing && report.any_missing);
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.starts_with(&format!("  {native} programs: do NOT"))
                    && l.contains("but does not load: file too short")),
            "{:?}",
            report.lines
        );
    }
}

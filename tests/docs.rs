//! The documents that ship (issue 10): the man page says what `cfrfix --help` says, the
//! README's quick start works as pasted and cleans up after itself, and the licence files are
//! the ones Cargo.toml names.

mod common;

use common::command::{MANIFEST_DIR, artefact_dir, cfrfix, run, tmpfs_magic};
use common::{describe, have_command, skip, text};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(MANIFEST_DIR).join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every `--option` word in `text` (roff escapes `\-` removed first).
fn options(text: &str) -> BTreeSet<String> {
    let text = text.replace("\\-", "-");
    let mut found = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if word.len() > 2 && word.starts_with("--") && word.as_bytes()[2].is_ascii_lowercase() {
            found.insert(word.trim_end_matches('-').to_string());
        }
    }
    found
}

/// The section of a roff page from `.SH NAME` to the next `.SH`.
fn man_section<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .find(&format!(".SH {name}\n"))
        .unwrap_or_else(|| panic!("no .SH {name}"));
    let rest = &page[start + 4..];
    &rest[..rest.find("\n.SH ").unwrap_or(rest.len())]
}

/// The lines of `--help` from `heading` to the next blank line.
fn help_section<'a>(help: &'a str, heading: &str) -> &'a str {
    let start = help
        .find(heading)
        .unwrap_or_else(|| panic!("--help has no '{heading}'"));
    let rest = &help[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

/// The exit codes listed in a text: its words that are numbers below 256, in order.
fn exit_codes(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|w| w.trim_end_matches([';', ',', '.', ':']))
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|w| w.parse::<u32>().ok())
        .filter(|n| *n < 256)
        .collect()
}

#[test]
fn the_man_page_says_what_help_says() {
    let help = text(&run(cfrfix().arg("--help")).stdout);
    let page = read("docs/cfrfix.1");
    let help_options = options(&help);
    let page_options = options(man_section(&page, "SYNOPSIS"))
        .union(&options(man_section(&page, "OPTIONS")))
        .cloned()
        .collect::<BTreeSet<_>>();
    // `--reflink` appears in an example only.
    let help_options: BTreeSet<String> = help_options
        .into_iter()
        .filter(|o| o != "--reflink")
        .collect();
    assert_eq!(
        help_options, page_options,
        "options of --help vs docs/cfrfix.1"
    );

    // The same exit codes, mode by mode.
    let help_codes = help_section(&help, "Exit status:");
    let page_codes = man_section(&page, "EXIT STATUS").replace("\\-", "-");
    for (help_label, page_label) in [
        ("running PROGRAM:", "Running"),
        ("--check:", ".BR --check"),
        ("--status:", ".BR --status"),
    ] {
        let from_help = {
            let start = help_codes.find(help_label).expect("label in --help");
            let rest = &help_codes[start + help_label.len()..];
            let end = ["\n  --", "\n\n"]
                .iter()
                .filter_map(|m| rest.find(m))
                .min()
                .unwrap_or(rest.len());
            exit_codes(&rest[..end])
        };
        let from_page = {
            let start = page_codes.find(page_label).expect("label in the man page");
            let rest = &page_codes[start + page_label.len()..];
            let end = rest.find(".PP").unwrap_or(rest.len());
            exit_codes(&rest[..end])
        };
        assert!(!from_help.is_empty(), "{help_label}: no codes in --help");
        assert_eq!(from_help, from_page, "exit codes for {help_label}");
    }

    // The version.
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect(".TH line");
    assert!(
        th.contains(&format!("\"cfrfix {}\"", env!("CARGO_PKG_VERSION"))),
        "{th}"
    );
}

#[test]
fn the_man_page_renders_without_warnings() {
    if !have_command("groff") {
        return skip("groff not installed");
    }
    let page = Path::new(MANIFEST_DIR).join("docs/cfrfix.1");
    let output = run(Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&page));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(output.stderr.is_empty(), "{}", describe(&output));
}

/// The block between `<!-- quick-start` and `<!-- /quick-start -->` in the README, without
/// its code fence.
fn quick_start() -> String {
    let readme = read("README.md");
    let start = readme.find("<!-- quick-start").expect("quick-start marker");
    let end = readme
        .find("<!-- /quick-start -->")
        .expect("quick-start end marker");
    let block = &readme[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.rsplit_once("```"))
        .map(|(code, _)| code)
        .expect("a ```sh block");
    body.to_string()
}

fn demo_files() -> Vec<String> {
    ["/dev/shm", "/var/tmp"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains("cfrfix-demo-"))
        .collect()
}

#[test]
fn the_readme_quick_start_works_as_pasted() {
    if tmpfs_magic(Path::new("/var/tmp")) {
        return skip("/var/tmp is on tmpfs: the quick start's copy is no EXDEV here");
    }
    let script = quick_start();
    let before = demo_files();
    // Run as pasted into bash in a fresh clone's directory (this checkout), with this test
    // profile's build: the first line would otherwise build the release profile.
    let output = run(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(MANIFEST_DIR)
        .env_remove("LD_PRELOAD")
        .env("CFRFIX_ARTEFACT_DIR", artefact_dir()));
    let report = describe(&output);
    assert!(output.status.success(), "{script}\n{report}");
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(stdout.contains("result: works through cfrfix"), "{report}");
    assert!(
        stderr.contains("kernel said EXDEV; copied 1000000 bytes in user space"),
        "the fallback must show: {report}"
    );
    assert!(stdout.contains("identical copy"), "{report}");
    assert_eq!(demo_files(), before, "the quick start must clean up");
}

#[test]
fn the_licence_files_are_the_ones_cargo_toml_names() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("license = \"MIT OR Apache-2.0\""));
    let mit = read("LICENSE-MIT");
    assert!(
        mit.starts_with("MIT License\n\nCopyright (c) "),
        "LICENSE-MIT"
    );
    assert!(mit.contains("cfrfix contributors"));
    assert!(mit.contains("THE SOFTWARE IS PROVIDED \"AS IS\""));
    let apache = read("LICENSE-APACHE");
    assert!(
        apache.contains("Apache License\n                           Version 2.0, January 2004")
    );
    assert!(apache.contains("END OF TERMS AND CONDITIONS"));
    let changelog = read("CHANGELOG.md");
    assert!(
        changelog.contains(&format!("## [{}]", env!("CARGO_PKG_VERSION"))),
        "CHANGELOG.md has no entry for this version"
    );
    // The package ships them, with the man page.
    for asset in [
        "docs/cfrfix.1",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "CHANGELOG.md",
    ] {
        assert!(
            manifest.contains(&format!("[\"{asset}\", ")),
            "Cargo.toml's deb assets lack {asset}"
        );
    }
}

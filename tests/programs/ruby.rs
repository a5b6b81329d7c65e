//! Ruby: `IO.copy_stream` and `FileUtils.cp` (the Errno::ENOTSUP reports).

use crate::{CopyProgram, require_program, script_args};

#[test]
fn ruby_io_copy_stream() {
    let Some(ruby) = require_program("ruby") else {
        return;
    };
    CopyProgram {
        label: "ruby IO.copy_stream",
        program: ruby,
        leading_args: script_args(
            "-e",
            "*s, d = ARGV; s.each { |f| IO.copy_stream(f, File.join(d, File.basename(f))) }",
        ),
        // io.c falls back on EINVAL, EPERM, ENOSYS and EXDEV only.
        fails_without_cfrfix: &[95, 524, 5],
        failure_marker: "copy_file_range",
    }
    .check("ruby-copy-stream");
}

#[test]
fn ruby_fileutils_cp() {
    let Some(ruby) = require_program("ruby") else {
        return;
    };
    CopyProgram {
        label: "ruby FileUtils.cp",
        program: ruby,
        leading_args: script_args(
            "-e",
            "require 'fileutils'; *s, d = ARGV; FileUtils.cp(s, d)",
        ),
        // FileUtils.cp copies through IO.copy_stream.
        fails_without_cfrfix: &[95, 524, 5],
        failure_marker: "copy_file_range",
    }
    .check("ruby-fileutils");
}

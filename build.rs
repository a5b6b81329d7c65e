//! `cfrfix-check-copy` brings its own `_start` (see that file): link it without the C runtime's
//! start files, whose `_start` would need `__libc_start_main@GLIBC_2.34`.
fn main() {
    println!("cargo:rustc-link-arg-bin=cfrfix-check-copy=-nostartfiles");
    println!("cargo:rerun-if-changed=build.rs");
}

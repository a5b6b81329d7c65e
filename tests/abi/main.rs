//! cfrfix in the processes of the other ABIs it is built for: 32-bit x86 (`i686`, run natively
//! here) and aarch64 (run under qemu-user). The builds come from `scripts/build-targets`, which
//! `.ci/run` runs; a test whose build, loader, emulator or compiler is absent prints `SKIPPED:`
//! with what is missing, and a build older than the sources fails (it would test code that is
//! no longer there).
//!
//! - `i686`: the differential suite's cases, plus descriptors opened without `O_LARGEFILE`
//!   around 2 GiB, in a 32-bit probe: natively vs through the 32-bit library under each
//!   injected errno (the 64-bit `cfrfix-inject` matches AUDIT_ARCH_I386), every entry point;
//! - `i686_programs`: unmodified 32-bit programs (C, with and without `_FILE_OFFSET_BITS=64`;
//!   Debian's i386 `cp`), and `syscall()` forwarding other calls;
//! - `chain`: one install for every ABI: a 64-bit → 32-bit → 64-bit process chain under the
//!   `cfrfix` command and under system-wide mode, and what happens without a 32-bit build;
//! - `package_tools`: scripts/build-package-tools builds another target with build-targets'
//!   environment, from rustup and from Debian's rustc-web (stubs for cargo and rustup);
//! - `aarch64`: the same cases under qemu-aarch64, in mode `always` and under injection
//!   through the emulator's own system calls, and a natural EXDEV.

#[path = "../common/mod.rs"]
mod common;
#[path = "../probe/mod.rs"]
mod probe;

mod aarch64;
mod chain;
mod i686;
mod i686_programs;
mod package_tools;
mod targets;

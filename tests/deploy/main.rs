//! Deployment: install/uninstall, and system-wide mode.
//!
//! - `install`: install.sh and uninstall.sh into a temporary prefix: what is installed, with
//!   which modes, the checks made before anything changes, and what uninstall.sh removes;
//! - `system_wide`: `install.sh --system-wide` and /etc/ld.so.preload, tried for real, but never
//!   on this machine's /etc: each step runs in a private mount namespace (`unshare -m`) where a
//!   copy of /etc is bind-mounted over /etc. A copy of the whole directory rather than one file
//!   bind-mounted over /etc/ld.so.preload, because cfrfix replaces that file atomically
//!   (rename), and rename(2) onto a mount point fails with EBUSY. The copy lives in a mode-0700
//!   directory on /dev/shm and is removed at the end.
//!
//! A test that needs something this machine lacks (root, unshare, gcc, python3) prints
//! "SKIPPED: reason" and returns.

#[path = "../common/mod.rs"]
mod common;

mod install;
mod system_wide;

//! Concurrency and signals: threads, fork and signal storms (`cfrfix-stress`) with every copy a
//! fallback.

use super::{EOPNOTSUPP, FALLBACK, Setup, figure, stress, stress_ok};
use crate::common::ScratchDir;

#[test]
fn eight_threads_copy_at_once_while_others_contend_on_a_mutex() {
    let dir = ScratchDir::tmpfs("safety-threads");
    let d = dir.path().to_str().expect("utf-8");
    // Without the shim the same run fails: every copy below is a fallback.
    let refused = stress(
        Setup::InjectedOnly { errno: EOPNOTSUPP },
        &[],
        &["threads", d, "2", "1"],
    );
    assert!(!refused.status.success(), "injection did not bite");
    let figures = stress_ok(FALLBACK, &["threads", d, "8", "4"]);
    figure(&format!("threads (EOPNOTSUPP injected): {figures}"));
}

#[test]
fn fork_while_threads_are_copying() {
    let dir = ScratchDir::tmpfs("safety-fork");
    let d = dir.path().to_str().expect("utf-8");
    let figures = stress_ok(FALLBACK, &["fork", d, "16"]);
    figure(&format!("fork (EOPNOTSUPP injected): {figures}"));
}

#[test]
fn signal_storms_give_full_partial_or_clean_eintr() {
    let dir = ScratchDir::tmpfs("safety-signals");
    let d = dir.path().to_str().expect("utf-8");
    for restart in ["norestart", "restart"] {
        let native = stress_ok(Setup::Native, &["signals", d, "32", "6", restart]);
        let shim = stress_ok(FALLBACK, &["signals", d, "32", "6", restart]);
        figure(&format!("signals native: {native}"));
        figure(&format!("signals shim (EOPNOTSUPP injected): {shim}"));
        assert!(
            !shim.contains(" signals=0 "),
            "no signal arrived during the copies: {shim}"
        );
    }
}

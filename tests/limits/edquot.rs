//! EDQUOT on a quota'd ext4 image, copying as `nobody` (root is exempt from quotas).

use super::driver::build_driver;
use super::{
    BUDGET, CONFIGS, EDQUOT, EXDEV, Scenario, Setup, calls_summary, driver_command, field, figure,
    last_call, partial, pattern, run_within, transcript, write_sparse,
};
use crate::common::{self, ScratchDir, clean, describe, have_command, is_root, skip, text};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Blocks (1 KiB units, as setquota counts them) `nobody` may use on the image.
const QUOTA_KIB: u64 = 1024;

/// `inner`, as `nobody`, in a private mount namespace where a fresh ext4 image `img` is
/// loop-mounted on `mnt` (with user quotas and a QUOTA_KIB hard limit for uid 65534 when
/// `quota`), the source `src` copied to `mnt/src` by root, and `mnt` made world-writable.
/// Exit codes: 77 the mount failed, 78 setquota failed.
fn on_ext4_image(img: &Path, mnt: &Path, src: &Path, quota: bool, inner: &Command) -> Command {
    let mut c = clean("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"img=$0 mnt=$1 src=$2 quota=$3; shift 3
            mount -t ext4 -o "loop${quota:+,usrquota}" "$img" "$mnt" || exit 77
            if [ -n "$quota" ]; then setquota -u 65534 0 "$quota" 0 0 "$mnt" || exit 78; fi
            cat "$src" >"$mnt/src" && chmod 644 "$mnt/src" && chmod 1777 "$mnt" || exit 1
            exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@""#,
        )
        .arg(img)
        .arg(mnt)
        .arg(src)
        .arg(if quota {
            QUOTA_KIB.to_string()
        } else {
            String::new()
        })
        .arg(inner.get_program())
        .args(inner.get_args());
    c
}

/// A fresh 64 MiB ext4 image with the quota feature (or without it).
fn mkfs(img: &Path, quota: bool, deadline: Instant) {
    let _ = std::fs::remove_file(img);
    let mut c = clean("mkfs.ext4");
    c.args(["-q", "-F", "-b", "4096", "-m", "0"]);
    if quota {
        c.args(["-O", "quota", "-E", "quotatype=usrquota"]);
    }
    c.arg(img).arg("64M");
    let output = run_within(&mut c, deadline);
    assert!(output.status.success(), "mkfs.ext4: {}", describe(&output));
}

const EDQUOT_SCENARIOS: [Scenario; 3] = [
    // Unaligned offsets, 256 KiB calls: full counts, a partial count, then EDQUOT.
    Scenario {
        name: "quota-offsets",
        source: "src",
        mode: "offsets",
        off_in: 1000,
        off_out: 3000,
        len: 256 << 10,
    },
    // Positions, calls that are not a multiple of the block size.
    Scenario {
        name: "quota-positions",
        source: "src",
        mode: "positions",
        off_in: 0,
        off_out: 5,
        len: 300_000,
    },
    // One call larger than the quota.
    Scenario {
        name: "quota-one-call",
        source: "src",
        mode: "offsets",
        off_in: 4096,
        off_out: 0,
        len: 3 << 20,
    },
];

#[test]
fn edquot_mid_copy_on_ext4_with_quota_matches_the_kernel() {
    let deadline = Instant::now() + BUDGET;
    if !is_root() {
        return skip("needs root for loop devices, mounts and quotas");
    }
    for tool in ["unshare", "setpriv", "mkfs.ext4", "mount"] {
        if !have_command(tool) {
            return skip(&format!("{tool} missing"));
        }
    }
    let shm = ScratchDir::tmpfs("limits-quota");
    let Some(driver) = build_driver(shm.path(), deadline) else {
        return;
    };
    std::fs::set_permissions(shm.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let img = shm.path().join("ext4.img");
    let mnt = shm.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    let source = shm.path().join("src");
    write_sparse(&source, &pattern(3 << 20, 5), 3 << 20);

    // Can this machine loop-mount an ext4 image at all, and then one with quotas?
    for quota in [false, true] {
        mkfs(&img, quota, deadline);
        let output = run_within(
            &mut on_ext4_image(&img, &mnt, &source, quota, &clean("true")),
            deadline,
        );
        match output.status.code() {
            Some(0) => {}
            Some(77) if !quota => {
                return skip(&format!(
                    "cannot loop-mount an ext4 image (no loop devices?): {}",
                    text(&output.stderr).trim()
                ));
            }
            Some(77) => {
                return skip(&format!(
                    "ext4 refuses to mount with quotas: the kernel lacks quota support \
                     (CONFIG_QUOTA and CONFIG_QFMT_V2; dmesg says why): {}",
                    text(&output.stderr).trim()
                ));
            }
            _ => panic!("probing the ext4 image: {}", describe(&output)),
        }
    }
    if !have_command("setquota") {
        return skip("setquota missing (the quota package; .ci/run installs it)");
    }

    let mut compared = 0;
    let mut figures = Vec::new();
    for sc in &EDQUOT_SCENARIOS {
        let on_disk = mnt.join("src");
        let dst = mnt.join("dst");
        // Each run gets a fresh image, so no run's blocks count against the next one's quota.
        let run = |what: String, inner: Command| {
            mkfs(&img, true, deadline);
            let mut c = on_ext4_image(&img, &mnt, &source, true, &inner);
            transcript(&what, &mut c, deadline)
        };
        // (a) The kernel's own copy, ext4 → same ext4, as nobody.
        let native = run(
            format!("{} native", sc.name),
            driver_command(
                Setup::Native,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
        );
        // The quota really limits: a partial count, then EDQUOT; never more than the quota.
        let copied = field(native.lines().last().expect("final"), "copied");
        assert!(
            partial(&native).is_some()
                && last_call(&native).contains(EDQUOT)
                && copied > 0
                && copied <= (QUOTA_KIB as i64) << 10,
            "{}: the kernel's copy did not stop part way with EDQUOT:\n{native}",
            sc.name
        );
        figures.push(format!(
            "{}: {} (copied {copied})",
            sc.name,
            calls_summary(&native)
        ));
        let refused = run(
            format!("{} injected, no shim", sc.name),
            driver_command(
                Setup::InjectedOnly,
                &[],
                &driver,
                &sc.args(&on_disk, &dst, "libc"),
            ),
        );
        assert!(
            last_call(&refused).contains("errno=95"),
            "{}: injection did not refuse the copy:\n{refused}",
            sc.name
        );
        for (engine, sparse, entry) in CONFIGS.iter().step_by(3) {
            let envs = [("CFRFIX_ENGINE", *engine), ("CFRFIX_SPARSE", *sparse)];
            // (b) Injected EOPNOTSUPP, ext4 → same ext4.
            let shim = run(
                format!("{} shim injected {engine}/{sparse}/{entry}", sc.name),
                driver_command(Setup::Shim, &envs, &driver, &sc.args(&on_disk, &dst, entry)),
            );
            assert_eq!(
                shim, native,
                "{} injected {engine}/{sparse}/{entry}",
                sc.name
            );
            compared += 1;
        }
        // (c) The natural EXDEV: the source on tmpfs, the destination on the quota'd ext4.
        let exdev = run(
            format!("{} native tmpfs -> ext4", sc.name),
            driver_command(Setup::Native, &[], &driver, &sc.args(&source, &dst, "libc")),
        );
        assert!(
            last_call(&exdev).contains(EXDEV),
            "{}: tmpfs -> ext4 is not EXDEV here:\n{exdev}",
            sc.name
        );
        let mut c = clean("env");
        c.arg(format!("LD_PRELOAD={}", common::cdylib().display()))
            .arg(&driver)
            .args(sc.args(&source, &dst, "libc"));
        let shim = run(format!("{} shim EXDEV", sc.name), c);
        assert_eq!(shim, native, "{}: shim on EXDEV from tmpfs", sc.name);
        compared += 1;
    }
    figure(&format!(
        "EDQUOT ({QUOTA_KIB} KiB quota for nobody on ext4): per-call results (kernel) {}; \
         identical in {compared} shim runs",
        figures.join("; ")
    ));
}

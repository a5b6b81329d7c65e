#!/bin/bash
# The ZFS tests, inside the VM that scripts/zfs-vm boots. Runs in a chroot of the host's root
# (read-only over 9p; tmpfs on /tmp, /run, /var/tmp and /dev/shm), so every program and test
# binary is the host's own, at its host path. Creates a pool in a file on tmpfs, runs the
# stages named in $STAGES against directories on it, and exits 0 only if every stage passed.
#
# Stages (runs of the host's cargo test binaries with CFRFIX_TEST_DIR on the pool):
#   programs      real programs through libcfrfix.so with copy_file_range failing as 95 and 524
#                 (tests/programs/, CFRFIX_TEST_ERRNOS=95,524), block cloning off
#   differential  the differential cases, native ZFS copy_file_range vs the library under
#                 injection, with block cloning on (zfs_bclone_wait_dirty 0 and 1) and off
#   data          tests/zfs.rs (dirty, mmap-written, record-sparse, written-zero sources) with
#                 zfs_dmu_offset_next_sync=1 and compression, and =0 without
#   check         `cfrfix --check` on the pool (tests/zfs.rs, check_*)
#   shell         $SHELL_COMMAND, for investigations (not run by default)
#
# Usage (by /init): guest.sh ENV_FILE, where ENV_FILE sets REPO, ZFSUTILS, SHARE, STAGES and
# BIN_programs, BIN_differential, BIN_zfs (see scripts/zfs-vm).
set -uo pipefail

# shellcheck source=/dev/null
source "$1"
: "${REPO:?}" "${ZFSUTILS:?}" "${SHARE:?}" "${STAGES:?}" "${CACHE_KEY:?}"
: "${BIN_programs:?}" "${BIN_differential:?}" "${BIN_zfs:?}"

readonly pool=cfrfix
readonly image=/tmp/cfrfix-pool.img
readonly mountpoint=/run/cfrfix-pool
readonly params=/sys/module/zfs/parameters
export PATH=/run/cfrfix-zfs-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
# The host built everything (scripts/zfs-vm); the tree is read-only here.
export CFRFIX_TEST_NO_BUILD=1
unset LD_PRELOAD

results=()
failures=0
skips=0

say() { printf '=== %s\n' "$*"; }

# zpool and zfs from the cached zfsutils tree, with its libraries.
install_zfs_tools() {
    mkdir -p /run/cfrfix-zfs-bin
    local tool
    for tool in zpool zfs; do
        cat >"/run/cfrfix-zfs-bin/$tool" <<EOF
#!/bin/sh
LD_LIBRARY_PATH=$ZFSUTILS/lib/x86_64-linux-gnu:$ZFSUTILS/usr/lib/x86_64-linux-gnu exec $ZFSUTILS/sbin/$tool "\$@"
EOF
        chmod +x "/run/cfrfix-zfs-bin/$tool"
    done
}

# Sets a module parameter and checks that it took.
set_param() {
    echo "$2" >"$params/$1"
    if [[ $(cat "$params/$1") != "$2" ]]; then
        say "cannot set $1=$2"
        return 1
    fi
}

# Whether copy_file_range of a 1 MiB file (synced first, or just written) in DIR cloned its
# blocks: the pool's bcloneused grows (counted at a txg sync; the files are kept until then).
# shellcheck disable=SC2317 # reached through check_cloning, which stage runs
cloned() {
    local dir=$1 kind=$2 before after
    head -c 1048576 /dev/urandom >"$dir/clone-src"
    [[ $kind == synced ]] && zpool sync "$pool"
    before=$(zpool get -Hp -o value bcloneused "$pool")
    python3 -c 'import os, sys
i, o = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
assert os.copy_file_range(i, o, 1 << 20) == 1 << 20' "$dir/clone-src" "$dir/clone-dst" || return 2
    zpool sync "$pool"
    after=$(zpool get -Hp -o value bcloneused "$pool")
    rm -f "$dir/clone-src" "$dir/clone-dst"
    zpool sync "$pool" # the next check starts from a pool without these clones
    ((after > before))
}

# Checks that the block-cloning settings do what the differential stage assumes of them: with
# cloning on, a synced source is cloned and a dirty one only when zfs_bclone_wait_dirty=1.
# shellcheck disable=SC2317 # run by stage
check_cloning() {
    local dir=$1 bclone=$2 wait_dirty=$3 kind expected actual report=''
    for kind in synced dirty; do
        expected=no
        ((bclone)) && [[ $kind == synced || $wait_dirty == 1 ]] && expected=yes
        actual=no
        cloned "$dir" "$kind" && actual=yes
        report+="$kind source cloned: $actual (expected $expected); "
        [[ $actual == "$expected" ]] || { echo "$report"; return 1; }
    done
    echo "$report"
}

# stage NAME COMMAND...: runs COMMAND, records PASS/FAIL with its time and SKIPPED count.
stage() {
    local name=$1 started=$SECONDS output status skipped
    shift
    say "$name: $*"
    # In cargo's format, so that .ci/run counts each stage's tests apart.
    printf '     Running %s\n' "$name"
    output=$(mktemp /tmp/stage.XXXXXX)
    "$@" 2>&1 | tee "$output"
    status=${PIPESTATUS[0]}
    skipped=$(grep -c '^SKIPPED:' "$output")
    rm -f "$output"
    local verdict=PASS
    ((status == 0)) || { verdict=FAIL; failures=$((failures + 1)); }
    skips=$((skips + skipped))
    results+=("$(printf '%s %-60s %4ds%s' "$verdict" "$name" "$((SECONDS - started))" \
        "$( ((skipped)) && echo " ($skipped SKIPPED)")")")
    say "$verdict $name ($((SECONDS - started))s)"
}

# A fresh dataset mounted below $mountpoint, with extra `zfs create` options.
fresh_dataset() {
    local name=$1
    shift
    zfs destroy -r "$pool/$name" 2>/dev/null
    zfs create "$@" "$pool/$name" || return 1
    if [[ $(stat -f -c %T "$mountpoint/$name") != zfs ]]; then
        say "$pool/$name is not mounted at $mountpoint/$name" >&2
        zfs list -o name,mountpoint,mounted >&2
        grep zfs /proc/mounts >&2
        return 1
    fi
    echo "$mountpoint/$name"
}

# --- stages ---------------------------------------------------------------------------------

stage_programs() {
    local dir
    dir=$(fresh_dataset programs) || return 1
    # Block cloning off, as in OpenZFS 2.2.1-2.2.3 (the 6.8 bug's versions): FICLONE then fails,
    # so programs that try it first (systemd, cp) reach copy_file_range. With cloning on, a
    # clone of a source that a txg has synced meanwhile succeeds and copy_file_range is never
    # called: what the program does would depend on timing.
    set_param zfs_bclone_enabled 0 || return 1
    stage "programs on ZFS, copy_file_range failing with 95 and 524" \
        env CFRFIX_TEST_DIR="$dir" CFRFIX_TEST_ERRNOS=95,524 \
        "$BIN_programs" --exact --test-threads=1 --nocapture \
        python::python_os_copy_file_range ruby::ruby_io_copy_stream ruby::ruby_fileutils_cp \
        node::node_fs_copy_file_sync sysusers::systemd_sysusers_backup java::java_files_copy
    set_param zfs_bclone_enabled 1
}

# The native side runs on ZFS under each setting; the library's side (copy_file_range failing
# by seccomp before ZFS sees it) does not depend on them, and goes through glibc's symbol only
# (the other entry points reach the same code; `cargo test` runs them on tmpfs). Cloning off
# makes zfs_bclone_wait_dirty moot, so three settings: cloning on, waiting for dirty blocks or
# not, and off. 524 is checked once, 95 under every setting.
stage_differential() {
    local dir setting bclone wait_dirty env tests
    for setting in 1:0 1:1 0:0; do
        bclone=${setting%:*} wait_dirty=${setting#*:}
        dir=$(fresh_dataset differential) || return 1
        set_param zfs_bclone_enabled "$bclone" && set_param zfs_bclone_wait_dirty "$wait_dirty" ||
            return 1
        stage "block cloning as set, zfs_bclone_enabled=$bclone zfs_bclone_wait_dirty=$wait_dirty" \
            check_cloning "$dir" "$bclone" "$wait_dirty"
        env=(CFRFIX_TEST_DIR="$dir" CFRFIX_TEST_ENTRY_POINTS=libc)
        # With cloning on, OpenZFS 2.3.2's copy_file_range within one file that must grow
        # deadlocks in the kernel (openzfs/zfs#19072): those cases run with cloning off only.
        ((bclone)) && env+=(CFRFIX_TEST_SKIP_SAME_FILE=1)
        tests=(shim_matches_kernel_under_eopnotsupp)
        [[ $setting == 1:0 ]] && tests+=(native_results_cover_successes_and_each_kind_of_failure
            injected_errno_reaches_callers_without_the_shim shim_matches_kernel_under_enotsupp)
        stage "differential, zfs_bclone_enabled=$bclone zfs_bclone_wait_dirty=$wait_dirty" \
            env "${env[@]}" "$BIN_differential" --exact --test-threads=2 "${tests[@]}"
    done
    set_param zfs_bclone_enabled 1 && set_param zfs_bclone_wait_dirty 0
}

stage_data() {
    local dir setting sync compression
    # Dirty stays dirty: a transaction group is synced only when a test asks for it (zpool sync)
    # or dirty data piles up, never by the 5 s timer in the middle of a test.
    set_param zfs_txg_timeout 3600 || return 1
    zpool sync "$pool"
    # Each setting of zfs_dmu_offset_next_sync once, each compression setting once.
    for setting in 1:on 0:off; do
        sync=${setting%:*} compression=${setting#*:}
        set_param zfs_dmu_offset_next_sync "$sync" || return 1
        dir=$(fresh_dataset "data-$compression" -o compression="$compression") || return 1
        stage "data first, zfs_dmu_offset_next_sync=$sync compression=$compression" \
            env CFRFIX_TEST_DIR="$dir" "$BIN_zfs" --include-ignored --test-threads=1 \
            --nocapture --skip check_
    done
    set_param zfs_dmu_offset_next_sync 1 && set_param zfs_txg_timeout 5
}

# For investigations: runs $SHELL_COMMAND (CFRFIX_ZFS_VM_SHELL on the host) with bash, in a
# fresh dataset ($PWD, also CFRFIX_TEST_DIR), with the pool's zpool/zfs on PATH.
stage_shell() {
    local dir
    dir=$(fresh_dataset shell) || return 1
    stage "shell: $SHELL_COMMAND" env -C "$dir" CFRFIX_TEST_DIR="$dir" bash -c "$SHELL_COMMAND"
}

stage_check() {
    local dir
    dir=$(fresh_dataset check) || return 1
    stage "cfrfix --check on ZFS" \
        env CFRFIX_TEST_DIR="$dir" "$BIN_zfs" --include-ignored --test-threads=1 --nocapture check_
}

# --- main -----------------------------------------------------------------------------------

main() {
    local started=$SECONDS
    say "kernel $(uname -r), OpenZFS module $(<"$params/../version"), build $CACHE_KEY"
    install_zfs_tools
    # Modest memory: the pool's file lives in the VM's RAM too.
    set_param zfs_arc_max $((256 << 20)) || return 1
    if ! truncate -s 1200M "$image" ||
        ! zpool create -f -o ashift=12 -o cachefile=none -O compression=on -O atime=off \
            -O mountpoint="$mountpoint" "$pool" "$image"; then
        say "zpool create failed"
        return 1
    fi
    [[ $(stat -f -c %T "$mountpoint") == zfs ]] || { say "$mountpoint is not ZFS"; return 1; }
    say "pool: $(zpool get -H -o value feature@block_cloning "$pool") block cloning;" \
        "parameters: $(cd "$params" && grep -H . zfs_bclone_enabled zfs_bclone_wait_dirty \
            zfs_dmu_offset_next_sync zfs_txg_timeout | tr '\n' ' ')"

    local name ok
    for name in $STAGES; do
        case $name in
            programs) stage_programs ;;
            differential) stage_differential ;;
            data) stage_data ;;
            check) stage_check ;;
            shell) stage_shell ;;
            *) say "unknown stage $name"; false ;;
        esac
        ok=$?
        ((ok == 0)) || { failures=$((failures + 1)); results+=("FAIL $name (setup)"); }
    done

    zpool export "$pool" || say "zpool export failed"
    say "summary ($((SECONDS - started))s in the guest):"
    printf '  %s\n' "${results[@]}"
    say "$(( ${#results[@]} - failures )) passed, $failures failed, $skips SKIPPED lines"
    ((failures == 0))
}

main 2>&1 | tee "$SHARE/log"
exit "${PIPESTATUS[0]}"

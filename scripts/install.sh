#!/usr/bin/env bash
# install.sh [--prefix DIR] [--system-wide]: install cfrfix from this checkout.
#
# Layout (PREFIX defaults to /usr/local):
#   PREFIX/bin/cfrfix                        the command
#   PREFIX/<$LIB>/libcfrfix.so               the preload library, one per ABI this machine runs
#                                            and this checkout has a build for, where that ABI's
#                                            loader expands `$LIB` (Debian: lib/x86_64-linux-gnu,
#                                            lib/i386-linux-gnu or lib32; Fedora: lib64, lib);
#                                            the command and /etc/ld.so.preload name
#                                            PREFIX/$LIB/libcfrfix.so, literally
#   PREFIX/libexec/cfrfix/installed          what install.sh created: each ABI's library and
#                                            every directory it made (uninstall.sh removes the
#                                            libraries, and the directories when they are empty)
#   PREFIX/libexec/cfrfix/cfrfix-check       helper behind `cfrfix --check` and `--status`
#   PREFIX/libexec/cfrfix/cfrfix-check-copy  the half of `--check` that runs through cfrfix
#   PREFIX/libexec/cfrfix/cfrfix-inject      seccomp injector behind `cfrfix --enosys`
#   PREFIX/libexec/cfrfix/cfrfix-system-wide /etc/ld.so.preload management
#   PREFIX/share/man/man1/cfrfix.1           the manual page
#   PREFIX/share/doc/cfrfix/                 deployment.md, cfrfix.conf.example, systemd drop-in,
#                                            CHANGELOG.md, LICENSE-MIT, LICENSE-APACHE
# Nothing is changed before every check has passed: the prefix is one the installed command
# can use, root for --system-wide, the build is complete, each directory a file goes to
# exists and can be written or can be created (its deepest existing parent is a writable
# directory), and for --system-wide every ABI this machine runs has a build (or its processes
# would print ld.so errors). The native build is target/release/; other ABIs' come from
# scripts/build-targets (target/<triple>/release/). An ABI without a build is named, and for
# `cfrfix PROGRAM` it is not fatal: its programs run without cfrfix (and `cfrfix PROGRAM`
# refuses such a PROGRAM). A file being installed when the script is interrupted leaves no
# temporary behind.
# Each file is written under a temporary name and renamed into place, so a library that
# running processes have mapped is replaced, never overwritten.
set -euo pipefail

usage() {
    cat <<'EOF_USAGE'
Usage: scripts/install.sh [--prefix DIR] [--system-wide]

Builds cfrfix (cargo build --release) if needed and installs it under DIR (default
/usr/local). With --system-wide, also adds the library to /etc/ld.so.preload, after
test-loading it into real programs (undo: scripts/uninstall.sh, or
DIR/libexec/cfrfix/cfrfix-system-wide disable), and installs a commented /etc/cfrfix.conf
if there is none.
EOF_USAGE
}

usage_error() {
    printf 'install.sh: %s\n' "$1" >&2
    usage >&2
    exit 2
}

fail() {
    printf 'install.sh: %s\n' "$1" >&2
    exit 1
}

prefix=/usr/local
system_wide=
while (($# > 0)); do
    case $1 in
    --prefix)
        (($# >= 2)) || usage_error "--prefix needs a directory"
        prefix=$2
        shift 2
        ;;
    --prefix=*)
        prefix=${1#--prefix=}
        shift
        ;;
    --system-wide)
        system_wide=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage_error "unknown argument '$1'"
        ;;
    esac
done
[[ -n $prefix ]] || usage_error "--prefix must not be empty"
# The absolute prefix, resolved without creating anything (-m: parts may not exist yet).
prefix=$(readlink -m -- "$prefix")

# --- Checks, before anything is changed. -------------------------------------------------
# The installed command puts PREFIX/$LIB/libcfrfix.so into LD_PRELOAD (split by ld.so on
# spaces and colons) and, with --system-wide, into /etc/ld.so.preload (split on whitespace and
# colons; `#` may start a comment there; `$` starts $LIB/$PLATFORM tokens in both).
if [[ $prefix =~ [[:space:]:\$#] || $prefix =~ [^[:print:]] ]]; then
    fail "cannot install into '$prefix': the library path would contain a space, tab, colon, '\$' or '#', which LD_PRELOAD and /etc/ld.so.preload cannot express; choose another --prefix"
fi
if [[ -n $system_wide ]] && ((EUID != 0)); then
    fail "--system-wide needs root (it changes /etc/ld.so.preload); nothing was installed"
fi
library_dir=$prefix/libexec/cfrfix
doc_dir=$prefix/share/doc/cfrfix
# check_target_dir DIR: DIR, where a file goes, is there and writable, or can be created (the
# deepest existing directory on its way is writable: the rest is created below it).
check_target_dir() {
    local dir=$1 existing=$1
    while [[ ! -e $existing ]]; do
        existing=$(dirname -- "$existing")
    done
    [[ -d $existing ]] || fail "cannot install into $dir: $existing is not a directory; nothing was installed"
    [[ -w $existing && -x $existing ]] ||
        fail "cannot install into $dir: $existing is not writable by uid $EUID (run as root, or choose --prefix ~/.local); nothing was installed"
}
# The directories every install writes to (each ABI's library directory is checked once
# cfrfix-check has said where they are, below).
target_dirs=("$prefix/bin" "$library_dir" "$prefix/share/man/man1" "$doc_dir")
[[ -z $system_wide ]] || target_dirs+=(/etc)
for dir in "${target_dirs[@]}"; do
    check_target_dir "$dir"
done

checkout_dir=$(readlink -f -- "$(dirname -- "${BASH_SOURCE[0]}")/..")
target_dir=${CARGO_TARGET_DIR:-$checkout_dir/target}
[[ $target_dir == /* ]] || target_dir=$checkout_dir/$target_dir
release_dir=$target_dir/release
# Tests install their own profile's build (and never build): the cfrfix command's variable.
release_dir=${CFRFIX_ARTEFACT_DIR:-$release_dir}
readonly BUILT=(libcfrfix.so cfrfix-check cfrfix-check-copy cfrfix-inject)
readonly LIBRARY_NAME=libcfrfix.so

build_complete() {
    local name
    for name in "${BUILT[@]}"; do
        [[ -f $release_dir/$name ]] || return 1
    done
}
if ! build_complete; then
    command -v cargo >/dev/null ||
        fail "cargo is needed to build cfrfix; it needs Rust 1.85 or later (https://rustup.rs, or on Debian 12: apt install rustc-web cargo-web)"
    printf 'install.sh: building: cargo build --release\n'
    cargo build --release --quiet --manifest-path "$checkout_dir/Cargo.toml" ||
        fail "cargo build --release failed; nothing was installed"
    build_complete || fail "the build did not produce all of ${BUILT[*]} in $release_dir"
fi

# Each ABI this machine runs (cfrfix-check decides, as the installed command will): its
# `$LIB`, and this checkout's build for it. Other ABIs' builds sit where Cargo puts a cross
# build: release_dir/../<triple>/release/.
abi_libraries=()
lacking=()
abi_table=$("$release_dir/cfrfix-check" --abis) ||
    fail "$release_dir/cfrfix-check --abis failed; nothing was installed"
while IFS=$'\t' read -r name triple role lib _; do
    if [[ $triple == - ]]; then
        lacking+=("$name programs will not get cfrfix: there is no $name build of cfrfix")
        continue
    fi
    if [[ $role == native ]]; then
        build=$release_dir/$LIBRARY_NAME
    else
        build=$(dirname -- "$release_dir")/$triple/$(basename -- "$release_dir")/$LIBRARY_NAME
    fi
    if [[ -f $build ]]; then
        check_target_dir "$prefix/$lib"
        abi_libraries+=("$build"$'\t'"$prefix/$lib/$LIBRARY_NAME")
    else
        lacking+=("$name programs will not get cfrfix: no $name build in $build (scripts/build-targets $triple)")
    fi
done <<<"$abi_table"
((${#abi_libraries[@]})) || fail "cfrfix-check --abis found no ABI with a build; nothing was installed"
if [[ -n $system_wide ]] && ((${#lacking[@]})); then
    printf 'install.sh: %s\n' "${lacking[@]}" >&2
    fail "--system-wide would make each of their processes print an ld.so error; nothing was installed"
fi

# --- Installing. ------------------------------------------------------------------------
# What this run created, in order, for the manifest: `dir PATH` for each directory, `file PATH`
# for each ABI's library.
manifest_entries=()
# make_dir DIR: DIR and its missing parents, each recorded.
make_dir() {
    local dir=$1 missing=()
    while [[ ! -e $dir ]]; do
        missing=("$dir" "${missing[@]}")
        dir=$(dirname -- "$dir")
    done
    for dir in "${missing[@]}"; do
        mkdir -- "$dir" || fail "could not create $dir"
        manifest_entries+=("dir $dir")
    done
}

# The temporary file being written, removed however the script ends.
in_progress=
trap 'rm -f -- "$in_progress"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# install_file SOURCE DESTINATION MODE
install_file() {
    local source=$1 destination=$2 mode=$3
    make_dir "$(dirname -- "$destination")"
    in_progress=$(mktemp "$destination.install.XXXXXX") || fail "could not write in $(dirname -- "$destination")"
    if cp -- "$source" "$in_progress" && chmod "$mode" "$in_progress" &&
        mv -f -- "$in_progress" "$destination"; then
        in_progress=
        printf '  %s\n' "$destination"
        return 0
    fi
    fail "could not install $destination"
}

printf 'install.sh: installing into %s\n' "$prefix"
install_file "$checkout_dir/scripts/cfrfix" "$prefix/bin/cfrfix" 0755
install_file "$release_dir/cfrfix-check" "$library_dir/cfrfix-check" 0755
install_file "$release_dir/cfrfix-check-copy" "$library_dir/cfrfix-check-copy" 0755
install_file "$release_dir/cfrfix-inject" "$library_dir/cfrfix-inject" 0755
install_file "$checkout_dir/scripts/cfrfix-system-wide" "$library_dir/cfrfix-system-wide" 0755
install_file "$checkout_dir/docs/cfrfix.1" "$prefix/share/man/man1/cfrfix.1" 0644
install_file "$checkout_dir/docs/deployment.md" "$doc_dir/deployment.md" 0644
install_file "$checkout_dir/docs/cfrfix.conf.example" "$doc_dir/cfrfix.conf.example" 0644
install_file "$checkout_dir/docs/systemd/cfrfix.conf" "$doc_dir/systemd-dropin-cfrfix.conf" 0644
install_file "$checkout_dir/CHANGELOG.md" "$doc_dir/CHANGELOG.md" 0644
install_file "$checkout_dir/LICENSE-MIT" "$doc_dir/LICENSE-MIT" 0644
install_file "$checkout_dir/LICENSE-APACHE" "$doc_dir/LICENSE-APACHE" 0644
for pair in "${abi_libraries[@]}"; do
    install_file "${pair%%$'\t'*}" "${pair#*$'\t'}" 0644
    manifest_entries+=("file ${pair#*$'\t'}")
done
# What an earlier install recorded stays recorded (a library installed then is replaced now;
# one of an ABI this machine no longer runs is still removed by uninstall.sh).
manifest=$library_dir/installed
if [[ -f $manifest ]]; then
    mapfile -t previous <"$manifest"
    manifest_entries=("${previous[@]}" "${manifest_entries[@]}")
fi
in_progress=$manifest.new
printf '%s\n' "${manifest_entries[@]}" | awk '!seen[$0]++' >"$in_progress"
chmod 0644 "$in_progress"
mv -f -- "$in_progress" "$manifest"
in_progress=
for line in "${lacking[@]}"; do
    printf 'install.sh: note: %s\n' "$line"
done

if [[ -n $system_wide ]]; then
    "$library_dir/cfrfix-system-wide" enable "$prefix/\$LIB/$LIBRARY_NAME"
    if [[ ! -e /etc/cfrfix.conf ]]; then
        install_file "$checkout_dir/docs/cfrfix.conf.example" /etc/cfrfix.conf 0644
    else
        printf 'install.sh: keeping the existing /etc/cfrfix.conf\n'
    fi
fi

if ! command -v cfrfix >/dev/null || [[ $(readlink -f -- "$(command -v cfrfix)") != "$prefix/bin/cfrfix" ]]; then
    printf 'install.sh: note: %s is not the cfrfix first in PATH\n' "$prefix/bin/cfrfix"
fi
printf 'install.sh: done. Try: %s --check\n' "$prefix/bin/cfrfix"

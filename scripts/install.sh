#!/usr/bin/env bash
# install.sh [--prefix DIR] [--system-wide]: install cfrfix from this checkout.
#
# Layout (PREFIX defaults to /usr/local):
#   PREFIX/bin/cfrfix                        the command
#   PREFIX/lib/cfrfix/libcfrfix.so           the preload library
#   PREFIX/lib/cfrfix/cfrfix-check           probe behind `cfrfix --check`
#   PREFIX/lib/cfrfix/cfrfix-inject          seccomp injector behind `cfrfix --enosys`
#   PREFIX/lib/cfrfix/cfrfix-system-wide     /etc/ld.so.preload management
#   PREFIX/share/doc/cfrfix/                 deployment.md, cfrfix.conf.example, systemd drop-in
# Each file is written under a temporary name and renamed into place, so a library that
# running processes have mapped is replaced, never overwritten.
set -euo pipefail

usage() {
    cat <<'EOF_USAGE'
Usage: scripts/install.sh [--prefix DIR] [--system-wide]

Builds cfrfix (cargo build --release) if needed and installs it under DIR (default
/usr/local). With --system-wide, also adds the library to /etc/ld.so.preload, after
test-loading it into real programs (undo: scripts/uninstall.sh, or
DIR/lib/cfrfix/cfrfix-system-wide disable), and installs a commented /etc/cfrfix.conf
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
mkdir -p -- "$prefix"
prefix=$(readlink -f -- "$prefix")

checkout_dir=$(readlink -f -- "$(dirname -- "${BASH_SOURCE[0]}")/..")
target_dir=${CARGO_TARGET_DIR:-$checkout_dir/target}
[[ $target_dir == /* ]] || target_dir=$checkout_dir/$target_dir
release_dir=$target_dir/release

if [[ ! -f $release_dir/libcfrfix.so || ! -f $release_dir/cfrfix-check ||
    ! -f $release_dir/cfrfix-inject ]]; then
    command -v cargo >/dev/null || fail "cargo is needed to build cfrfix"
    printf 'install.sh: building: cargo build --release\n'
    cargo build --release --quiet --manifest-path "$checkout_dir/Cargo.toml"
fi

# install_file SOURCE DESTINATION MODE
install_file() {
    local source=$1 destination=$2 mode=$3 temporary
    mkdir -p -- "$(dirname -- "$destination")"
    temporary=$(mktemp "$destination.install.XXXXXX")
    if cp -- "$source" "$temporary" && chmod "$mode" "$temporary" &&
        mv -f -- "$temporary" "$destination"; then
        printf '  %s\n' "$destination"
        return 0
    fi
    rm -f -- "$temporary"
    fail "could not install $destination"
}

library_dir=$prefix/lib/cfrfix
doc_dir=$prefix/share/doc/cfrfix
printf 'install.sh: installing into %s\n' "$prefix"
install_file "$checkout_dir/scripts/cfrfix" "$prefix/bin/cfrfix" 0755
install_file "$release_dir/libcfrfix.so" "$library_dir/libcfrfix.so" 0644
install_file "$release_dir/cfrfix-check" "$library_dir/cfrfix-check" 0755
if [[ -f $release_dir/cfrfix-inject ]]; then
    install_file "$release_dir/cfrfix-inject" "$library_dir/cfrfix-inject" 0755
else
    printf 'install.sh: warning: cfrfix-inject was not built; cfrfix --enosys will not work\n' >&2
fi
install_file "$checkout_dir/scripts/cfrfix-system-wide" "$library_dir/cfrfix-system-wide" 0755
install_file "$checkout_dir/docs/deployment.md" "$doc_dir/deployment.md" 0644
install_file "$checkout_dir/docs/cfrfix.conf.example" "$doc_dir/cfrfix.conf.example" 0644
install_file "$checkout_dir/docs/systemd/cfrfix.conf" "$doc_dir/systemd-dropin-cfrfix.conf" 0644

if [[ -n $system_wide ]]; then
    ((EUID == 0)) || fail "--system-wide needs root"
    "$library_dir/cfrfix-system-wide" enable "$library_dir/libcfrfix.so"
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

#!/usr/bin/env bash
# uninstall.sh [--prefix DIR]: remove what install.sh put under DIR (default /usr/local), and
# the directories it created there (listed in DIR/lib/cfrfix/created-directories) when they are
# empty. If the library is in /etc/ld.so.preload, that file is restored first (byte for byte as
# it was before `install.sh --system-wide`), so no process ever looks for a missing library.
set -euo pipefail

usage() {
    printf 'Usage: scripts/uninstall.sh [--prefix DIR]\n'
}

usage_error() {
    printf 'uninstall.sh: %s\n' "$1" >&2
    usage >&2
    exit 2
}

prefix=/usr/local
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
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage_error "unknown argument '$1'"
        ;;
    esac
done
[[ -d $prefix ]] || { printf 'uninstall.sh: %s does not exist: nothing to do\n' "$prefix"; exit 0; }
prefix=$(readlink -f -- "$prefix")
library_dir=$prefix/lib/cfrfix
doc_dir=$prefix/share/doc/cfrfix
library=$library_dir/libcfrfix.so

# The library must leave /etc/ld.so.preload before it leaves the disk.
if [[ -e /etc/ld.so.preload.cfrfix-added && $(</etc/ld.so.preload.cfrfix-added) == "$library" ]]; then
    system_wide=$library_dir/cfrfix-system-wide
    [[ -x $system_wide ]] || system_wide=$(dirname -- "${BASH_SOURCE[0]}")/cfrfix-system-wide
    "$system_wide" disable
elif [[ -e /etc/ld.so.preload ]] && grep -qxF -- "$library" /etc/ld.so.preload; then
    printf 'uninstall.sh: %s is listed in /etc/ld.so.preload (added by hand): remove that line first\n' "$library" >&2
    exit 1
fi

# /etc/cfrfix.conf goes only if it is still the untouched example install.sh put there.
if [[ -e /etc/cfrfix.conf && -e $doc_dir/cfrfix.conf.example ]] &&
    cmp -s /etc/cfrfix.conf "$doc_dir/cfrfix.conf.example" &&
    ! grep -q libcfrfix /etc/ld.so.preload 2>/dev/null; then
    rm -f /etc/cfrfix.conf
    printf '  removed /etc/cfrfix.conf (unchanged example)\n'
fi

printf 'uninstall.sh: removing cfrfix from %s\n' "$prefix"
for file in "$prefix/bin/cfrfix" \
    "$library_dir/libcfrfix.so" "$library_dir/cfrfix-check" "$library_dir/cfrfix-check-copy" \
    "$library_dir/cfrfix-inject" "$library_dir/cfrfix-system-wide" \
    "$prefix/share/man/man1/cfrfix.1" \
    "$doc_dir/deployment.md" "$doc_dir/cfrfix.conf.example" "$doc_dir/systemd-dropin-cfrfix.conf" \
    "$doc_dir/CHANGELOG.md" "$doc_dir/LICENSE-MIT" "$doc_dir/LICENSE-APACHE"; do
    if [[ -e $file ]]; then
        rm -f -- "$file"
        printf '  removed %s\n' "$file"
    fi
done
# The directories install.sh created, deepest first, each only if empty (and only the prefix,
# the directories on its way that install.sh created, and those inside it).
manifest=$library_dir/created-directories
created=()
if [[ -f $manifest ]]; then
    mapfile -t created <"$manifest"
    rm -f -- "$manifest"
fi
rmdir --ignore-fail-on-non-empty -- "$library_dir" "$doc_dir" 2>/dev/null || true
for ((i = ${#created[@]} - 1; i >= 0; i--)); do
    dir=${created[i]}
    [[ $prefix == "$dir" || $prefix == "$dir"/* || $dir == "$prefix"/* ]] || continue
    [[ -d $dir ]] || continue
    if rmdir -- "$dir" 2>/dev/null; then
        printf '  removed %s/\n' "$dir"
    fi
done
printf 'uninstall.sh: done\n'

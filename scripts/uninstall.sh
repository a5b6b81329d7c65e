#!/usr/bin/env bash
# uninstall.sh [--prefix DIR]: remove what install.sh put under DIR (default /usr/local): each
# ABI's library and the directories it created there when they are empty (both listed in
# DIR/libexec/cfrfix/installed), and the other files. If the library is in /etc/ld.so.preload,
# that file is restored first (byte for byte as it was before `install.sh --system-wide`), so
# no process ever looks for a missing library.
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
library_dir=$prefix/libexec/cfrfix
# Before per-ABI installs, the helpers and the library were in PREFIX/lib/cfrfix/.
old_dir=$prefix/lib/cfrfix
doc_dir=$prefix/share/doc/cfrfix
# The entry install.sh gives the command and /etc/ld.so.preload: a literal $LIB, expanded by
# each ABI's loader.
library=$prefix/\$LIB/libcfrfix.so
old_library=$old_dir/libcfrfix.so

# The library must leave /etc/ld.so.preload before it leaves the disk.
added=
[[ ! -e /etc/ld.so.preload.cfrfix-added ]] || added=$(</etc/ld.so.preload.cfrfix-added)
if [[ -n $added && ($added == "$library" || $added == "$old_library") ]]; then
    system_wide=$library_dir/cfrfix-system-wide
    [[ -x $system_wide ]] || system_wide=$(dirname -- "${BASH_SOURCE[0]}")/cfrfix-system-wide
    "$system_wide" disable
else
    for entry in "$library" "$old_library"; do
        if [[ -e /etc/ld.so.preload ]] && grep -qxF -- "$entry" /etc/ld.so.preload; then
            printf 'uninstall.sh: %s is listed in /etc/ld.so.preload (added by hand): remove that line first\n' "$entry" >&2
            exit 1
        fi
    done
fi

# /etc/cfrfix.conf goes only if it is still the untouched example install.sh put there.
if [[ -e /etc/cfrfix.conf && -e $doc_dir/cfrfix.conf.example ]] &&
    cmp -s /etc/cfrfix.conf "$doc_dir/cfrfix.conf.example" &&
    ! grep -q libcfrfix /etc/ld.so.preload 2>/dev/null; then
    rm -f /etc/cfrfix.conf
    printf '  removed /etc/cfrfix.conf (unchanged example)\n'
fi

printf 'uninstall.sh: removing cfrfix from %s\n' "$prefix"
# What install.sh recorded: each ABI's library (removed now; only files named libcfrfix.so
# inside the prefix), and every directory it created (removed at the end, below).
manifest=$library_dir/installed
created_dirs=()
if [[ -f $manifest ]]; then
    while read -r kind path; do
        case $kind in
        file)
            if [[ ${path##*/} == libcfrfix.so && $path == "$prefix"/* && -e $path ]]; then
                rm -f -- "$path"
                printf '  removed %s\n' "$path"
            fi
            ;;
        dir) created_dirs+=("$path") ;;
        esac
    done <"$manifest"
fi
helpers=()
for dir in "$library_dir" "$old_dir"; do
    helpers+=("$dir/cfrfix-check" "$dir/cfrfix-check-copy" "$dir/cfrfix-inject" "$dir/cfrfix-system-wide")
done
for file in "$prefix/bin/cfrfix" "$manifest" "$old_library" "${helpers[@]}" \
    "$prefix/share/man/man1/cfrfix.1" \
    "$doc_dir/deployment.md" "$doc_dir/cfrfix.conf.example" "$doc_dir/systemd-dropin-cfrfix.conf" \
    "$doc_dir/CHANGELOG.md" "$doc_dir/LICENSE-MIT" "$doc_dir/LICENSE-APACHE"; do
    if [[ -e $file ]]; then
        rm -f -- "$file"
        printf '  removed %s\n' "$file"
    fi
done
rmdir --ignore-fail-on-non-empty -- "$library_dir" "$old_dir" "$doc_dir" 2>/dev/null || true
# The directories install.sh created, deepest first (in reverse sorted order, whatever is
# below a directory comes before it), each only if empty; and only the prefix, the
# directories on its way that install.sh created, and those inside it.
if ((${#created_dirs[@]})); then
    mapfile -t created_dirs < <(printf '%s\n' "${created_dirs[@]}" | LC_ALL=C sort -r -u)
fi
for dir in "${created_dirs[@]}"; do
    [[ $prefix == "$dir" || $prefix == "$dir"/* || $dir == "$prefix"/* ]] || continue
    [[ -d $dir ]] || continue
    if rmdir -- "$dir" 2>/dev/null; then
        printf '  removed %s/\n' "$dir"
    fi
done
printf 'uninstall.sh: done\n'

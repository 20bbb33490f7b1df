#!/usr/bin/env bash
# Fetches the Debian source of the installed fio (apt-get source fio=VERSION)
# and configures it the way debian/rules does, so the engine in fioengine/ is
# compiled against the headers and config-host.h of the fio binary that will
# load it. Idempotent: a tree already fetched for the installed version is
# reused.
#
# Usage: scripts/fetch-fio-source.sh DEST          fetch into DEST/src, configure
#        scripts/fetch-fio-source.sh --configure DIR  configure an existing tree
# Prints the configured source directory on its last line of stdout.
# Needs: fio installed, dpkg-dev, and a deb-src entry for the fio package
# (scripts/install-deps.sh adds one for Debian 12 and runs apt-get update).
set -euo pipefail

die() { echo "fetch-fio-source: error: $*" >&2; exit 1; }
note() { echo "fetch-fio-source: $*" >&2; }

# Runs ./configure with the flags of debian/rules' override_dh_auto_configure
# and the build flags dpkg-buildpackage would export.
configure_tree() {
  local src=$1
  [ -x "$src/configure" ] || die "$src is not a fio source tree (no ./configure)"
  local rules="$src/debian/rules" args=()
  if [ -f "$rules" ]; then
    local line
    line=$(sed -n 's/^[[:space:]]*\.\/configure[[:space:]]*//p' "$rules" | head -n1)
    [ -n "$line" ] || die "no ./configure line in $rules"
    read -r -a args <<<"$line"
  else
    note "warning: $src has no debian/rules; configuring with --disable-native --prefix=/usr"
    args=(--disable-native --prefix=/usr)
  fi
  # --enable-gfio and --enable-libnbd make configure fail without gtk2/libnbd
  # headers. They only add the gfio GUI and the nbd engine: CONFIG_GFIO and
  # CONFIG_LIBNBD appear in no fio header, so the structures the engine shares
  # with fio are the same without them.
  local kept=() a
  for a in "${args[@]}"; do
    case "$a" in
      --enable-gfio) pkg-config --exists gtk+-2.0 2>/dev/null || { note "dropping --enable-gfio (no gtk+-2.0; no header depends on it)"; continue; } ;;
      --enable-libnbd) pkg-config --exists libnbd 2>/dev/null || { note "dropping --enable-libnbd (no libnbd; no header depends on it)"; continue; } ;;
    esac
    kept+=("$a")
  done
  note "configuring $src: ./configure ${kept[*]}"
  (
    cd "$src"
    if command -v dpkg-buildflags >/dev/null; then
      eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all DEB_LDFLAGS_MAINT_PREPEND=-Wl,-z,defs \
              dpkg-buildflags --export=sh)"
    fi
    ./configure "${kept[@]}" >configure.log 2>&1 || { tail -n 20 configure.log >&2; exit 1; }
    ./FIO-VERSION-GEN >/dev/null 2>&1
  ) || die "fio's ./configure failed in $src (see $src/configure.log)"
  [ -f "$src/config-host.h" ] || die "configure left no config-host.h in $src"
  # CONFIG_CUDA is the one configure result that changes struct thread_data;
  # Debian builds without it.
  if grep -q '^#define CONFIG_CUDA' "$src/config-host.h"; then
    die "config-host.h enables CONFIG_CUDA, which Debian's fio does not: struct thread_data would differ"
  fi
}

if [ "${1:-}" = "--configure" ]; then
  [ $# -eq 2 ] || die "usage: $0 --configure DIR"
  src=$(cd "$2" && pwd)
  configure_tree "$src"
  echo "$src"
  exit 0
fi
[ $# -eq 1 ] || die "usage: $0 DEST | --configure DIR"
mkdir -p "$1"
dest=$(cd "$1" && pwd)

ver=$(dpkg-query -W -f='${Version}' fio 2>/dev/null || true)
[ -n "$ver" ] || die "fio is not installed (apt-get install fio, or scripts/install-deps.sh)"
if [ -f "$dest/.fio-version" ] && [ "$(cat "$dest/.fio-version")" = "$ver" ] &&
   [ -f "$dest/src/config-host.h" ]; then
  note "fio $ver source already in $dest/src"
  echo "$dest/src"
  exit 0
fi
command -v dpkg-source >/dev/null || die "dpkg-source missing: apt-get install dpkg-dev"

work="$dest/.fetch.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
note "fetching Debian source of fio $ver (apt-get source)"
if ! (cd "$work" && apt-get source -q --only-source "fio=$ver" >fetch.log 2>&1); then
  tail -n 5 "$work/fetch.log" >&2 || true
  die "apt-get source fio=$ver failed. Need a deb-src entry for the fio package and
  an updated index: run scripts/install-deps.sh (it adds
  /etc/apt/sources.list.d/cfs-deb-src.sources and runs apt-get update). If the
  archive no longer has $ver, upgrade fio (apt-get install --only-upgrade fio), or
  give a configured tree with -DCFS_FIO_SOURCE_DIR=DIR."
fi
shopt -s nullglob
dirs=("$work"/fio-*/)
[ ${#dirs[@]} -eq 1 ] || die "apt-get source left ${#dirs[@]} fio-* directories in $work"
rm -rf "$dest/src"
mv "${dirs[0]%/}" "$dest/src"
configure_tree "$dest/src"
echo "$ver" >"$dest/.fio-version"
note "fio $ver source configured in $dest/src"
echo "$dest/src"

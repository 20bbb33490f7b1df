#!/usr/bin/env bash
# Installs everything CFS needs to build, run and test on a fresh Debian 12 machine.
# Usage: scripts/install-deps.sh [--bench]   (--bench adds bindfs, GlusterFS, iperf3 and time for benchmarks)
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS=(
  build-essential cmake ninja-build pkg-config ccache git
  librocksdb-dev libfuse3-dev fuse3 libxxhash-dev libisal-dev
  libprotobuf-dev protobuf-compiler libspdlog-dev libfmt-dev libcli11-dev
  nlohmann-json3-dev libboost-dev libgtest-dev libgmock-dev
  clang libclang-rt-14-dev
  python3 procps psmisc iproute2 util-linux attr
  fio dpkg-dev
  # The rdma-labelled tests run in a QEMU guest booting Debian's kernel with
  # Soft-RoCE (scripts/rdma-guest/, docs/rdma.md).
  qemu-system-x86 linux-image-amd64 busybox-static kmod cpio xz-utils
  rdma-core ibverbs-providers libibverbs-dev librdmacm-dev ibverbs-utils perftest rdmacm-utils
)
if [ "${1:-}" = "--bench" ]; then
  PKGS+=(bindfs glusterfs-server glusterfs-client iperf3 time)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # INITRD=No: the kernel's postinst skips building a /boot initramfs that the
  # RDMA guest never uses (scripts/rdma-guest/prepare.sh builds its own).
  $SUDO env INITRD=No DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
# The fio engine (-DCFS_FIO_ENGINE=ON) is built against the installed fio's
# Debian source (scripts/fetch-fio-source.sh runs apt-get source): a deb-src
# entry for bookworm, and an index that has it.
DEB_SRC=/etc/apt/sources.list.d/cfs-deb-src.sources
DEB_SRC_TEXT="Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
if [ "$(cat "$DEB_SRC" 2>/dev/null)" != "$DEB_SRC_TEXT" ]; then
  echo "install-deps: adding $DEB_SRC"
  printf '%s\n' "$DEB_SRC_TEXT" | $SUDO tee "$DEB_SRC" >/dev/null
  $SUDO apt-get update -qq
elif ! apt-cache showsrc fio 2>/dev/null | grep -q '^Package: fio$'; then
  $SUDO apt-get update -qq
fi
# FUSE: allow_other for non-root mounts and the cfs mount helper need this.
if [ -f /etc/fuse.conf ] && ! grep -q '^user_allow_other' /etc/fuse.conf; then
  echo user_allow_other | $SUDO tee -a /etc/fuse.conf >/dev/null
fi
